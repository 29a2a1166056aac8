// C[M,N] = epilogue([A1 | A2]·Wᵀ + bias) on mma.sync tensor cores, sm_80 and later (sm_86, sm_89, sm_90 too).
// Tiling: a CTA owns a BM×BN tile of C, each of its WARPS_M×WARPS_N warps a (BM/WARPS_M)×(BN/WARPS_N) block of
// m16n8 fragments loaded by ldmatrix; K advances BK words a row at a time through a STAGES-deep cp.async ring.
//
// Storage (ST): f32 tensors multiply on m16n8k8 tf32 (or the fp32 split below), bf16 tensors on m16n8k16 bf16.
// BK counts 4-byte words of a slice row (BK floats, 2·BK bf16), so a tile takes the same shared memory either
// way, and a 32-byte k-step is one ldmatrix.x4 of A either way: rows of 8 words, whose b16 pairs are tf32 k8's
// elements or bf16 k16's pairs in exactly the fragment layout each mma expects.
//
// Shared memory (dynamic): gemm_tc_smem_bytes(BM, BN, BK, STAGES) = STAGES·(BM + BN)·BK·4 bytes (rnnjit_shared.h); a ring
// slot holds BM rows of A then BN rows of W, BK words a row, unpadded. Within a row the 16-byte chunks are
// XOR-swizzled: logical chunk c of slot row r sits at c ^ ((r / max(1, 8/CH)) % min(CH, 8)), CH = BK/4. So
// any 8 consecutive rows at one logical chunk (an ldmatrix phase) and any 8 consecutive chunks that 8 threads
// write by cp.async land in 8 distinct bank quads: both sides are conflict-free.
//
// K is walked as W sees it, columns [0, K1+K2) of W's rows: W's 16-byte copies depend only on LDW and w
// (not on K1), a K1 that is not a multiple of a slice costs no extra slice, and A's slice takes each chunk from
// A1 or A2 (whole chunks: A's copy width divides K1 and K2). The last chunk of W past K is cut by cp.async's
// src-size, which zero-fills the rest, as it zero-fills rows past M and N. bf16 elements at odd positions
// (odd K1, K2 or LDW, or 2-byte aligned pointers) are 2 bytes, below cp.async's 4: those copies are loads and
// shared stores, eight in flight a thread.
//
// Rounding. The tensor cores read the top 19 bits of each operand. tf32: each fragment register is rounded to
// nearest (ties away: cvt.rna's top 19 bits) by adding half a tf32 ulp to its bits, a compare and a predicated
// add where cvt.rna takes 4 instructions (the units drop the low bits themselves). The mma's own accumulation
// truncates, ~0.5 ulp a k-step (2.9e-4 at K=32768); tf32 leaves it unfolded: inside its 2e-3 bound, while
// folding takes a second set of sums (128 more registers for a 64×64 warp tile). fp32 (kMathFp32): x = hi + lo
// exactly, hi its top 19 bits (an AND), lo = x - hi; per k8 step one bf16 m16n8k16 of [x | lo_a]·[lo_w | x_w]
// (both cross terms and lo·lo) then the tf32 m16n8k8 of hi·hi: two tensor passes where 3xTF32 takes three, as
// gemm_wgmma's fp32 does. A thread's bf16 k16 fragment holds virtual columns 2t, 2t+1 (and 2t+8, 2t+9) where
// its tf32 k8 fragment holds column t (and t+4), so each register packs its own element's pair: no shuffles.
// Each BK slice sums into zeroed fragments folded in by round-to-nearest adds (fold()): truncation acts on BK
// terms only.
//
// Device code only, compiled by NVRTC with every shape and knob a template argument.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// v, opaque to the compiler and produced anew where it is used, so what is derived from it stays in the loop.
__device__ __forceinline__ int unhoisted(int v) {
  asm volatile("" : "+r"(v));
  return v;
}

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], unsigned addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// d += A·B, bf16 m16n8k16 (A row-major, B column-major, lower k in the low half of each register).
__device__ __forceinline__ void mma_m16n8k16_bf16(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// x's bits rounded to nearest tf32 (ties away) as the tensor cores will read them: the same top 19 bits as
// cvt.rna.tf32, low bits left for the units to drop; inf and NaN pass unchanged.
__device__ __forceinline__ unsigned round_tf32(unsigned x) {
  return fabsf(__uint_as_float(x)) < __uint_as_float(0x7f800000u) ? x + 0x1000u : x;
}

// Two floats as a bf16 pair: `low` in the low half (the lower k of an mma operand), `high` in the high half.
__device__ __forceinline__ unsigned pack_bf16(float low, float high) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(high), "f"(low));
  return r;
}

