// The whole step in one launch for a small batch whose weights stream from HBM: i2h, a grid-wide
// barrier, h2o — one ramp and one tail where two kernels pay two of each and a launch between.
// Tiling: CTA c owns an even share of the rows of h' (then of y); its warps take ROWS rows at a
// time and stream them as gemv does (UNROLL·16 bytes a lane in flight, in 16- or 8-byte loads as
// rows and bases allow, A re-read from L1).
//
// W2 does not depend on h': once a CTA's i2h rows are done, the first PREFETCH rows of its W2
// share head for shared memory (cp.async) so that HBM stays busy while slower CTAs finish and
// through the barrier; those rows are multiplied last, while the rest stream. h' comes from other
// SMs: after the barrier it is copied through L2 into shared memory when it is at most
// kStreamStageFloats, else read with plain loads — both coherent after the barrier's acquire,
// unlike the read-only path.
//
// fp32 FFMA for both precisions; ST is the storage type of every tensor (bf16 halves the bytes
// streamed, and a 16-byte load holds 8 elements instead of 4).
//
// The engine launches it cooperatively (every CTA resident) with a launch counter of this call's
// own (rnnjit_device.cuh), and keeps h_out apart from x and h.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

template <int ST, int M, int I, int H, int O, int WARPS, int ROWS, int UNROLL, int PREFETCH>
__global__ void __launch_bounds__(WARPS * 32, 1)
    grid_stream(const typename Store<ST>::T* __restrict__ x, const typename Store<ST>::T* __restrict__ h,
                const typename Store<ST>::T* __restrict__ w1, const typename Store<ST>::T* __restrict__ b1,
                const typename Store<ST>::T* __restrict__ w2, const typename Store<ST>::T* __restrict__ b2,
                typename Store<ST>::T* h_out, typename Store<ST>::T* __restrict__ y, unsigned* barrier) {
  using T = typename Store<ST>::T;
  static_assert(M >= 1 && M <= 16, "M×ROWS sums a lane: batch ≤ 16");
  constexpr int E = Store<ST>::kPer16;   // elements a 16-byte unit
  constexpr int kStride = WARPS * ROWS;  // rows the CTA's warps take at once
  constexpr bool kStageH = stream_stages_h(M, H);
  // The widest loads (16, 8 bytes or one element) the rows allow: i2h's, h2o's, and h' as one block.
  constexpr int kVB1 = vec_bytes<ST>(I, H), kVB2 = vec_bytes<ST>(H), kVBH = vec_bytes<ST>(M * H);
  extern __shared__ float4 smem[];
  T* hs = reinterpret_cast<T*>(smem);                      // h', M×H, when kStageH
  T* w2s = hs + (kStageH ? (M * H + E - 1) / E * E : 0);   // the prefetched W2 rows, H elements each
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int c = static_cast<int>(blockIdx.x), ctas = static_cast<int>(gridDim.x);
  // An even share of n rows (±1 between CTAs): every CTA streams about as many bytes.
  auto first_row = [&](int n, int cta) { return static_cast<int>(static_cast<long long>(n) * cta / ctas); };
  const int n1 = first_row(H, c), e1 = first_row(H, c + 1), n2 = first_row(O, c), e2 = first_row(O, c + 1);
  // ... and the bases allow: i2h's by x, h and W1; h2o's by W2 and, where h' is read in place, h_out.
  const int vb1 = vec_bytes_at<ST, kVB1>(x, h, w1), vb2 = vec_bytes_at<ST, kVB2>(w2, kStageH ? w2 : h_out);
  const int pre = vb2 >= 8 ? min_int(PREFETCH, e2 - n2) : 0;  // cp.async copies h2o's loads, 16 or 8 bytes

  // i2h: rows past the share re-read its last row (in bounds) and are not stored.
  for (int n0 = n1 + warp * ROWS; n0 < e1; n0 += kStride) {
    float acc[ROWS][M] = {};
    warp_rows<ST, M, ROWS, UNROLL, kVB1>(acc, x, I, h, H, w1, I + H, n0, e1 - 1, vb1, lane);
    store_rows<ST, kEpiBiasTanh>(acc, b1, h_out, H, n0, e1, lane);
  }

  const T* w2c = w2 + static_cast<long long>(n2) * H;
  cp_async_block(w2s, w2c, pre * H * static_cast<int>(sizeof(T)), vb2);
  cp_async_commit();
  grid_barrier(barrier);
  if (kStageH) ldcg_block(hs, h_out, M * H * static_cast<int>(sizeof(T)), vec_bytes_at<ST, kVBH>(h_out));
  cp_async_wait<0>();
  __syncthreads();

  // h2o: the streamed groups of rows [pre, count) first, the prefetched ones [0, pre) last.
  const int count = e2 - n2, streamed = (count - pre + ROWS - 1) / ROWS, staged = (pre + ROWS - 1) / ROWS;
  for (int q = warp; q < streamed + staged; q += WARPS) {
    const bool in_smem = q >= streamed;
    const int local = in_smem ? (q - streamed) * ROWS : pre + q * ROWS, end = in_smem ? pre : count;
    const T* wrow[ROWS];
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
      wrow[r] = (in_smem ? w2s : w2c) + static_cast<long long>(min_int(local + r, end - 1)) * H;
    float acc[ROWS][M] = {};
    const T* a = kStageH ? hs : h_out;
    if (in_smem)
      warp_dot<ST, M, ROWS, UNROLL, kVB2, true, true>(acc, a, H, wrow, H, vb2, lane);
    else
      warp_dot<ST, M, ROWS, UNROLL, kVB2, true, false>(acc, a, H, wrow, H, vb2, lane);
    warp_reduce(acc);
    store_rows<ST, kEpiBias>(acc, b2 + n2, y + n2, O, local, end, lane);
  }
}

}  // namespace rnnjit_k
