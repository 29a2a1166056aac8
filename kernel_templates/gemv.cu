// C[M,N] = epilogue(A·Wᵀ + bias) for small M: the weights stream through once.
// Tiling: each warp owns ROWS rows of W; its lanes walk K with 16-byte loads, UNROLL
// steps in flight, keeping all M rows of A·W in registers; a CTA is WARPS warps.
//
// fp32 FFMA, so it serves both precisions, and either storage type (ST): bf16 halves the bytes
// streamed. Device code only, compiled by NVRTC.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

template <int ST, int M, int N, int K1, int K2, int LDW, int ROWS, int WARPS, int UNROLL, int EPI>
__global__ void __launch_bounds__(WARPS * 32)
    gemv(const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
         const typename Store<ST>::T* __restrict__ w, const typename Store<ST>::T* __restrict__ bias,
         typename Store<ST>::T* __restrict__ c) {
  static_assert(M >= 1 && M <= 16, "gemv keeps M×ROWS accumulators per lane: M ≤ 16");
  constexpr int E = Store<ST>::kPer16;
  constexpr bool kShapeVec = K1 % E == 0 && K2 % E == 0 && LDW % E == 0;
  const int lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * WARPS + threadIdx.x / 32) * ROWS;
  if (n0 >= N) return;  // whole warps only: no barrier below
  // 16-byte loads need aligned rows (the shape) and aligned bases (checked once, uniform).
  const bool vec = kShapeVec && aligned16(a1) && aligned16(a2) && aligned16(w);

  float acc[ROWS][M] = {};
  warp_rows<ST, M, ROWS, UNROLL>(acc, a1, K1, a2, K2, w, LDW, n0, N - 1, vec, lane);
  store_rows<ST, EPI>(acc, bias, c, N, n0, N, lane);
}

}  // namespace rnnjit_k
