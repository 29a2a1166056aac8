// The recurrence of a sequence chunk on tensor cores, W_hh in registers: h_{t+1} = tanh(h_t·W_hhᵀ + P_t)
// for the chunk's steps, P_t projected beforehand (W_hh = W1's last H columns). One thread-block cluster.
// Tiling: CTA c owns rows [c·R, c·R + R) of h as m16n8k8 tiles (16 W_hh rows × 8 batch rows); warp w takes
// k steps [w·KW, w·KW + KW) of 8 columns, its A fragments of W_hh loaded once for the launch.
//
// Why: recur.cu's FFMA tiles read W_hh and h_t from shared memory every step (128 KiB a CTA a step at
// kb-seq, which bounds its step), and sum over K by shuffles. Here W_hh never moves after the first load
// and a CTA reads h_t once a step (B fragments); the warps' partial sums meet in shared memory and are
// added in warp order. 3xTF32 (small·big + big·small + big·big) in every precision: the error of an
// fp32 sum, at ~3 mma a k step.
// The hand-off is recur.cu's cluster: h_t whole in every CTA, two buffers taking turns, each new row
// pushed to every CTA by st.async, which counts its bytes on the receiving buffer's mbarrier.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

template <int M, int I, int H, int CTAS, int WARPS>
__global__ void __launch_bounds__(WARPS * 32, 1)
    recur_mma(const float* __restrict__ proj, const float* __restrict__ h0, const float* __restrict__ w1, float* states,
              int steps, unsigned*) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr int R = recur_rows(H, CTAS), kMt = recur_mma_row_tiles(H, CTAS), kNt = recur_mma_batch_tiles(M);
  constexpr int kSteps = (H + 7) / 8, kKw = (kSteps + WARPS - 1) / WARPS;  // k steps: of h, of a warp
  constexpr int kHs = recur_mma_h_stride(H), kRs = recur_mma_sum_stride(H, CTAS), kThreads = WARPS * 32;
  constexpr int kEach = (M * R + kThreads - 1) / kThreads;  // sums a thread finishes a step
  extern __shared__ float4 smem4[];
  float* hs = reinterpret_cast<float*>(smem4);  // h_t: 2 buffers of 8·kNt rows of kHs floats
  float* sums = hs + 2 * 8 * kNt * kHs;         // a warp's partial sums: 8·kNt batch rows of kRs floats
  float* own = sums + WARPS * 8 * kNt * kRs;    // this CTA's new rows, M×R, before they are pushed

  const int c = static_cast<int>(blockIdx.x), n0 = c * R, nr = max(0, min_int(R, H - n0));
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, g = tid % 32 / 4, tq = tid % 4;

  // A fragments: rows n0 + 16·mt + g (+8), columns 8·ks + tq (+4) of W_hh; zeros past this CTA's rows
  // and past H (h's padding is zero too: NaN·0 would be NaN).
  Tf32Frag<4> wf[kMt][kKw];
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
    for (int j = 0; j < kKw; ++j) {
      float v[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = 16 * mt + g + 8 * (e & 1), k = 8 * (warp * kKw + j) + tq + 4 * (e >> 1);
        v[e] = r < nr && k < H ? __ldg(w1 + static_cast<long long>(n0 + r) * (I + H) + I + k) : 0.f;
      }
      wf[mt][j].template set<kMathFp32>(v[0], v[1], v[2], v[3]);
    }

  // full[b] completes when buffer b holds all of h (M·H floats from every CTA's pushes). Buffer 0 takes
  // h0; everything else of both buffers is zero, and the pushes write rows < M, columns < H only.
  __shared__ unsigned long long full[2];
  if (tid == 0) {
    mbar_init(&full[0], 1);
    mbar_init(&full[1], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  for (int i = tid; i < 2 * 8 * kNt * kHs; i += kThreads) {
    const int buffer = i / (8 * kNt * kHs), row = i / kHs % (8 * kNt), k = i % kHs;
    hs[i] = buffer == 0 && row < M && k < H ? __ldg(h0 + row * H + k) : 0.f;
  }
  cluster_sync();  // every CTA's buffers and mbarriers are ready before any CTA pushes into them

  // The sums this thread finishes: element e = tid + k·threads of the CTA's M×R, and P's for them.
  auto p_of = [&](int k, int t) {
    const int e = tid + k * kThreads, m = e / R, r = e % R;
    return e < M * R && r < nr ? __ldg(proj + (static_cast<long long>(t) * M + m) * H + n0 + r) : 0.f;
  };
  float p[kEach];
#pragma unroll
  for (int k = 0; k < kEach; ++k) p[k] = p_of(k, 0);

  for (int t = 0; t < steps; ++t) {
    // Buffer t&1 was filled for step t (phase (t-1)/2 of its mbarrier; step 0's from h0). Its next fill,
    // for step t + 2, cannot start before this CTA has read it: every sender first needs all of h_{t+1},
    // this CTA's rows included, which it pushes after the barrier that follows the reads below.
    if (t > 0) mbar_wait(&full[t & 1], ((t - 1) >> 1) & 1);
    // The other buffer's phase for step t + 1: pushes may land before this (the byte count goes below
    // zero), but the phase completes only with this arrival.
    if (tid == 0 && t + 1 < steps) mbar_expect_tx(&full[(t + 1) & 1], M * H * 4);
    const float* hcur = hs + (t & 1) * 8 * kNt * kHs;

    // Two accumulators by k step's parity halve the chain of dependent mma.
    float acc[2][kMt][kNt][4] = {};
#pragma unroll
    for (int j = 0; j < kKw; ++j) {
      const int ks = warp * kKw + j;
      if (ks < kSteps) {
#pragma unroll
        for (int nt = 0; nt < kNt; ++nt) {
          // B fragment: h rows 8·nt + g, columns 8·ks + tq (+4); kHs ≡ 4 (mod 8) puts them in 32 banks.
          const float* hr = hcur + (8 * nt + g) * kHs + 8 * ks + tq;
          Tf32Frag<2> b;
          b.template set<kMathFp32>(hr[0], hr[4]);
#pragma unroll
          for (int mt = 0; mt < kMt; ++mt) mma_tf32<kMathFp32>(acc[j & 1][mt][nt], wf[mt][j], b);
        }
      }
    }
    // C fragment element e: row 16·mt + g (+8 for e ≥ 2) of h, batch row 8·nt + 2·tq (+1 for odd e).
    float* mine = sums + warp * 8 * kNt * kRs;
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
      for (int nt = 0; nt < kNt; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e)
          mine[(8 * nt + 2 * tq + (e & 1)) * kRs + 16 * mt + g + 8 * (e >> 1)] = acc[0][mt][nt][e] + acc[1][mt][nt][e];
    __syncthreads();  // every warp's partial sums are in, and every read of hcur is done

#pragma unroll
    for (int k = 0; k < kEach; ++k) {
      const int e = tid + k * kThreads, m = e / R, r = e % R;
      if (e < M * R && r < nr) {
        float sum = 0.f;
#pragma unroll
        for (int w = 0; w < WARPS; ++w) sum += sums[(w * 8 * kNt + m) * kRs + r];
        const float v = tanhf(sum + p[k]);
        states[(static_cast<long long>(t) * M + m) * H + n0 + r] = v;
        own[m * R + r] = v;
      }
    }
    // `own` is whole. The next step's writes of `sums` and `own` come after its first barrier, which
    // every thread reaches only after its pushes below.
    __syncthreads();
    if (t + 1 == steps) break;

#pragma unroll
    for (int k = 0; k < kEach; ++k) p[k] = p_of(k, t + 1);  // in flight through the hand-off
    float* next = hs + ((t + 1) & 1) * 8 * kNt * kHs;
    unsigned long long* bar = &full[(t + 1) & 1];
    // Every (element, CTA) pair of the push spread over all threads: 16 bytes a store where the CTA's
    // rows are whole float4s of next's rows, else 4.
    if constexpr (R % 4 == 0) {
      if (nr == R) {
        for (int e = tid; e < M * (R / 4) * CTAS; e += kThreads) {
          const int u = e % (M * (R / 4)), rank = e / (M * (R / 4)), m = u / (R / 4), r = 4 * (u % (R / 4));
          st_async(cluster_addr(next + m * kHs + n0 + r, rank), *reinterpret_cast<const float4*>(own + m * R + r),
                   cluster_addr(bar, rank));
        }
        continue;
      }
    }
    for (int e = tid; e < M * nr * CTAS; e += kThreads) {
      const int u = e % (M * nr), rank = e / (M * nr), m = u / nr, r = u % nr;
      st_async(cluster_addr(next + m * kHs + n0 + r, rank), own[m * R + r], cluster_addr(bar, rank));
    }
  }
#endif
}

}  // namespace rnnjit_k
