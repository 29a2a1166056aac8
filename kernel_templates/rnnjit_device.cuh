// Device helpers shared by the kernel templates: cp.async, TF32 tensor-core fragments,
// epilogues. Device code only: NVRTC compiles it with no host headers on its include path.
#pragma once
#if !defined(__CUDACC__)
#error "kernel_templates/ hold device code only; the engine compiles them with NVRTC"
#endif

#include "rnnjit_shared.h"  // the template arguments' values and the facts the engine shares

namespace rnnjit_k {

__host__ __device__ constexpr int min_int(int a, int b) { return a < b ? a : b; }

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// VB bytes (16, 8, 4 or 2) of any storage type as one register-sized value: a float4's, float2's,
// float's or bf16's bits.
template <int VB>
struct VecOf;
template <>
struct VecOf<16> { using T = float4; };
template <>
struct VecOf<8> { using T = float2; };
template <>
struct VecOf<4> { using T = float; };
template <>
struct VecOf<2> { using T = unsigned short; };
template <int VB>
using Vec = typename VecOf<VB>::T;

// Word i of a float4 or float2 (i known at compile time once the loops are unrolled).
__device__ __forceinline__ float word(const float4& v, int i) { return i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w; }
__device__ __forceinline__ float word(const float2& v, int i) { return i == 0 ? v.x : v.y; }

// A tensor element as stored (ST: kStoreF32 or kStoreBf16) and its fp32 value. bf16 is kept as
// raw bits (NVRTC compiles without cuda_bf16.h): widening is a shift, narrowing one cvt.rn.
// unpack widens the elements of a float4 or float2 load, in memory order.
template <int ST>
struct Store;
template <>
struct Store<kStoreF32> {
  using T = float;
  static constexpr int kPer16 = 4;  // elements in 16 bytes
  __device__ static float get(T v) { return v; }
  __device__ static T put(float v) { return v; }
  template <class V>
  __device__ static void unpack(const V& u, float (&f)[sizeof(V) / 4]) {
#pragma unroll
    for (int i = 0; i < int(sizeof(V) / 4); ++i) f[i] = word(u, i);
  }
};
template <>
struct Store<kStoreBf16> {
  using T = unsigned short;
  static constexpr int kPer16 = 8;
  __device__ static float get(T v) { return __uint_as_float(static_cast<unsigned>(v) << 16); }
  __device__ static T put(float v) {
    T r;
    asm("cvt.rn.bf16.f32 %0, %1;\n" : "=h"(r) : "f"(v));
    return r;
  }
  // Each 32-bit word holds two neighbours, the first in the low half.
  template <class V>
  __device__ static void unpack(const V& u, float (&f)[sizeof(V) / 2]) {
#pragma unroll
    for (int i = 0; i < int(sizeof(V) / 4); ++i) {
      const unsigned w = __float_as_uint(word(u, i));
      f[2 * i] = __uint_as_float(w << 16), f[2 * i + 1] = __uint_as_float(w & 0xFFFF0000u);
    }
  }
};

// The widest load that rows of these lengths (in elements; 0 for no row) allow: 16 or 8 bytes
// where every row is a whole number of them, else one element. A power of two divides every
// length in bytes exactly when it divides their bitwise OR.
template <int ST, typename... K>
__host__ __device__ constexpr int vec_bytes(K... k) {
  constexpr int e = sizeof(typename Store<ST>::T);
  const int bytes = (0 | ... | (k * e));
  return bytes % 16 == 0 ? 16 : bytes % 8 == 0 ? 8 : e;
}

// Whether every pointer is BYTES-aligned (a power of two): the OR of the addresses is.
template <int BYTES, typename... P>
__device__ __forceinline__ bool aligned_to(const P*... p) {
  return (0ull | ... | reinterpret_cast<unsigned long long>(p)) % BYTES == 0;
}

// The widest loads, up to MAX (vec_bytes of the rows), that every pointer's alignment allows: 16 or
// 8 bytes, else one element. Pointers are a launch's arguments: every thread picks the same.
template <int ST, int MAX, typename... P>
__device__ __forceinline__ int vec_bytes_at(const P*... p) {
  constexpr int kElem = sizeof(typename Store<ST>::T);
  return MAX >= 16 && aligned_to<16>(p...) ? 16 : MAX >= 8 && aligned_to<8>(p...) ? 8 : kElem;
}

// An asynchronous copy of BYTES (16, 8 or 4) to shared-memory address `dst` of which the first
// `src_bytes` come from `src` and the rest are zeros: how tiles past a matrix edge become harmless
// zeros in the products. With src_bytes == 0 nothing is read (src must still be a valid address).
template <int BYTES>
__device__ __forceinline__ void cp_async_zfill(unsigned dst, const void* src, int src_bytes) {
  if constexpr (BYTES == 16)  // .cg: the data goes to shared memory only, no point keeping it in L1
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
  else
    asm volatile("cp.async.ca.shared.global [%0], [%1], %2, %3;\n" ::"r"(dst), "l"(src), "n"(BYTES), "r"(src_bytes));
}
// 16 bytes, or zeros when `ok` is false.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool ok) {
  cp_async_zfill<16>(smem_addr(dst), src, ok ? 16 : 0);
}
// `bytes` from global to shared memory by the CTA's threads, in cp.async copies of vb bytes (16 or
// 8; both addresses and `bytes` whole units of them).
__device__ __forceinline__ void cp_async_block(void* dst, const void* src, int bytes, int vb) {
  for (int i = threadIdx.x * vb; i < bytes; i += blockDim.x * vb) {
    const unsigned d = smem_addr(static_cast<char*>(dst) + i);
    const char* from = static_cast<const char*>(src) + i;
    if (vb == 16)
      cp_async_zfill<16>(d, from, 16);
    else
      cp_async_zfill<8>(d, from, 8);
  }
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ unsigned to_tf32(float x) {
  unsigned r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(x));
  return r;
}

