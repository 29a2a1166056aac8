// C[M,N] = epilogue(A·Wᵀ + bias) on Hopper's warpgroup tensor cores, A = [A1 | A2] as two K segments.
// Tiling: a CTA owns a BM×BN tile of C over 1/SPLIT of K; one producer thread's TMA copies 32-float
// K slices of A and W (128-byte swizzle) into a STAGES-deep ring on mbarriers, WGS consumer warpgroups
// run wgmma m64nBNk8 on them; the SPLIT CTAs of a cluster then add their tiles through DSMEM in rank order.
// fp32-accurate (kMathFp32): x = hi + lo with hi the top 19 bits the tf32 units read; per k8 step one
// tf32 wgmma of hi·hi on the slice as it landed, and one bf16 wgmma k16 of [hi | lo]·[lo | hi] on a
// bf16 copy of the slice: two tensor-core passes' time where 3xTF32 takes three.
//
// sm_90a only (wgmma, setmaxnreg): the engine proposes this family on compute capability 9.0 alone.
// Other targets compile it to a trap so that every template builds for every architecture.
#include "rnnjit_device.cuh"

namespace rnnjit_k {

// A CUtensorMap, opaque to device code: the engine encodes it (cuTensorMapEncodeTiled) per call.
struct alignas(64) TmaMap {
  unsigned long long opaque[16];
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

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

// A 2-D box at (column c0, row c1) of `map` into shared memory, counted on `bar` in bytes.
__device__ __forceinline__ void tma_load(void* dst, const TmaMap& map, int c0, int c1, unsigned long long* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          smem_addr(dst)),
      "l"(reinterpret_cast<unsigned long long>(&map)), "r"(c0), "r"(c1), "r"(smem_addr(bar))
      : "memory");
}

// Shared-memory matrix descriptor of a K-major tile written by TMA with 128-byte swizzle: rows of 128
// bytes, 8-row atoms 1024 bytes apart (stride byte offset), leading byte offset unused (1).
__device__ __forceinline__ unsigned long long wgmma_desc(const void* tile) {
  return static_cast<unsigned long long>((smem_addr(tile) & 0x3FFFF) >> 4) | (1ull << 16) | (64ull << 32) |
         (1ull << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

#define RNNJIT_F8(d, i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])

// d (m64nN, fp32) = A·Bᵀ + (accumulate ? d : 0), tf32 operands read from shared memory by descriptor.
// Fragment: thread t of the warpgroup holds rows 16·(t/32) + (t%32)/4 + {0, 8}, columns 8j + 2·(t%4) + {0, 1}
// in d[4j + {0, 1}] (row +0) and d[4j + {2, 3}] (row +8).
template <int N>
__device__ __forceinline__ void wgmma_tf32(float (&d)[N / 2], unsigned long long da, unsigned long long db,
                                           int accumulate);

template <>
__device__ __forceinline__ void wgmma_tf32<64>(float (&d)[32], unsigned long long da, unsigned long long db,
                                               int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k8.f32.tf32.tf32 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1;\n}\n"
      : RNNJIT_F8(d, 0), RNNJIT_F8(d, 8), RNNJIT_F8(d, 16), RNNJIT_F8(d, 24)
      : "l"(da), "l"(db), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_tf32<128>(float (&d)[64], unsigned long long da, unsigned long long db,
                                                int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k8.f32.tf32.tf32 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1;\n}\n"
      : RNNJIT_F8(d, 0), RNNJIT_F8(d, 8), RNNJIT_F8(d, 16), RNNJIT_F8(d, 24), RNNJIT_F8(d, 32), RNNJIT_F8(d, 40),
        RNNJIT_F8(d, 48), RNNJIT_F8(d, 56)
      : "l"(da), "l"(db), "r"(accumulate));
}

// d (m64nN, fp32) += A·Bᵀ, bf16 operands K-major from shared memory (128-byte swizzle, as above).
template <int N>
__device__ __forceinline__ void wgmma_bf16(float (&d)[N / 2], unsigned long long da, unsigned long long db,
                                           int accumulate);

template <>
__device__ __forceinline__ void wgmma_bf16<64>(float (&d)[32], unsigned long long da, unsigned long long db,
                                               int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}, %32, %33, p, 1, 1, 0, 0;\n}\n"
      : RNNJIT_F8(d, 0), RNNJIT_F8(d, 8), RNNJIT_F8(d, 16), RNNJIT_F8(d, 24)
      : "l"(da), "l"(db), "r"(accumulate));
}

