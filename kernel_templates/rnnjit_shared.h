// Facts the engine (host C++) and the kernel templates (NVRTC) both rely on, stated once.
// CUDA-free: the engine includes it as plain C++, NVRTC sees it as an embedded header, so a
// template argument's value, a launch's geometry and a kernel's layout cannot drift apart.
#pragma once

#if defined(__CUDACC__)
#define RNNJIT_HD __host__ __device__
#else
#define RNNJIT_HD
#endif

namespace rnnjit_k {

// The MATH template argument: how the products are computed.
constexpr int kMathTf32 = 0;  // one TF32 product (relative error ≲ 1.4e-3)
constexpr int kMathFp32 = 1;  // fp32-accurate: split products on tensor cores (each family says how) or FFMA

// The ST template argument: how every tensor of a step is stored in device memory. The math is
// fp32 either way (bf16 values widen exactly); bf16 results are rounded to nearest once, on store.
constexpr int kStoreF32 = 0;
constexpr int kStoreBf16 = 1;

// The EPI template argument of the two-launch stages: what is stored of a sum.
constexpr int kEpiBias = 0;      // y = h'·W2ᵀ + b2
constexpr int kEpiBiasTanh = 1;  // h' = tanh([x | h]·W1ᵀ + b1)

// The one-launch steps' launch counters. The engine hands each call a set of kCountersPerCall
// (fused_cluster counts one a rank of its clusters, at most 16; the grid barrier uses the first).
// Each barrier or count of a launch adds exactly kEpoch to its counter, so no launch resets a
// counter: the next one starts from a clean epoch.
constexpr unsigned kCountersPerCall = 16;
constexpr unsigned kEpoch = 1u << 20;

// grid_stream stages h' in shared memory when it holds at most this many floats.
constexpr int kStreamStageFloats = 16384;
RNNJIT_HD constexpr bool stream_stages_h(int m, int h) { return m * h <= kStreamStageFloats; }

// fused_cluster: rows of h' a cluster and clusters launched, from the CTAS the tile asks for in
// clusters of CLUSTER CTAs (the launch is fused_clusters(...)·CLUSTER CTAs).
RNNJIT_HD constexpr int fused_rows(int h, int ctas, int cluster) {
  return (h + ctas / cluster - 1) / (ctas / cluster);
}
RNNJIT_HD constexpr int fused_clusters(int h, int ctas, int cluster) {
  return (h + fused_rows(h, ctas, cluster) - 1) / fused_rows(h, ctas, cluster);
}

// The smallest power of two ≥ n (n ≥ 1): the values halving_sum (rnnjit_device.cuh) takes.
RNNJIT_HD constexpr int pow2_at_least(int n) { return n <= 1 ? 1 : 2 * pow2_at_least((n + 1) / 2); }

// KSplit (rnnjit_device.cuh): the lanes of a warp that walk a slice of `f` float4 columns, a power
// of two, as many as the slice has float4s up to 32; the other 32/lanes lane groups share the rows.
RNNJIT_HD constexpr int ksplit_lanes(int f) {
  return f >= 32 ? 32 : f > 8 ? 16 : f > 4 ? 8 : f > 2 ? 4 : f > 1 ? 2 : 1;
}

// gemm_wgmma: K slices of 32 floats (one 128-byte swizzle row). W's rows go on the wgmma M side
// for fp32 (its W fragments are split in registers) and for batch tiles narrower than m64 (the
// ring then holds W); otherwise A's rows do.
constexpr int kWgmmaSliceFloats = 32;
RNNJIT_HD constexpr bool wgmma_w_on_m(int math, int bm) { return math == kMathFp32 || bm < 64; }
// Floats of one ring slot: A's and W's slices, for fp32 also A's cross copy.
RNNJIT_HD constexpr int wgmma_slot_floats(int bm, int bn, int math) {
  return (bm + bn + (math == kMathFp32 ? bm : 0)) * kWgmmaSliceFloats;
}

// gemm_tc: a ring slot holds BM rows of A then BN rows of W, BK 4-byte words each (BK floats, 2·BK
// bf16), unpadded (swizzled); the fp32 split happens in registers, so the precision costs no shared
// memory, nor does the storage type.
RNNJIT_HD constexpr int gemm_tc_smem_bytes(int bm, int bn, int bk, int stages) { return stages * (bm + bn) * bk * 4; }

// recur: rows of h a CTA takes, a row of h or W_hh in shared memory (zero-padded to whole float4s),
// batch rows of h_t in shared memory at once (all of them for a cluster, which keeps h_t there), and
// the launch's shared memory: h_t (two buffers taking turns for a cluster, and its CTA's new rows,
// M×R, before it pushes them), then as many of the CTA's W_hh rows as a budget of KB KiB leaves
// room for (whole tiles of TR rows, or all R); the rest stream from global memory each step.
RNNJIT_HD constexpr int recur_rows(int h, int ctas) { return (h + ctas - 1) / ctas; }
RNNJIT_HD constexpr int recur_row_floats(int h) { return (h + 3) / 4 * 4; }
RNNJIT_HD constexpr int recur_staged(int m, int mb, bool cluster) { return cluster || mb > m ? m : mb; }
RNNJIT_HD constexpr long long recur_h_floats(int m, int h, int ctas, int mb, bool cluster) {
  return cluster ? 2ll * m * recur_row_floats(h) + (1ll * m * recur_rows(h, ctas) + 3) / 4 * 4  // W_hh's rows 16-byte aligned
                 : 1ll * recur_staged(m, mb, cluster) * recur_row_floats(h);
}
RNNJIT_HD constexpr int recur_kept(int m, int h, int ctas, int mb, bool cluster, int tr, int kb) {
  const long long fit = (kb * 256ll - recur_h_floats(m, h, ctas, mb, cluster)) / recur_row_floats(h);
  return fit >= recur_rows(h, ctas) ? recur_rows(h, ctas) : fit < tr ? 0 : static_cast<int>(fit) / tr * tr;
}
// A cluster lane's W_hh in registers, for the launch, where the CTA keeps all its rows on chip and
// a lane's tiles' rows over its stride of K take at most 16 float4s (64 registers; 8 warps a CTA
// leave 255 a thread).
RNNJIT_HD constexpr bool recur_w_in_registers(bool cluster, int kept, int rows, int tiles_a_group, int tr, int h, int ks) {
  return cluster && kept == rows && tiles_a_group * tr * ((recur_row_floats(h) / 4 + ks - 1) / ks) <= 16;
}
RNNJIT_HD constexpr long long recur_smem_floats(int m, int h, int ctas, int mb, bool cluster, int tr, int kb) {
  return 1ll * recur_kept(m, h, ctas, mb, cluster, tr, kb) * recur_row_floats(h) + recur_h_floats(m, h, ctas, mb, cluster);
}

// gemvt: the most outputs N a launch keeps sums for (ROWS×N a lane).
constexpr int kGemvtMaxN = 32;

// generic (prebuilt, every size an argument): CTAs of kGenericThreads; up to kGenericRowsMaxM rows of
// A a warp takes a column of C each, above it a CTA takes a kGenericTile×kGenericTile tile of C.
constexpr int kGenericThreads = 256;
constexpr int kGenericRowsMaxM = 16;
constexpr int kGenericTile = 64;

}  // namespace rnnjit_k
