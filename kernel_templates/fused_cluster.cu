// The whole step in one launch for small problems (Hopper): clusters of SPLIT CTAs, no grid barrier.
// Tiling: cluster c owns rows [c·R, (c+1)·R) of h', its CTA k the k-th of SPLIT slices of K (its
// warps split that slice again, KSplit); the cluster adds its CTAs' partial sums over distributed
// shared memory. Then the last cluster to finish h', CTA by CTA, computes y: CTA k of it the k-th of
// SPLIT shares of y's rows, from all of h' through L2.
//
// No CTA waits for a CTA outside its own cluster (the hardware runs a cluster's CTAs together), so
// the engine launches it plainly with programmatic dependent launch: the next step's CTAs start
// while this one finishes and wait, before reading anything, for it to complete. "Last" is counted
// on launch counters of this call's own, one a rank (rnnjit_device.cuh's epochs); which cluster it
// is changes run to run, the sums it adds do not. h' goes to h_out, which the engine keeps apart
// from x and h.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
__device__ __forceinline__ int cluster_rank() {
  unsigned r;
  asm volatile("mov.u32 %0, %%cluster_ctarank;\n" : "=r"(r));
  return static_cast<int>(r);
}
__device__ __forceinline__ int cluster_index() {
  unsigned r;
  asm volatile("mov.u32 %0, %%clusterid.x;\n" : "=r"(r));
  return static_cast<int>(r);
}

// Reads a float from the same shared-memory offset in CTA `rank` of the cluster. Not volatile: a
// thread's remote loads may overlap one another (cluster_sync's memory clobber keeps them after the
// barrier).
__device__ __forceinline__ float load_remote(const float* local, int rank) {
  float v;
  asm("ld.shared::cluster.f32 %0, [%1];\n" : "=f"(v) : "r"(cluster_addr(local, rank)));
  return v;
}

// Whether this CTA is the last of its rank to arrive on `counter` among `clusters` launches' worth:
// returns to every thread. Thread 0's arrival releases what the cluster barrier before it acquired
// (every CTA of the cluster's h'), and acquires every earlier arrival's.
__device__ __forceinline__ bool arrive_last(unsigned* counter, int clusters, unsigned* flag) {
  if (threadIdx.x == 0) {
    unsigned old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n" : "=r"(old) : "l"(counter) : "memory");
    const unsigned epoch = old & ~(kEpoch - 1);
    const bool last = old - epoch == static_cast<unsigned>(clusters) - 1;
    if (last) atomicAdd(counter, kEpoch - clusters);
    *flag = last;
  }
  __syncthreads();
  return *flag != 0;
}
#endif

