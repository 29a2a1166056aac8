// The whole step in one launch over many SMs, for small problems: i2h, a grid-wide barrier, h2o.
// Tiling: CTA c owns rows [c·R, (c+1)·R) of h' (then of y); its WARPS warps split K (KSplit,
// rnnjit_device.cuh), each loading its slice of A and of the CTA's W rows in one round, the
// partial sums added across warps in shared memory in a fixed order. The W2 slice is loaded
// before the barrier.
//
// The engine launches it cooperatively (every CTA resident) with a launch counter of this call's
// own (rnnjit_device.cuh). h' goes to h_out, which the engine keeps apart from x and h.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// The step, with 16-byte loads (VEC) or scalar ones: a compile-time choice, so that no branch
// separates the loads of a round and the compiler issues them together.
template <bool VEC, int M, int I, int H, int O, int CTAS, int WARPS>
__device__ __forceinline__ void grid_step(const float* __restrict__ x, const float* __restrict__ h,
                                          const float* __restrict__ w1, const float* __restrict__ b1,
                                          const float* __restrict__ w2, const float* __restrict__ b2, float* h_out,
                                          float* __restrict__ y, unsigned* counter) {
  constexpr int K1 = I + H;
  constexpr int kCols1 = ((K1 + WARPS - 1) / WARPS + 3) / 4 * 4;  // K columns a warp, whole float4s
  constexpr int kCols2 = ((H + WARPS - 1) / WARPS + 3) / 4 * 4;
  constexpr int kR1 = (H + CTAS - 1) / CTAS, kR2 = (O + CTAS - 1) / CTAS;  // rows a CTA
  using Dot1 = KSplit<M, kR1, kCols1, WARPS>;
  using Dot2 = KSplit<M, kR2, kCols2, WARPS>;
  __shared__ float part[WARPS * (kR1 > kR2 ? kR1 : kR2) * M];

  const int warp = static_cast<int>(threadIdx.x / 32), cta = static_cast<int>(blockIdx.x);
  const int c1 = warp * kCols1, lim1 = min_int(K1, c1 + kCols1);
  const int c2 = warp * kCols2, lim2 = min_int(H, c2 + kCols2);

  // Phase 1, every load at once: this warp's K slice of [x | h] and of the CTA's W1 rows (rows
  // past H re-read row H-1 and are not stored), and the biases.
  Dot1 d1;
  d1.template load_a<VEC, false>([&](int m, int k) { return k < I ? x + m * I + k : h + m * H + (k - I); }, c1, lim1);
  d1.template load_w<VEC>([&](int r, int k) { return w1 + static_cast<long long>(min_int(cta * kR1 + r, H - 1)) * K1 + k; },
                          c1, lim1);
  float bias1[Dot1::kSums];
  Dot1::load_bias(bias1, b1, cta * kR1, H);
  d1.reduce(part, [&](int s, int r, int m, float v) {
    const int n = cta * kR1 + r;
    if (n < H) h_out[m * H + n] = tanhf(v + bias1[s]);
  });

  // W2 does not depend on h': its slice and biases are on the way before the barrier.
  Dot2 d2;
  d2.template load_w<VEC>([&](int r, int k) { return w2 + static_cast<long long>(min_int(cta * kR2 + r, O - 1)) * H + k; },
                          c2, lim2);
  float bias2[Dot2::kSums];
  Dot2::load_bias(bias2, b2, cta * kR2, O);
  grid_barrier(counter);

  // Phase 2: h' through L2 (other SMs wrote it in this launch), all loads before any use (one
  // round trip, not one a batch row), then y = h'·W2ᵀ + b2.
  d2.template load_a<VEC, true>([&](int m, int k) { return h_out + m * H + k; }, c2, lim2);
  d2.reduce(part, [&](int s, int r, int m, float v) {
    const int n = cta * kR2 + r;
    if (n < O) y[m * O + n] = v + bias2[s];
  });
}

template <int M, int I, int H, int O, int CTAS, int WARPS>
__global__ void __launch_bounds__(WARPS * 32)
    fused_grid(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
               const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2,
               float* h_out, float* __restrict__ y, unsigned* counter) {
  static_assert(M >= 1 && M <= 16, "batch ≤ 16");
  if (I % 4 == 0 && H % 4 == 0 && aligned_to<16>(x, h, w1, w2, h_out))
    grid_step<true, M, I, H, O, CTAS, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counter);
  else
    grid_step<false, M, I, H, O, CTAS, WARPS>(x, h, w1, b1, w2, b2, h_out, y, counter);
}

}  // namespace rnnjit_k