template <>
__device__ __forceinline__ void wgmma_bf16<128>(float (&d)[64], unsigned long long da, unsigned long long db,
                                                int accumulate) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}, %64, %65, p, 1, 1, 0, 0;\n}\n"
      : RNNJIT_F8(d, 0), RNNJIT_F8(d, 8), RNNJIT_F8(d, 16), RNNJIT_F8(d, 24), RNNJIT_F8(d, 32), RNNJIT_F8(d, 40),
        RNNJIT_F8(d, 48), RNNJIT_F8(d, 56)
      : "l"(da), "l"(db), "r"(accumulate));
}
#undef RNNJIT_F8

// Two floats as bf16, rounded to nearest: `lo_half` in the low 16 bits (the lower address).
__device__ __forceinline__ unsigned bf16x2(float lo_half, float hi_half) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(r) : "f"(hi_half), "f"(lo_half));
  return r;
}

// fp32-accurate split of one landed stage of `rows` 128-byte rows (A's `a_rows` first, then W's):
// x = hi + lo exactly, hi = x with the 13 low bits the tf32 units ignore cleared. Each row's k8 step
// kk (32 bytes: 16-byte chunks 2kk, 2kk+1) becomes 32 bytes of bf16 at the same chunks of `cross`:
// A rows [hi(8) | lo(8)], W rows [lo(8) | hi(8)], so one k16 bf16 product gives hi·lo + lo·hi. The
// 128-byte swizzle moves chunk q of row r to q ^ (r % 8): the pair stays a pair, so a thread reads
// and writes the same two physical chunks. The slice itself stays as it is for the tf32 hi·hi.
// Dropped: lo·lo (< 2⁻²⁰ of a product) and bf16's rounding of the cross terms (< 2⁻¹⁸).
__device__ __forceinline__ void split_bf16(const float* tile, float* cross, int rows, int a_rows, int tid,
                                           int threads) {
  for (int u = tid; u < rows * 4; u += threads) {
    const int r = u / 4, q0 = (2 * (u % 4)) ^ (r % 8);
    const float4 v0 = *reinterpret_cast<const float4*>(tile + r * 32 + q0 * 4);
    const float4 v1 = *reinterpret_cast<const float4*>(tile + r * 32 + (q0 ^ 1) * 4);
    const float x[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
    float hi[8], lo[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) hi[e] = __uint_as_float(__float_as_uint(x[e]) & 0xFFFFE000u), lo[e] = x[e] - hi[e];
    const uint4 h = {bf16x2(hi[0], hi[1]), bf16x2(hi[2], hi[3]), bf16x2(hi[4], hi[5]), bf16x2(hi[6], hi[7])};
    const uint4 l = {bf16x2(lo[0], lo[1]), bf16x2(lo[2], lo[3]), bf16x2(lo[4], lo[5]), bf16x2(lo[6], lo[7])};
    *reinterpret_cast<uint4*>(cross + r * 32 + q0 * 4) = r < a_rows ? h : l;
    *reinterpret_cast<uint4*>(cross + r * 32 + (q0 ^ 1) * 4) = r < a_rows ? l : h;
  }
  // The tensor cores read these through the async proxy.
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void consumer_sync(int threads) {
  asm volatile("bar.sync 1, %0;\n" ::"r"(threads) : "memory");
}

// The 16 bytes at `p` in the shared memory of cluster CTA `rank`.
__device__ __forceinline__ float4 ld_cluster4(const float* p, unsigned rank) {
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(smem_addr(p)), "r"(rank));
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(remote)
               : "memory");
  return v;
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <int M, int N, int K1, int K2, int LDW,  // shape: W rows are LDW floats apart
          int BM, int BN, int WGS, int STAGES, int SPLIT,
          int MATH,  // kMathTf32 or kMathFp32
          int EPI>   // kEpiBias or kEpiBiasTanh
__global__ void __launch_bounds__((WGS + 1) * 128, 1)
    gemm_wgmma(const __grid_constant__ TmaMap a1_map, const __grid_constant__ TmaMap a2_map,
               const __grid_constant__ TmaMap w_map, const float* __restrict__ bias, float* __restrict__ c) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kBK = 32;                       // floats of one K slice: one 128-byte swizzle row
  constexpr int kRowsPerWg = BM / WGS, kMBlocks = kRowsPerWg / 64;
  constexpr bool kSplit = MATH == kMathFp32;
  constexpr int kTileFloats = (BM + BN) * kBK;  // A then W, as TMA lands them
  // fp32: the bf16 cross copies of the last kCrossSlots slices, apart from the ring so that the ring
  // stays deep. The split of slice i+1 overwrites slice i-2's copy, whose products every warpgroup
  // finished before the consumers' barrier that ended slice i-1.
  constexpr int kCrossSlots = kWgmmaCrossSlots, kCrossFloats = kSplit ? kCrossSlots * kTileFloats : 0;
  constexpr int kLdc = BN + 4;                  // the C tile in smem after the main loop
  constexpr int kTiles1 = (K1 + kBK - 1) / kBK, kTiles = kTiles1 + (K2 + kBK - 1) / kBK;
  constexpr int kPerSplit = (kTiles + SPLIT - 1) / SPLIT;
  constexpr int kConsumers = WGS * 128;
  static_assert(kRowsPerWg % 64 == 0, "each consumer warpgroup owns whole m64 blocks");
  static_assert(BN == 64 || BN == 128, "wgmma n64 or n128");
  static_assert(BN % 4 == 0, "the reduction reads the C tile 16 bytes at a time");
  static_assert(BM * kLdc <= STAGES * kTileFloats + kCrossFloats, "the C tile reuses the ring");

  extern __shared__ unsigned char smem_raw[];
  // Swizzled TMA boxes and wgmma atoms need 1024-byte alignment; the engine adds the slack.
  float* const ring = reinterpret_cast<float*>(smem_raw + ((1024 - smem_addr(smem_raw) % 1024) % 1024));
  float* const cross = ring + STAGES * kTileFloats;
  unsigned long long* const full = reinterpret_cast<unsigned long long*>(cross + kCrossFloats);
  unsigned long long* const empty = full + STAGES;

  const int tid = threadIdx.x, wg = tid / 128;
  // CTAs in launch order: the SPLIT CTAs of a cluster, then the M tiles of one N tile, so that the
  // M tiles sharing a W slice stream it together and all but one read it from L2.
  constexpr int kMTiles = (M + BM - 1) / BM;
  const int split = SPLIT > 1 ? static_cast<int>(blockIdx.x % SPLIT) : 0;
  const int tile = static_cast<int>(blockIdx.x / SPLIT);
  const int n0 = tile / kMTiles * BN, m0 = tile % kMTiles * BM;
  const int t_begin = split * kPerSplit, t_end = min_int(kTiles, t_begin + kPerSplit);

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], 1);
      mbar_init(&empty[s], WGS * 4);  // lane 0 of every consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  if (wg == 0) {
    // Producer: one thread keeps the ring full; its warpgroup gives its registers to the math.
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (tid == 0) {
      for (int t = t_begin; t < t_end; ++t) {
        const int it = t - t_begin, s = it % STAGES;
        mbar_wait(&empty[s], ((it / STAGES) & 1) ^ 1);
        mbar_expect_tx(&full[s], kTileFloats * 4);  // out-of-range parts arrive as zeros, counted too
        const bool first = t < kTiles1;
        const int ka = (first ? t : t - kTiles1) * kBK, kw = (first ? 0 : K1) + ka;
        float* const a_dst = ring + s * kTileFloats;
        tma_load(a_dst, first ? a1_map : a2_map, ka, m0, &full[s]);
        tma_load(a_dst + BM * kBK, w_map, kw, n0, &full[s]);
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int row0 = (wg - 1) * kRowsPerWg;
    float acc[kMBlocks][BN / 2] = {};
    // fp32 writes each stage's bf16 cross copy (split_bf16) before its products; the next stage is
    // split while this one's products run (with 2 stages, once the previous one's are done).
    auto split_stage = [&](int it) {
      mbar_wait(&full[it % STAGES], (it / STAGES) & 1);
      split_bf16(ring + (it % STAGES) * kTileFloats, cross + (it % kCrossSlots) * kTileFloats, BM + BN, BM, tid - 128,
                 kConsumers);
    };
    if (kSplit && t_begin < t_end) {
      split_stage(0);
      consumer_sync(kConsumers);
    }
    // Within a 128-byte swizzled row, slice kk starts 32 bytes further: 2 in the descriptor's units.
    // A slice's tile (ring slot or cross copy): A's rows, then W's.
    auto desc_a = [&](const float* tile, int mb, int kk) {
      return wgmma_desc(tile + (row0 + mb * 64) * kBK) + 2 * kk;
    };
    auto desc_w = [&](const float* tile, int kk) { return wgmma_desc(tile + BM * kBK) + 2 * kk; };
    // fp32: sums over kFold slices at a time (accumulate = 0 on their first product), folded into acc
    // with round-to-nearest adds: the tensor cores' fp32 accumulation truncates, and over long K that
    // bias alone would exceed fp32 accuracy (~2.4e-8 of the sum an accumulation, measured). A fold
    // reads the sums, so the tensor cores drain first (ptxas serializes every wgmma when registers
    // of one in flight are read): once every kFold slices, not every slice.
    constexpr int kFold = 4;
    float part[kMBlocks][BN / 2];
    const int n_slices = t_end - t_begin;
    for (int it0 = 0; kSplit && it0 < n_slices; it0 += kFold) {
      const int q_end = min_int(kFold, n_slices - it0);
#pragma unroll
      for (int q = 0; q < kFold; ++q) {
        if (q >= q_end) break;
        const int it = it0 + q;
        const float *tile = ring + it % STAGES * kTileFloats, *bf = cross + it % kCrossSlots * kTileFloats;
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 8; ++kk)
#pragma unroll
          for (int mb = 0; mb < kMBlocks; ++mb) {
            // The small terms first: the k16 bf16 step kk covers the same 8 k as the tf32 step kk, at
            // the same byte offset; then hi·hi.
            wgmma_bf16<BN>(part[mb], desc_a(bf, mb, kk), desc_w(bf, kk), q > 0 || kk > 0);
            wgmma_tf32<BN>(part[mb], desc_a(tile, mb, kk), desc_w(tile, kk), 1);
          }
        wgmma_commit();
        wgmma_wait<1>();  // the previous slice's products are done with its stage: free it first
        if (q > 0 && tid % 32 == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
        if (it + 1 < n_slices) split_stage(it + 1);
        consumer_sync(kConsumers);  // the next stage is split by every consumer
      }
      wgmma_wait<0>();
#pragma unroll
      for (int mb = 0; mb < kMBlocks; ++mb)
#pragma unroll
        for (int e = 0; e < BN / 2; ++e) acc[mb][e] += part[mb][e];
      if (tid % 32 == 0) mbar_arrive(&empty[(it0 + q_end - 1) % STAGES]);
    }
    for (int t = t_begin; !kSplit && t < t_end; ++t) {
      const int it = t - t_begin, s = it % STAGES;
      const float* tile = ring + s * kTileFloats;
      mbar_wait(&full[s], (it / STAGES) & 1);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBK / 8; ++kk)
#pragma unroll
        for (int mb = 0; mb < kMBlocks; ++mb) wgmma_tf32<BN>(acc[mb], desc_a(tile, mb, kk), desc_w(tile, kk), 1);
      wgmma_commit();
      // Keep this slice's products in flight; the previous slice's are done with its stage.
      wgmma_wait<1>();
      if (it > 0 && tid % 32 == 0) mbar_arrive(&empty[(it - 1) % STAGES]);
    }
    wgmma_wait<0>();
    consumer_sync(kConsumers);  // every wgmma has read its stage: the ring becomes the C tile

    const int w = (tid % 128) / 32, lane = tid % 32;
#pragma unroll
    for (int mb = 0; mb < kMBlocks; ++mb)
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int r = row0 + mb * 64 + w * 16 + lane / 4, col = 8 * j + 2 * (lane % 4);
        *reinterpret_cast<float2*>(ring + r * kLdc + col) = make_float2(acc[mb][4 * j], acc[mb][4 * j + 1]);
        *reinterpret_cast<float2*>(ring + (r + 8) * kLdc + col) = make_float2(acc[mb][4 * j + 2], acc[mb][4 * j + 3]);
      }
  }
  if (SPLIT > 1)
    cluster_sync();  // every CTA's partial tile is in its shared memory
  else
    __syncthreads();

  // This CTA finishes 1/SPLIT of the tile's 16-byte chunks: the partials added in rank order (the
  // same bits every run), then bias and epilogue.
  constexpr int kChunks = BM * BN / 4, kPerRank = (kChunks + SPLIT - 1) / SPLIT;
  const int chunk_end = min_int(kChunks, (split + 1) * kPerRank);
  for (int i = split * kPerRank + tid - 128; wg > 0 && i < chunk_end; i += kConsumers) {
    const int r = i / (BN / 4), col = (i % (BN / 4)) * 4;
    const float* src = ring + r * kLdc + col;
    float4 v = SPLIT > 1 ? ld_cluster4(src, 0) : *reinterpret_cast<const float4*>(src);
#pragma unroll
    for (int q = 1; q < SPLIT; ++q) {
      const float4 p = ld_cluster4(src, q);
      v.x += p.x, v.y += p.y, v.z += p.z, v.w += p.w;
    }
    const int m = m0 + r, n = n0 + col;
    if (m >= M) continue;
    const float vals[4] = {v.x, v.y, v.z, v.w};
    float* out = c + static_cast<long long>(m) * N + n;
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (n + e < N) out[e] = epilogue<EPI>(vals[e] + bias[n + e]);
  }
  if (SPLIT > 1) cluster_sync();  // peers may still read this CTA's tile
#else
  __trap();
#endif
}

}  // namespace rnnjit_k
