// Family stream (kernel_templates/grid_stream.cu): the whole step in one cooperative launch, one
// CTA a SM: warps stream rows of W1 as gemv does, a grid-wide barrier, then W2, whose first
// PREFETCH rows a CTA are pulled into shared memory before the barrier. Batch ≤ 16, weights
// streamed from HBM, sm_80 and newer.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct StreamTile {
  static constexpr std::string_view kFile = "grid_stream.cu";
  static constexpr Scope kScope = Scope::Step;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int ctas = 0;      ///< CTAs, at most one a SM
  int warps = 0;     ///< warps a CTA
  int rows = 0;      ///< rows of W a warp at a time
  int unroll = 0;    ///< 16 bytes in flight a lane and row (one 16-byte load, or two 8-byte)
  int prefetch = 0;  ///< rows of W2 a CTA staged in shared memory across the barrier

  /// "stream_c128w16r1u8p8"
  std::string name() const;
  static std::optional<StreamTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const StreamTile> pool();
  bool operator==(const StreamTile&) const = default;
};

}  // namespace rnnjit
