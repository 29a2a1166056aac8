// Family recur_mma (kernel_templates/recur_mma.cu): a sequence chunk's recurrence in one thread-block
// cluster (Hopper), W_hh's rows spread over its CTAs and held in registers as tensor-core fragments for
// the whole launch, each step's products on mma.sync in 3xTF32 (both precisions), h_t pushed to every CTA
// over distributed shared memory as recur's cluster does. For small H, where W_hh fits the registers.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct RecurMmaTile {
  static constexpr std::string_view kFile = "recur_mma.cu";
  static constexpr Scope kScope = Scope::Recurrence;
  static constexpr bool kServesBf16 = false;  // bf16 storage (Shape::dtype)

  int ctas = 0;   ///< the cluster's CTAs, each ⌈H/ctas⌉ rows of h
  int warps = 0;  ///< warps a CTA, each a share of K's 8-column steps

  /// "recmma_c16w8"
  std::string name() const;
  static std::optional<RecurMmaTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const RecurMmaTile> pool();
  bool operator==(const RecurMmaTile&) const = default;
};

}  // namespace rnnjit
