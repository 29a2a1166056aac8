// Family recur (kernel_templates/recur.cu): a sequence chunk's recurrence in one persistent launch,
// W_hh's rows spread over the CTAs (held in shared memory as far as it goes, the rest streamed each
// step), one hand-off a step: a thread-block cluster whose CTAs push their new rows over
// distributed shared memory (Hopper, small H), or a cooperative grid whose CTAs exchange them
// through L2 behind a grid barrier. fp32 FFMA: both precisions.
#pragma once

#include "family.hpp"

namespace rnnjit {

struct RecurTile {
  static constexpr std::string_view kFile = "recur.cu";
  static constexpr Scope kScope = Scope::Recurrence;
  static constexpr bool kServesBf16 = true;  // bf16 storage (Shape::dtype): h_t and W_hh fp32 on chip

  int ctas = 0;     ///< CTAs, each ⌈H/ctas⌉ rows of h (a cluster's CTAs when `cluster`)
  int warps = 0;    ///< warps a CTA
  int lanes = 0;    ///< lanes a group that splits K (a power of two up to 32)
  int rows = 0;     ///< W_hh rows a group's tile
  int batch = 0;    ///< batch rows a group's tile
  int staged = 0;   ///< grid: batch rows of h_t staged in shared memory at once
  int cluster = 0;  ///< 1: one cluster and distributed shared memory; 0: a cooperative grid
  int smem_kb = 0;  ///< KiB of shared memory a CTA: W_hh's rows past h_t's room stream each step

  /// "rec_c16w8k8t2x2b64l1s200"
  std::string name() const;
  static std::optional<RecurTile> parse(std::string_view name);
  std::string rejects(const Shape& s, Stage stage, const DeviceInfo& d) const;
  std::vector<std::string> kernels(const Shape& s, Stage stage) const;
  Geometry geometry(const Shape& s, Stage stage) const;
  Operands operands(const Shape&) const { return Operands::Pointers; }
  double estimate(const Shape& s, Stage stage, const DeviceInfo& d) const;
  static std::span<const RecurTile> pool();
  bool operator==(const RecurTile&) const = default;
};

}  // namespace rnnjit