// The shared-memory slices of a config (gemm_tc's template arguments; THREADS a CTA): layout and copies.
template <int ST, int M, int N, int K1, int K2, int LDW, int BM, int BN, int BK, int THREADS>
struct TcSlice {
  using T = typename Store<ST>::T;
  static constexpr int kElem = sizeof(T), kVec = 16 / kElem;      // bytes an element, elements a 16-byte chunk
  static constexpr int K = K1 + K2, kSliceK = BK * 4 / kElem;     // K elements a slice
  static constexpr int kChunks = BK / 4;                          // 16-byte chunks a row
  static constexpr int kSwzRows = kChunks >= 8 ? 1 : 8 / kChunks;  // rows sharing one 128-byte bank line
  static constexpr int kSwzGroup = kChunks >= 8 ? 8 : kChunks;     // chunks the XOR permutes
  static constexpr int kRowBytes = BK * 4, kSlotBytes = (BM + BN) * kRowBytes;

  __device__ static int swizzle(int row) { return (row / kSwzRows) % kSwzGroup; }

  // The widest copy (elements, a power of two up to a chunk) that the shape and the pointers' alignment allow,
  // uniform over the CTA: A's must divide K1 and K2 (no copy straddles A1 and A2), W's its row pitch.
  __device__ static int width(unsigned long long address_bits, bool is_a) {
    int w = kVec;
    while (w > 1 && ((is_a ? K1 % w != 0 || K2 % w != 0 : LDW % w != 0) || address_bits % (w * kElem) != 0)) w /= 2;
    return w;
  }

  // Where one thread's copies come from: its first row's address, the stride to the next row (elements), and
  // the bytes of each copy inside K.
  struct Span {
    const T* p;
    int ld;
    int bytes;
  };
  // A's row g at column k of W's K: A1's below K1, A2's from there; zeros past K.
  template <int W>
  __device__ static Span span_a(const T* a1, const T* a2, int k, int g) {
    const bool second = K2 > 0 && k >= K1;
    const int ld = second ? K2 : K1;
    return {(second ? a2 : a1) + static_cast<long long>(g) * ld + (second ? k - K1 : k), ld,
            K % kSliceK == 0 || k < K ? W * kElem : 0};
  }
  // W's row g at column k; a copy across K keeps only its columns below K.
  template <int W>
  __device__ static Span span_w(const T* w, int k, int g) {
    return {w + static_cast<long long>(g) * LDW + k, LDW,
            K % W == 0 ? (K % kSliceK == 0 || k < K ? W * kElem : 0) : max(0, min_int(W, K - k)) * kElem};
  }

