// Family gemv (kernel_templates/gemv.cu): warps stream ROWS rows of W each with 16-byte loads (8-byte
// where rows or pointers allow no wider), UNROLL·16 bytes in flight a lane, all batch rows in
// registers; fp32 FFMA, batch ≤ 16, any GPU.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct GemvTile {
  static constexpr std::string_view kFile = "gemv.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int rows = 0;    ///< rows of W a warp
  int warps = 0;   ///< warps a CTA
  int unroll = 0;  ///< 16 bytes in flight a lane and row (one 16-byte load, or two 8-byte)

  /// "gemv_r2w4u4"
  std::string name() const;
  static std::optional<GemvTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const GemvTile> pool();
  bool operator==(const GemvTile&) const = default;
};

}  // namespace rnnjit
