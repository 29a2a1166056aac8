// Family fused (kernel_templates/fused_cluster.cu): the whole step in one launch of ~CTAS CTAs in
// thread-block clusters of K_SPLIT, each cluster a share of h's rows, each of its CTAs a slice of
// K, added over distributed shared memory; the last cluster to finish h' computes y. Hopper,
// batch ≤ 16, weights small enough to be held in registers.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct FusedTile {
  static constexpr std::string_view kFile = "fused_cluster.cu";
  static constexpr Scope kScope = Scope::Step;
  static constexpr bool kServesBf16 = false;  // bf16 storage (Shape::dtype)

  int ctas = 0;     ///< CTAs asked for (rounded to whole clusters over H's rows)
  int k_split = 0;  ///< CTAs of a cluster, each a slice of K
  int warps = 0;    ///< warps a CTA

  /// "fused_c128k8w8"
  std::string name() const;
  static std::optional<FusedTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const FusedTile> pool();
  bool operator==(const FusedTile&) const = default;
};

}  // namespace rnnjit
