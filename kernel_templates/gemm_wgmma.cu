// C[M,N] = epilogue(A·Wᵀ + bias) on Hopper's warpgroup tensor cores, A = [A1 | A2] as two K segments.
// Tiling: a CTA owns a BM×BN tile of C over 1/SPLIT of K; one producer thread's TMA copies 32-float
// K slices of A and W (128-byte swizzle) into a STAGES-deep ring on mbarriers, WGS consumer warpgroups
// run wgmma on them; the SPLIT CTAs of a cluster then add their tiles through DSMEM in rank order.
// Operands whose rows are not whole 16-byte units (TMA cannot describe them) arrive instead by the
// producer warpgroup's cp.async copies of A_COPY or W_COPY bytes, laid out as TMA's swizzle would.
// OCC CTAs share a SM where K is short and C's stores bound the stage: one CTA stores while another
// loads; their registers are then the launch bounds' (64K / OCC / threads), without setmaxnreg.
// MCAST CTAs of a cluster own neighbouring N tiles of the same rows: each lands 1/MCAST of A's rows
// in every one's ring (TMA multicast), so that A crosses L2 once for them where it is L2-bound.
// tf32: wgmma m64nBNk8, A's rows on the M side (W's, m64n16k8, for a 16-row batch tile). The tensor
// cores take the top 19 bits of each float as it landed (truncation: ~1.3e-3 of error at large
// shapes, against ~4e-4 rounded to nearest); rounding cost 40-90 % of the speed in place in the
// ring and 5-14 % through registers at batch 16 (docs/kernels.md, "wgmma", Tried and rejected).
// fp32-accurate (kMathFp32): x = hi + lo with hi the top 19 bits the tf32 units read; W's rows
// go on the M side (m64nBM), and per k8 step one tf32 wgmma of hi·hi on both slices as they
// landed plus one bf16 wgmma k16 of [hi | lo]·[lo | hi]: W's half split in registers, A's half a
// cross copy that split_cross wrote once for all N tiles and TMA lands beside the slice. Two
// tensor-core passes' time where 3xTF32 takes three.
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

