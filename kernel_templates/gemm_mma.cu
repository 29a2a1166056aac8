// C[M,N] = epilogue(A·Wᵀ + bias), A = [A1 | A2] read as two K segments (x and h: no concat).
// Tiling: a CTA owns a BM×BN tile of C; WARPS_M×WARPS_N warps each own a sub-tile of m16n8k8
// mma.sync fragments; K advances BK at a time through a STAGES-deep cp.async ring in smem.
//
// Device code only, compiled by NVRTC with every shape and knob a template argument, so
// tails and segment boundaries known to be absent cost nothing. Runs on sm_80 and later.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Copies rows [m0, m0+BM) of A and [n0, n0+BN) of W, columns [k0, k0+BK) (W's from w_col),
// into shared-memory rows LDS floats apart, WIDTH floats a cp.async: 4 (16 bytes) when rows
// and bases are 16-byte aligned, else 1. Past the matrix edges it writes zeros.
template <int WIDTH, int M, int N, int LDW, int BM, int BN, int BK, int LDS, int THREADS>
__device__ __forceinline__ void copy_slice(float* sa, float* sb, const float* a, int lda, const float* w, int w_col,
                                           int k0, int m0, int n0) {
  constexpr int kPerRow = BK / WIDTH;
  for (int i = threadIdx.x; i < (BM + BN) * kPerRow; i += THREADS) {
    const int row = i / kPerRow, col = (i % kPerRow) * WIDTH;
    const bool is_a = row < BM;
    const int r = is_a ? row : row - BM;
    const int g = (is_a ? m0 : n0) + r;
    const bool ok = g < (is_a ? M : N) && k0 + col < lda;
    const float* src = is_a ? a + static_cast<long long>(g) * lda + k0 + col
                            : w + static_cast<long long>(g) * LDW + w_col + col;
    float* dst = (is_a ? sa : sb) + r * LDS + col;
    if (WIDTH == 4)
      cp_async_16(dst, ok ? src : w, ok);
    else
      cp_async_4(dst, ok ? src : w, ok);
  }
}

template <int M, int N, int K1, int K2, int LDW,  // shape: W rows are LDW floats apart
          int BM, int BN, int BK, int WARPS_M, int WARPS_N, int STAGES,
          int MATH,  // kMathTf32 or kMathFp32
          int EPI>   // kEpiBias or kEpiBiasTanh
__global__ void __launch_bounds__(WARPS_M* WARPS_N * 32)
    gemm_mma(const float* __restrict__ a1, const float* __restrict__ a2,
             const float* __restrict__ w, const float* __restrict__ bias, float* __restrict__ c) {
  constexpr int kThreads = WARPS_M * WARPS_N * 32;
  constexpr int kWarpM = BM / WARPS_M, kWarpN = BN / WARPS_N;
  constexpr int kFragM = kWarpM / 16, kFragN = kWarpN / 8;
  constexpr int kLds = BK + 4;  // +4 floats: fragment loads of a warp hit 32 distinct banks
  constexpr int kTiles1 = (K1 + BK - 1) / BK, kTiles = kTiles1 + (K2 + BK - 1) / BK;
  static_assert(kWarpM % 16 == 0 && kWarpN % 8 == 0, "warp tile must be whole m16n8 fragments");
  static_assert(BK % 8 == 0, "BK must be a multiple of the mma's k=8");
  static_assert(STAGES >= 2, "the cp.async ring needs two stages at least");
  // 16-byte copies need every row start 16-byte aligned: a property of the shape.
  constexpr bool kShapeVec = K1 % 4 == 0 && K2 % 4 == 0 && LDW % 4 == 0;

  extern __shared__ float4 smem_raw[];
  float* const smem = reinterpret_cast<float*>(smem_raw);
  constexpr int kStageFloats = (BM + BN) * kLds;

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  // ...and of the pointers: checked once per CTA, uniform, so no divergence.
  const bool vec = kShapeVec && aligned16(a1) && aligned16(a2) && aligned16(w);

  // Copies K-slice `t` (segment 1 then segment 2) of the A and W tiles into ring slot `slot`.
  auto load_tile = [&](int t, int slot) {
    const bool first = t < kTiles1;
    const float* a = first ? a1 : a2;
    const int lda = first ? K1 : K2;
    const int k0 = (first ? t : t - kTiles1) * BK;
    const int w_col = (first ? 0 : K1) + k0;
    float* sa = smem + slot * kStageFloats;
    float* sb = sa + BM * kLds;
    if (vec)
      copy_slice<4, M, N, LDW, BM, BN, BK, kLds, kThreads>(sa, sb, a, lda, w, w_col, k0, m0, n0);
    else
      copy_slice<1, M, N, LDW, BM, BN, BK, kLds, kThreads>(sa, sb, a, lda, w, w_col, k0, m0, n0);
  };

  float acc[kFragM][kFragN][4] = {};
  const int wm = (warp / WARPS_N) * kWarpM, wn = (warp % WARPS_N) * kWarpN;
  const int gid = lane / 4, tig = lane % 4;

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < kTiles) load_tile(s, s);
    cp_async_commit();
  }

  for (int t = 0; t < kTiles; ++t) {
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // slot t is complete for all threads; slot t-1 is no longer read
    if (t + STAGES - 1 < kTiles) load_tile(t + STAGES - 1, (t + STAGES - 1) % STAGES);
    cp_async_commit();

    const float* sa = smem + (t % STAGES) * kStageFloats;
    const float* sb = sa + BM * kLds;
    // The tensor cores' fp32 accumulation truncates: over long K the bias grows linearly
    // (2.9e-4 at K=32768). Each slice sums into a fresh fragment, then a round-to-nearest
    // add folds it in, so truncation acts on BK terms only.
    float part[kFragM][kFragN][4] = {};
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
      Tf32Frag<4> af[kFragM];
      Tf32Frag<2> bf[kFragN];
#pragma unroll
      for (int i = 0; i < kFragM; ++i) {
        const float* p = sa + (wm + i * 16 + gid) * kLds + kk + tig;
        af[i].template set<MATH>(p[0], p[8 * kLds], p[4], p[8 * kLds + 4]);
      }
#pragma unroll
      for (int j = 0; j < kFragN; ++j) {
        const float* p = sb + (wn + j * 8 + gid) * kLds + kk + tig;
        bf[j].template set<MATH>(p[0], p[4]);
      }
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int j = 0; j < kFragN; ++j) mma_tf32<MATH>(part[i][j], af[i], bf[j]);
    }
    fold(acc, part);
  }
  cp_async_wait<0>();

#pragma unroll
  for (int i = 0; i < kFragM; ++i)
#pragma unroll
    for (int j = 0; j < kFragN; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int m = m0 + wm + i * 16 + gid + (e / 2) * 8;
        const int n = n0 + wn + j * 8 + tig * 2 + e % 2;
        if (m < M && n < N) c[static_cast<long long>(m) * N + n] = epilogue<EPI>(acc[i][j][e] + bias[n]);
      }
}

}  // namespace rnnjit_k
