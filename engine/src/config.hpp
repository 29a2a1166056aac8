// Tile configs: plain descriptions with one procedural name, used as cache key and in logs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit {

/// Values of the kernels' MATH template argument (kernel_templates/rnnjit_device.cuh): one TF32
/// product, or fp32-accurate by each family's own means (split products on tensor cores, or FFMA).
enum class Math : int { Tf32 = 0, Fp32 = 1 };

/// Kernel families, one kernel_templates/ file each.
enum class Family {
  Mma,   ///< gemm_mma.cu: tensor-core tiles, any batch
  Gemv,  ///< gemv.cu: fp32 weight streaming, batch ≤ 16
  Fused, ///< fused_cluster.cu: the whole step in one launch of clusters splitting K, Hopper, small weights
  Wgmma, ///< gemm_wgmma.cu: TMA + wgmma tiles, split-K over a cluster, sm_90a
  Grid,  ///< fused_grid.cu: the whole step in one cooperative launch over many SMs, batch ≤ 16
  GridStream, ///< grid_stream.cu: the whole step in one cooperative launch streaming large weights, batch ≤ 16
  GridMma, ///< grid_mma.cu: the same launch with the products on tensor cores (mma.sync), batch ≤ 16
};

struct Shape;

/// One launch of a family.
/// Mma: a BM×BN CTA tile over BK-wide K slices, WARPS_M×WARPS_N warps, a STAGES-deep
/// cp.async ring. Gemv: ROWS rows of W per warp, WARPS warps per CTA, UNROLL 16-byte loads
/// in flight per lane and row. Fused: about CTAS CTAs of WARPS warps in clusters of SPLIT, each
/// cluster a share of h's rows, each CTA of it a slice of K.
/// Wgmma: a BM×BN CTA tile (BM rows of A), GROUPS consumer warpgroups and a producer one, a
/// STAGES-deep ring of 32-float K slices, K split over the SPLIT CTAs of a cluster. Grid: CTAS CTAs
/// (at most one a SM) sharing the rows, the WARPS warps of each splitting K. Stream: CTAS CTAs (at
/// most one a SM) sharing the rows, WARPS warps streaming ROWS rows each with UNROLL loads in
/// flight, PREFETCH rows of W2 a CTA staged in shared memory across the grid barrier. GridMma:
/// CTAS CTAs (at most one a SM) sharing 16-row blocks, WARPS warps splitting K, each ROWS blocks
/// at a time with UNROLL 32-column groups of W in flight, PREFETCH chunks of them of W2 a warp
/// staged in shared memory across the grid barrier.
struct Tile {
  Family family = Family::Mma;
  int bm = 0, bn = 0, bk = 0, warps_m = 0, warps_n = 0, stages = 0;  // Mma; Wgmma: bm, bn, stages
  int rows = 0, warps = 0, unroll = 0;                               // Gemv; warps: Fused, Grid
  int cluster = 0;                                                   // Grid, Fused: CTAs
  int groups = 0, split = 0;                                         // Wgmma; split: Fused
  int prefetch = 0;  // Stream, GridMma (rows, warps, unroll, cluster: CTAs; GridMma's rows: 16-row blocks)

  static Tile mma(int bm, int bn, int bk, int warps_m, int warps_n, int stages) {
    return {Family::Mma, bm, bn, bk, warps_m, warps_n, stages, 0, 0, 0, 0};
  }
  static Tile gemv(int rows, int warps, int unroll) { return {Family::Gemv, 0, 0, 0, 0, 0, 0, rows, warps, unroll, 0}; }
  static Tile fused(int ctas, int split, int warps) {
    return {Family::Fused, 0, 0, 0, 0, 0, 0, 0, warps, 0, ctas, 0, split};
  }
  static Tile grid(int ctas, int warps) { return {Family::Grid, 0, 0, 0, 0, 0, 0, 0, warps, 0, ctas}; }
  static Tile stream(int ctas, int warps, int rows, int unroll, int prefetch) {
    return {Family::GridStream, 0, 0, 0, 0, 0, 0, rows, warps, unroll, ctas, 0, 0, prefetch};
  }
  static Tile gridmma(int ctas, int warps, int blocks, int unroll, int prefetch) {
    return {Family::GridMma, 0, 0, 0, 0, 0, 0, blocks, warps, unroll, ctas, 0, 0, prefetch};
  }
  static Tile wgmma(int bm, int bn, int groups, int stages, int split) {
    return {Family::Wgmma, bm, bn, 32, 0, 0, stages, 0, 0, 0, 0, groups, split};
  }

  int threads() const {
    switch (family) {
      case Family::Mma: return warps_m * warps_n * 32;
      case Family::Wgmma: return (groups + 1) * 128;
      default: return warps * 32;
    }
  }
  /// Whether one launch of it runs the whole step (Fused, Grid, Stream, GridMma) rather than one stage.
  bool whole_step() const { return family == Family::Fused || cooperative(); }
  /// Whether it is one cooperative launch over at most one CTA a SM (Grid, Stream, GridMma).
  bool cooperative() const {
    return family == Family::Grid || family == Family::GridStream || family == Family::GridMma;
  }
  /// Whether its launches need 16-byte aligned operands (TMA); others take any 4-byte alignment.
  bool needs_aligned16() const { return family == Family::Wgmma; }
  /// Dynamic shared memory. Mma: STAGES slots of (BM+BN) rows of BK+4 floats; Gemv, Grid and
  /// Fused: none (static partial sums). Wgmma: the ring (A and W
  /// slices, for fp32 A's cross copies too), its mbarriers and 1 KiB of alignment slack.
  /// Stream: h' and the prefetched W2 rows. GridMma: the prefetched W2 chunks and the warps'
  /// partial sums.
  std::size_t smem_bytes(const Shape& shape) const;
  /// "mma64x64x32w2x2s4", "gemv_r2w4u4", "fused_c128k8w8", "grid_c128w8", "stream_c128w16r1u8p8",
  /// "gridmma_c128w16b2u2p1" or "wgmma256x128g2s4k1".
  std::string name() const;
  static std::optional<Tile> parse(const std::string& name);
  bool operator==(const Tile&) const = default;
};

/// What the tuner chooses between: the i2h (with tanh) and h2o launches.
struct Config {
  Tile i2h;
  Tile h2o;

  /// Both stages in one launch: i2h is a whole-step tile and h2o equals it.
  static Config fused(const Tile& t) { return {t, t}; }
  bool is_fused() const { return i2h.whole_step(); }
  bool needs_aligned16() const { return i2h.needs_aligned16() || h2o.needs_aligned16(); }

  /// "i2h_mma64x64x32w2x2s4.h2o_gemv_r2w4u4", "fused_c128k8w8" or "grid_c128w8": the cache
  /// key and the log name.
  std::string name() const;
  /// Inverse of name(); nullopt for anything else (a row written by another version).
  static std::optional<Config> parse(const std::string& name);
  bool operator==(const Config&) const = default;
};

/// Problem with precision resolved and sizes validated.
struct Shape {
  int b = 0, i = 0, h = 0, o = 0;
  Math math = Math::Tf32;
};

/// A Fused tile's rows of h' a cluster, and the clusters it launches for H rows (the kernel's
/// kFusedRows and kFusedClusters, kernel_templates/fused_cluster.cu).
int fused_rows(const Tile& t, int h);
int fused_clusters(const Tile& t, int h);

/// Whether `config` can run `shape` on `device`; if not, says why. Screens candidates
/// before NVRTC sees them.
bool can_implement(const Config& config, const Shape& shape, const DeviceInfo& device, std::string* why);

}  // namespace rnnjit