// R TF32 registers of an mma operand; with kMathFp32 also the residual x - tf32(x) (3xTF32).
template <int R>
struct Tf32Frag {
  unsigned hi[R];
  unsigned lo[R];

  template <int MATH, typename... F>
  __device__ __forceinline__ void set(F... v) {
    const float vals[R] = {v...};
#pragma unroll
    for (int r = 0; r < R; ++r) {
      hi[r] = to_tf32(vals[r]);
      if (MATH == kMathFp32) lo[r] = to_tf32(vals[r] - __uint_as_float(hi[r]));
    }
  }
};

__device__ __forceinline__ void mma_m16n8k8(float (&d)[4], const unsigned (&a)[4], const unsigned (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

template <int MATH>
__device__ __forceinline__ void mma_tf32(float (&d)[4], const Tf32Frag<4>& a, const Tf32Frag<2>& b) {
  if (MATH == kMathFp32) {  // small terms first, so they are not lost against the big one
    mma_m16n8k8(d, a.lo, b.hi);
    mma_m16n8k8(d, a.hi, b.lo);
  }
  mma_m16n8k8(d, a.hi, b.hi);
}

// acc += part, fragment by fragment, in round-to-nearest adds: the mma.sync steps sum each chunk
// of K into zeroed fragments and fold them in here, since the tensor cores' own fp32 accumulation
// truncates and over long K its bias would grow with every chunk.
template <int A, int B>
__device__ __forceinline__ void fold(float (&acc)[A][B][4], const float (&part)[A][B][4]) {
#pragma unroll
  for (int i = 0; i < A; ++i)
#pragma unroll
    for (int j = 0; j < B; ++j)
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[i][j][e] += part[i][j][e];
}

template <int EPI>
__device__ __forceinline__ float epilogue(float v) {
  return EPI == kEpiBiasTanh ? tanhf(v) : v;
}

// Streamed once: keep it out of L1 so A (re-read by every warp) stays there.
// VB bytes (16 or 8) of any storage type, as a float4's or float2's bits.
template <int VB>
__device__ __forceinline__ Vec<VB> load_stream(const void* p) {
  static_assert(VB == 16 || VB == 8, "streamed loads of 16 or 8 bytes");
  Vec<VB> v;
  if constexpr (VB == 16)
    asm volatile("ld.global.nc.L1::no_allocate.v4.f32 {%0,%1,%2,%3}, [%4];\n"
                 : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
                 : "l"(p));
  else
    asm volatile("ld.global.nc.L1::no_allocate.v2.f32 {%0,%1}, [%2];\n" : "=f"(v.x), "=f"(v.y) : "l"(p));
  return v;
}

// VB bytes loaded through L2 (ld.cg) and stored to `dst`.
template <int VB>
__device__ __forceinline__ void ldcg_unit(char* dst, const char* src) {
  *reinterpret_cast<Vec<VB>*>(dst) = __ldcg(reinterpret_cast<const Vec<VB>*>(src));
}
// `bytes` that other CTAs wrote in this launch, from global to shared memory by the CTA's threads
// through L2 (coherent after a grid barrier's acquire, unlike the read-only path), in loads of vb
// bytes (16, 8, 4 or 2; both addresses and `bytes` whole units of them).
__device__ __forceinline__ void ldcg_block(void* dst, const void* src, int bytes, int vb) {
  for (int i = threadIdx.x * vb; i < bytes; i += blockDim.x * vb) {
    char* d = static_cast<char*>(dst) + i;
    const char* from = static_cast<const char*>(src) + i;
    if (vb == 16)
      ldcg_unit<16>(d, from);
    else if (vb == 8)
      ldcg_unit<8>(d, from);
    else if (vb == 4)
      ldcg_unit<4>(d, from);
    else
      ldcg_unit<2>(d, from);
  }
}

// Operand reads (A, and W's scalar path): through the read-only path, for data no thread of the
// launch writes; or PLAIN loads, for shared memory and for global memory other CTAs wrote earlier
// in this launch (visible after a grid barrier's acquire; the read-only path would not see it).
template <int VB, bool PLAIN>
__device__ __forceinline__ Vec<VB> load_a_vec(const void* p) {
  return PLAIN ? *reinterpret_cast<const Vec<VB>*>(p) : __ldg(reinterpret_cast<const Vec<VB>*>(p));
}
template <bool PLAIN, typename T>
__device__ __forceinline__ T load_a1(const T* p) {
  return PLAIN ? *p : __ldg(p);
}
// W reads: streamed from global memory, or from rows a kernel staged in shared memory.
template <int VB, bool SHARED>
__device__ __forceinline__ Vec<VB> load_w_vec(const void* p) {
  return SHARED ? *reinterpret_cast<const Vec<VB>*>(p) : load_stream<VB>(p);
}

// One warp's share of ROWS dot products with each of the M rows of A over K columns:
// acc[r][m] += Σ_k A[m·lda + k]·w[r][k], lanes striding K in loads of vb bytes (vec_bytes_at: 16, 8
// or one element, at most VB, the widest the rows allow: vec_bytes). Each width is a loop of its
// own: VB's here, the narrower ones by recursion; vb is the same for every thread of a launch.
// UNROLL counts 16 bytes a lane and row in flight: 8-byte loads issue twice as many, so the bytes
// in flight, W's registers and the tuner's estimate stay the 16-byte loop's. A lane sums the
// products of one load, then adds them in: a fixed order for a width. The weights are read
// exactly once, from global memory or, with W_SHARED, from shared memory.
template <int ST, int M, int ROWS, int UNROLL, int VB, bool A_PLAIN, bool W_SHARED = false>
__device__ __forceinline__ void warp_dot(float (&acc)[ROWS][M], const typename Store<ST>::T* a, int lda,
                                         const typename Store<ST>::T* const (&w)[ROWS], int K, int vb, int lane) {
  using S = Store<ST>;
  constexpr int E = VB / static_cast<int>(sizeof(typename S::T));  // elements a load
  if constexpr (E > 1) {
    if (vb < VB) {  // the bases allow less: the next narrower loop
      warp_dot<ST, M, ROWS, UNROLL, VB == 16 ? 8 : VB / E, A_PLAIN, W_SHARED>(acc, a, lda, w, K, vb, lane);
      return;
    }
    constexpr int kStep = 32 * E, kLoads = UNROLL * 16 / VB;  // a warp's elements a load; loads a row
    for (int k = lane * E; k < K; k += kStep * kLoads) {
      // The step's weights first (kLoads steps of kStep columns, zeros past K), then the products.
      Vec<VB> wv[kLoads][ROWS];
#pragma unroll
      for (int u = 0; u < kLoads; ++u)
#pragma unroll
        for (int r = 0; r < ROWS; ++r)
          wv[u][r] = k + u * kStep < K ? load_w_vec<VB, W_SHARED>(w[r] + k + u * kStep) : Vec<VB>{};
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        const int kk = k + u * kStep;
        if (kk >= K) break;
        float wf[ROWS][E];
#pragma unroll
        for (int r = 0; r < ROWS; ++r) S::unpack(wv[u][r], wf[r]);
#pragma unroll
        for (int m = 0; m < M; ++m) {
          float af[E];
          S::unpack(load_a_vec<VB, A_PLAIN>(a + static_cast<long long>(m) * lda + kk), af);
#pragma unroll
          for (int r = 0; r < ROWS; ++r) {
            float d = af[0] * wf[r][0];
#pragma unroll
            for (int e = 1; e < E; ++e) d += af[e] * wf[r][e];
            acc[r][m] += d;
          }
        }
      }
    }
  } else {
    for (int k = lane; k < K; k += 32) {
      float wv[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) wv[r] = S::get(load_a1<W_SHARED>(w[r] + k));
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float av = S::get(load_a1<A_PLAIN>(a + static_cast<long long>(m) * lda + k));
#pragma unroll
        for (int r = 0; r < ROWS; ++r) acc[r][m] += av * wv[r];
      }
    }
  }
}

