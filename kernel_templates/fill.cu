// Uniform random fill for the tuner's scratch inputs (timing on zeros flatters kernels). One
// grid-stride loop; a counter hash per element, so any grid gives the same data. Prebuilt with the
// library: background tuning fills its scratch while NVRTC compiles only the candidates.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// ST: the storage type of the buffer (values rounded once for bf16).
template <int ST>
__device__ __forceinline__ void fill_uniform(typename Store<ST>::T* __restrict__ p, unsigned long long n, unsigned seed, float scale) {
  for (unsigned long long i = blockIdx.x * (unsigned long long)blockDim.x + threadIdx.x; i < n;
       i += (unsigned long long)gridDim.x * blockDim.x) {
    unsigned x = static_cast<unsigned>(i) * 0x9e3779b1u ^ static_cast<unsigned>(i >> 32) * 0x85ebca6bu ^ seed;
    x ^= x >> 16;
    x *= 0x7feb352du;
    x ^= x >> 15;
    x *= 0x846ca68bu;
    x ^= x >> 16;
    p[i] = Store<ST>::put((static_cast<float>(x >> 8) * (2.0f / 16777216.0f) - 1.0f) * scale);
  }
}

}  // namespace rnnjit_k

// One entry point a storage type, unmangled: the prebuilt binary is looked up by these names.
extern "C" __global__ void rnnjit_fill_uniform_f32(float* __restrict__ p, unsigned long long n, unsigned seed,
                                                   float scale) {
  rnnjit_k::fill_uniform<rnnjit_k::kStoreF32>(p, n, seed, scale);
}

extern "C" __global__ void rnnjit_fill_uniform_bf16(unsigned short* __restrict__ p, unsigned long long n, unsigned seed,
                                                    float scale) {
  rnnjit_k::fill_uniform<rnnjit_k::kStoreBf16>(p, n, seed, scale);
}
