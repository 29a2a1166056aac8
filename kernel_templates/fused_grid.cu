// The whole step in one launch over many SMs, for small problems: i2h, a grid-wide barrier, h2o.
// Tiling: CTA c owns rows [c·R, (c+1)·R) of h' (then of y); its WARPS warps split K, each loading
// its slice of A and of the CTA's W rows in one round, the partial sums added across warps in
// shared memory in a fixed order. Small weights are latency-bound: every load of a phase is
// issued before the first is used, and the W2 slice is loaded before the barrier.
//
// The engine launches it cooperatively (every CTA resident) with a launch counter of this call's
// own (rnnjit_device.cuh). h' goes to h_out, which the engine keeps apart from x and h.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Columns [c, c+4) of a K-major row read as float4, zeros from column `lim` on; `at(k)` gives the
// address of column k. With VEC, c and lim are multiples of 4 and rows 16-byte aligned.
template <bool VEC, bool L2_ONLY, typename At>
__device__ __forceinline__ float4 load4(At at, int c, int lim) {
  if constexpr (VEC) {
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (c < lim) v = L2_ONLY ? __ldcg(reinterpret_cast<const float4*>(at(c))) : __ldg(reinterpret_cast<const float4*>(at(c)));
    return v;
  } else {
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = c + e < lim ? (L2_ONLY ? __ldcg(at(c + e)) : __ldg(at(c + e))) : 0.f;
    return make_float4(v[0], v[1], v[2], v[3]);
  }
}

__device__ __forceinline__ float dot4(float4 a, float4 b) { return a.x * b.x + a.y * b.y + a.z * b.z + a.w * b.w; }

// The sums a thread finishes in cta_reduce: R×M of them over THREADS threads.
template <int R, int M, int THREADS>
constexpr int kSumsPerThread = (R * M + THREADS - 1) / THREADS;

// The bias of each sum this thread finishes (zero past `rows`), loaded with the phase's other
// loads: after the reduction it would cost a round trip of its own.
template <int R, int M, int THREADS>
__device__ __forceinline__ void load_bias(float (&b)[kSumsPerThread<R, M, THREADS>], const float* bias, int row0,
                                          int rows) {
#pragma unroll
  for (int q = 0; q < kSumsPerThread<R, M, THREADS>; ++q) {
    const int i = static_cast<int>(threadIdx.x) + q * THREADS, n = row0 + i / M;
    b[q] = i < R * M && n < rows ? __ldg(bias + n) : 0.f;
  }
}

// acc[r][m] summed over the warps of the CTA (fixed order), for rows r of this CTA; then
// `out(r, m, sum + bias)`, bias as load_bias gave it.
template <int WARPS, int R, int M, typename Out>
__device__ __forceinline__ void cta_reduce(float (&acc)[R][M], const float (&bias)[kSumsPerThread<R, M, WARPS * 32>],
                                           float* part, Out out) {
  warp_reduce(acc);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int r = 0; r < R; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == (r * M + m) % 32) part[warp * R * M + r * M + m] = acc[r][m];
  __syncthreads();
#pragma unroll
  for (int q = 0; q < kSumsPerThread<R, M, WARPS * 32>; ++q) {
    const int i = static_cast<int>(threadIdx.x) + q * WARPS * 32;
    if (i >= R * M) break;
    float v = 0.f;
#pragma unroll
    for (int w = 0; w < WARPS; ++w) v += part[w * R * M + i];
    out(i / M, i % M, v + bias[q]);
  }
}

