// The whole step in one launch over the whole GPU, for small batches: i2h, a grid-wide
// barrier, h2o. Tiling: warp g of the grid's G computes rows g, g+G, ... of h' (then of y), its
// lanes streaming each W row with 16-byte loads as gemv does, all batch rows in registers.
//
// The engine launches it cooperatively (every CTA resident) with a barrier counter of its own
// for this call; the counter is back at zero when the kernel ends. h' goes to h_out, which the
// engine keeps apart from x and h. Sums have a fixed order: the same bits every run.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Every CTA's writes before it are visible to every CTA after it.
__device__ __forceinline__ void grid_barrier(unsigned* counter) {
  __syncthreads();
  if (threadIdx.x == 0) {
    __threadfence();
    atomicAdd(counter, 1u);
    while (ld_acquire(counter) < gridDim.x) __nanosleep(20);
  }
  __syncthreads();
}

// A second arrival on the way out; the last CTA (every other one is past the barrier's wait)
// rezeroes the counter for the next launch that uses it.
__device__ __forceinline__ void grid_release(unsigned* counter) {
  if (threadIdx.x == 0 && atomicAdd(counter, 1u) == 2 * gridDim.x - 1) atomicExch(counter, 0u);
}

template <int M, int I, int H, int O, int WARPS, int UNROLL>
__global__ void __launch_bounds__(WARPS * 32)
    fused_grid(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
               const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2,
               float* h_out, float* __restrict__ y, unsigned* barrier) {
  static_assert(M >= 1 && M <= 16, "M accumulators per lane: batch ≤ 16");
  extern __shared__ float4 smem_raw[];
  float* const hs = reinterpret_cast<float*>(smem_raw);  // [M][H]: all of h' for phase 2
  const int lane = threadIdx.x % 32;
  const int g = static_cast<int>(blockIdx.x) * WARPS + static_cast<int>(threadIdx.x) / 32;
  const int warps = static_cast<int>(gridDim.x) * WARPS;
  constexpr bool kShapeVec = I % 4 == 0 && H % 4 == 0;
  const bool vec = kShapeVec && aligned16(x) && aligned16(h) && aligned16(w1) && aligned16(w2);

  // Phase 1: h' rows = tanh([x | h]·W1ᵀ + b1), to h_out.
  for (int n = g; n < H; n += warps) {
    const float* wx[1] = {w1 + static_cast<long long>(n) * (I + H)};
    const float* wh[1] = {wx[0] + I};
    float acc[1][M] = {};
    warp_dot<M, 1, UNROLL, false>(acc, x, I, wx, I, vec, lane);
    warp_dot<M, 1, UNROLL, false>(acc, h, H, wh, H, vec, lane);
    warp_reduce(acc);
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m) h_out[static_cast<long long>(m) * H + n] = tanhf(acc[0][m] + b1[n]);
  }
  grid_barrier(barrier);

  // Phase 2: all of h' into shared memory (through L2: other SMs wrote it in this launch),
  // then y rows = h'·W2ᵀ + b2.
  for (int i = threadIdx.x; i < M * H; i += WARPS * 32) hs[i] = __ldcg(h_out + i);
  __syncthreads();
  for (int n = g; n < O; n += warps) {
    const float* wr[1] = {w2 + static_cast<long long>(n) * H};
    float acc[1][M] = {};
    warp_dot<M, 1, UNROLL, true>(acc, hs, H, wr, H, vec, lane);
    warp_reduce(acc);
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m) y[static_cast<long long>(m) * O + n] = acc[0][m] + b2[n];
  }
  grid_release(barrier);
}

}  // namespace rnnjit_k