// Butterfly sum across the warp: afterwards every lane holds every total.
template <int M, int ROWS>
__device__ __forceinline__ void warp_reduce(float (&acc)[ROWS][M]) {
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
#pragma unroll
      for (int off = 16; off > 0; off /= 2) acc[r][m] += __shfl_xor_sync(0xffffffffu, acc[r][m], off);
}

// A warp's ROWS rows of W from row n0, rows ldw elements apart, each dotted with the M rows of
// [A1 (K1 columns) | A2 (K2)] read through the read-only path, in loads of vb bytes (warp_dot);
// rows past `last` re-read row `last` (in bounds; the caller does not store them). Every lane
// ends with every sum.
template <int ST, int M, int ROWS, int UNROLL, int VB>
__device__ __forceinline__ void warp_rows(float (&acc)[ROWS][M], const typename Store<ST>::T* a1, int K1,
                                          const typename Store<ST>::T* a2, int K2, const typename Store<ST>::T* w,
                                          int ldw, int n0, int last, int vb, int lane) {
  const typename Store<ST>::T* wrow[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wrow[r] = w + static_cast<long long>(min(n0 + r, last)) * ldw;
  warp_dot<ST, M, ROWS, UNROLL, VB, false>(acc, a1, K1, wrow, K1, vb, lane);
  if (K2 > 0) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) wrow[r] += K1;
    warp_dot<ST, M, ROWS, UNROLL, VB, false>(acc, a2, K2, wrow, K2, vb, lane);
  }
  warp_reduce(acc);
}

