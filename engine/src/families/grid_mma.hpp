// Family gridmma (kernel_templates/grid_mma.cu): the one-launch streaming step with its products
// on tensor cores (m16n8k8 TF32 mma.sync; fp32: 3xTF32): W from 16-byte loads straight into mma
// operands, 16 rows of W a block against a lane's fragment of the batch. Batch ≤ 16 (two n8
// tiles), weights streamed from HBM, sm_80 and newer.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct GridMmaTile {
  static constexpr std::string_view kFile = "grid_mma.cu";
  static constexpr Scope kScope = Scope::Step;
  static constexpr bool kServesBf16 = false;  // bf16 storage (Shape::dtype)

  int ctas = 0;      ///< CTAs, at most one a SM
  int warps = 0;     ///< warps a CTA, taking 32-column chunks of K in turn
  int blocks = 0;    ///< 16-row blocks of W a warp at a time
  int unroll = 0;    ///< 32-column groups of W in flight a warp
  int prefetch = 0;  ///< chunks of W2 a warp staged in shared memory across the grid barrier

  /// "gridmma_c128w16b2u2p1"
  std::string name() const;
  static std::optional<GridMmaTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const GridMmaTile> pool();
  bool operator==(const GridMmaTile&) const = default;
};

}  // namespace rnnjit
