// The whole step in one launch for batches of 4 to 16 whose weights stream from HBM, the products
// on tensor cores (mma.sync m16n8k8 TF32, sm_80 and later): i2h, a grid-wide barrier, h2o.
// Tiling: CTA c owns an even share of h's 16-row blocks (then of y's), RB blocks at a time; its
// WARPS warps take chunks of UNROLL 32-column groups in turn along K (warp w chunks w, w + WARPS,
// ...); the sums of the warps are added in shared memory in a fixed order.
//
// Chunks in turn, not a K range a warp, so that the CTA's warps read each row at adjacent places
// (a span of WARPS·UNROLL·128 bytes at once) rather than in short runs far apart; its gain was not
// measured apart (docs/kernels.md, "gridmma", Design).
//
// Why tensor cores for a stream: with FFMA a lane re-reads the batch's A for every few rows of W,
// and at batch 8 those instructions, not HBM, set the pace. Here a lane's A fragment serves 16·RB
// rows and W goes straight from 16-byte loads into mma operands: no shared memory on W's path. The
// sum over K does not care in which order a group's columns are taken, so lane (g, t) loads its
// rows g and g+8 at columns c+8t..c+8t+7 (two float4s: a warp's pair of loads reads 128 contiguous
// bytes of each of 8 rows; 64-byte runs streamed ~12 % slower, docs/kernels.md, "gridmma") and
// takes A's batch row g at the same columns: mma k-step s reads columns 2s, 2s+1 of the lane's
// eight as the fragment's k = t and t+4.
//
// fp32 (MATH = kMathFp32) splits both operands into TF32 hi and lo parts (3xTF32), and each chunk
// sums into zeroed fragments folded into the running sums by FADD (docs/kernels.md, "Precision").
//
// As in grid_stream.cu, the first PREFETCH chunks of each warp's first h2o block of W2 are copied
// into shared memory (cp.async, each lane its own float4s) before the barrier, so that HBM stays
// busy through it; they are multiplied last. The engine launches it cooperatively (every CTA
// resident) with a launch counter of this call's own, and keeps h_out apart from x and h.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// Where a phase reads: C[m][n] = Σ_k A[m][k]·W[n][k], A = [A1 (K1 columns) | A2 (K2)] with batch
// rows K1 and K2 floats long, W rows ldw floats apart.
struct Operands {
  const float* a1;
  int K1;
  const float* a2;
  int K2;
  const float* w;
  int ldw;

  __device__ int k() const { return K1 + K2; }
  __device__ const float* a(int m, int k) const {
    return k < K1 ? a1 + static_cast<long long>(m) * K1 + k : a2 + static_cast<long long>(m) * K2 + (k - K1);
  }
};

template <int M, int MATH, int WARPS, int RB, int UNROLL>
struct MmaStream {
  static constexpr int kNT = (M + 7) / 8;               // n8 tiles of the batch
  static constexpr int kWLane = UNROLL * RB * 4;        // float4s of W a lane holds for a chunk
  static constexpr int kPart = WARPS * RB * kNT * 128;  // floats of the warps' partial sums

  __device__ static int lane() { return static_cast<int>(threadIdx.x % 32); }
  __device__ static int warp() { return static_cast<int>(threadIdx.x / 32); }
  // Chunks a warp over K columns (the last ones partly or wholly past K), and group u of its chunk j.
  __device__ static int chunk_count(int K) { return ((K + 31) / 32 + WARPS * UNROLL - 1) / (WARPS * UNROLL); }
  __device__ static int group(int j, int u) { return (j * WARPS + warp()) * UNROLL + u; }
  // The lane's first column of half hf of group u of chunk j: lane (g, t) takes columns 8t..8t+7
  // of each 32-column group, so that a warp's two loads of a row read 128 contiguous bytes.
  __device__ static int column(int j, int u, int hf) { return group(j, u) * 32 + 8 * (lane() % 4) + 4 * hf; }
  // Whether every column of chunk j is inside K.
  __device__ static bool full(int j, int K) { return (group(j, UNROLL - 1) + 1) * 32 <= K; }
  // A staged float4 of W: chunk j, this warp and lane, group u, block rb, row g + 8i, half hf.
  __device__ static int staged_at(int j, int u, int rb, int i, int hf) {
    return ((j * WARPS + warp()) * kWLane + ((u * RB + rb) * 2 + i) * 2 + hf) * 32 + lane();
  }