  // Slice k0 of A (rows m0.., p = a1, p2 = a2) or of W (rows n0.., p = w) into the ring slot at shared address
  // `slot`, W elements a copy; rows past M or N become zeros. A thread copies the same columns of rows r0,
  // r0 + kStep, ...: one swizzle XOR and one source pointer stepped by kStep rows. The thread index is opaque so
  // that all this is rebuilt each slice (a few instructions): hoisted out of the K loop, a 64-bit pointer a copy
  // for every width variant spilled the 64x64 warp tiles.
  template <int W, bool IS_A>
  __device__ static void copy(unsigned slot, int k0, int g0, const T* p, const T* p2) {
    constexpr int kRows = IS_A ? BM : BN, kLimit = IS_A ? M : N, kRow0 = IS_A ? 0 : BM;
    constexpr int kUnits = kSliceK / W, kStep = THREADS / kUnits, kIters = (kRows + kStep - 1) / kStep;
    const unsigned me = unhoisted(threadIdx.x);  // unsigned: / and % by powers of two are shifts and masks
    const int r0 = me / kUnits, col = (me % kUnits) * W;
    const Span src = IS_A ? span_a<W>(p, p2, k0 + col, g0 + r0) : span_w<W>(p, k0 + col, g0 + r0);
    // kRow0 and kStep multiples of 8 swizzle rows: the thread's first row's XOR serves them all
    const auto dst = [&](int r) {
      const int x = kRow0 % (8 * kSwzRows) == 0 && kStep % (8 * kSwzRows) == 0 ? swizzle(r0) : swizzle(kRow0 + r);
      return slot + (kRow0 + r) * kRowBytes + ((col / kVec) ^ x) * 16 + (col % kVec) * kElem;
    };
    const auto bytes_of = [&](int r) { return kLimit % kRows == 0 || g0 + r < kLimit ? src.bytes : 0; };
    if constexpr (W * kElem >= 4) {
      // Narrow copies (unaligned shapes or pointers) in a rolled loop: unrolled, their addresses crowd out the
      // sums' registers.
#pragma unroll(W == kVec ? 64 : 1)
      for (int j = 0; j < kIters; ++j) {
        const int r = r0 + j * kStep;
        if (kRows % kStep != 0 && r >= kRows) break;
        const int bytes = bytes_of(r);
        cp_async_zfill<W * kElem>(dst(r), bytes > 0 ? src.p + static_cast<long long>(j * kStep) * src.ld : p, bytes);
      }
    } else {
      // Single bf16 elements, below cp.async's 4 bytes: eight loads in flight, then their shared stores.
      for (int j0 = 0; j0 < kIters; j0 += 8) {
        unsigned short v[8];
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const int j = j0 + u, r = r0 + j * kStep;
          v[u] = j < kIters && r < kRows && bytes_of(r) > 0 ? src.p[static_cast<long long>(j * kStep) * src.ld] : 0;
        }
#pragma unroll
        for (int u = 0; u < 8; ++u) {
          const int j = j0 + u, r = r0 + j * kStep;
          if (j < kIters && r < kRows) asm volatile("st.shared.u16 [%0], %1;\n" ::"r"(dst(r)), "h"(v[u]));
        }
      }
    }
  }

  // Widths W, W/2, ... 1 down to the CTA's: the copies of the first that is not wider. Widths the shape
  // rules out are skipped at compile time, so their copies are not built.
  template <bool IS_A, int W = kVec>
  __device__ static void copy_at(int width, unsigned slot, int k0, int g0, const T* p, const T* p2) {
    constexpr bool kFits = IS_A ? K1 % W == 0 && K2 % W == 0 : LDW % W == 0;  // always for W = 1
    if constexpr (!kFits) {
      copy_at<IS_A, W / 2>(width, slot, k0, g0, p, p2);
    } else {
      if constexpr (W > 1) {
        if (width < W) return copy_at<IS_A, W / 2>(width, slot, k0, g0, p, p2);
      }
      copy<W, IS_A>(slot, k0, g0, p, p2);
    }
  }

  // Slice t of A and W into the ring slot at shared address `slot`, at the widths the CTA checked.
  __device__ static void load(unsigned slot, int t, int m0, int n0, const T* a1, const T* a2, const T* w,
                              int a_width, int w_width) {
    const int k0 = t * kSliceK;
    copy_at<true>(a_width, slot, k0, m0, a1, a2);
    copy_at<false>(w_width, slot, k0, n0, w, w);
  }
};

