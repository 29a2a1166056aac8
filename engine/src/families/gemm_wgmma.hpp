// Family wgmma (kernel_templates/gemm_wgmma.cu): a producer warpgroup's TMA loads (128-byte
// swizzle) fill a STAGES-deep mbarrier ring of 128-byte K slices (32 f32 or 64 bf16 elements),
// GROUPS consumer warpgroups run wgmma on them (tf32 or fp32's split for f32 storage, bf16 for bf16);
// K optionally split over the K_SPLIT CTAs of a cluster, added through DSMEM in rank order. sm_90a,
// 16-byte aligned pointers; rows that are not whole 16-byte units go by the producers' cp.async
// copies where they lie, or (fp32, bf16 rows of 2-byte units, A past the copy limit) on a packed
// copy of A (problem.hpp, packed()) that the launch writes first, W copied or packed too. A tile's
// packed twin (`pack`, name suffix p) packs whatever the tile would copy 4 bytes at a time. `occ`
// (name suffix oN) makes N CTAs resident a SM, for stages whose stores of C bound them (kShortK).
// `mcast` (name suffix m2) pairs CTAs of neighbouring N tiles in a cluster that multicasts A's
// slices, each CTA landing half of A's rows in both: A crosses L2 once for two N tiles.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct WgmmaTile {
  static constexpr std::string_view kFile = "gemm_wgmma.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int bm = 0, bn = 0;  ///< CTA tile: BM batch rows × BN output columns
  int groups = 0;      ///< consumer warpgroups (a producer warpgroup besides)
  int stages = 0;      ///< ring slots
  int k_split = 0;     ///< CTAs of a cluster, each a share of K
  int pack = 0;        ///< 1: rows only 4-byte copies could read are packed first (launch + pass)
  int occ = 1;         ///< CTAs resident a SM: the launch bounds' minimum (registers 64K / occ / threads)
  int mcast = 1;       ///< CTAs of a cluster along N that share A's slices by TMA multicast

  /// "wgmma256x128g2s4k1"; "wgmma256x128g2s4k1p" packs; "wgmma64x128g1s2k1o2" runs 2 CTAs a SM;
  /// "wgmma256x128g2s4k1m2" multicasts A to pairs
  std::string name() const;
  static std::optional<WgmmaTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  /// fp32: split_cross writes A's cross copy before the product reads it through a map.
  Operands operands(const Shape& s) const;
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const WgmmaTile> pool();
  /// Short K, many outputs: three 64x64 CTAs a SM, so that one CTA's stores of C overlap the others'
  /// loads and products (outside the pool: the tuner puts it on the stages that `stores_bound` says).
  static const WgmmaTile kShortK;
  /// Whether `stage` is bound by its stores of C: tf32 or bf16 products, all of K in two ring slices,
  /// at least 2^22 outputs.
  static bool stores_bound(const Shape& s, Stage stage);
  /// Whether every plain (pack 0) tile runs `stage` on a packed copy of A, launched first: its rows
  /// TMA cannot take and cp.async cannot either (bf16 of 2-byte units), or fp32's (its cross copy is
  /// made from it). A twin (pack 1) also packs rows of 4-byte units.
  static bool packs(const Shape& s, Stage stage);
  bool operator==(const WgmmaTile&) const = default;
};

}  // namespace rnnjit