  // One chunk's operands, all loaded before any is used. Every load is unconditional: rows past
  // the edge re-read the last row, columns past K the last ones (multiply<TAIL> zeroes them), and
  // batch rows past M feed only columns of C that are not stored. A load under a condition makes
  // the compiler move its result at the join, which waits for it and serializes the loads.
  float4 wv[UNROLL][RB][2][2], av[UNROLL][kNT][2];
  int col[UNROLL];  // the lane's first column in each group

  // Chunk j of the step whose rows start at n0 (the last valid one `last`). STAGED: W from
  // `staged`. A_L2: A was written in this launch (read through L2, not the read-only path).
  template <bool VEC, bool A_L2, bool STAGED>
  __device__ void load(const Operands& op, int n0, int last, int j, const float4* staged) {
    const int g = lane() / 4, K = op.k();
    auto ld1 = [&](const float* p) { return A_L2 ? __ldcg(p) : __ldg(p); };
#pragma unroll
    for (int u = 0; u < UNROLL; ++u) {
      col[u] = column(j, u, 0);
#pragma unroll
      for (int rb = 0; rb < RB; ++rb)
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          const float* row = op.w + static_cast<long long>(min_int(n0 + rb * 16 + g + 8 * i, last)) * op.ldw;
#pragma unroll
          for (int hf = 0; hf < 2; ++hf) {
            const int c = col[u] + 4 * hf;
            float4& v = wv[u][rb][i][hf];
            if constexpr (STAGED) {
              v = staged[staged_at(j, u, rb, i, hf)];
            } else if constexpr (VEC) {
              v = load_stream<16>(row + min_int(c, K - 4));
            } else {
              v = make_float4(__ldg(row + min_int(c, K - 1)), __ldg(row + min_int(c + 1, K - 1)),
                              __ldg(row + min_int(c + 2, K - 1)), __ldg(row + min_int(c + 3, K - 1)));
            }
          }
        }
#pragma unroll
      for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
        for (int hf = 0; hf < 2; ++hf) {
          const int m = min_int(g + 8 * nt, M - 1), c = col[u] + 4 * hf;
          float4& v = av[u][nt][hf];
          if constexpr (VEC) {
            const float4* p = reinterpret_cast<const float4*>(op.a(m, min_int(c, K - 4)));
            v = A_L2 ? __ldcg(p) : __ldg(p);
          } else {
            v = make_float4(ld1(op.a(m, min_int(c, K - 1))), ld1(op.a(m, min_int(c + 1, K - 1))),
                            ld1(op.a(m, min_int(c + 2, K - 1))), ld1(op.a(m, min_int(c + 3, K - 1))));
          }
        }
    }
  }

  // d += the chunk's products. TAIL: columns past K count as zeros (a select where the fragments
  // are made, not where the loads land).
  template <bool TAIL>
  __device__ void multiply(float (&d)[RB][kNT][4], int K) const {
#pragma unroll
    for (int u = 0; u < UNROLL; ++u)
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        // k-step s: columns c, c + 1 of the lane's eight (as the fragment's k = t and t + 4).
        const int hf = s / 2, c = col[u] + 4 * hf + 2 * (s % 2);
        const bool in0 = !TAIL || c < K, in1 = !TAIL || c + 1 < K;
        auto pick = [&](const float4& v, int e) {  // element e of the pair
          const float x = s % 2 == 0 ? (e == 0 ? v.x : v.y) : (e == 0 ? v.z : v.w);
          return (e == 0 ? in0 : in1) ? x : 0.f;
        };
        Tf32Frag<2> fb[kNT];
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt) fb[nt].template set<MATH>(pick(av[u][nt][hf], 0), pick(av[u][nt][hf], 1));
#pragma unroll
        for (int rb = 0; rb < RB; ++rb) {
          const float4 &r0 = wv[u][rb][0][hf], &r8 = wv[u][rb][1][hf];  // rows g and g + 8
          Tf32Frag<4> fa;
          fa.template set<MATH>(pick(r0, 0), pick(r8, 0), pick(r0, 1), pick(r8, 1));
#pragma unroll
          for (int nt = 0; nt < kNT; ++nt) mma_tf32<MATH>(d[rb][nt], fa, fb[nt]);
        }
      }
  }

  // A phase C[m][n] = epilogue(Σ_k A[m][k]·W[n][k] + bias[n]) over this CTA's 16-row blocks
  // [b0, b1); `pre` chunks of the first step's W are staged (prefetch() put them there).
  template <bool VEC, bool A_L2, int EPI>
  __device__ static void phase(const Operands& op, int N, const float* bias, float* c, int b0, int b1,
                               const float4* staged, int pre, float* part) {
    const int K = op.k(), lim = min_int(b1 * 16, N), chunks = chunk_count(K);
    for (int b = b0; b < b1; b += RB) {
      const bool first = b == b0;
      float acc[RB][kNT][4] = {};
      for (int q = 0; q < chunks; ++q) {
        // The first step's staged chunks [0, pre) last: the streamed ones are in flight meanwhile.
        const int j = first && pre > 0 ? (q + pre) % chunks : q;
        // fp32: each chunk sums into zeroed fragments, folded into acc by FADD: the mma's
        // accumulator truncates, and over long K its truncations would add up past 1e-5 (TF32's
        // own error is far larger: it sums into acc, saving the registers).
        float d[RB][kNT][4] = {};
        auto& sums = MATH == kMathFp32 ? d : acc;
        MmaStream ch;
        if (first && j < pre) {
          ch.template load<VEC, A_L2, true>(op, b * 16, lim - 1, j, staged);
          ch.template multiply<true>(sums, K);
        } else if (full(j, K)) {
          ch.template load<VEC, A_L2, false>(op, b * 16, lim - 1, j, staged);
          ch.template multiply<false>(sums, K);
        } else {
          ch.template load<VEC, A_L2, false>(op, b * 16, lim - 1, j, staged);
          ch.template multiply<true>(sums, K);
        }
        if constexpr (MATH == kMathFp32) fold(acc, d);
      }

      // The warps' sums in a fixed order. Fragment element e of lane (g, t): row g + 8·(e / 2),
      // batch column 2t + e % 2 of its n8 tile.
#pragma unroll
      for (int rb = 0; rb < RB; ++rb)
#pragma unroll
        for (int nt = 0; nt < kNT; ++nt)
#pragma unroll
          for (int e = 0; e < 4; ++e) part[((warp() * RB + rb) * kNT + nt) * 128 + e * 32 + lane()] = acc[rb][nt][e];
      __syncthreads();
      for (int i = static_cast<int>(threadIdx.x); i < RB * 16 * M; i += WARPS * 32) {
        const int rb = i / (16 * M), r = i / M % 16, m = i % M, n = (b + rb) * 16 + r;
        const int idx = (rb * kNT + m / 8) * 128 + (r / 8 * 2 + m % 2) * 32 + (r % 8) * 4 + (m % 8) / 2;
        float sum = 0.f;
#pragma unroll
        for (int wp = 0; wp < WARPS; ++wp) sum += part[wp * RB * kNT * 128 + idx];
        if (n < lim) c[static_cast<long long>(m) * N + n] = epilogue<EPI>(sum + bias[n]);
      }
      __syncthreads();
    }
  }

  // The first `pre` chunks of this warp's share of the step at block b0 (of [b0, b1)) of W (K
  // columns, rows ldw floats apart, N rows) into `staged`, zeros past the edges: each lane the
  // float4s load<STAGED> will read.
  __device__ static void prefetch(float4* staged, int pre, const float* w, int ldw, int N, int K, int b0, int b1) {
    const int g = lane() / 4, lim = min_int(b1 * 16, N);
    for (int j = 0; j < pre; ++j)
#pragma unroll
      for (int u = 0; u < UNROLL; ++u)
#pragma unroll
        for (int rb = 0; rb < RB; ++rb)
#pragma unroll
          for (int i = 0; i < 2; ++i)
#pragma unroll
            for (int hf = 0; hf < 2; ++hf) {
              const int n = (b0 + rb) * 16 + g + 8 * i, k = column(j, u, hf);
              const bool ok = n < lim && k < K;
              cp_async_16(&staged[staged_at(j, u, rb, i, hf)], ok ? w + static_cast<long long>(n) * ldw + k : w, ok);
            }
    cp_async_commit();
  }
};

