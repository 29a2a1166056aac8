// Family mma (kernel_templates/gemm_mma.cu): BM×BN CTA tiles of m16n8k8 TF32 mma.sync over a
// STAGES-deep cp.async ring of BK-wide K slices, WARPS_M×WARPS_N warps; any batch, sm_80 and newer.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct MmaTile {
  static constexpr std::string_view kFile = "gemm_mma.cu";
  static constexpr Scope kScope = Scope::Stage;

  int bm = 0, bn = 0, bk = 0;       ///< CTA tile: BM batch rows × BN output columns, BK columns of K a stage
  int warps_m = 0, warps_n = 0;     ///< warps along M and N
  int stages = 0;                   ///< cp.async ring depth

  /// "mma64x128x32w2x4s3"
  std::string name() const;
  static std::optional<MmaTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const MmaTile> pool();
  bool operator==(const MmaTile&) const = default;
};

}  // namespace rnnjit