template <bool VEC, int M, int I, int H, int O, int CTAS, int SPLIT, int WARPS>
__device__ __forceinline__ void cluster_step(const float* __restrict__ x, const float* __restrict__ h,
                                             const float* __restrict__ w1, const float* __restrict__ b1,
                                             const float* __restrict__ w2, const float* __restrict__ b2,
                                             float* h_out, float* __restrict__ y, unsigned* counters) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int K1 = I + H, R = fused_rows(H, CTAS, SPLIT), kClusters = fused_clusters(H, CTAS, SPLIT);
  constexpr int kSlice = ((K1 + SPLIT - 1) / SPLIT + 3) / 4 * 4;        // K columns a CTA
  constexpr int kCols1 = ((kSlice + WARPS - 1) / WARPS + 3) / 4 * 4;    // ... and a warp
  constexpr int kCols2 = ((H + WARPS - 1) / WARPS + 3) / 4 * 4;
  constexpr int kR2 = (O + SPLIT - 1) / SPLIT;                          // rows of y a finishing CTA
  constexpr int kOwn = (R * M + SPLIT - 1) / SPLIT;                     // h' sums a CTA finishes
  static_assert(kOwn <= WARPS * 32, "a thread a finished h' sum");
  using Dot1 = KSplit<M, R, kCols1, WARPS>;
  using Dot2 = KSplit<M, kR2, kCols2, WARPS>;
  __shared__ float part[WARPS * (R > kR2 ? R : kR2) * M];
  __shared__ float own[R * M];  // this CTA's K slice of the cluster's sums, read by the cluster
  __shared__ unsigned finisher;

  const int warp = static_cast<int>(threadIdx.x / 32), t = static_cast<int>(threadIdx.x);
  const int rank = cluster_rank(), n0 = cluster_index() * R;
  wait_for_prior_grid();

  // Phase 1, every load at once: this warp's part of the CTA's K slice of [x | h] and of the
  // cluster's W1 rows (rows past H re-read row H-1 and are not stored), and the bias of the h' sum
  // this thread finishes.
  const int c1 = rank * kSlice + warp * kCols1, lim1 = min_int(min_int(K1, (rank + 1) * kSlice), c1 + kCols1);
  Dot1 d1;
  d1.template load_a<VEC, false>([&](int m, int k) { return k < I ? x + m * I + k : h + m * H + (k - I); }, c1, lim1);
  d1.template load_w<VEC>([&](int r, int k) { return w1 + static_cast<long long>(min_int(n0 + r, H - 1)) * K1 + k; }, c1,
                          lim1);
  const int i = rank * kOwn + t;  // the sum this thread finishes: row i / M, batch row i % M
  const bool finishes = t < kOwn && i < R * M && n0 + i / M < H;
  const float bias1 = finishes ? __ldg(b1 + n0 + i / M) : 0.f;
  d1.reduce(part, [&](int, int r, int m, float v) { own[r * M + m] = v; });
  cluster_sync();  // every CTA's K slice is in its shared memory
  // The next step may launch now: its CTAs become resident while this one finishes. Not earlier:
  // each step would let the next launch at once, and CTAs of several steps would share the SMs.
  launch_dependents();

  // The cluster's sums over its CTAs in rank order, then tanh.
  if (finishes) {
    float p[SPLIT];
#pragma unroll
    for (int s = 0; s < SPLIT; ++s) p[s] = load_remote(own + i, s);
    float v = 0.f;
#pragma unroll
    for (int s = 0; s < SPLIT; ++s) v += p[s];
    h_out[(i % M) * H + n0 + i / M] = tanhf(v + bias1);
  }
  cluster_sync();  // the cluster's h' is written (released to thread 0), and `own` is read
  if (!arrive_last(counters + rank, kClusters, &finisher)) return;

  // Phase 2 in the last cluster: y's rows [rank·kR2, ...) = h'·W2ᵀ + b2, all loads at once, h'
  // through L2 (other SMs wrote it in this launch).
  const int c2 = warp * kCols2, lim2 = min_int(H, c2 + kCols2), r2 = rank * kR2;
  Dot2 d2;
  d2.template load_w<VEC>([&](int r, int k) { return w2 + static_cast<long long>(min_int(r2 + r, O - 1)) * H + k; }, c2,
                          lim2);
  d2.template load_a<VEC, true>([&](int m, int k) { return h_out + m * H + k; }, c2, lim2);
  float bias2[Dot2::kSums];
  Dot2::load_bias(bias2, b2, r2, O);
  d2.reduce(part, [&](int s, int r, int m, float v) {
    if (r2 + r < O) y[m * O + r2 + r] = v + bias2[s];
  });
#else
  __trap();  // can_implement offers this kernel on compute capability 9.0 and newer only
#endif
}

template <int M, int I, int H, int O, int CTAS, int SPLIT, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    fused_cluster(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
                  const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2,
                  float* h_out, float* __restrict__ y, unsigned* counters) {
  static_assert(M >= 1 && M <= 16, "batch ≤ 16");
  static_assert(SPLIT >= 1 && SPLIT <= 16 && CTAS >= SPLIT, "a cluster holds 1 to 16 CTAs");
  if (I % 4 == 0 && H % 4 == 0 && aligned_to<16>(x, h, w1, w2, h_out))
    cluster_step<true, M, I, H, O, CTAS, SPLIT, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counters);
  else
    cluster_step<false, M, I, H, O, CTAS, SPLIT, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counters);
}

}  // namespace rnnjit_k
