// C[M,N] = epilogue(A·Wᵀ + bias) for a short K (K1 + K2 ≤ kOuterMaxK): a sum of K outer products.
// Tiling: a CTA of kOuterThreads owns a BM×BN tile of C and copies its rows of A and W, all of K, into
// shared memory k-major; fp32: each thread sums a (BM/16)×(BN/16) block by FFMA; tf32 (and bf16
// storage): 2×4 warps each take a (BM/2)×(BN/4) block in m16n8k8 tf32 mma.sync.
//
// At such K the stage is bound by writing C, not by reading A or W: small CTAs, several a SM,
// overlap one's stores with another's copies and products, where a pipelined GEMM tile (one CTA a
// SM) runs those phases one after the other. fp32 sums at most 64 terms by FFMA (fp32-accurate);
// tf32 rounds A and W to tf32 (cvt.rna) as they are copied, which leaves bf16 values exact. Either
// storage type, any GPU from sm_80, any alignment of its element.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// ROWS rows of K elements, load(r, k) each, into shared memory k-major (row k at dst + k·LD), tf32
// rounded unless MATH is fp32. A thread issues up to 16 loads before its first shared store, so
// that a CTA waits for L2 once or twice, not once an element (and 16 registers bound the batch).
template <int ROWS, int K, int LD, int MATH, class Load>
__device__ __forceinline__ void outer_fill(float* dst, Load load) {
  constexpr int kLoads = (ROWS * K + kOuterThreads - 1) / kOuterThreads, kBatch = 16;
#pragma unroll
  for (int j0 = 0; j0 < kLoads; j0 += kBatch) {
    float v[kBatch];
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (j0 + j) * kOuterThreads;
      v[j] = j0 + j < kLoads && i < ROWS * K ? load(i / K, i % K) : 0.f;
    }
#pragma unroll
    for (int j = 0; j < kBatch; ++j) {
      const int i = static_cast<int>(threadIdx.x) + (j0 + j) * kOuterThreads;
      if (j0 + j < kLoads && i < ROWS * K) dst[i % K * LD + i / K] = MATH == kMathFp32 ? v[j] : __uint_as_float(to_tf32(v[j]));
    }
  }
}