// Lane m stores batch row m of the warp's rows [n0, min(n0 + ROWS, end)): c[m·ldc + n] =
// epilogue(acc + bias[n]).
template <int ST, int EPI, int M, int ROWS>
__device__ __forceinline__ void store_rows(const float (&acc)[ROWS][M], const typename Store<ST>::T* bias,
                                           typename Store<ST>::T* c, int ldc, int n0, int end, int lane) {
  using S = Store<ST>;
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m && n0 + r < end)
        c[static_cast<long long>(m) * ldc + n0 + r] = S::put(epilogue<EPI>(acc[r][m] + S::get(bias[n0 + r])));
}

// Sums of N values (a power of two) over a group of 2·O lanes (`kl`, a lane's index in it), by
// shuffles at xor offsets O, O/2, ..., 1: at each offset the lane whose O bit is set keeps the upper
// half of the values it holds, its partner the lower half, each adding the other's copy; with one
// value left the rest are a butterfly. Returns the index of the sum v[0] then holds (of the first
// of those it holds, where N > 2·O). N − 1 + log2(2·O/N) shuffles where N ≤ 2·O, against
// N·log2(2·O) for a butterfly of every value; each sum is added in a fixed order.
template <int N, int O, int P>
__device__ __forceinline__ int halving_sum(float (&v)[P], int kl) {
  if constexpr (O >= 1) {
    if constexpr (N >= 2) {
      const bool upper = (kl & O) != 0;
#pragma unroll
      for (int i = 0; i < N / 2; ++i) {
        const float give = upper ? v[i] : v[i + N / 2], keep = upper ? v[i + N / 2] : v[i];
        v[i] = keep + __shfl_xor_sync(0xffffffffu, give, O);
      }
      return (upper ? N / 2 : 0) + halving_sum<N / 2, O / 2>(v, kl);
    } else {
      v[0] += __shfl_xor_sync(0xffffffffu, v[0], O);
      return halving_sum<1, O / 2>(v, kl);
    }
  }
  return 0;
}

