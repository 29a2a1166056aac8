// C[M,N] = epilogue(A·Wᵀ + bias) for small M: the weights stream through once.
// Tiling: each warp owns ROWS rows of W; its lanes walk K with 16-byte loads (8-byte where rows or
// bases allow no wider), UNROLL·16 bytes in flight, all M rows of A·W in registers; a CTA is WARPS warps.
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
  constexpr int kVB = vec_bytes<ST>(K1, K2, LDW);
  const int lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * WARPS + threadIdx.x / 32) * ROWS;
  if (n0 >= N) return;  // whole warps only: no barrier below
  // The widest loads (16, 8 bytes or one element) the rows (the shape, kVB) and the bases
  // (checked once, uniform) allow.
  const int vb = vec_bytes_at<ST, kVB>(a1, a2, w);

  float acc[ROWS][M] = {};
  warp_rows<ST, M, ROWS, UNROLL, kVB>(acc, a1, K1, a2, K2, w, LDW, n0, N - 1, vb, lane);
  store_rows<ST, EPI>(acc, bias, c, N, n0, N, lane);
}

}  // namespace rnnjit_k