template <int ST, int M, int N, int K1, int K2, int LDW, int BM, int BN, int MATH, int EPI>
__global__ void __launch_bounds__(kOuterThreads)
    outer(const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
          const typename Store<ST>::T* __restrict__ w, const typename Store<ST>::T* __restrict__ bias,
          typename Store<ST>::T* __restrict__ c) {
  using S = Store<ST>;
  constexpr int K = K1 + K2, KP = outer_k(K, MATH);
  static_assert(K >= 1 && K <= kOuterMaxK, "outer keeps all of K in shared memory");
  static_assert(kOuterThreads == 256 && BM % 64 == 0 && BN % 64 == 0, "16×16 threads (8 warps), 64-row blocks");
  constexpr int kLa = BM + outer_pad(MATH), kLw = BN + outer_pad(MATH);
  extern __shared__ float4 smem4[];
  float* const as = reinterpret_cast<float*>(smem4);
  float* const ws = as + KP * kLa;

  constexpr int kMTiles = (M + BM - 1) / BM;  // M tiles side by side share a W tile in L2
  const int m0 = static_cast<int>(blockIdx.x % kMTiles) * BM, n0 = static_cast<int>(blockIdx.x / kMTiles) * BN;
  const int tid = threadIdx.x;
  // The tile's rows lie contiguously in A1, A2 and W (consecutive threads read consecutive
  // elements). Rows past M or N, and k past K, are zeros.
  outer_fill<BM, K, kLa, MATH>(as, [&](int r, int k) {
    const int m = m0 + r;
    return m >= M ? 0.f : S::get(k < K1 ? a1[static_cast<long long>(m) * K1 + k] : a2[static_cast<long long>(m) * K2 + (k - K1)]);
  });
  outer_fill<BN, K, kLw, MATH>(ws, [&](int r, int k) {
    const int n = n0 + r;
    return n >= N ? 0.f : S::get(w[static_cast<long long>(n) * LDW + k]);
  });
  for (int i = tid; i < (KP - K) * kLa; i += kOuterThreads) as[K * kLa + i] = 0.f;
  for (int i = tid; i < (KP - K) * kLw; i += kOuterThreads) ws[K * kLw + i] = 0.f;
  __syncthreads();

  // An output from its sum and its column's bias: the epilogue, rounded once.
  auto out = [](float sum, float b) { return S::put(epilogue<EPI>(sum + b)); };
  auto bias_at = [&](int n) { return n < N ? S::get(bias[n]) : 0.f; };
  if constexpr (MATH == kMathFp32) {
    // Thread (tx, ty) owns rows g·64 + 4·ty + [0, 4) and columns g·64 + 4·tx + [0, 4): a warp reads
    // two float4s of A (a broadcast) and 16 contiguous ones of W a k step and block.
    constexpr int TM = BM / 16, TN = BN / 16;
    const int tx = tid % 16, ty = tid / 16;
    float acc[TM][TN] = {};
#pragma unroll 4
    for (int k = 0; k < K; ++k) {
      float a[TM], b[TN];
#pragma unroll
      for (int g = 0; g < TM / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(as + k * kLa + g * 64 + 4 * ty);
        a[4 * g] = v.x, a[4 * g + 1] = v.y, a[4 * g + 2] = v.z, a[4 * g + 3] = v.w;
      }
#pragma unroll
      for (int g = 0; g < TN / 4; ++g) {
        const float4 v = *reinterpret_cast<const float4*>(ws + k * kLw + g * 64 + 4 * tx);
        b[4 * g] = v.x, b[4 * g + 1] = v.y, b[4 * g + 2] = v.z, b[4 * g + 3] = v.w;
      }
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] = fmaf(a[i], b[j], acc[i][j]);
    }
    // Each row's 4 columns of a block leave as one store where N and c allow (16 bytes f32, 8
    // bf16; a warp writes 256 contiguous bytes of two rows), else one element at a time.
    const bool whole = N % 4 == 0 && reinterpret_cast<unsigned long long>(c) % (4 * sizeof(typename S::T)) == 0;
#pragma unroll
    for (int gj = 0; gj < TN / 4; ++gj) {
      const int n = n0 + gj * 64 + 4 * tx;
      if (n >= N) continue;
      const float bv[4] = {bias_at(n), bias_at(n + 1), bias_at(n + 2), bias_at(n + 3)};
#pragma unroll
      for (int i = 0; i < TM; ++i) {
        const int m = m0 + i / 4 * 64 + 4 * ty + i % 4;
        if (m >= M) continue;
        typename S::T* const dst = c + static_cast<long long>(m) * N + n;
        if (whole) {
          typename S::T o[4];
#pragma unroll
          for (int e = 0; e < 4; ++e) o[e] = out(acc[i][4 * gj + e], bv[e]);
          if constexpr (ST == kStoreBf16)
            *reinterpret_cast<uint2*>(dst) = make_uint2(o[0] | static_cast<unsigned>(o[1]) << 16, o[2] | static_cast<unsigned>(o[3]) << 16);
          else
            *reinterpret_cast<float4*>(dst) = make_float4(o[0], o[1], o[2], o[3]);
        } else {
#pragma unroll
          for (int e = 0; e < 4; ++e)
            if (n + e < N) dst[e] = out(acc[i][4 * gj + e], bv[e]);
        }
      }
    }
  } else {
    // Warp (wm, wn) of 2×4 owns rows wm·BM/2 + [0, BM/2) and columns wn·BN/4 + [0, BN/4): MI m16
    // blocks by NJ n8 blocks. Fragments (g = lane/4, t = lane%4): A rows g, g + 8 at k t, t + 4; W
    // column g at k t, t + 4; sums at rows g, g + 8, columns 2t, 2t + 1. Rows padded by 8 floats:
    // a fragment's 32 reads fall in 32 banks.
    constexpr int MI = BM / 32, NJ = BN / 32;
    const int warp = tid / 32, lane = tid % 32, g = lane / 4, t = lane % 4;
    const int rw = warp / 4 * (BM / 2), cw = warp % 4 * (BN / 4);
    float acc[MI][NJ][4] = {};
#pragma unroll
    for (int k0 = 0; k0 < KP; k0 += 8) {
      const float* const ak = as + (k0 + t) * kLa + rw + g;
      const float* const wk = ws + (k0 + t) * kLw + cw + g;
      unsigned a[MI][4], b[NJ][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        a[i][0] = __float_as_uint(ak[16 * i]);
        a[i][1] = __float_as_uint(ak[16 * i + 8]);
        a[i][2] = __float_as_uint(ak[4 * kLa + 16 * i]);
        a[i][3] = __float_as_uint(ak[4 * kLa + 16 * i + 8]);
      }
#pragma unroll
      for (int j = 0; j < NJ; ++j) {
        b[j][0] = __float_as_uint(wk[8 * j]);
        b[j][1] = __float_as_uint(wk[4 * kLw + 8 * j]);
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NJ; ++j) mma_m16n8k8(acc[i][j], a[i], b[j]);
    }
    // Two neighbouring columns leave as one store where N and c allow (8 bytes f32, 4 bf16).
    const bool pairs = N % 2 == 0 && reinterpret_cast<unsigned long long>(c) % (2 * sizeof(typename S::T)) == 0;
#pragma unroll
    for (int j = 0; j < NJ; ++j) {
      const int n = n0 + cw + 8 * j + 2 * t;
      if (n >= N) continue;
      const float b0 = bias_at(n), b1 = bias_at(n + 1);
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = m0 + rw + 16 * i + g + 8 * h;
          if (m >= M) continue;
          typename S::T* const dst = c + static_cast<long long>(m) * N + n;
          const typename S::T o0 = out(acc[i][j][2 * h], b0);
          if (pairs) {
            const typename S::T o1 = out(acc[i][j][2 * h + 1], b1);
            if constexpr (ST == kStoreBf16)
              *reinterpret_cast<unsigned*>(dst) = o0 | static_cast<unsigned>(o1) << 16;
            else
              *reinterpret_cast<float2*>(dst) = make_float2(o0, o1);
          } else {
            dst[0] = o0;
            if (n + 1 < N) dst[1] = out(acc[i][j][2 * h + 1], b1);
          }
        }
    }
  }
}

}  // namespace rnnjit_k