// The K-split products of the one-launch steps (fused_grid.cu, fused_cluster.cu). A CTA's WARPS
// warps split K into slices of KC columns (whole float4s); within a warp kLK lanes walk the slice
// (a power of two, as many as it has float4s up to 32) and 32/kLK lane groups share the R rows
// (rows rl, rl + kLR, ...), so that a short slice keeps every lane loading. Every load of a phase
// is issued before the first is used: these sizes are latency-bound.
template <int M, int R, int KC, int WARPS>
struct KSplit {
  static constexpr int kF = KC / 4;  // float4 columns a warp
  static constexpr int kLK = ksplit_lanes(kF);
  static constexpr int kLR = 32 / kLK;
  static constexpr int kRL = (R + kLR - 1) / kLR;  // rows a lane
  static constexpr int kU = (kF + kLK - 1) / kLK;  // float4s a lane and row
  static constexpr int kSums = (R * M + WARPS * 32 - 1) / (WARPS * 32);  // sums a thread finishes
  static constexpr int kV = kRL * M;  // sums a lane holds
  static constexpr int kP = pow2_at_least(kV);
  static_assert(KC % 4 == 0, "whole float4 columns");
  static_assert(kV <= 128, "at most 128 sums a lane");

  float4 a[M][kU], w[kRL][kU];

  __device__ static int kl() { return static_cast<int>(threadIdx.x % 32) % kLK; }
  __device__ static int rl() { return static_cast<int>(threadIdx.x % 32) / kLK; }
  // Row q of this lane's rows, clamped into the tile (the clamped copies are not stored).
  __device__ static int row(int q) { return min_int(rl() + kLR * q, R - 1); }

