// The whole step in one launch for small problems (Hopper): one thread-block cluster.
// Tiling: CTA c of CLUSTER computes h' rows [c·H/C, (c+1)·H/C) for every batch row (WARPS warps
// streaming W1 as gemv does) into its shared memory; after a cluster barrier every CTA gathers
// all of h' over distributed shared memory and computes its share of y rows from it.
//
// No global counters: the hand-off is the cluster barrier, so concurrent launches and graph
// replays cannot interfere, and every sum has a fixed order. Device code only.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

__device__ __forceinline__ unsigned cluster_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return r;
}

// Arrive with release, wait with acquire: shared-memory writes before it are visible to
// every CTA of the cluster after it.
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// Reads a float from the same shared-memory offset in CTA `rank` of the cluster.
__device__ __forceinline__ float load_remote(const float* local, unsigned rank) {
  unsigned remote;
  float v;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(smem_addr(local)), "r"(rank));
  asm volatile("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(remote) : "memory");
  return v;
}

template <int M, int I, int H, int O, int CLUSTER, int WARPS, int UNROLL>
__global__ void __launch_bounds__(WARPS * 32)
    fused_cluster(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
                  const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2,
                  float* __restrict__ h_out, float* __restrict__ y) {
  static_assert(M >= 1 && M <= 16, "M×1 accumulators per lane: batch ≤ 16");
  static_assert(CLUSTER >= 1 && CLUSTER <= 16, "one cluster holds at most 16 CTAs");
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int kRowsH = (H + CLUSTER - 1) / CLUSTER;  // h' rows per CTA
  constexpr int kRowsO = (O + CLUSTER - 1) / CLUSTER;  // y rows per CTA
  // Rows a warp streams at once: all of its share when registers allow, so every load of
  // a phase is in flight together (latency, not bandwidth, bounds these sizes).
  constexpr int kMaxRows = 64 / M;
  constexpr int kWarpRowsH = min_int((kRowsH + WARPS - 1) / WARPS, kMaxRows);
  constexpr int kWarpRowsO = min_int((kRowsO + WARPS - 1) / WARPS, kMaxRows);
  extern __shared__ float4 smem_raw[];
  float* const own = reinterpret_cast<float*>(smem_raw);  // [M][kRowsH]: read by the cluster
  float* const full = own + ((M * kRowsH + 3) / 4) * 4;   // [M][H]: all of h', 16-byte aligned
  const int rank = static_cast<int>(cluster_rank());
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr bool kShapeVec = I % 4 == 0 && H % 4 == 0;
  const bool vec = kShapeVec && aligned16(x) && aligned16(h) && aligned16(w1) && aligned16(w2);

  // Phase 1: this CTA's rows of h' = tanh([x | h]·W1ᵀ + b1). Rows past this CTA's share
  // (or past H) re-read the last valid row and are not stored.
  for (int r0 = warp * kWarpRowsH; r0 < kRowsH; r0 += WARPS * kWarpRowsH) {
    const float* wrow[kWarpRowsH];
#pragma unroll
    for (int j = 0; j < kWarpRowsH; ++j)
      wrow[j] = w1 + static_cast<long long>(min(rank * kRowsH + min(r0 + j, kRowsH - 1), H - 1)) * (I + H);
    float acc[kWarpRowsH][M] = {};
    warp_dot<M, kWarpRowsH, UNROLL, false>(acc, x, I, wrow, I, vec, lane);
#pragma unroll
    for (int j = 0; j < kWarpRowsH; ++j) wrow[j] += I;
    warp_dot<M, kWarpRowsH, UNROLL, false>(acc, h, H, wrow, H, vec, lane);
    warp_reduce(acc);
#pragma unroll
    for (int j = 0; j < kWarpRowsH; ++j) {
      const int r = r0 + j, n = rank * kRowsH + r;
#pragma unroll
      for (int m = 0; m < M; ++m)
        if (lane == m && r < kRowsH && n < H) own[m * kRowsH + r] = tanhf(acc[j][m] + b1[n]);
    }
  }
  cluster_sync();  // every CTA's part of h' is written, and every read of h is done

  // Gather h' from the cluster; store this CTA's part (h_out may alias h: all reads of h
  // finished before the barrier).
  for (int i = threadIdx.x; i < M * H; i += WARPS * 32) {
    const int m = i / H, n = i % H;
    full[i] = load_remote(own + m * kRowsH + n % kRowsH, n / kRowsH);
  }
  for (int i = threadIdx.x; i < M * kRowsH; i += WARPS * 32) {
    const int m = i / kRowsH, n = rank * kRowsH + i % kRowsH;
    if (n < H) h_out[static_cast<long long>(m) * H + n] = own[i];
  }
  cluster_sync();  // no CTA leaves while another still reads its shared memory; `full` is complete

  // Phase 2: this CTA's rows of y = h'·W2ᵀ + b2, A from shared memory.
  for (int r0 = warp * kWarpRowsO; r0 < kRowsO; r0 += WARPS * kWarpRowsO) {
    const float* wrow[kWarpRowsO];
#pragma unroll
    for (int j = 0; j < kWarpRowsO; ++j)
      wrow[j] = w2 + static_cast<long long>(min(rank * kRowsO + min(r0 + j, kRowsO - 1), O - 1)) * H;
    float acc[kWarpRowsO][M] = {};
    warp_dot<M, kWarpRowsO, UNROLL, true>(acc, full, H, wrow, H, vec, lane);
    warp_reduce(acc);
#pragma unroll
    for (int j = 0; j < kWarpRowsO; ++j) {
      const int r = r0 + j, n = rank * kRowsO + r;
#pragma unroll
      for (int m = 0; m < M; ++m)
        if (lane == m && r < kRowsO && n < O) y[static_cast<long long>(m) * O + n] = acc[j][m] + b2[n];
    }
  }
#else
  __trap();  // can_implement offers this kernel on compute capability 9.0 and newer only
#endif
}

}  // namespace rnnjit_k
