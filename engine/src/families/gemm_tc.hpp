// Family tc (kernel_templates/gemm_tc.cu): BM×BN CTA tiles of mma.sync, fragments through ldmatrix
// from an XOR-swizzled STAGES-deep cp.async ring of K slices BK words wide, WARPS_M×WARPS_N warps;
// f32 storage in tf32 (m16n8k8), or fp32-accurate as a tf32 hi·hi plus one bf16 product of the
// cross terms; bf16 storage in bf16 (m16n8k16). Any shape and any pointers aligned to their
// element, sm_80 and newer: the tensor-core path of Ampere and Ada, and Hopper's where TMA cannot
// describe the operands.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct TcTile {
  static constexpr std::string_view kFile = "gemm_tc.cu";
  static constexpr Scope kScope = Scope::Stage;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype)

  int bm = 0, bn = 0, bk = 0;    ///< CTA tile: BM batch rows × BN output columns, BK 4-byte words of K a slice row
  int warps_m = 0, warps_n = 0;  ///< warps along M and N
  int stages = 0;                ///< cp.async ring depth

  /// "tc128x128x32w2x4s3"
  std::string name() const;
  static std::optional<TcTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const TcTile> pool();
  bool operator==(const TcTile&) const = default;
};

}  // namespace rnnjit