// The step, with 16-byte loads (VEC) or scalar ones: a compile-time choice, so that no branch
// separates the loads of a round and the compiler issues them together.
template <bool VEC, int M, int I, int H, int O, int CTAS, int WARPS>
__device__ __forceinline__ void grid_step(const float* __restrict__ x, const float* __restrict__ h,
                                          const float* __restrict__ w1, const float* __restrict__ b1,
                                          const float* __restrict__ w2, const float* __restrict__ b2, float* h_out,
                                          float* __restrict__ y, unsigned* counter) {
  constexpr int K1 = I + H, kThreads = WARPS * 32;
  constexpr int kCols1 = ((K1 + WARPS - 1) / WARPS + 3) / 4 * 4;  // K columns a warp, whole float4s
  constexpr int kCols2 = ((H + WARPS - 1) / WARPS + 3) / 4 * 4;
  constexpr int kU1 = (kCols1 / 4 + 31) / 32, kU2 = (kCols2 / 4 + 31) / 32;  // float4s a lane and row
  constexpr int kR1 = (H + CTAS - 1) / CTAS, kR2 = (O + CTAS - 1) / CTAS;      // rows a CTA
  __shared__ float part[WARPS * (kR1 > kR2 ? kR1 : kR2) * M];

  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, cta = static_cast<int>(blockIdx.x);
  const int lim1 = min_int(K1, (warp + 1) * kCols1), lim2 = min_int(H, (warp + 1) * kCols2);
  auto col1 = [&](int j) { return warp * kCols1 + 4 * (j * 32 + lane); };
  auto col2 = [&](int j) { return warp * kCols2 + 4 * (j * 32 + lane); };

  // Phase 1, every load at once: this warp's K slice of [x | h] and of the CTA's W1 rows (rows
  // past H re-read row H-1 and are not stored), and the biases.
  float4 a[M][kU1], w[kR1][kU1];
#pragma unroll
  for (int j = 0; j < kU1; ++j) {
#pragma unroll
    for (int m = 0; m < M; ++m)
      a[m][j] = load4<VEC, false>([&](int k) { return k < I ? x + m * I + k : h + m * H + (k - I); }, col1(j), lim1);
#pragma unroll
    for (int r = 0; r < kR1; ++r) {
      const float* row = w1 + static_cast<long long>(min_int(cta * kR1 + r, H - 1)) * K1;
      w[r][j] = load4<VEC, false>([&](int k) { return row + k; }, col1(j), lim1);
    }
  }
  float bias1[kSumsPerThread<kR1, M, kThreads>];
  load_bias<kR1, M, kThreads>(bias1, b1, cta * kR1, H);
  float acc1[kR1][M] = {};
#pragma unroll
  for (int j = 0; j < kU1; ++j)
#pragma unroll
    for (int r = 0; r < kR1; ++r)
#pragma unroll
      for (int m = 0; m < M; ++m) acc1[r][m] += dot4(a[m][j], w[r][j]);
  cta_reduce<WARPS>(acc1, bias1, part, [&](int r, int m, float v) {
    const int n = cta * kR1 + r;
    if (n < H) h_out[m * H + n] = tanhf(v);
  });

  // W2 does not depend on h': its slice and biases are on the way before the barrier.
  float4 w2v[kR2][kU2];
#pragma unroll
  for (int j = 0; j < kU2; ++j)
#pragma unroll
    for (int r = 0; r < kR2; ++r) {
      const float* row = w2 + static_cast<long long>(min_int(cta * kR2 + r, O - 1)) * H;
      w2v[r][j] = load4<VEC, false>([&](int k) { return row + k; }, col2(j), lim2);
    }
  float bias2[kSumsPerThread<kR2, M, kThreads>];
  load_bias<kR2, M, kThreads>(bias2, b2, cta * kR2, O);
  grid_barrier(counter);

  // Phase 2: h' through L2 (other SMs wrote it in this launch), all loads before any use (one
  // round trip, not one a batch row), then y = h'·W2ᵀ + b2.
  float4 hv[M][kU2];
#pragma unroll
  for (int j = 0; j < kU2; ++j)
#pragma unroll
    for (int m = 0; m < M; ++m) hv[m][j] = load4<VEC, true>([&](int k) { return h_out + m * H + k; }, col2(j), lim2);
  float acc2[kR2][M] = {};
#pragma unroll
  for (int j = 0; j < kU2; ++j)
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int r = 0; r < kR2; ++r) acc2[r][m] += dot4(hv[m][j], w2v[r][j]);
  cta_reduce<WARPS>(acc2, bias2, part, [&](int r, int m, float v) {
    const int n = cta * kR2 + r;
    if (n < O) y[m * O + n] = v;
  });
}

template <int M, int I, int H, int O, int CTAS, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    fused_grid(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
               const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2,
               float* h_out, float* __restrict__ y, unsigned* counter) {
  static_assert(M >= 1 && M <= 16, "batch ≤ 16");
  if (I % 4 == 0 && H % 4 == 0 && aligned16(x) && aligned16(h) && aligned16(w1) && aligned16(w2) && aligned16(h_out))
    grid_step<true, M, I, H, O, CTAS, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counter);
  else
    grid_step<false, M, I, H, O, CTAS, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counter);
}

}  // namespace rnnjit_k