  // Columns [c, c+4) of a K-major row, zeros from column `lim` on; `at(k)` is column k's address.
  // With VEC, c and lim are multiples of 4 and rows 16-byte aligned. L2_ONLY: data other CTAs
  // wrote in this launch (the read-only path would not see it).
  template <bool VEC, bool L2_ONLY, typename At>
  __device__ static float4 load4(At at, int c, int lim) {
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
  // A's rows m over this warp's slice [c0, lim): `at(m, k)` is the address of A[m][k].
  template <bool VEC, bool L2_ONLY, typename At>
  __device__ void load_a(At at, int c0, int lim) {
#pragma unroll
    for (int j = 0; j < kU; ++j)
#pragma unroll
      for (int m = 0; m < M; ++m)
        a[m][j] = load4<VEC, L2_ONLY>([&](int k) { return at(m, k); }, c0 + 4 * (kl() + kLK * j), lim);
  }
  // This lane's rows of W over the slice: `at(r, k)` is the address of row r (< R) of the tile.
  template <bool VEC, typename At>
  __device__ void load_w(At at, int c0, int lim) {
#pragma unroll
    for (int j = 0; j < kU; ++j)
#pragma unroll
      for (int q = 0; q < kRL; ++q)
        w[q][j] = load4<VEC, false>([&](int k) { return at(row(q), k); }, c0 + 4 * (kl() + kLK * j), lim);
  }

  // The tile's R×M sums, added over the lanes of a row group and then over the warps in a fixed
  // order through `part` (WARPS·R·M floats); `out(s, r, m, sum)` for the kSums sums s this thread
  // finishes (load_bias gives their biases in that order). Across lanes the sums are halved at each
  // shuffle step (a lane keeps half of its values and adds its partner's copy of them), so a lane
  // shuffles ~kV values, not kV·log2(kLK) as a butterfly would.
  template <typename Out>
  __device__ void reduce(float* part, Out out) const {
    float v[kP] = {};  // v[q·M + m]: this lane's rows and batch rows, zero-padded to kP
#pragma unroll
    for (int j = 0; j < kU; ++j)
#pragma unroll
      for (int q = 0; q < kRL; ++q)
#pragma unroll
        for (int m = 0; m < M; ++m)
          v[q * M + m] += a[m][j].x * w[q][j].x + a[m][j].y * w[q][j].y + a[m][j].z * w[q][j].z + a[m][j].w * w[q][j].w;
    const int first = halving_sum<kP, kLK / 2>(v, kl());  // the index of v[0] once halved
    const int warp = static_cast<int>(threadIdx.x / 32);
    // Lanes that differ only in the bits past the halving hold the same sums: one writes them.
    constexpr int kKept = kP >= kLK ? kP / kLK : 1, kCopies = kP >= kLK ? 1 : kLK / kP;
    if (kl() % kCopies == 0)
#pragma unroll
      for (int e = 0; e < kKept; ++e) {
        const int idx = first + e, r = rl() + kLR * (idx / M);
        if (idx < kV && r < R) part[(warp * R + r) * M + idx % M] = v[e];
      }
    __syncthreads();
#pragma unroll
    for (int s = 0; s < kSums; ++s) {
      const int i = static_cast<int>(threadIdx.x) + s * WARPS * 32;
      if (i >= R * M) break;
      float sum = 0.f;
#pragma unroll
      for (int w = 0; w < WARPS; ++w) sum += part[w * R * M + i];
      out(s, i / M, i % M, sum);
    }
  }

  // The bias of each sum this thread finishes (zero past `rows`), loaded with the phase's other
  // loads: after the reduction it would cost a round trip of its own.
  __device__ static void load_bias(float (&b)[kSums], const float* bias, int row0, int rows) {
#pragma unroll
    for (int s = 0; s < kSums; ++s) {
      const int i = static_cast<int>(threadIdx.x) + s * WARPS * 32, n = row0 + i / M;
      b[s] = i < R * M && n < rows ? __ldg(bias + n) : 0.f;
    }
  }
};

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Every CTA's writes before it are visible to every CTA after it. Thread 0 arrives with release
// (cumulative: the first __syncthreads orders the CTA's writes before it) and acquire. CTA 0 adds
// kEpoch - (grid - 1), the others 1, so the count crosses into the next epoch exactly at the last
// arrival, with one atomic each; everyone waits for that crossing, acquiring. Waiting for the
// epoch to change, not for a count: a CTA that passed could finish a step and arrive again, and
// no count of this epoch can be mistaken for the next one's. The second __syncthreads orders the
// CTA's reads after thread 0's acquire.
__device__ __forceinline__ void grid_barrier(unsigned* counter) {
  __syncthreads();
  if (threadIdx.x == 0) {
    const unsigned add = blockIdx.x == 0 ? kEpoch - (gridDim.x - 1) : 1u;
    unsigned old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], %2;\n" : "=r"(old) : "l"(counter), "r"(add) : "memory");
    const unsigned epoch = old & ~(kEpoch - 1);
    if (((old + add) & ~(kEpoch - 1)) == epoch) {
      while ((ld_acquire(counter) & ~(kEpoch - 1)) == epoch) {
      }
    }
  }
  __syncthreads();
}

#if __CUDA_ARCH__ >= 900
// The shared::cluster address of `local`'s offset in the shared memory of cluster CTA `rank`
// (what ld.shared::cluster reads; sm_90).
__device__ __forceinline__ unsigned cluster_addr(const void* local, unsigned rank) {
  unsigned remote;
  asm("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(smem_addr(local)), "r"(rank));
  return remote;
}

// Arrive with release, wait with acquire: shared-memory writes before it are visible to
// every CTA of the cluster after it (thread-block clusters: sm_90).
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}