template <int ST,                                  // storage: kStoreF32 or kStoreBf16 (then MATH is kMathTf32)
          int M, int N, int K1, int K2, int LDW,  // C is M×N; A = [A1 (M×K1) | A2 (M×K2)]; W rows LDW elements apart
          int BM, int BN, int BK, int WARPS_M, int WARPS_N, int STAGES,
          int MATH,  // kMathTf32 or kMathFp32
          int EPI>   // kEpiBias or kEpiBiasTanh
__global__ void __launch_bounds__(WARPS_M* WARPS_N * 32, 1)
    gemm_tc(const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
            const typename Store<ST>::T* __restrict__ w, const typename Store<ST>::T* __restrict__ bias,
            typename Store<ST>::T* __restrict__ c) {
  using S = Store<ST>;
  constexpr int kThreads = WARPS_M * WARPS_N * 32;
  constexpr int kWarpM = BM / WARPS_M, kWarpN = BN / WARPS_N;
  constexpr int kFragM = kWarpM / 16, kFragN = kWarpN / 8;
  using Slice = TcSlice<ST, M, N, K1, K2, LDW, BM, BN, BK, kThreads>;
  constexpr int kTiles = (K1 + K2 + Slice::kSliceK - 1) / Slice::kSliceK, kSteps = BK / 8;  // 32-byte k-steps
  constexpr int kSwzRows = Slice::kSwzRows, kSwzGroup = Slice::kSwzGroup;
  constexpr int kRowBytes = Slice::kRowBytes, kSlotBytes = Slice::kSlotBytes;
  static_assert(M >= 1 && N >= 1 && K1 >= 1 && K2 >= 0 && LDW >= K1 + K2, "shape: M, N, K1 >= 1, K2 >= 0, LDW >= K1+K2");
  static_assert(kWarpM * WARPS_M == BM && kWarpM % 16 == 0, "BM must be WARPS_M warp tiles of whole 16-row fragments");
  static_assert(kWarpN * WARPS_N == BN && kWarpN % 16 == 0, "BN must be WARPS_N warp tiles of 16 columns (ldmatrix.x4 pairs of n8)");
  static_assert(BK == 16 || BK == 32 || BK == 64 || BK == 128, "BK: 16, 32, 64 or 128 (a power-of-two count of chunks for the swizzle, whole k16 pairs)");
  static_assert(STAGES >= 2, "the cp.async ring needs two stages at least");
  static_assert(kThreads % Slice::kSliceK == 0, "the CTA's threads must be a multiple of a slice's K (a thread copies fixed columns)");
  static_assert(ST == kStoreF32 || MATH == kMathTf32, "bf16 storage multiplies in bf16 (MATH kMathTf32); the fp32 split takes f32");
  static_assert(MATH == kMathTf32 || kWarpM * kWarpN <= 2048,
                "kMathFp32 keeps a slice's sums beside the running ones: warp tiles of at most 64x32 fit 255 registers");
  static_assert(MATH == kMathTf32 || MATH == kMathFp32, "MATH: kMathTf32 or kMathFp32");
  static_assert(EPI == kEpiBias || EPI == kEpiBiasTanh, "EPI: kEpiBias or kEpiBiasTanh");

  extern __shared__ float4 smem_raw[];
  const unsigned smem = smem_addr(smem_raw);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int wm = (warp / WARPS_N) * kWarpM, wn = (warp % WARPS_N) * kWarpN;

  // Copy widths: what the shape allows, narrowed by the pointers' alignment, checked once per CTA, uniform. a2 is
  // not looked at when K2 == 0.
  const int a_width = Slice::width(reinterpret_cast<unsigned long long>(a1) |
                                       (K2 > 0 ? reinterpret_cast<unsigned long long>(a2) : 0ull), true);
  const int w_width = Slice::width(reinterpret_cast<unsigned long long>(w), false);
  const auto load_tile = [&](int t, int slot) {
    Slice::load(smem + slot * kSlotBytes, t, m0, n0, a1, a2, w, a_width, w_width);
  };

  // ldmatrix addresses. A (x4 = one m16k8 fragment): lanes 0-7 rows 0-7 at chunk 2s, 8-15 rows 8-15 at 2s,
  // 16-31 the same at 2s+1, giving a0..a3. W (x4 = two n8k8 fragments): lanes 0-7 rows 0-7 at chunk 2s, 8-15
  // the same rows at 2s+1, 16-31 rows 8-15. Every fragment's rows start at a multiple of 8, so a lane's swizzle
  // is its own; chunk 2s + h = G·q + (r + h) with r < G even, h ≤ 1: the XOR touches (r + h) only.
  const int ra = (lane & 7) + (lane & 8), ha = lane >> 4;
  const int rb = (lane & 7) + ((lane >> 4) << 3), hb = (lane >> 3) & 1;
  const unsigned a_row = smem + (wm + ra) * kRowBytes, b_row = smem + (BM + wn + rb) * kRowBytes;
  unsigned a_off[kSwzGroup / 2], b_off[kSwzGroup / 2];
#pragma unroll
  for (int r = 0; r < kSwzGroup / 2; ++r) {
    a_off[r] = ((2 * r + ha) ^ ((ra / kSwzRows) % kSwzGroup)) * 16;
    b_off[r] = ((2 * r + hb) ^ (((BM + rb) / kSwzRows) % kSwzGroup)) * 16;
  }

  // Fragments of one 32-byte k-step as ldmatrix delivered them (fp32 bits, or bf16 pairs), double-buffered:
  // step s+1's are loaded while step s's are multiplied.
  unsigned fa[2][kFragM][4], fb[2][kFragN][2];
  const auto load_frags = [&](int buf, int slot, int step) {
    const unsigned s = slot * kSlotBytes + (step * 2 / kSwzGroup) * kSwzGroup * 16;
    const int r = (step * 2 % kSwzGroup) / 2;
#pragma unroll
    for (int i = 0; i < kFragM; ++i) ldsm_x4(fa[buf][i], a_row + a_off[r] + s + i * 16 * kRowBytes);
#pragma unroll
    for (int j = 0; j < kFragN; j += 2) {
      unsigned v[4];
      ldsm_x4(v, b_row + b_off[r] + s + j * 8 * kRowBytes);
      fb[buf][j][0] = v[0], fb[buf][j][1] = v[1], fb[buf][j + 1][0] = v[2], fb[buf][j + 1][1] = v[3];
    }
  };

  float acc[kFragM][kFragN][4] = {};
  // kMathFp32: this slice's sums, folded into acc at its end.
  float part[MATH == kMathFp32 ? kFragM : 1][MATH == kMathFp32 ? kFragN : 1][4] = {};
  const auto multiply = [&](int buf) {
    if constexpr (ST == kStoreBf16) {
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int j = 0; j < kFragN; ++j) mma_m16n8k16_bf16(acc[i][j], fa[buf][i], fb[buf][j]);
    } else if constexpr (MATH == kMathTf32) {
      unsigned a[kFragM][4], b[kFragN][2];
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) a[i][e] = round_tf32(fa[buf][i][e]);
#pragma unroll
      for (int j = 0; j < kFragN; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) b[j][e] = round_tf32(fb[buf][j][e]);
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int j = 0; j < kFragN; ++j) mma_m16n8k8(acc[i][j], a[i], b[j]);
    } else {
      // x = hi + lo; the bf16 product of [x | lo_a]·[lo_w | x_w] adds everything but hi·hi, the tf32 one hi·hi
      // (hi masked, not left for the units to truncate: exact whatever they do with the low bits).
      unsigned ha[kFragM][4], hb[kFragN][2], xa[kFragM][4], xb[kFragN][2];
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const unsigned x = fa[buf][i][e];
          ha[i][e] = x & 0xffffe000u;
          xa[i][e] = pack_bf16(__uint_as_float(x), __uint_as_float(x) - __uint_as_float(ha[i][e]));
        }
