// Family grid (kernel_templates/fused_grid.cu): the whole step in one cooperative launch, one CTA
// a SM: each CTA's warps split K over its rows of W1 (one round of loads), a grid-wide barrier,
// then W2 the same way. Batch ≤ 16, weights small enough to be held in registers, any GPU.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct GridTile {
  static constexpr std::string_view kFile = "fused_grid.cu";
  static constexpr Scope kScope = Scope::Step;
  static constexpr bool kServesBf16 = false;  // bf16 storage (Shape::dtype)

  int ctas = 0;   ///< CTAs, at most one a SM (a grid barrier needs every CTA resident)
  int warps = 0;  ///< warps a CTA, splitting K

  /// "grid_c128w8"
  std::string name() const;
  static std::optional<GridTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const GridTile> pool();
  bool operator==(const GridTile&) const = default;
};

}  // namespace rnnjit