// mbarriers in shared memory (sm_90 for the transaction counts: TMA and st.async complete bytes on them).
__device__ __forceinline__ void mbar_init(unsigned long long* bar, unsigned count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count));
}
__device__ __forceinline__ void mbar_expect_tx(unsigned long long* bar, unsigned bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes)
               : "memory");
}
__device__ __forceinline__ void mbar_arrive(unsigned long long* bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Arrives on the mbarrier at `bar`'s offset in the shared memory of cluster CTA `rank`, releasing at
// CTA scope (the default, as CUTLASS's cluster barrier arrives): a caller freeing a slot that its
// wgmma read has retired those reads (wgmma.wait_group) before it arrives. A .release.cluster
// arrive each stage doubled i2h's time (docs/kernels.md, wgmma).
__device__ __forceinline__ void mbar_arrive_cluster(unsigned long long* bar, unsigned rank) {
  asm volatile("mbarrier.arrive.shared::cluster.b64 _, [%0];\n" ::"r"(cluster_addr(bar, rank)) : "memory");
}
// Counts one arrival on `bar` once every cp.async this thread issued before it has landed
// (.noinc: the arrival is one of the barrier's expected count).
__device__ __forceinline__ void cp_async_arrive_noinc(unsigned long long* bar) {
  asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Orders this thread's view of shared memory, as cp.async or st.shared wrote it (the generic
// proxy), before its later async-proxy reads of it (wgmma's operands, TMA stores).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
// Waits until the phase of parity `parity` has completed (a fresh barrier counts parity 1 as done).
__device__ __forceinline__ void mbar_wait(unsigned long long* bar, unsigned parity) {
  unsigned done = 0;
  while (!done)
    asm volatile(
        "{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(smem_addr(bar)), "r"(parity)
        : "memory");
}

// A store into the shared memory of a cluster CTA (`remote`, a cluster_addr) that counts its bytes on
// that CTA's mbarrier (`remote_bar`, likewise): the receiver waits for its buffer to fill, not for a
// cluster barrier.
__device__ __forceinline__ void st_async(unsigned remote, float v, unsigned remote_bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.f32 [%0], %1, [%2];\n" ::"r"(remote), "f"(v),
               "r"(remote_bar)
               : "memory");
}
__device__ __forceinline__ void st_async(unsigned remote, float4 v, unsigned remote_bar) {
  asm volatile("st.async.shared::cluster.mbarrier::complete_tx::bytes.v4.f32 [%0], {%1, %2, %3, %4}, [%5];\n" ::"r"(remote),
               "f"(v.x), "f"(v.y), "f"(v.z), "f"(v.w), "r"(remote_bar)
               : "memory");
}

// Programmatic dependent launch (sm_90). The next kernel of the stream, when launched for it, may
// start now (it waits for this grid before it reads anything) ...
__device__ __forceinline__ void launch_dependents() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }
// ... and this one waits here until the grid before it has finished and its writes are visible
// (at once when it was launched without the attribute).
__device__ __forceinline__ void wait_for_prior_grid() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
#endif

// Rows of [A1 | A2] (ROWS rows; A1's rows K1 elements apart, A2's K2) copied into rows of KP
// elements, zeros past K1 + K2: a stage's operands in the packed layout TMA can read
// (engine/src/problem.hpp, packed()). W is packed as A1 alone. One thread 16 bytes of the output,
// so a warp writes 512 contiguous bytes; its reads take any alignment of the element and meet in L1.
template <int ST, int ROWS, int K1, int K2, int KP>
__global__ void __launch_bounds__(256)
    pack_rows(const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
              float4* __restrict__ out) {
  using T = typename Store<ST>::T;
  constexpr int E = Store<ST>::kPer16;
  static_assert(KP % E == 0 && KP >= K1 + K2 && KP < K1 + K2 + E, "KP: K1 + K2 rounded up to whole 16 bytes");
  const long long g = blockIdx.x * 256ll + threadIdx.x;
  if (g >= static_cast<long long>(ROWS) * (KP / E)) return;
  const long long r = g / (KP / E);
  const int k0 = static_cast<int>(g % (KP / E)) * E;
  union {
    T v[E];
    float4 chunk;
  } u;
#pragma unroll
  for (int e = 0; e < E; ++e) {
    const int k = k0 + e;
    u.v[e] = k < K1 ? __ldg(a1 + r * K1 + k) : k < K1 + K2 ? __ldg(a2 + r * K2 + (k - K1)) : T(0);
  }
  out[g] = u.chunk;
}

}  // namespace rnnjit_k
