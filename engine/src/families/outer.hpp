// Family outer (kernel_templates/outer.cu): a GEMM stage whose K is short (≤ kOuterMaxK), bound by
// writing C: CTAs of 256 threads copy a BM×BN tile's rows of A and W, all of K, into shared memory
// and sum it by FFMA (fp32) or tf32 mma.sync (tf32, bf16), several CTAs a SM; sm_80 on, f32 or bf16.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct OuterTile {
  static constexpr std::string_view kFile = "outer.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int bm = 0;  ///< rows of C a CTA (a multiple of 64)
  int bn = 0;  ///< columns of C a CTA (a multiple of 64)

  /// "outer_m64n128"
  std::string name() const;
  static std::optional<OuterTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const OuterTile> pool();
  bool operator==(const OuterTile&) const = default;
};

}  // namespace rnnjit
