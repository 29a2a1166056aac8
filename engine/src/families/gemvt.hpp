// Family gemvt (kernel_templates/gemvt.cu): gemv with the roles swapped, for few outputs and many
// rows: warps stream ROWS rows of A each (16-byte loads, 8-byte where rows or pointers allow no
// wider), UNROLL·16 bytes in flight a lane, all N ≤ kGemvtMaxN rows of W read through L1; fp32
// FFMA, any GPU.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct GemvtTile {
  static constexpr std::string_view kFile = "gemvt.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int rows = 0;    ///< rows of A a warp
  int warps = 0;   ///< warps a CTA
  int unroll = 0;  ///< 16 bytes in flight a lane and row (one 16-byte load, or two 8-byte)

  /// "gemvt_r1w4u8"
  std::string name() const;
  static std::optional<GemvtTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const GemvtTile> pool();
  bool operator==(const GemvtTile&) const = default;
};

}  // namespace rnnjit
