// Device helpers shared by the kernel templates: cp.async, TF32 tensor-core fragments,
// epilogues. Device code only: NVRTC compiles it with no host headers on its include path.
#pragma once
#if !defined(__CUDACC__)
#error "kernel_templates/ hold device code only; the engine compiles them with NVRTC"
#endif

namespace rnnjit_k {

// Template-argument values shared with the engine's Config (engine/src/config.hpp).
constexpr int kMathTf32 = 0;    // one TF32 product: ~1e-4 relative error
constexpr int kMath3xTf32 = 1;  // hi·hi + hi·lo + lo·hi split products: fp32-accurate
constexpr int kEpiBias = 0;
constexpr int kEpiBiasTanh = 1;

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

// R TF32 registers of an mma operand; with kMath3xTf32 also the residual x - tf32(x).
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
      if (MATH == kMath3xTf32) lo[r] = to_tf32(vals[r] - __uint_as_float(hi[r]));
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
  if (MATH == kMath3xTf32) {  // small terms first, so they are not lost against the big one
    mma_m16n8k8(d, a.lo, b.hi);
    mma_m16n8k8(d, a.hi, b.lo);
  }
  mma_m16n8k8(d, a.hi, b.hi);
}

template <int EPI>
__device__ __forceinline__ float epilogue(float v) {
  return EPI == kEpiBiasTanh ? tanhf(v) : v;
}

}  // namespace rnnjit_k
