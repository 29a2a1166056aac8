// The recurrence of a sequence chunk in one persistent launch: h_{t+1} = tanh(h_t·W_hhᵀ + P_t) for
// its steps, P_t = x_t·W_ihᵀ + b1 projected beforehand for every step (W_hh = W1's last H columns).
// Tiling: CTA c owns rows [c·R, c·R + R) of h (and of W_hh); lane groups of KS lanes take TR×TM
// tiles (W_hh rows × batch rows), each lane a stride of K by float4s, summed over the group by shuffles.
//
// Two hand-offs between steps. CLUSTER: the grid is one thread-block cluster; each CTA keeps h_t
// whole in shared memory (two buffers taking turns) and pushes its new rows into every CTA's next
// buffer with st.async, which counts the bytes on that buffer's mbarrier in the receiving CTA: a CTA
// waits for its own buffer to fill, not for the whole cluster to arrive. Otherwise a cooperative grid:
// the new rows go to global memory (the states the output projection reads anyway), one grid
// barrier, and every CTA copies h_t through L2 into shared memory (cp.async), MB batch rows at a time.
// The CTA's first KEPT rows of W_hh stay in shared memory for every step (a cluster's in its lanes'
// registers where they fit), the rest stream from global memory each step: where W_hh is larger
// than the chip, only the part past it is re-read.
// Storage ST (f32 or bf16) is what lies in global memory; on chip h_t and W_hh are fp32, and each
// new h is rounded to the storage type before any CTA reads it, as the states hold it.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Columns [4·k4, 4·k4 + 4) of a row of H elements, widened (zeros past H): 4 elements at once
// when VEC (16 bytes of f32, 8 of bf16).
template <int ST, bool VEC, int H>
__device__ __forceinline__ float4 stream4(const typename Store<ST>::T* row, int k4) {
  using S = Store<ST>;
  const int k = 4 * k4;
  float v[4];
  if constexpr (VEC) {
    S::unpack(load_stream<4 * sizeof(typename S::T)>(row + k), v);
  } else {
#pragma unroll
    for (int e = 0; e < 4; ++e) v[e] = k + e < H ? S::get(__ldg(row + k + e)) : 0.f;
  }
  return make_float4(v[0], v[1], v[2], v[3]);
}

// acc += w·h over one float4 of K: every products path sums in this order.
__device__ __forceinline__ void add_dot4(float& acc, const float4& w, const float4& h) {
  acc += w.x * h.x + w.y * h.y + w.z * h.z + w.w * h.w;
}

// `rows` rows of H elements, `ld` apart in global memory (rows past `last` repeat row `last`), into
// shared rows of HP floats (zeros past H), through L2 (coherent with other CTAs' writes before a
// barrier). f32 with VEC: cp.async, committed as one group; bf16 with VEC: 8-byte loads widened
// to a float4 store; scalar reads when the rows are not 4-element units, in batches so that they
// overlap.
template <int ST, bool VEC, int H, int HP, int THREADS>
__device__ __forceinline__ void stage_rows(float* dst, const typename Store<ST>::T* src, long long ld, int rows, int last) {
  using S = Store<ST>;
  if constexpr (VEC && ST == kStoreF32) {
    for (int i = static_cast<int>(threadIdx.x); i < rows * (HP / 4); i += THREADS) {
      const int r = i / (HP / 4), k4 = i % (HP / 4);
      cp_async_16(dst + 4 * i, src + min_int(r, last) * ld + 4 * k4, true);
    }
    cp_async_commit();
  } else if constexpr (VEC) {
    for (int i = static_cast<int>(threadIdx.x); i < rows * (HP / 4); i += THREADS) {
      const int r = i / (HP / 4), k4 = i % (HP / 4);
      float v[4];
      S::unpack(__ldcg(reinterpret_cast<const float2*>(src + min_int(r, last) * ld + 4 * k4)), v);  // H = HP
      reinterpret_cast<float4*>(dst)[i] = make_float4(v[0], v[1], v[2], v[3]);
    }
  } else {
    constexpr int kBatch = 8;
    for (int i0 = static_cast<int>(threadIdx.x); i0 < rows * HP; i0 += THREADS * kBatch) {
      float v[kBatch];
#pragma unroll
      for (int b = 0; b < kBatch; ++b) {
        const int i = i0 + b * THREADS, r = i / HP, k = i % HP;
        v[b] = i < rows * HP && k < H ? S::get(__ldcg(src + min_int(r, last) * ld + k)) : 0.f;
      }
#pragma unroll
      for (int b = 0; b < kBatch; ++b)
        if (i0 + b * THREADS < rows * HP) dst[i0 + b * THREADS] = v[b];
    }
  }
}

