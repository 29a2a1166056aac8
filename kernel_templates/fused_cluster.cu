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

// Reads a float from the same shared-memory offset in CTA `rank` of the cluster. Not
// volatile: the gather's loads may overlap one another (cluster_sync's memory clobber keeps
// them after the barrier).
__device__ __forceinline__ float load_remote(const float* local, unsigned rank) {
  unsigned remote;
  float v;
  asm("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(smem_addr(local)), "r"(rank));
  asm("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(remote));
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
  // x and h are re-read by every warp: staged once into shared memory when they fit
  // (engine/src/config.cpp sizes the allocation with the same rule).
  constexpr bool kStageA = M * (I + H) <= kFusedStageFloats;
  extern __shared__ float4 smem_raw[];
  float* const own = reinterpret_cast<float*>(smem_raw);  // [M][kRowsH]: read by the cluster
  float* const full = own + ((M * kRowsH + 3) / 4) * 4;   // [M][H]: all of h', 16-byte aligned
  float* const xs = full + M * H;                         // [M][I] copy of x when kStageA
  float* const hs = xs + M * I;                           // [M][H] copy of h when kStageA
  const int rank = static_cast<int>(cluster_rank());
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  constexpr bool kShapeVec = I % 4 == 0 && H % 4 == 0;
  const bool vec = kShapeVec && aligned16(x) && aligned16(h) && aligned16(w1) && aligned16(w2);

  // Small problems are latency-bound: when a warp's whole share of a row fits UNROLL 16-byte
  // steps, all its loads of a phase go out at once ("one round"). The W2 rows of phase 2 do
  // not depend on h', so in that case they are fetched before phase 1 even starts.
  constexpr int kUx = min_int(UNROLL, (I + 127) / 128), kUh = min_int(UNROLL, (H + 127) / 128);
  constexpr bool kOneRound1 = I <= 128 * kUx && H <= 128 * kUh;
  constexpr bool kOneRound2 = H <= 128 * kUh && kRowsO <= WARPS * kWarpRowsO;
  if (kStageA) {
    if (vec) {
      for (int i = threadIdx.x; i < M * I / 4; i += WARPS * 32) cp_async_16(xs + 4 * i, x + 4 * i, true);
      for (int i = threadIdx.x; i < M * H / 4; i += WARPS * 32) cp_async_16(hs + 4 * i, h + 4 * i, true);
      cp_async_commit();
    } else {
      for (int i = threadIdx.x; i < M * I; i += WARPS * 32) xs[i] = x[i];
      for (int i = threadIdx.x; i < M * H; i += WARPS * 32) hs[i] = h[i];
    }
  }
  const float* const ax = kStageA ? xs : x;
  const float* const ah = kStageA ? hs : h;
  const float* w2row[kWarpRowsO];
#pragma unroll
  for (int j = 0; j < kWarpRowsO; ++j)
    w2row[j] = w2 + static_cast<long long>(min(rank * kRowsO + min(warp * kWarpRowsO + j, kRowsO - 1), O - 1)) * H;
  float4 w2v[kUh][kWarpRowsO];
  if (kOneRound2 && vec) load_w<kWarpRowsO, kUh>(w2v, w2row, lane * 4, H);

  // Phase 1: this CTA's rows of h' = tanh([x | h]·W1ᵀ + b1). Rows past this CTA's share
  // (or past H) re-read the last valid row and are not stored.
  auto rows_of = [&](int r0, const float* (&wrow)[kWarpRowsH], const float* (&wrow_h)[kWarpRowsH]) {
#pragma unroll
    for (int j = 0; j < kWarpRowsH; ++j) {
      wrow[j] = w1 + static_cast<long long>(min(rank * kRowsH + min(r0 + j, kRowsH - 1), H - 1)) * (I + H);
      wrow_h[j] = wrow[j] + I;
    }
  };
  auto store_h = [&](float (&acc)[kWarpRowsH][M], int r0) {
    warp_reduce(acc);
#pragma unroll
    for (int j = 0; j < kWarpRowsH; ++j) {
      const int r = r0 + j, n = rank * kRowsH + r;
#pragma unroll
      for (int m = 0; m < M; ++m)
        if (lane == m && r < kRowsH && n < H) own[m * kRowsH + r] = tanhf(acc[j][m] + b1[n]);
    }
  };
  constexpr bool kOneIter1 = kRowsH <= WARPS * kWarpRowsH;
  if (kOneRound1 && kOneIter1 && vec) {
    // The weights go out before the wait for the staged activations.
    const float* wrow[kWarpRowsH];
    const float* wrow_h[kWarpRowsH];
    rows_of(warp * kWarpRowsH, wrow, wrow_h);
    float4 wx[kUx][kWarpRowsH], wh[kUh][kWarpRowsH];
    load_w<kWarpRowsH, kUx>(wx, wrow, lane * 4, I);
    load_w<kWarpRowsH, kUh>(wh, wrow_h, lane * 4, H);
    if (kStageA) {
      cp_async_wait<0>();
      __syncthreads();
    }
    float acc[kWarpRowsH][M] = {};
    fma_w<M, kWarpRowsH, kUx, kStageA>(acc, wx, ax, I, lane * 4, I);
    fma_w<M, kWarpRowsH, kUh, kStageA>(acc, wh, ah, H, lane * 4, H);
    store_h(acc, warp * kWarpRowsH);
  } else {
    if (kStageA) {
      cp_async_wait<0>();
      __syncthreads();
    }
    for (int r0 = warp * kWarpRowsH; r0 < kRowsH; r0 += WARPS * kWarpRowsH) {
      const float* wrow[kWarpRowsH];
      const float* wrow_h[kWarpRowsH];
      rows_of(r0, wrow, wrow_h);
      float acc[kWarpRowsH][M] = {};
      warp_dot<M, kWarpRowsH, UNROLL, kStageA>(acc, ax, I, wrow, I, vec, lane);
      warp_dot<M, kWarpRowsH, UNROLL, kStageA>(acc, ah, H, wrow_h, H, vec, lane);
      store_h(acc, r0);
    }
  }
  cluster_sync();  // every CTA's part of h' is written, and every read of h is done

  // Gather h' from the cluster; store this CTA's part (h_out may alias h: all reads of h
  // finished before the barrier).
#pragma unroll 4
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
  auto store_y = [&](const float (&acc)[kWarpRowsO][M], int r0) {
#pragma unroll
    for (int j = 0; j < kWarpRowsO; ++j) {
      const int r = r0 + j, n = rank * kRowsO + r;
#pragma unroll
      for (int m = 0; m < M; ++m)
        if (lane == m && r < kRowsO && n < O) y[static_cast<long long>(m) * O + n] = acc[j][m] + b2[n];
    }
  };
  if (kOneRound2 && vec) {
    float acc[kWarpRowsO][M] = {};
    fma_w<M, kWarpRowsO, kUh, true>(acc, w2v, full, H, lane * 4, H);
    warp_reduce(acc);
    store_y(acc, warp * kWarpRowsO);
  } else {
    for (int r0 = warp * kWarpRowsO; r0 < kRowsO; r0 += WARPS * kWarpRowsO) {
#pragma unroll
      for (int j = 0; j < kWarpRowsO; ++j)
        w2row[j] = w2 + static_cast<long long>(min(rank * kRowsO + min(r0 + j, kRowsO - 1), O - 1)) * H;
      float acc[kWarpRowsO][M] = {};
      warp_dot<M, kWarpRowsO, UNROLL, true>(acc, full, H, w2row, H, vec, lane);
      warp_reduce(acc);
      store_y(acc, r0);
    }
  }
#else
  __trap();  // can_implement offers this kernel on compute capability 9.0 and newer only
#endif
}

}  // namespace rnnjit_k
