// C[M,N] = epilogue(A·Wᵀ + bias) for few outputs N and many rows M: gemv with the roles swapped.
// Tiling: each warp owns ROWS rows of [A1 | A2] and streams them once, its lanes walking K with
// 16-byte loads (8-byte where rows or bases allow no wider); all N rows of W, read by every warp
// through L1, and ROWS×N sums in registers; a CTA is WARPS warps.
//
// fp32 FFMA, so it serves both precisions, and either storage type (ST). Device code only,
// compiled by NVRTC.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

template <int ST, int M, int N, int K1, int K2, int LDW, int ROWS, int WARPS, int UNROLL, int EPI>
__global__ void __launch_bounds__(WARPS * 32)
    gemvt(const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
          const typename Store<ST>::T* __restrict__ w, const typename Store<ST>::T* __restrict__ bias,
          typename Store<ST>::T* __restrict__ c) {
  using S = Store<ST>;
  static_assert(N >= 1 && N <= kGemvtMaxN, "gemvt keeps ROWS×N sums per lane");
  constexpr int kVB = vec_bytes<ST>(K1, K2, LDW);
  const int lane = threadIdx.x % 32;
  const int m0 = (blockIdx.x * WARPS + threadIdx.x / 32) * ROWS;
  if (m0 >= M) return;  // whole warps only: no barrier below
  const int vb = vec_bytes_at<ST, kVB>(a1, a2, w);

  // warp_dot's streamed rows are A's (rows past M re-read the last, unstored), its rows held
  // across the loop W's: acc[r][n] = Σ_k A[m0 + r][k]·W[n][k], K1 columns from A1, then K2 from A2.
  float acc[ROWS][N] = {};
  const typename S::T* arow[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) arow[r] = a1 + static_cast<long long>(min(m0 + r, M - 1)) * K1;
  warp_dot<ST, N, ROWS, UNROLL, kVB, false>(acc, w, LDW, arow, K1, vb, lane);
  if constexpr (K2 > 0) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) arow[r] = a2 + static_cast<long long>(min(m0 + r, M - 1)) * K2;
    warp_dot<ST, N, ROWS, UNROLL, kVB, false>(acc, w + K1, LDW, arow, K2, vb, lane);
  }
  warp_reduce(acc);
  // Lane n stores column n of the warp's rows.
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int n = 0; n < N; ++n)
      if (lane == n && m0 + r < M)
        c[static_cast<long long>(m0 + r) * N + n] = S::put(epilogue<EPI>(acc[r][n] + S::get(bias[n])));
}

}  // namespace rnnjit_k
