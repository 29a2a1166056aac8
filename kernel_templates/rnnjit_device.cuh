// Device helpers shared by the kernel templates: cp.async, TF32 tensor-core fragments,
// epilogues. Device code only: NVRTC compiles it with no host headers on its include path.
#pragma once
#if !defined(__CUDACC__)
#error "kernel_templates/ hold device code only; the engine compiles them with NVRTC"
#endif

namespace rnnjit_k {

// Template-argument values shared with the engine's Config (engine/src/config.hpp).
constexpr int kMathTf32 = 0;    // one TF32 product: ~1e-4 relative error
constexpr int kMathFp32 = 1;  // fp32-accurate: split products on tensor cores (each family says how) or FFMA
constexpr int kEpiBias = 0;
constexpr int kEpiBiasTanh = 1;
// fused_cluster stages x and h in shared memory up to this many floats (engine/src/config.cpp).
constexpr int kFusedStageFloats = 24576;
// grid_stream stages h' in shared memory up to this many floats (engine/src/config.cpp).
constexpr int kStreamStageFloats = 16384;

__host__ __device__ constexpr int min_int(int a, int b) { return a < b ? a : b; }

__device__ __forceinline__ unsigned smem_addr(const void* p) {
  return static_cast<unsigned>(__cvta_generic_to_shared(p));
}

// Async global->shared copies; `ok == false` writes zeros and reads nothing, which is how
// tiles past the matrix edge become harmless zeros in the products.
__device__ __forceinline__ void cp_async_16(void* dst, const void* src, bool ok) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(ok ? 16 : 0));
}
__device__ __forceinline__ void cp_async_4(void* dst, const void* src, bool ok) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
               "r"(ok ? 4 : 0));
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

template <int EPI>
__device__ __forceinline__ float epilogue(float v) {
  return EPI == kEpiBiasTanh ? tanhf(v) : v;
}

// Streamed once: keep it out of L1 so A (re-read by every warp) stays there.
__device__ __forceinline__ float4 load_stream(const float* p) {
  float4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.f32 {%0,%1,%2,%3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "l"(p));
  return v;
}

// Operand reads (A, and W's scalar path): through the read-only path, for data no thread of the
// launch writes; or PLAIN loads, for shared memory and for global memory other CTAs wrote earlier
// in this launch (visible after a grid barrier's acquire; the read-only path would not see it).
template <bool PLAIN>
__device__ __forceinline__ float4 load_a4(const float* p) {
  return PLAIN ? *reinterpret_cast<const float4*>(p) : __ldg(reinterpret_cast<const float4*>(p));
}
template <bool PLAIN>
__device__ __forceinline__ float load_a1(const float* p) {
  return PLAIN ? *p : __ldg(p);
}
// W reads: streamed from global memory, or from rows a kernel staged in shared memory.
template <bool SHARED>
__device__ __forceinline__ float4 load_w4(const float* p) {
  return SHARED ? *reinterpret_cast<const float4*>(p) : load_stream(p);
}

// The weights of one 16-byte step of a warp_dot: UNROLL steps of 128 columns from k0,
// ROWS rows, zeros past K. Split from the products so that a kernel can issue the loads of
// data that does not depend on earlier work before waiting for that work.
template <int ROWS, int UNROLL, bool W_SHARED = false>
__device__ __forceinline__ void load_w(float4 (&wv)[UNROLL][ROWS], const float* const (&w)[ROWS], int k0, int K) {
#pragma unroll
  for (int u = 0; u < UNROLL; ++u)
#pragma unroll
    for (int r = 0; r < ROWS; ++r)
      wv[u][r] = k0 + u * 128 < K ? load_w4<W_SHARED>(w[r] + k0 + u * 128) : make_float4(0.f, 0.f, 0.f, 0.f);
}

// acc[r][m] += the products of the weights load_w fetched with row m of A.
template <int M, int ROWS, int UNROLL, bool A_PLAIN>
__device__ __forceinline__ void fma_w(float (&acc)[ROWS][M], const float4 (&wv)[UNROLL][ROWS], const float* a,
                                      int lda, int k0, int K) {
#pragma unroll
  for (int u = 0; u < UNROLL; ++u) {
    const int kk = k0 + u * 128;
    if (kk >= K) break;
#pragma unroll
    for (int m = 0; m < M; ++m) {
      const float4 av = load_a4<A_PLAIN>(a + static_cast<long long>(m) * lda + kk);
#pragma unroll
      for (int r = 0; r < ROWS; ++r)
        acc[r][m] += av.x * wv[u][r].x + av.y * wv[u][r].y + av.z * wv[u][r].z + av.w * wv[u][r].w;
    }
  }
}

