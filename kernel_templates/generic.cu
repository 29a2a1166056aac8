// C[m, n] = epilogue(A·Wᵀ + bias), A = [a1 (k1 columns) | a2 (k2)], W's rows ldw floats apart,
// with every size an argument: one binary for every problem, built by nvcc with the library, so
// that a first call runs without waiting for NVRTC (background tuning's start, docs/kernels.md).
// Tiling: m ≤ kGenericRowsMaxM: a warp a column of C, its lanes splitting K, every row of A at once;
//         larger m: a CTA a 64×64 tile of C, K in slices of 16 through shared memory, 4×4 a thread.
//
// fp32 FFMA and scalar loads: both precisions, either storage type (one entry point each), any
// pointers aligned to their element, any GPU from sm_80.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

__device__ __forceinline__ float generic_epilogue(float v, int epi) {
  return epi == kEpiBiasTanh ? epilogue<kEpiBiasTanh>(v) : epilogue<kEpiBias>(v);
}

// Column k of row r of [a1 | a2], widened to fp32.
template <int ST>
__device__ __forceinline__ float generic_a(const typename Store<ST>::T* a1, const typename Store<ST>::T* a2, int k1,
                                           int k2, int r, int k) {
  return Store<ST>::get(k < k1 ? a1[static_cast<long long>(r) * k1 + k] : a2[static_cast<long long>(r) * k2 + (k - k1)]);
}

template <int ST>
__device__ __forceinline__ void generic_stage(const typename Store<ST>::T* __restrict__ a1,
                                              const typename Store<ST>::T* __restrict__ a2,
                                              const typename Store<ST>::T* __restrict__ w,
                                              const typename Store<ST>::T* __restrict__ bias,
                                              typename Store<ST>::T* __restrict__ c, int m, int n, int k1, int k2,
                                              int ldw, int epi) {
  using S = Store<ST>;
  constexpr int kRows = kGenericRowsMaxM, kTile = kGenericTile, kSlice = 16;
  const int tid = threadIdx.x;
  if (m <= kRows) {
    const int lane = tid % 32, col = blockIdx.x * (kGenericThreads / 32) + tid / 32;
    if (col >= n) return;  // whole warps: no barrier below
    const typename S::T* wr = w + static_cast<long long>(col) * ldw;
    float acc[kRows] = {};
    // Each lane sums a 32nd of K, then the warp adds the lanes' sums: short chains, fp32-accurate.
    for (int k = lane; k < k1; k += 32) {
      const float wv = S::get(__ldg(wr + k));
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (r < m) acc[r] = fmaf(wv, S::get(__ldg(a1 + static_cast<long long>(r) * k1 + k)), acc[r]);
    }
    for (int k = lane; k < k2; k += 32) {
      const float wv = S::get(__ldg(wr + k1 + k));
#pragma unroll
      for (int r = 0; r < kRows; ++r)
        if (r < m) acc[r] = fmaf(wv, S::get(__ldg(a2 + static_cast<long long>(r) * k2 + k)), acc[r]);
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
#pragma unroll
      for (int d = 16; d > 0; d /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], d);
      if (lane == r && r < m)
        c[static_cast<long long>(r) * n + col] = S::put(generic_epilogue(acc[r] + S::get(bias[col]), epi));
    }
    return;
  }
  // K-major slices, padded against bank conflicts on the stores.
  __shared__ float as[kSlice][kTile + 4], ws[kSlice][kTile + 4];
  const int tx = tid % 16, ty = tid / 16;
  const int row0 = blockIdx.y * kTile, col0 = blockIdx.x * kTile, k = k1 + k2;
  float acc[4][4] = {};
  for (int k0 = 0; k0 < k; k0 += kSlice) {
    for (int e = tid; e < kTile * kSlice; e += kGenericThreads) {
      const int r = e / kSlice, kk = e % kSlice, gk = k0 + kk;
      as[kk][r] = row0 + r < m && gk < k ? generic_a<ST>(a1, a2, k1, k2, row0 + r, gk) : 0.f;
      ws[kk][r] = col0 + r < n && gk < k ? S::get(w[static_cast<long long>(col0 + r) * ldw + gk]) : 0.f;
    }
    __syncthreads();
    // A slice's sums apart from the running ones: the chains stay short over long K.
    float part[4][4] = {};
#pragma unroll
    for (int kk = 0; kk < kSlice; ++kk) {
      float av[4], wv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) av[i] = as[kk][ty + 16 * i], wv[i] = ws[kk][tx + 16 * i];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) part[i][j] = fmaf(av[i], wv[j], part[i][j]);
    }
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
      for (int j = 0; j < 4; ++j) acc[i][j] += part[i][j];
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < 4; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int row = row0 + ty + 16 * i, col = col0 + tx + 16 * j;
      if (row < m && col < n)
        c[static_cast<long long>(row) * n + col] = S::put(generic_epilogue(acc[i][j] + S::get(bias[col]), epi));
    }
}

}  // namespace rnnjit_k

// One entry point a storage type, unmangled: the prebuilt binary is looked up by these names.
extern "C" __global__ void __launch_bounds__(rnnjit_k::kGenericThreads)
    rnnjit_generic_stage(const float* __restrict__ a1, const float* __restrict__ a2, const float* __restrict__ w,
                         const float* __restrict__ bias, float* __restrict__ c, int m, int n, int k1, int k2, int ldw,
                         int epi) {
  rnnjit_k::generic_stage<rnnjit_k::kStoreF32>(a1, a2, w, bias, c, m, n, k1, k2, ldw, epi);
}

extern "C" __global__ void __launch_bounds__(rnnjit_k::kGenericThreads)
    rnnjit_generic_stage_bf16(const unsigned short* __restrict__ a1, const unsigned short* __restrict__ a2,
                              const unsigned short* __restrict__ w, const unsigned short* __restrict__ bias,
                              unsigned short* __restrict__ c, int m, int n, int k1, int k2, int ldw, int epi) {
  rnnjit_k::generic_stage<rnnjit_k::kStoreBf16>(a1, a2, w, bias, c, m, n, k1, k2, ldw, epi);
}