#pragma unroll
      for (int j = 0; j < kFragN; ++j)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const unsigned x = fb[buf][j][e];
          hb[j][e] = x & 0xffffe000u;
          xb[j][e] = pack_bf16(__uint_as_float(x) - __uint_as_float(hb[j][e]), __uint_as_float(x));
        }
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int j = 0; j < kFragN; ++j) {  // small terms first
          mma_m16n8k16_bf16(part[i][j], xa[i], xb[j]);
          mma_m16n8k8(part[i][j], ha[i], hb[j]);
        }
    }
  };

#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < kTiles) load_tile(s, s);
    cp_async_commit();
  }
  cp_async_wait<STAGES - 2>();
  __syncthreads();
  load_frags(0, 0, 0);

  // Tile t is in slot t % STAGES. Its first step refills the slot tile t-1 used (every warp finished reading
  // it before the barrier of tile t-1's last step); its last step waits for tile t+1 and, after the barrier,
  // loads tile t+1's first fragments while the tile's last products run.
  int slot = 0;
  for (int t = 0; t < kTiles; ++t) {
    const int next = slot + 1 == STAGES ? 0 : slot + 1;
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      if (s == 0) {
        const int refill = slot == 0 ? STAGES - 1 : slot - 1;
        if (t + STAGES - 1 < kTiles) load_tile(t + STAGES - 1, refill);
        cp_async_commit();
      }
      if (s == kSteps - 1) {
        cp_async_wait<STAGES - 2>();
        __syncthreads();
        load_frags((s + 1) % 2, next, 0);
      } else {
        load_frags((s + 1) % 2, slot, s + 1);
      }
      multiply(s % 2);
    }
    if constexpr (MATH == kMathFp32) {
      fold(acc, part);
#pragma unroll
      for (int i = 0; i < kFragM; ++i)
#pragma unroll
        for (int j = 0; j < kFragN; ++j)
#pragma unroll
          for (int e = 0; e < 4; ++e) part[i][j][e] = 0.f;
    }
    slot = next;
  }
  cp_async_wait<0>();  // the trailing groups are empty; leave none in flight at exit

  // Epilogue from the fragments: c[m][n] = epilogue(acc + bias[n]); thread (g, t) holds rows g and g+8,
  // columns 2t and 2t+1 of each m16n8 fragment (one store of the pair where N and c allow).
  const int gid = lane / 4, tig = lane % 4;
  const bool pair = N % 2 == 0 && reinterpret_cast<unsigned long long>(c) % (2 * sizeof(typename S::T)) == 0;
#pragma unroll
  for (int j = 0; j < kFragN; ++j) {
    const int n = n0 + wn + j * 8 + tig * 2;
    const float b0 = n < N ? S::get(bias[n]) : 0.f, b1 = n + 1 < N ? S::get(bias[n + 1]) : 0.f;
#pragma unroll
    for (int i = 0; i < kFragM; ++i)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + wm + i * 16 + gid + h * 8;
        if (m >= M || n >= N) continue;
        typename S::T* p = c + static_cast<long long>(m) * N + n;
        const typename S::T v0 = S::put(epilogue<EPI>(acc[i][j][2 * h] + b0)),
                            v1 = S::put(epilogue<EPI>(acc[i][j][2 * h + 1] + b1));
        if (pair) {
          if constexpr (ST == kStoreBf16)
            *reinterpret_cast<unsigned*>(p) = v0 | static_cast<unsigned>(v1) << 16;
          else
            *reinterpret_cast<float2*>(p) = make_float2(v0, v1);
        } else {
          p[0] = v0;
          if (n + 1 < N) p[1] = v1;
        }
      }
  }
}

}  // namespace rnnjit_k
