// Family generic (kernel_templates/generic.cu): one binary for every size (sizes are launch
// arguments), built by nvcc with the library, so that it loads without NVRTC. fp32 FFMA, scalar
// loads: any shape, any pointers aligned to their element, both precisions, both storage types,
// sm_80 and newer. It is what a background-tuned problem runs until its winner is timed; the tuner
// proposes it only where no other family serves the problem.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct GenericTile {
  static constexpr std::string_view kFile = "generic.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  /// "generic": the family has one tile.
  std::string name() const { return "generic"; }
  static std::optional<GenericTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  /// The prebuilt entry point of the shape's storage type.
  std::vector<std::string> kernels(const Shape& s, Stage) const {
    return {s.dtype == DType::BF16 ? "rnnjit_generic_stage_bf16" : "rnnjit_generic_stage"};
  }
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::PointersAndSizes; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const GenericTile> pool();
  bool operator==(const GenericTile&) const = default;
};

}  // namespace rnnjit
