// Uniform random fill for the prewarm tuner's scratch inputs (timing on zeros flatters
// kernels). One grid-stride loop; a counter hash per element, so any grid gives the same data.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// ST: the storage type of the buffer (values rounded once for bf16).
template <int ST>
__global__ void fill_uniform(typename Store<ST>::T* __restrict__ p, unsigned long long n, unsigned seed, float scale) {
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
