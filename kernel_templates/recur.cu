// The recurrence of a sequence chunk in one persistent launch: h_{t+1} = tanh(h_t·W_hhᵀ + P_t) for
// its steps, P_t = x_t·W_ihᵀ + b1 projected beforehand for every step (W_hh = W1's last H columns).
// Tiling: CTA c owns rows [c·R, c·R + R) of h (and of W_hh); lane groups of KS lanes take TR×TM
// tiles (W_hh rows × batch rows), each lane a stride of K by float4s, summed over the group by shuffles.
//
// Two hand-offs between steps. CLUSTER: the grid is one thread-block cluster; each CTA keeps h_t
// whole in shared memory (two buffers taking turns) and pushes its new rows into every CTA's next
// buffer over distributed shared memory, then one cluster barrier. Otherwise a cooperative grid:
// the new rows go to global memory (the states the output projection reads anyway), one grid
// barrier, and every CTA stages h_t through L2 into shared memory, MB batch rows at a time.
// W_SMEM: the CTA's rows of W_hh stay in shared memory for every step; else they stream from
// global memory each step (weights past the chip's capacity).
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Columns [4·k4, 4·k4 + 4) of a row of H floats at `row` (zeros past H): float4 when VEC, else
// scalars. L2_ONLY for rows other CTAs wrote in this launch.
template <bool VEC, bool L2_ONLY, int H>
__device__ __forceinline__ float4 row4(const float* row, int k4) {
  const int k = 4 * k4;
  if constexpr (VEC) {
    return L2_ONLY ? __ldcg(reinterpret_cast<const float4*>(row + k)) : __ldg(reinterpret_cast<const float4*>(row + k));
  } else {
    float v[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = k + e < H ? (L2_ONLY ? __ldcg(row + k + e) : __ldg(row + k + e)) : 0.f;
    return make_float4(v[0], v[1], v[2], v[3]);
  }
}

// `rows` rows of H floats (src rows `ld` apart) into shared rows of kHp floats, zeros past H.
template <bool VEC, bool L2_ONLY, int H>
__device__ __forceinline__ void stage_rows(float* dst, const float* src, long long ld, int rows, int threads) {
  constexpr int kF = (H + 3) / 4;
  for (int i = static_cast<int>(threadIdx.x); i < rows * kF; i += threads) {
    const int r = i / kF, k4 = i % kF;
    reinterpret_cast<float4*>(dst)[i] = row4<VEC, L2_ONLY, H>(src + r * ld, k4);
  }
}

template <bool VEC, int M, int I, int H, int CTAS, int WARPS, int KS, int TR, int TM, int MB, bool CLUSTER, bool W_SMEM>
__device__ __forceinline__ void recur_steps(const float* __restrict__ proj, const float* __restrict__ h0,
                                            const float* __restrict__ w1, float* states, int steps,
                                            unsigned* counter) {
  constexpr int R = recur_rows(H, CTAS), kLd = I + H, kHp = recur_row_floats(H), kF = kHp / 4;
  constexpr int kThreads = WARPS * 32, kGroups = kThreads / KS;
  constexpr int kMb = recur_staged(M, MB, CLUSTER);  // batch rows of h_t in shared memory
  constexpr int kTilesR = (R + TR - 1) / TR, kTilesM = (kMb + TM - 1) / TM;
  constexpr int kTiles = kTilesR * kTilesM, kNt = (kTiles + kGroups - 1) / kGroups;  // tiles a group
  static_assert(kThreads % KS == 0 && (KS & (KS - 1)) == 0 && KS <= 32, "KS: a power of two lanes");
  static_assert(TR * TM <= KS, "a lane of the group finishes each sum of a tile");
  extern __shared__ float4 smem4[];
  float* ws = reinterpret_cast<float*>(smem4);            // R rows of W_hh, when W_SMEM
  float* hs = ws + (W_SMEM ? R * kHp : 0);                // h: 2 buffers of M rows (CLUSTER), else kMb rows
  float* own = hs + (CLUSTER ? 2 * M * kHp : kMb * kHp);  // CLUSTER: this CTA's new rows, M×R

  const int c = static_cast<int>(blockIdx.x), n0 = c * R, nr = max(0, min_int(R, H - n0));
  const int tid = static_cast<int>(threadIdx.x), group = tid / KS, kl = tid % KS;
  const float* whh = w1 + I;  // row n of W_hh: whh + n·kLd

  if constexpr (W_SMEM) {  // rows past H are zeros: their sums are not stored
    for (int i = tid; i < R * kF; i += kThreads) {
      const int r = i / kF, k4 = i % kF;
      reinterpret_cast<float4*>(ws)[i] =
          r < nr ? row4<VEC, false, H>(whh + static_cast<long long>(n0 + r) * kLd, k4) : make_float4(0.f, 0.f, 0.f, 0.f);
    }
  }
  if constexpr (CLUSTER) {
    stage_rows<VEC, false, H>(hs, h0, H, M, kThreads);
    // The pushes never write the padding of the other buffer: zeros there, as W's are.
    for (int i = tid; i < M * (kHp - H); i += kThreads) hs[M * kHp + (i / (kHp - H)) * kHp + H + i % (kHp - H)] = 0.f;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cluster_sync();  // every CTA's buffers are ready before any CTA pushes into them
#endif
  }

  // The tile's W_hh row r (0 ≤ r < R): zeros past nr when staged; streamed, a row in bounds
  // (its sums are not stored).
  auto w_row = [&](int r) -> const float* {
    return W_SMEM ? ws + r * kHp : whh + static_cast<long long>(min_int(n0 + r, H - 1)) * kLd;
  };
  // Tile q of this lane's group (every lane takes part in the shuffles, so past the last tile it
  // repeats that one unstored), and the sum this lane finishes in it, if any.
  struct Sum {
    int r0, m0, n, m;
    bool stored;
  };
  auto sum_of = [&](int q, int mb) {
    const int tile = group + q * kGroups, live = min_int(tile, kTiles - 1);
    Sum s;
    s.r0 = (live % kTilesR) * TR;
    s.m0 = (live / kTilesR) * TM;
    const int fr = s.r0 + kl / TM;
    s.n = n0 + fr;
    s.m = mb + s.m0 + kl % TM;
    s.stored = tile < kTiles && kl < TR * TM && fr < nr && s.m < M && s.m0 + kl % TM < kMb;
    return s;
  };
  // P's elements of this lane's sums at step t, on their way while other work runs.
  auto load_p = [&](float (&p)[kNt], int t, int mb) {
#pragma unroll
    for (int q = 0; q < kNt; ++q) {
      const Sum s = sum_of(q, mb);
      p[q] = s.stored ? __ldg(proj + (static_cast<long long>(t) * M + s.m) * H + s.n) : 0.f;
    }
  };

  float p[kNt];
  if constexpr (CLUSTER) load_p(p, 0, 0);
  for (int t = 0; t < steps; ++t) {
    const float* hcur = CLUSTER ? hs + (t & 1) * M * kHp : hs;
    for (int mb = 0; mb < M; mb += kMb) {
      if constexpr (!CLUSTER) {
        load_p(p, t, mb);
        // h_t from global memory: h0, or the states other CTAs wrote before the last barrier.
        const int rows = min_int(kMb, M - mb);
        if (t == 0)
          stage_rows<VEC, false, H>(hs, h0 + static_cast<long long>(mb) * H, H, rows, kThreads);
        else
          stage_rows<VEC, true, H>(hs, states + (static_cast<long long>(t - 1) * M + mb) * H, H, rows, kThreads);
        __syncthreads();
      }
#pragma unroll
      for (int q = 0; q < kNt; ++q) {
        const Sum s = sum_of(q, mb);
        float acc[TR][TM] = {};
        const float* wr[TR];
#pragma unroll
        for (int i = 0; i < TR; ++i) wr[i] = w_row(min_int(s.r0 + i, R - 1));
        const float* hr[TM];
#pragma unroll
        for (int j = 0; j < TM; ++j) hr[j] = hcur + min_int(s.m0 + j, kMb - 1) * kHp;
#pragma unroll 4
        for (int k4 = kl; k4 < kF; k4 += KS) {
          float4 wv[TR], hv[TM];
#pragma unroll
          for (int i = 0; i < TR; ++i)
            wv[i] = W_SMEM ? reinterpret_cast<const float4*>(wr[i])[k4] : row4<VEC, false, H>(wr[i], k4);
#pragma unroll
          for (int j = 0; j < TM; ++j) hv[j] = reinterpret_cast<const float4*>(hr[j])[k4];
#pragma unroll
          for (int i = 0; i < TR; ++i)
#pragma unroll
            for (int j = 0; j < TM; ++j)
              acc[i][j] += wv[i].x * hv[j].x + wv[i].y * hv[j].y + wv[i].z * hv[j].z + wv[i].w * hv[j].w;
        }
        // Butterfly over the group: every lane holds every sum, added in a fixed order.
#pragma unroll
        for (int off = KS / 2; off > 0; off /= 2)
#pragma unroll
          for (int i = 0; i < TR; ++i)
#pragma unroll
            for (int j = 0; j < TM; ++j) acc[i][j] += __shfl_xor_sync(0xffffffffu, acc[i][j], off);
        float sum = 0.f;
#pragma unroll
        for (int i = 0; i < TR; ++i)
#pragma unroll
          for (int j = 0; j < TM; ++j)
            if (kl == i * TM + j) sum = acc[i][j];
        if (s.stored) {
          const float v = tanhf(sum + p[q]);
          states[(static_cast<long long>(t) * M + s.m) * H + s.n] = v;
          if constexpr (CLUSTER) own[s.m * R + (s.n - n0)] = v;
        }
      }
      if constexpr (!CLUSTER) __syncthreads();  // hs is restaged next
    }
    if (t + 1 == steps) break;
    if constexpr (CLUSTER) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      load_p(p, t + 1, 0);  // in flight through the hand-off
      __syncthreads();      // `own` is whole
      float* next = hs + ((t + 1) & 1) * M * kHp;
      for (int i = tid; i < CTAS * M * nr; i += kThreads) {
        const int rank = i / (M * nr), e = i % (M * nr), m = e / nr, r = e % nr;
        asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(cluster_addr(next + m * kHp + n0 + r, rank)),
                     "f"(own[m * R + r])
                     : "memory");
      }
      cluster_sync();  // h_{t+1} is whole in every CTA; `own` and the buffer read this step are free
#endif
    } else {
      grid_barrier(counter);
    }
  }
}

template <int M, int I, int H, int CTAS, int WARPS, int KS, int TR, int TM, int MB, int CLUSTER, int W_SMEM>
__global__ void __launch_bounds__(WARPS * 32, 1)
    recur(const float* __restrict__ proj, const float* __restrict__ h0, const float* __restrict__ w1, float* states,
          int steps, unsigned* counter) {
  if (I % 4 == 0 && H % 4 == 0 && aligned16(h0) && aligned16(w1) && aligned16(states))
    recur_steps<true, M, I, H, CTAS, WARPS, KS, TR, TM, MB, CLUSTER != 0, W_SMEM != 0>(proj, h0, w1, states, steps,
                                                                                     counter);
  else
    recur_steps<false, M, I, H, CTAS, WARPS, KS, TR, TM, MB, CLUSTER != 0, W_SMEM != 0>(proj, h0, w1, states, steps,
                                                                                      counter);
}

}  // namespace rnnjit_k
