// C[M,N] = epilogue(A·Wᵀ + bias) for small M: the weights stream through once.
// Tiling: each warp owns ROWS rows of W; its lanes walk K with 16-byte loads, UNROLL
// steps in flight, keeping all M rows of A·W in registers; a CTA is WARPS warps.
//
// fp32 FFMA, so it serves both precisions. Device code only, compiled by NVRTC.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

template <int M, int N, int K1, int K2, int LDW, int ROWS, int WARPS, int UNROLL, int EPI>
__global__ void __launch_bounds__(WARPS * 32)
    gemv(const float* __restrict__ a1, const float* __restrict__ a2, const float* __restrict__ w,
         const float* __restrict__ bias, float* __restrict__ c) {
  static_assert(M >= 1 && M <= 16, "gemv keeps M×ROWS accumulators per lane: M ≤ 16");
  constexpr bool kShapeVec = K1 % 4 == 0 && K2 % 4 == 0 && LDW % 4 == 0;
  const int lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * WARPS + threadIdx.x / 32) * ROWS;
  if (n0 >= N) return;  // whole warps only: no barrier below
  // 16-byte loads need aligned rows (the shape) and aligned bases (checked once, uniform).
  const bool vec = kShapeVec && aligned16(a1) && aligned16(a2) && aligned16(w);

  // Rows past N read row N-1 again (in bounds) and are not stored.
  const float* wrow[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wrow[r] = w + static_cast<long long>(min(n0 + r, N - 1)) * LDW;
  float acc[ROWS][M] = {};
  warp_dot<M, ROWS, UNROLL, false>(acc, a1, K1, wrow, K1, vec, lane);
  if (K2 > 0) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) wrow[r] += K1;
    warp_dot<M, ROWS, UNROLL, false>(acc, a2, K2, wrow, K2, vec, lane);
  }
  warp_reduce(acc);
  // Lane m stores batch row m.
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m && n0 + r < N)
        c[static_cast<long long>(m) * N + n0 + r] = epilogue<EPI>(acc[r][m] + bias[n0 + r]);
}

}  // namespace rnnjit_k