template <bool VEC, int M, int I, int H, int O, int MATH, int WARPS, int RB, int UNROLL, int PREFETCH>
__device__ __forceinline__ void grid_mma_step(const float* x, const float* h, const float* w1, const float* b1,
                                              const float* w2, const float* b2, float* h_out, float* y,
                                              unsigned* barrier) {
  using S = MmaStream<M, MATH, WARPS, RB, UNROLL>;
  extern __shared__ float4 smem[];
  float4* staged = smem;  // PREFETCH chunks × WARPS × kWLane float4s a lane
  float* part = reinterpret_cast<float*>(smem + PREFETCH * WARPS * S::kWLane * 32);
  const int c = static_cast<int>(blockIdx.x), ctas = static_cast<int>(gridDim.x);
  // An even share of the blocks (±1 between CTAs).
  auto first_block = [&](int n, int cta) { return static_cast<int>(static_cast<long long>((n + 15) / 16) * cta / ctas); };
  const int n1 = first_block(H, c), e1 = first_block(H, c + 1), n2 = first_block(O, c), e2 = first_block(O, c + 1);
  // The staged chunks belong to the first step of the CTA's W2 blocks; none without 16-byte rows.
  const int pre = VEC && e2 > n2 ? PREFETCH : 0;

  S::template phase<VEC, false, kEpiBiasTanh>({x, I, h, H, w1, I + H}, H, b1, h_out, n1, e1, staged, 0, part);
  if (pre > 0) S::prefetch(staged, pre, w2, H, O, H, n2, e2);
  grid_barrier(barrier);
  cp_async_wait<0>();
  S::template phase<VEC, true, kEpiBias>({h_out, H, h_out, 0, w2, H}, O, b2, y, n2, e2, staged, pre, part);
}

template <int M, int I, int H, int O, int MATH, int WARPS, int RB, int UNROLL, int PREFETCH>
__global__ void __launch_bounds__(WARPS * 32, 1)
    grid_mma(const float* __restrict__ x, const float* __restrict__ h, const float* __restrict__ w1,
             const float* __restrict__ b1, const float* __restrict__ w2, const float* __restrict__ b2, float* h_out,
             float* __restrict__ y, unsigned* barrier) {
  static_assert(M >= 1 && M <= 16, "two n8 tiles of batch at most");
  // 16-byte loads need rows of whole float4s (the shape) and aligned bases (the pointers).
  constexpr bool kShapeVec = I % 4 == 0 && H % 4 == 0;
  if (kShapeVec && aligned_to<16>(x, h, w1, w2, h_out))
    grid_mma_step<kShapeVec, M, I, H, O, MATH, WARPS, RB, UNROLL, PREFETCH>(x, h, w1, b1, w2, b2, h_out, y, barrier);
  else
    grid_mma_step<false, M, I, H, O, MATH, WARPS, RB, UNROLL, PREFETCH>(x, h, w1, b1, w2, b2, h_out, y, barrier);
}

}  // namespace rnnjit_k