// One warp's share of ROWS dot products with each of the M rows of A over K columns:
// acc[r][m] += Σ_k A[m·lda + k]·w[r][k], lanes striding K (16-byte loads when `vec`,
// UNROLL of them in flight per row). The weights are read exactly once, from global memory or,
// with W_SHARED, from shared memory.
template <int M, int ROWS, int UNROLL, bool A_PLAIN, bool W_SHARED = false>
__device__ __forceinline__ void warp_dot(float (&acc)[ROWS][M], const float* a, int lda,
                                         const float* const (&w)[ROWS], int K, bool vec, int lane) {
  if (vec) {
    for (int k = lane * 4; k < K; k += 32 * 4 * UNROLL) {
      float4 wv[UNROLL][ROWS];
      load_w<ROWS, UNROLL, W_SHARED>(wv, w, k, K);
      fma_w<M, ROWS, UNROLL, A_PLAIN>(acc, wv, a, lda, k, K);
    }
  } else {
    for (int k = lane; k < K; k += 32) {
      float wv[ROWS];
#pragma unroll
      for (int r = 0; r < ROWS; ++r) wv[r] = load_a1<W_SHARED>(w[r] + k);
#pragma unroll
      for (int m = 0; m < M; ++m) {
        const float av = load_a1<A_PLAIN>(a + static_cast<long long>(m) * lda + k);
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

__device__ __forceinline__ bool aligned16(const void* p) {
  return reinterpret_cast<unsigned long long>(p) % 16 == 0;
}

// A warp's ROWS rows of W from row n0, rows ldw floats apart, each dotted with the M rows of
// [A1 (K1 columns) | A2 (K2)] read through the read-only path; rows past `last` re-read row `last`
// (in bounds; the caller does not store them). Every lane ends with every sum.
template <int M, int ROWS, int UNROLL>
__device__ __forceinline__ void warp_rows(float (&acc)[ROWS][M], const float* a1, int K1, const float* a2, int K2,
                                          const float* w, int ldw, int n0, int last, bool vec, int lane) {
  const float* wrow[ROWS];
#pragma unroll
  for (int r = 0; r < ROWS; ++r) wrow[r] = w + static_cast<long long>(min(n0 + r, last)) * ldw;
  warp_dot<M, ROWS, UNROLL, false>(acc, a1, K1, wrow, K1, vec, lane);
  if (K2 > 0) {
#pragma unroll
    for (int r = 0; r < ROWS; ++r) wrow[r] += K1;
    warp_dot<M, ROWS, UNROLL, false>(acc, a2, K2, wrow, K2, vec, lane);
  }
  warp_reduce(acc);
}

// Lane m stores batch row m of the warp's rows [n0, min(n0 + ROWS, end)): c[m·ldc + n] =
// epilogue(acc + bias[n]).
template <int EPI, int M, int ROWS>
__device__ __forceinline__ void store_rows(const float (&acc)[ROWS][M], const float* bias, float* c, int ldc, int n0,
                                           int end, int lane) {
#pragma unroll
  for (int r = 0; r < ROWS; ++r)
#pragma unroll
    for (int m = 0; m < M; ++m)
      if (lane == m && n0 + r < end)
        c[static_cast<long long>(m) * ldc + n0 + r] = epilogue<EPI>(acc[r][m] + bias[n0 + r]);
}

// The launch counters of the one-launch steps (fused_grid.cu, grid_stream.cu). A launch counts its
// CTAs' arrivals up from a multiple of kEpoch and its last arrival rounds the count up to the next
// one: no launch resets a counter, and the next launch handed it starts from a clean epoch.
constexpr unsigned kEpoch = 1u << 20;

__device__ __forceinline__ unsigned ld_acquire(const unsigned* p) {
  unsigned v;
  asm volatile("ld.acquire.gpu.global.u32 %0, [%1];\n" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// Every CTA's writes before it are visible to every CTA after it. Thread 0 arrives with release
// (cumulative: the first __syncthreads orders the CTA's writes before it) and acquire; the last to
// arrive rounds the count up to the next epoch, the others wait until it is past their epoch's
// grid, acquiring; the second __syncthreads orders the CTA's reads after thread 0's acquire.
__device__ __forceinline__ void grid_barrier(unsigned* counter) {
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned old;
    asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;\n" : "=r"(old) : "l"(counter) : "memory");
    const unsigned epoch = old & ~(kEpoch - 1);
    if (old - epoch == gridDim.x - 1) {
      atomicAdd(counter, kEpoch - gridDim.x);
    } else {
      while (ld_acquire(counter) - epoch < gridDim.x) {
      }
    }
  }
  __syncthreads();
}

#if __CUDA_ARCH__ >= 900
// Arrive with release, wait with acquire: shared-memory writes before it are visible to
// every CTA of the cluster after it (thread-block clusters: sm_90).
__device__ __forceinline__ void cluster_sync() {
  asm volatile("barrier.cluster.arrive.release.aligned;\nbarrier.cluster.wait.acquire.aligned;\n" ::: "memory");
}
#endif

}  // namespace rnnjit_k