// The 2-D box at (column c0, row c1) of `map` fetched into L2 only.
__device__ __forceinline__ void tma_prefetch_l2(const TmaMap& map, int c0, int c1) {
  asm volatile("cp.async.bulk.prefetch.tensor.2d.L2.global.tile [%0, {%1, %2}];\n" ::"l"(
                   reinterpret_cast<unsigned long long>(&map)),
               "r"(c0), "r"(c1)
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

// The same box into the same shared-memory offset of each cluster CTA in `mask`, counted on each
// one's mbarrier at `bar`'s offset.
__device__ __forceinline__ void tma_load_multicast(void* dst, const TmaMap& map, int c0, int c1, unsigned long long* bar,
                                                   unsigned short mask) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.multicast::cluster [%0], [%1, {%2, "
      "%3}], [%4], %5;\n" ::"r"(smem_addr(dst)),
      "l"(reinterpret_cast<unsigned long long>(&map)), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "h"(mask)
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

// The accumulator of an m64nN product (N/2 floats a thread): its registers in the instruction, %0 up,
// and their asm operands.
#define RNNJIT_F8(d, i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])
#define RNNJIT_D16 "{%0, %1, %2, %3, %4, %5, %6, %7}"
#define RNNJIT_D64                                                                  \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "       \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define RNNJIT_D128                                                                 \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "       \
  "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
  "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
  "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define RNNJIT_OUT16(d) RNNJIT_F8(d, 0)
#define RNNJIT_OUT64(d) RNNJIT_F8(d, 0), RNNJIT_F8(d, 8), RNNJIT_F8(d, 16), RNNJIT_F8(d, 24)
#define RNNJIT_OUT128(d) RNNJIT_OUT64(d), RNNJIT_F8(d, 32), RNNJIT_F8(d, 40), RNNJIT_F8(d, 48), RNNJIT_F8(d, 56)

// d (m64nN, fp32) = A·Bᵀ + (accumulate ? d : 0), one 32-byte k step with both operands read from shared
// memory by descriptor, K-major: tf32 (k8) for f32 storage, bf16 (k16, no transpose) for bf16.
// Fragment: thread t of the warpgroup holds rows 16·(t/32) + (t%32)/4 + {0, 8}, columns 8j + 2·(t%4) + {0, 1}
// in d[4j + {0, 1}] (row +0) and d[4j + {2, 3}] (row +8).
template <int ST, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], unsigned long long da, unsigned long long db,
                                         int accumulate);
// OPS: the operands after the accumulator (its N/2 registers), "%N/2, %N/2+1" for da and db, P the next
// one's number (accumulate's); TAIL: the transpose flags bf16 takes.
#define RNNJIT_WGMMA_SS(ST, N, TYPES, TAIL, OPS, P)                                                             \
  template <>                                                                                                   \
  __device__ __forceinline__ void wgmma_ss<ST, N>(float(&d)[N / 2], unsigned long long da, unsigned long long db, \
                                                  int accumulate) {                                             \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #P ", 0;\n"                                              \
                 "wgmma.mma_async.sync.aligned.m64n" #N TYPES " " RNNJIT_D##N ", " OPS ", p, 1, 1" TAIL         \
                 ";\n}\n"                                                                                        \
                 : RNNJIT_OUT##N(d)                                                                             \
                 : "l"(da), "l"(db), "r"(accumulate));                                                          \
  }
RNNJIT_WGMMA_SS(kStoreF32, 16, "k8.f32.tf32.tf32", "", "%8, %9", 10)
RNNJIT_WGMMA_SS(kStoreF32, 64, "k8.f32.tf32.tf32", "", "%32, %33", 34)
RNNJIT_WGMMA_SS(kStoreF32, 128, "k8.f32.tf32.tf32", "", "%64, %65", 66)
RNNJIT_WGMMA_SS(kStoreBf16, 16, "k16.f32.bf16.bf16", ", 0, 0", "%8, %9", 10)
RNNJIT_WGMMA_SS(kStoreBf16, 64, "k16.f32.bf16.bf16", ", 0, 0", "%32, %33", 34)
RNNJIT_WGMMA_SS(kStoreBf16, 128, "k16.f32.bf16.bf16", ", 0, 0", "%64, %65", 66)
#undef RNNJIT_WGMMA_SS

// d (m64nN, fp32) += A·Bᵀ, bf16: A from registers in the m64k16 fragment (thread t of the warpgroup:
// a[0] rows 16·(t/32) + (t%32)/4, k 2·(t%4) + {0, 1}; a[1] the row 8 below; a[2], a[3] the same at
// k + 8; lower k in the low half), B K-major from shared memory (128-byte swizzle, as above).
template <int N>
__device__ __forceinline__ void wgmma_bf16(float (&d)[N / 2], const unsigned (&a)[4], unsigned long long db,
                                           int accumulate);
// OPS: the operands after the accumulator, A's four registers and db; P the next one's number.
#define RNNJIT_WGMMA_RS(N, OPS, P)                                                                               \
  template <>                                                                                                   \
  __device__ __forceinline__ void wgmma_bf16<N>(float(&d)[N / 2], const unsigned(&a)[4], unsigned long long db,  \
                                                int accumulate) {                                               \
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #P ", 0;\n"                                              \
                 "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32.bf16.bf16 " RNNJIT_D##N ", " OPS ", p, 1, 1, 0;\n}\n" \
                 : RNNJIT_OUT##N(d)                                                                             \
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));                       \
  }