template <int ST, bool VEC, int M, int I, int H, int CTAS, int WARPS, int KS, int TR, int TM, int MB, bool CLUSTER,
          int KEPT>
__device__ __forceinline__ void recur_steps(const typename Store<ST>::T* __restrict__ proj,
                                            const typename Store<ST>::T* __restrict__ h0,
                                            const typename Store<ST>::T* __restrict__ w1, typename Store<ST>::T* states,
                                            int steps, unsigned* counter) {
  using S = Store<ST>;
  constexpr int R = recur_rows(H, CTAS), kLd = I + H, kHp = recur_row_floats(H), kF = kHp / 4;
  constexpr int kThreads = WARPS * 32, kGroups = kThreads / KS;
  constexpr int kMb = recur_staged(M, MB, CLUSTER);  // batch rows of h_t in shared memory
  constexpr int kTilesR = (R + TR - 1) / TR, kTilesM = (kMb + TM - 1) / TM;
  constexpr int kTiles = kTilesR * kTilesM, kNt = (kTiles + kGroups - 1) / kGroups;  // tiles a group
  static_assert(kThreads % KS == 0 && (KS & (KS - 1)) == 0 && KS <= 32, "KS: a power of two lanes");
  static_assert(TR * TM <= KS, "a lane of the group finishes each sum of a tile");
  // A tile's sums, padded to a power of two, are halved over the group (halving_sum): lane kl ends
  // with sum kl / kCopies, which kCopies lanes hold; the first of them stores it.
  constexpr int kSums = pow2_at_least(TR * TM), kCopies = KS / kSums;
  static_assert(KEPT == R || KEPT % TR == 0, "a tile's rows are all kept or all streamed");
  extern __shared__ float4 smem4[];
  float* hs = reinterpret_cast<float*>(smem4);            // h: 2 buffers of M rows (CLUSTER), else kMb rows
  float* own = hs + (CLUSTER ? 2 * M * kHp : kMb * kHp);  // CLUSTER: this CTA's new rows, M×R
  float* ws = hs + recur_h_floats(M, H, CTAS, MB, CLUSTER);  // the first KEPT rows of the CTA's W_hh

  const int c = static_cast<int>(blockIdx.x), n0 = c * R, nr = max(0, min_int(R, H - n0));
  const int tid = static_cast<int>(threadIdx.x), group = tid / KS, kl = tid % KS;
  const typename S::T* whh = w1 + I;  // row n of W_hh: whh + n·kLd

  // Kept rows past H (the last CTA's, a CTA past the last row) copy an earlier row: their sums are
  // not stored.
  if constexpr (KEPT > 0)
    stage_rows<ST, VEC, H, kHp, kThreads>(ws, whh + static_cast<long long>(min_int(n0, H - 1)) * kLd, kLd,
                                      KEPT < R ? KEPT : R, max(nr - 1, 0));
  // CLUSTER: full[b] completes when buffer b holds all of h (M·H floats from every CTA's pushes).
  __shared__ unsigned long long full[2];
  if constexpr (CLUSTER) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    if (tid == 0) {
      mbar_init(&full[0], 1);
      mbar_init(&full[1], 1);
      asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
#endif
    stage_rows<ST, VEC, H, kHp, kThreads>(hs, h0, H, M, M - 1);
    // The pushes never write the padding of the other buffer: zeros there, as W's are.
    if constexpr (kHp > H)
      for (int i = tid; i < M * (kHp - H); i += kThreads) hs[M * kHp + (i / (kHp - H)) * kHp + H + i % (kHp - H)] = 0.f;
    cp_async_wait<0>();
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    cluster_sync();  // every CTA's buffers and mbarriers are ready before any CTA pushes into them
#endif
  }

  // Tile q of this lane's group (every lane takes part in the shuffles, so past the last tile it
  // repeats that one unstored), and the sum this lane holds in it, stored by one lane of its copies.
  struct Sum {
    int r0, m0, n, m;
    bool stored;
  };
  auto sum_of = [&](int q, int mb) {
    const int tile = group + q * kGroups, live = min_int(tile, kTiles - 1);
    Sum s;
    s.r0 = (live % kTilesR) * TR;
    s.m0 = (live / kTilesR) * TM;
    const int j = kl / kCopies, fr = s.r0 + j / TM;
    s.n = n0 + fr;
    s.m = mb + s.m0 + j % TM;
    s.stored = tile < kTiles && kl % kCopies == 0 && j < TR * TM && fr < nr && s.m < M && s.m0 + j % TM < kMb;
    return s;
  };
  // A cluster's lane holds its tiles' W_hh rows for the launch in registers where they fit (TR rows ×
  // its stride of K a tile, recur_w_in_registers): the products then read only h_t from shared memory.
  constexpr int kIters = (kF + KS - 1) / KS;  // float4s of K a lane takes a row
  constexpr bool kWRegs = recur_w_in_registers(CLUSTER, KEPT, R, kNt, TR, H, KS);
  float4 wreg[kWRegs ? kNt : 1][kWRegs ? TR : 1][kWRegs ? kIters : 1];
  if constexpr (kWRegs)
#pragma unroll
    for (int q = 0; q < kNt; ++q)
#pragma unroll
      for (int i = 0; i < TR; ++i)
#pragma unroll
        for (int it = 0; it < kIters; ++it) {
          const int k4 = kl + it * KS;
          wreg[q][i][it] = k4 < kF ? reinterpret_cast<const float4*>(ws + min_int(sum_of(q, 0).r0 + i, R - 1) * kHp)[k4]
                                   : make_float4(0.f, 0.f, 0.f, 0.f);
        }
  // P's element of this lane's sum in tile q at step t (0 where it stores none).
  auto p_of = [&](int q, int t, int mb) {
    const Sum s = sum_of(q, mb);
    return s.stored ? S::get(__ldg(proj + (static_cast<long long>(t) * M + s.m) * H + s.n)) : 0.f;
  };
  // Tile q's products over this lane's stride of K: W rows from registers, shared memory or streamed.
  auto products = [&](float (&acc)[TR][TM], int q, const Sum& s, const float* hcur) {
    const float* hr[TM];
#pragma unroll
    for (int j = 0; j < TM; ++j) hr[j] = hcur + min_int(s.m0 + j, kMb - 1) * kHp;
    if constexpr (kWRegs) {
#pragma unroll
      for (int it = 0; it < kIters; ++it) {
        const int k4 = kl + it * KS;
        if (kF % KS != 0 && k4 >= kF) break;
        float4 hv[TM];
#pragma unroll
        for (int j = 0; j < TM; ++j) hv[j] = reinterpret_cast<const float4*>(hr[j])[k4];
#pragma unroll
        for (int i = 0; i < TR; ++i)
#pragma unroll
          for (int j = 0; j < TM; ++j) {
            add_dot4(acc[i][j], wreg[q][i][it], hv[j]);
          }
      }
    } else if (s.r0 < KEPT) {
      const float* wr[TR];
#pragma unroll
      for (int i = 0; i < TR; ++i) wr[i] = ws + min_int(s.r0 + i, min_int(KEPT, R) - 1) * kHp;
#pragma unroll 4
      for (int k4 = kl; k4 < kF; k4 += KS) {
        float4 wv[TR], hv[TM];
#pragma unroll
        for (int i = 0; i < TR; ++i) wv[i] = reinterpret_cast<const float4*>(wr[i])[k4];
#pragma unroll
        for (int j = 0; j < TM; ++j) hv[j] = reinterpret_cast<const float4*>(hr[j])[k4];
#pragma unroll
        for (int i = 0; i < TR; ++i)
#pragma unroll
          for (int j = 0; j < TM; ++j)
            add_dot4(acc[i][j], wv[i], hv[j]);
      }
    } else {
      const typename S::T* wr[TR];
#pragma unroll
      for (int i = 0; i < TR; ++i) wr[i] = whh + static_cast<long long>(min_int(n0 + s.r0 + i, H - 1)) * kLd;
#pragma unroll 4
      for (int k4 = kl; k4 < kF; k4 += KS) {
        float4 wv[TR], hv[TM];
#pragma unroll
        for (int i = 0; i < TR; ++i) wv[i] = stream4<ST, VEC, H>(wr[i], k4);
#pragma unroll
        for (int j = 0; j < TM; ++j) hv[j] = reinterpret_cast<const float4*>(hr[j])[k4];
#pragma unroll
        for (int i = 0; i < TR; ++i)
#pragma unroll
          for (int j = 0; j < TM; ++j)
            add_dot4(acc[i][j], wv[i], hv[j]);
      }
    }
  };

  // Tile q: its products, halved over the group (each sum added in a fixed order), and the sum this
  // lane holds, with P's element `p`.
  auto tile = [&](int q, int t, int mb, const float* hcur, float p) {
    const Sum s = sum_of(q, mb);
    float acc[TR][TM] = {};
    products(acc, q, s, hcur);
    float sums[kSums];
#pragma unroll
    for (int e = 0; e < kSums; ++e) sums[e] = e < TR * TM ? acc[e / TM][e % TM] : 0.f;
    halving_sum<kSums, KS / 2>(sums, kl);  // sums[0] is sum kl / kCopies, as sum_of has it
    if (s.stored) {
      const typename S::T v = S::put(tanhf(sums[0] + p));  // every CTA reads h as stored
      states[(static_cast<long long>(t) * M + s.m) * H + s.n] = v;
      if constexpr (CLUSTER) own[s.m * R + (s.n - n0)] = S::get(v);
    }
  };

  // A cluster's P for the next step is loaded before the hand-off (a group's few tiles, in
  // registers); a grid's tile by tile, ahead of its products (not unrolled: at batch 64 a group's
  // eight tiles unrolled spilled 400 bytes).
  float p_next[CLUSTER ? kNt : 1];
  if constexpr (CLUSTER)
#pragma unroll
    for (int q = 0; q < kNt; ++q) p_next[q] = p_of(q, 0, 0);
  for (int t = 0; t < steps; ++t) {
    if constexpr (CLUSTER) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
      // Buffer t&1 was filled for step t (phase (t-1)/2 of its mbarrier; step 0's came from h0).
      // Its next fill, for step t + 2, cannot start before this CTA has read it: every sender first
      // needs all of h_{t+1}, this CTA's rows included, which it pushes after the reads below.
      if (t > 0) {
        mbar_wait(&full[t & 1], ((t - 1) >> 1) & 1);
        // `own` is rewritten below. The phase just waited for counts this CTA's pushes to itself,
        // which follow their reads of `own`, so those reads are done; the barrier states it in a way
        // compute-sanitizer's racecheck follows (it does not model st.async's byte counts).
        __syncthreads();
      }
      // The other buffer's phase for step t + 1: its pushes may land before this (the count of bytes
      // goes below zero), but the phase completes only with this arrival.
      if (tid == 0 && t + 1 < steps) mbar_expect_tx(&full[(t + 1) & 1], M * H * 4);
#endif
      const float* hcur = hs + (t & 1) * M * kHp;
#pragma unroll
      for (int q = 0; q < kNt; ++q) tile(q, t, 0, hcur, p_next[q]);
    } else {
      for (int mb = 0; mb < M; mb += kMb) {
        // h_t: h0, or the states other CTAs wrote before the last barrier (through L2).
        const typename S::T* src = t == 0 ? h0 + static_cast<long long>(mb) * H
                                          : states + (static_cast<long long>(t - 1) * M + mb) * H;
        const int rows = min_int(kMb, M - mb);
        stage_rows<ST, VEC, H, kHp, kThreads>(hs, src, H, rows, rows - 1);
        cp_async_wait<0>();
        __syncthreads();
#pragma unroll 1
        for (int q = 0; q < kNt; ++q) tile(q, t, mb, hs, p_of(q, t, mb));
        __syncthreads();  // hs is restaged next
      }
    }
    if (t + 1 == steps) break;
    if constexpr (CLUSTER) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#pragma unroll
      for (int q = 0; q < kNt; ++q) p_next[q] = p_of(q, t + 1, 0);  // in flight through the hand-off
      __syncthreads();  // `own` is whole, and this step's reads of buffer t&1 are done
      float* next = hs + ((t + 1) & 1) * M * kHp;
      unsigned long long* bar = &full[(t + 1) & 1];
      // Each element of `own` to the same place in every CTA, itself included: 16 bytes a store
      // where the CTA's rows are whole float4s of next's rows. `own` is rewritten next step only
      // after full[(t+1)&1] completes, which takes this CTA's own pushes, so after these reads.
      if (R % 4 == 0 && nr == R) {
        for (int e = tid; e < M * (R / 4); e += kThreads) {
          const int m = e / (R / 4), r = 4 * (e % (R / 4));
          const float4 v = *reinterpret_cast<const float4*>(own + m * R + r);
          const float* local = next + m * kHp + n0 + r;
#pragma unroll
          for (int rank = 0; rank < CTAS; ++rank) st_async(cluster_addr(local, rank), v, cluster_addr(bar, rank));
        }
      } else {
        for (int e = tid; e < M * nr; e += kThreads) {
          const int m = e / nr, r = e % nr;
          const float v = own[m * R + r];
          const float* local = next + m * kHp + n0 + r;
#pragma unroll
          for (int rank = 0; rank < CTAS; ++rank) st_async(cluster_addr(local, rank), v, cluster_addr(bar, rank));
        }
      }
#endif
    } else {
      grid_barrier(counter);
    }
  }
}

template <int ST, int M, int I, int H, int CTAS, int WARPS, int KS, int TR, int TM, int MB, int CLUSTER, int KEPT>
__global__ void __launch_bounds__(WARPS * 32, 1)
    recur(const typename Store<ST>::T* __restrict__ proj, const typename Store<ST>::T* __restrict__ h0,
          const typename Store<ST>::T* __restrict__ w1, typename Store<ST>::T* states, int steps, unsigned* counter) {
  // VEC: rows of whole 4-element units at pointers aligned to them.
  if (I % 4 == 0 && H % 4 == 0 && aligned_to<4 * sizeof(typename Store<ST>::T)>(h0, w1, states))
    recur_steps<ST, true, M, I, H, CTAS, WARPS, KS, TR, TM, MB, CLUSTER != 0, KEPT>(proj, h0, w1, states, steps, counter);
  else
    recur_steps<ST, false, M, I, H, CTAS, WARPS, KS, TR, TM, MB, CLUSTER != 0, KEPT>(proj, h0, w1, states, steps, counter);
}

}  // namespace rnnjit_k
