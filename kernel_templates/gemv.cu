// C[M,N] = epilogue(A·Wᵀ + bias) for small M: the weights stream through once.
// Tiling: each warp owns ROWS rows of W; its lanes walk K with 16-byte loads, UNROLL
// steps in flight, keeping all M rows of A·W in registers; a CTA is WARPS warps.
//
// fp32 FFMA, so it serves both precisions. Device code only, compiled by NVRTC.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Streamed once: keep it out of L1 so A (re-read by every warp) stays there.
__device__ __forceinline__ float4 load_stream(const float* p) {
  float4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.f32 {%0,%1,%2,%3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "l"(p));
  return v;
}

template <int M, int N, int K1, int K2, int LDW, int ROWS, int WARPS, int UNROLL, int EPI>
__global__ void __launch_bounds__(WARPS * 32)
    gemv(const float* __restrict__ a1, const float* __restrict__ a2, const float* __restrict__ w,
         const float* __restrict__ bias, float* __restrict__ c) {
  static_assert(M >= 1 && M <= 16, "gemv keeps M×ROWS accumulators per lane: M ≤ 16");
  constexpr bool kShapeVec = K1 % 4 == 0 && K2 % 4 == 0 && LDW % 4 == 0;
  const int lane = threadIdx.x % 32;
  const int n0 = (blockIdx.x * WARPS + threadIdx.x / 32) * ROWS;
  if (n0 >= N) return;  // whole warps only: no barrier below
  const bool vec = kShapeVec && ((reinterpret_cast<unsigned long long>(a1) |
                                  reinterpret_cast<unsigned long long>(a2) |
                                  reinterpret_cast<unsigned long long>(w)) % 16 == 0);

  float acc[ROWS][M] = {};
  // Rows past N read row N-1 again (in bounds) and are not stored.
  const float* wrow[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wrow[r] = w + static_cast<long long>(min(n0 + r, N - 1)) * LDW;

  // One K segment: A is M×K (row stride K), W columns [w_col, w_col + K).
  auto segment = [&](const float* a, int K, int w_col) {
    if (vec) {
      for (int k = lane * 4; k < K; k += 32 * 4 * UNROLL) {
        float4 wv[UNROLL][ROWS];
#pragma unroll
        for (int u = 0; u < UNROLL; ++u)
#pragma unroll
          for (int r = 0; r < ROWS; ++r) {
            const int kk = k + u * 128;
            wv[u][r] = kk < K ? load_stream(wrow[r] + w_col + kk) : make_float4(0.f, 0.f, 0.f, 0.f);
          }
#pragma unroll
        for (int u = 0; u < UNROLL; ++u) {
          const int kk = k + u * 128;
          if (kk >= K) break;
#pragma unroll
          for (int m = 0; m < M; ++m) {
            const float4 av = __ldg(reinterpret_cast<const float4*>(a + static_cast<long long>(m) * K + kk));
#pragma unroll
            for (int r = 0; r < ROWS; ++r)
              acc[r][m] += av.x * wv[u][r].x + av.y * wv[u][r].y + av.z * wv[u][r].z + av.w * wv[u][r].w;
          }
        }
      }
    } else {
      for (int k = lane; k < K; k += 32) {
        float wv[ROWS];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) wv[r] = __ldg(wrow[r] + w_col + k);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          const float av = __ldg(a + static_cast<long long>(m) * K + k);
#pragma unroll
          for (int r = 0; r < ROWS; ++r) acc[r][m] += av * wv[r];
        }
      }
    }
  };
  segment(a1, K1, 0);
  if (K2 > 0) segment(a2, K2, K1);

#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m) {
      float v = acc[r][m];
#pragma unroll
      for (int off = 16; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
      acc[r][m] = v;
    }
  // After the butterfly every lane holds every sum; lane m stores batch row m.
#pragma unroll
  for (int r = 0; r < ROWS; ++r) {
    const int n = n0 + r;
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m && n < N) c[static_cast<long long>(m) * N + n] = epilogue<EPI>(acc[r][m] + bias[n]);
  }
}

}  // namespace rnnjit_k