RNNJIT_WGMMA_RS(16, "{%8, %9, %10, %11}, %12", 13)
RNNJIT_WGMMA_RS(64, "{%32, %33, %34, %35}, %36", 37)
RNNJIT_WGMMA_RS(128, "{%64, %65, %66, %67}, %68", 69)
#undef RNNJIT_WGMMA_RS
#undef RNNJIT_OUT128
#undef RNNJIT_OUT64
#undef RNNJIT_OUT16
#undef RNNJIT_D128
#undef RNNJIT_D64
#undef RNNJIT_D16
#undef RNNJIT_F8

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// fp32's split of two neighbours in k: x = hi + lo exactly, hi = x with the 13 low bits the tf32
// units ignore cleared; both halves as bf16 pairs, rounded to nearest, the first x in the low half.
// Dropped: lo·lo (< 2⁻²⁰ of a product) and bf16's rounding of the cross terms (< 2⁻¹⁸).
__device__ __forceinline__ void split_pair(float x0, float x1, unsigned& hi, unsigned& lo) {
  const float h0 = __uint_as_float(__float_as_uint(x0) & 0xFFFFE000u);
  const float h1 = __uint_as_float(__float_as_uint(x1) & 0xFFFFE000u);
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(hi) : "f"(h1), "f"(h0));
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;\n" : "=r"(lo) : "f"(x1 - h1), "f"(x0 - h0));
}

// The k order of fp32's bf16 products: in k16 step kk of a 32-float slice, the thread quad lane q
// (t % 4, the fragment's k pair 2q) takes k = 8q + 2kk + {0, 1}, so that its 8 floats of a W row are
// 32 contiguous bytes read once a slice. The A side matches: the slice's cross copy holds, in 32-bit
// words, word 8kk + p = the lo pair of k = 8p + 2kk + {0, 1} and word 8kk + 4 + p its hi pair.
//
// split_cross writes that copy for rows of [A1 | A2]: slice t of row m at words 32·(m·kTiles + t),
// each K segment padded with zeros to whole slices (the kernel's slice order). One thread a float4
// of A, so that a warp reads 512 contiguous bytes: floats 8p + 4h + [0, 4) of a slice are the k16
// steps 2h and 2h + 1 of group p.
template <int M, int K1, int K2>
__global__ void __launch_bounds__(256)
    split_cross(const float* __restrict__ a1, const float* __restrict__ a2, unsigned* __restrict__ out) {
  constexpr int kTiles1 = (K1 + 31) / 32, kTiles = kTiles1 + (K2 + 31) / 32;
  const long long g = blockIdx.x * 256ll + threadIdx.x, u = g / 8;  // u: the slice of a row
  if (u >= static_cast<long long>(M) * kTiles) return;
  const int m = static_cast<int>(u / kTiles), t = static_cast<int>(u % kTiles), f = static_cast<int>(g % 8);
  const bool first = t < kTiles1;
  const int k = (first ? t : t - kTiles1) * 32 + 4 * f, k_end = first ? K1 : K2;  // K1, K2: multiples of 4
  const float* row = first ? a1 + static_cast<long long>(m) * K1 : a2 + static_cast<long long>(m) * K2;
  const float4 v = k < k_end ? __ldg(reinterpret_cast<const float4*>(row + k)) : make_float4(0.f, 0.f, 0.f, 0.f);
  const int p = f / 2, kk = 2 * (f % 2);
  unsigned hi0, lo0, hi1, lo1;
  split_pair(v.x, v.y, hi0, lo0);
  split_pair(v.z, v.w, hi1, lo1);
  unsigned* const slice = out + u * 32;
  slice[8 * kk + p] = lo0;
  slice[8 * kk + 4 + p] = hi0;
  slice[8 * kk + 8 + p] = lo1;
  slice[8 * kk + 12 + p] = hi1;
}

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

__device__ __forceinline__ void consumer_sync(int threads) {
  asm volatile("bar.sync 1, %0;\n" ::"r"(threads) : "memory");
}

// The 16 bytes at `p` in the shared memory of cluster CTA `rank`.
__device__ __forceinline__ float4 ld_cluster4(const float* p, unsigned rank) {
  float4 v;
  asm volatile("ld.shared::cluster.v4.f32 {%0, %1, %2, %3}, [%4];\n"
               : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w)
               : "r"(cluster_addr(p, rank))
               : "memory");
  return v;
}

// The slice at column `col` of rows row0 + [0, TILE) of a matrix of ROWS rows, LD elements of ELEM
// bytes each (128 bytes of each row), into the ring slot at shared address `dst`, by thread p of 128
// in cp.async copies of BYTES: 16-byte chunk c of row r goes to chunk c ^ (r % 8), TMA's 128-byte
// swizzle. Past the last row and the row ends, zeros (a copy lies wholly inside a row or past its
// end: BYTES divides LD·ELEM and col·ELEM).
template <int BYTES, int ELEM, int ROWS, int LD, int TILE>
__device__ __forceinline__ void copy_slice(unsigned dst, const void* base, int row0, int col, int p) {
  constexpr int kPerRow = 128 / BYTES, kRowStep = 128 / kPerRow;  // a thread's rows are kRowStep apart
  const int r0 = p / kPerRow, byte = p % kPerRow * BYTES;
  const bool in_row = col * ELEM + byte < LD * ELEM;
  const char* src = static_cast<const char*>(base) + (static_cast<long long>(row0 + r0) * LD + col) * ELEM + byte;
  // Two rows in flight a thread: four spilled 16-20 bytes at 128x128 and 256x128 with A and W both
  // copied (the producer shares the kernel's register budget).
#pragma unroll 2
  for (int r = r0; r < TILE; r += kRowStep, src += static_cast<long long>(kRowStep) * LD * ELEM) {
    const bool ok = in_row && row0 + r < ROWS;
    cp_async_zfill<BYTES>(dst + r * 128 + (((byte >> 4) ^ (r & 7)) << 4) + (byte & 15), ok ? src : base, ok ? BYTES : 0);
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

template <int ST,  // storage: kStoreF32 or kStoreBf16 (then MATH is kMathTf32: bf16 products)
          int M, int N, int K1, int K2, int LDW,  // shape: W rows are LDW elements apart
          int A_COPY, int W_COPY,  // 0: by TMA; 8 or 4: by cp.async copies of that many bytes (pointers aligned to them)
          int BM, int BN, int WGS, int STAGES, int SPLIT,
          int MATH,  // kMathTf32 or kMathFp32
          int EPI,   // kEpiBias or kEpiBiasTanh
          int OCC,   // CTAs resident a SM: above 1 the registers are the launch bounds', with no setmaxnreg
          int MCAST>  // CTAs of a cluster along N sharing A's slices (1: none)
__global__ void __launch_bounds__((WGS + 1) * 128, OCC)
    gemm_wgmma(const __grid_constant__ TmaMap a1_map, const __grid_constant__ TmaMap a2_map,
               const __grid_constant__ TmaMap w_map, const __grid_constant__ TmaMap cross_map,
               const typename Store<ST>::T* __restrict__ a1, const typename Store<ST>::T* __restrict__ a2,
               const typename Store<ST>::T* __restrict__ w, const typename Store<ST>::T* __restrict__ bias, typename Store<ST>::T* __restrict__ c,
               int dependent) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using S = Store<ST>;
  constexpr int kBK = kWgmmaSliceFloats;                // 4-byte words of a row's slice (128 bytes)
  constexpr int kSliceK = kBK * 4 / sizeof(typename S::T);  // ... and its K elements: 32 f32, 64 bf16
  constexpr bool kSplit = MATH == kMathFp32;
  static_assert(!kSplit || ST == kStoreF32, "fp32's split products take f32 storage");
  // The wgmma M side (split among the warpgroups in m64 blocks) and its n: A's rows and W's for
  // tf32, the other way round for fp32, whose W fragments are split in registers, and for batch
  // tiles narrower than m64 (BM = 16: the A slot shrinks to 2 KiB, leaving the ring to W).
  constexpr bool kWOnM = wgmma_w_on_m(MATH, BM);
  constexpr int kRowsM = kWOnM ? BN : BM, kWgN = kWOnM ? BM : BN;
  constexpr int kRowsPerWg = kRowsM / WGS, kMBlocks = kRowsPerWg / 64;
  // A ring slot as TMA lands it: A's slice, W's, and for fp32 A's cross copy.
  constexpr int kTileFloats = wgmma_slot_floats(BM, BN, MATH);
  constexpr int kLdc = BN + 4;  // the C tile in smem after the main loop
  constexpr int kTiles1 = (K1 + kSliceK - 1) / kSliceK, kTiles = kTiles1 + (K2 + kSliceK - 1) / kSliceK;
  constexpr int kPerSplit = (kTiles + SPLIT - 1) / SPLIT;
  constexpr int kConsumers = WGS * 128;
  static_assert(kRowsPerWg % 64 == 0, "each consumer warpgroup owns whole m64 blocks");
  static_assert(kWgN == 16 || kWgN == 64 || kWgN == 128, "wgmma n16, n64 or n128");
  static_assert(WGS <= 2, "setmaxnreg: 232 registers a consumer thread, 40 the producer's");
  static_assert(BN % 4 == 0, "the reduction reads the C tile 16 bytes at a time");
  static_assert(BM * kLdc <= STAGES * kTileFloats, "the C tile reuses the ring");
  static_assert((A_COPY == 0 || A_COPY == 4 || A_COPY == 8) && (W_COPY == 0 || W_COPY == 4 || W_COPY == 8),
                "operands by TMA, or cp.async of 4 or 8 bytes");
  static_assert(A_COPY == 0 || !kSplit, "fp32's cross copy is written from a packed A");
  static_assert(MCAST == 1 || (SPLIT == 1 && OCC == 1 && A_COPY == 0 && W_COPY == 0 && !kSplit && !kWOnM && BM % (8 * MCAST) == 0),
                "multicast: both operands by TMA, A on the M side, whole 8-row swizzle atoms a CTA, no K split");
  // Bytes TMA lands in a slot: all of it but the slices cp.async copies.
  constexpr bool kCopies = A_COPY > 0 || W_COPY > 0;
  constexpr unsigned kTxBytes = (kTileFloats - (A_COPY > 0 ? BM * kBK : 0) - (W_COPY > 0 ? BN * kBK : 0)) * 4;

  extern __shared__ unsigned char smem_raw[];
  // Swizzled TMA boxes and wgmma atoms need 1024-byte alignment; the engine adds the slack.
  float* const ring = reinterpret_cast<float*>(smem_raw + ((1024 - smem_addr(smem_raw) % 1024) % 1024));
  unsigned long long* const full = reinterpret_cast<unsigned long long*>(ring + STAGES * kTileFloats);
  unsigned long long* const empty = full + STAGES;

  const int tid = threadIdx.x, wg = tid / 128;
  // CTAs in launch order: the SPLIT (or MCAST) CTAs of a cluster, then the M tiles of one N tile (or
  // of MCAST of them), so that the M tiles sharing a W slice stream it together and all but one
  // read it from L2.
  constexpr int kMTiles = (M + BM - 1) / BM;
  const int split = SPLIT > 1 ? static_cast<int>(blockIdx.x % SPLIT) : 0;
  const int rank = MCAST > 1 ? static_cast<int>(blockIdx.x % MCAST) : 0;
  const int cluster = static_cast<int>(blockIdx.x / (SPLIT * MCAST));
  const int n0 = (cluster / kMTiles * MCAST + rank) * BN, m0 = cluster % kMTiles * BM;
  // Every box starts inside its matrix: a CTA past the last N tile (pairs over an odd count) loads
  // the W rows of the tile before it and stores nothing; a share of A wholly past row M loads rows
  // from 0, which land in C rows it never stores.
  constexpr int kARows = BM / MCAST;  // rows of A this CTA lands, in every CTA of the cluster
  const int w_row0 = n0 < N ? n0 : n0 - BN, a_row0 = m0 + rank * kARows < M ? m0 + rank * kARows : 0;
  const int t_begin = split * kPerSplit, t_end = min_int(kTiles, t_begin + kPerSplit);

  if (tid == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(&full[s], (kTxBytes > 0 ? 1 : 0) + (kCopies ? 128 : 0));  // the TMA thread, each copying one
      mbar_init(&empty[s], WGS * 4 * MCAST);  // lane 0 of every consumer warp of the cluster: A lands in each
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  if (MCAST > 1)
    cluster_sync();  // the peers' barriers are initialized before anything lands in or arrives at them
  else
    __syncthreads();
  // A consumer frees a slot in every CTA whose A slices it shares.
  auto release = [&](int s) {
    if constexpr (MCAST == 1)
      mbar_arrive(&empty[s]);
    else
      for (int r = 0; r < MCAST; ++r) mbar_arrive_cluster(&empty[s], r);
  };

  // A stage launched as a programmatic dependent (h2o right after i2h, `dependent`) may start once
  // every CTA of the stage before it has; that one's CTAs are all resident by then.
  launch_dependents();

  if (wg == 0) {
    // Producer: one thread issues the TMA boxes; with A_COPY or W_COPY the warpgroup's 128 threads
    // copy those operands' slices. It gives its registers to the math.
    if constexpr (OCC == 1) asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n");
    if (kCopies || tid == 0) {
      auto k_of = [](int t) { return (t < kTiles1 ? t : t - kTiles1) * kSliceK; };  // in A's segment
      auto kw_of = [&](int t) { return (t < kTiles1 ? 0 : K1) + k_of(t); };  // in W's row
      constexpr int kElem = sizeof(typename S::T);
      // A dependent stage's W is no earlier grid's output: the TMA thread lands its first slices in
      // the ring and sends the next kWPrefetch to L2 while the grid before finishes; every thread
      // that reads A waits for that grid first.
      constexpr int kWPrefetch = 16;
      const int early = W_COPY == 0 && dependent && tid == 0 ? min_int(STAGES, t_end - t_begin) : 0;
      for (int it = 0; it < early; ++it) {
        mbar_expect_tx(&full[it], kTxBytes);
        tma_load(ring + it * kTileFloats + BM * kBK, w_map, kw_of(t_begin + it), w_row0, &full[it]);
      }
      for (int t = t_begin + early; early > 0 && t < min_int(t_end, t_begin + early + kWPrefetch); ++t)
        tma_prefetch_l2(w_map, kw_of(t), w_row0);
      if (dependent) wait_for_prior_grid();
      for (int t = t_begin; t < t_end; ++t) {
        const int it = t - t_begin, s = it % STAGES;
        float* const a_dst = ring + s * kTileFloats;
        if (it >= early) {  // the slots before `early` have W and their transaction count already
          mbar_wait(&empty[s], ((it / STAGES) & 1) ^ 1);
          if (tid == 0 && kTxBytes > 0) mbar_expect_tx(&full[s], kTxBytes);  // parts past the edges arrive as zeros, counted too
          if constexpr (W_COPY == 0) {
            if (tid == 0) tma_load(a_dst + BM * kBK, w_map, kw_of(t), w_row0, &full[s]);
          } else {
            copy_slice<W_COPY, kElem, N, LDW, BN>(smem_addr(a_dst + BM * kBK), w, n0, kw_of(t), tid);
          }
        }
        if constexpr (A_COPY == 0 && MCAST == 1) {
          if (tid == 0) tma_load(a_dst, t < kTiles1 ? a1_map : a2_map, k_of(t), m0, &full[s]);
        } else if constexpr (A_COPY == 0) {  // the empty barrier counted the peers' consumers too
          if (tid == 0)
            tma_load_multicast(a_dst + rank * kARows * kBK, t < kTiles1 ? a1_map : a2_map, k_of(t), a_row0, &full[s],
                               (1u << MCAST) - 1);
        } else if (t < kTiles1) {
          copy_slice<A_COPY, kElem, M, K1, BM>(smem_addr(a_dst), a1, m0, k_of(t), tid);
        } else {
          copy_slice<A_COPY, kElem, M, K2, BM>(smem_addr(a_dst), a2, m0, k_of(t), tid);
        }
        if (kSplit && tid == 0) tma_load(a_dst + (BM + BN) * kBK, cross_map, t * kBK, m0, &full[s]);
        if (kCopies) cp_async_arrive_noinc(&full[s]);
      }
    }
  } else {
    if constexpr (OCC == 1) asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n");
    const int row0 = (wg - 1) * kRowsPerWg, warp = (tid % 128) / 32, lane = tid % 32;
    float acc[kMBlocks][kWgN / 2] = {};
    // Within a 128-byte swizzled row, k step kk (k8 tf32, k16 bf16) starts 32 bytes further: 2 in
    // the descriptor's units.
    auto desc = [](const float* rows, int kk) { return wgmma_desc(rows) + 2 * kk; };
    const int n_slices = t_end - t_begin;
    if constexpr (!kSplit) {
      for (int it = 0; it < n_slices; ++it) {
        const int s = it % STAGES;
        const float* tile = ring + s * kTileFloats;
        mbar_wait(&full[s], (it / STAGES) & 1);
        if (kCopies) fence_proxy_async();  // cp.async wrote slices: wgmma reads them as the async proxy
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < kBK / 8; ++kk)
#pragma unroll
          for (int mb = 0; mb < kMBlocks; ++mb)
            if (kWOnM)
              wgmma_ss<ST, kWgN>(acc[mb], desc(tile + (BM + row0 + mb * 64) * kBK, kk), desc(tile, kk), 1);
            else
              wgmma_ss<ST, kWgN>(acc[mb], desc(tile + (row0 + mb * 64) * kBK, kk), desc(tile + BM * kBK, kk), 1);
        wgmma_commit();
        // Keep this slice's products in flight; the previous slice's are done with its stage.
        wgmma_wait<1>();
        if (it > 0 && lane == 0) release((it - 1) % STAGES);
      }
    } else {
      // fp32: sums over kFold slices at a time (accumulate = 0 on their first product), folded into acc
      // with round-to-nearest adds: the tensor cores' fp32 accumulation truncates, and over long K that
      // bias alone would exceed fp32 accuracy (~2.4e-8 of the sum an accumulation, measured). A fold
      // reads the sums, so the tensor cores drain first (ptxas serializes every wgmma when registers
      // of one in flight are read): once every kFold slices, not every slice.
      constexpr int kFold = 4;
      float part[kMBlocks][kWgN / 2];
      for (int it0 = 0; it0 < n_slices; it0 += kFold) {
        const int q_end = min_int(kFold, n_slices - it0);
#pragma unroll
        for (int q = 0; q < kFold; ++q) {
          if (q >= q_end) break;
          const int it = it0 + q;
          const float* tile = ring + it % STAGES * kTileFloats;
          mbar_wait(&full[it % STAGES], (it / STAGES) & 1);
          if (kCopies) fence_proxy_async();  // as above
          // This warpgroup's W rows r and r + 8 of each m64 block, k = 8·(lane%4) + [0, 8) (the k
          // order above), split into the bf16 fragments of the slice's four k16 steps.
          unsigned frag[kMBlocks][kBK / 8][4];
#pragma unroll
          for (int mb = 0; mb < kMBlocks; ++mb)
#pragma unroll
            for (int half = 0; half < 2; ++half) {
              const int r = row0 + mb * 64 + warp * 16 + lane / 4 + 8 * half, q0 = (2 * (lane % 4)) ^ (r % 8);
              const float* row = tile + (BM + r) * kBK;
              const float4 v0 = *reinterpret_cast<const float4*>(row + q0 * 4);
              const float4 v1 = *reinterpret_cast<const float4*>(row + (q0 ^ 1) * 4);
              const float x[8] = {v0.x, v0.y, v0.z, v0.w, v1.x, v1.y, v1.z, v1.w};
#pragma unroll
              for (int kk = 0; kk < kBK / 8; ++kk)
                split_pair(x[2 * kk], x[2 * kk + 1], frag[mb][kk][half], frag[mb][kk][2 + half]);
            }
          wgmma_fence();
#pragma unroll
          for (int kk = 0; kk < kBK / 8; ++kk)
#pragma unroll
            for (int mb = 0; mb < kMBlocks; ++mb) {
              // The small terms first (k = 8p + 2kk + {0, 1}), then hi·hi (k = 8kk + [0, 8)).
              wgmma_bf16<BM>(part[mb], frag[mb][kk], desc(tile + (BM + BN) * kBK, kk), q > 0 || kk > 0);
              wgmma_ss<kStoreF32, BM>(part[mb], desc(tile + (BM + row0 + mb * 64) * kBK, kk), desc(tile, kk), 1);
            }
          wgmma_commit();
          wgmma_wait<1>();  // the previous slice's products are done with its stage: free it
          if (q > 0 && lane == 0) release((it - 1) % STAGES);
        }
        wgmma_wait<0>();
#pragma unroll
        for (int mb = 0; mb < kMBlocks; ++mb)
#pragma unroll
          for (int e = 0; e < kWgN / 2; ++e) acc[mb][e] += part[mb][e];
        if (lane == 0) release((it0 + q_end - 1) % STAGES);
      }
    }
    wgmma_wait<0>();
    consumer_sync(kConsumers);  // every wgmma has read its stage: the ring becomes the C tile

    // Fragment pair (i, i + 1) of n8 group j in block mb: M-side row row0 + 64·mb + 16·warp + lane/4
    // (+8 for i = 2), n columns 8j + 2·(lane%4) + {0, 1}; with W's rows on the M side the tile
    // goes in transposed.
#pragma unroll
    for (int mb = 0; mb < kMBlocks; ++mb)
#pragma unroll
      for (int j = 0; j < kWgN / 8; ++j)
#pragma unroll
        for (int i = 0; i < 4; i += 2) {
          const int rm = row0 + mb * 64 + warp * 16 + lane / 4 + 4 * i, cn = 8 * j + 2 * (lane % 4);
          if (kWOnM) {
            ring[cn * kLdc + rm] = acc[mb][4 * j + i];
            ring[(cn + 1) * kLdc + rm] = acc[mb][4 * j + i + 1];
          } else {
            *reinterpret_cast<float2*>(ring + rm * kLdc + cn) = make_float2(acc[mb][4 * j + i], acc[mb][4 * j + i + 1]);
          }
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
    typename S::T* out = c + static_cast<long long>(m) * N + n;
    const float vals[4] = {v.x, v.y, v.z, v.w};
    // Whole chunks of 4 outputs leave as one store (16 bytes f32, 8 bf16): large-batch, small-K
    // stages are bound by them.
    if (N % 4 == 0 && reinterpret_cast<unsigned long long>(c) % (4 * sizeof(typename S::T)) == 0) {
      if (n >= N) continue;  // n and N multiples of 4: the chunk is whole or outside
      typename S::T o[4];
#pragma unroll
      for (int e = 0; e < 4; ++e) o[e] = S::put(epilogue<EPI>(vals[e] + S::get(bias[n + e])));
      if constexpr (ST == kStoreBf16)
        *reinterpret_cast<uint2*>(out) = make_uint2(o[0] | static_cast<unsigned>(o[1]) << 16, o[2] | static_cast<unsigned>(o[3]) << 16);
      else
        *reinterpret_cast<float4*>(out) = make_float4(o[0], o[1], o[2], o[3]);
      continue;
    }
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (n + e < N) out[e] = S::put(epilogue<EPI>(vals[e] + S::get(bias[n + e])));
  }
  if (SPLIT > 1 || MCAST > 1) cluster_sync();  // peers may still read this CTA's tile or arrive on its barriers
#else
  __trap();
#endif
}

}  // namespace rnnjit_k
