// What the tuner chooses between: the launches of one step, each a stage and a tile, with one
// procedural name used as cache key and in logs.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "families/registry.hpp"

namespace rnnjit {

/// One launch: what it computes and the tile that computes it.
struct Op {
  Stage stage = Stage::Step;
  Tile tile;
  bool operator==(const Op&) const = default;
};

/// The launches of a plan, in order. A step is two GEMM stages (i2h, then h2o) or one whole-step
/// launch; a sequence chunk is its input projection, its recurrence and its output projection. A
/// new kind of plan adds its stages (problem.hpp) and its sequence to valid_sequence().
struct Config {
  std::vector<Op> ops;

  /// One launch runs the step.
  static Config whole(const Tile& t) { return {{{Stage::Step, t}}}; }
  /// i2h with `i2h`, then h2o with `h2o`.
  static Config pair(const Tile& i2h, const Tile& h2o) { return {{{Stage::I2h, i2h}, {Stage::H2o, h2o}}}; }
  /// A sequence chunk: xproj with `xproj`, the recurrence with `recur`, then h2o with `h2o`.
  static Config sequence(const Tile& xproj, const Tile& recur, const Tile& h2o) {
    return {{{Stage::XProj, xproj}, {Stage::Recur, recur}, {Stage::H2o, h2o}}};
  }
  /// Whether it runs a sequence chunk (a Shape with steps > 0).
  bool is_sequence() const { return ops.size() == 3; }

  /// "i2h_tc64x64x32w2x2s4.h2o_gemv_r2w4u4" (each op "<stage>_<tile>", joined by '.'), or the
  /// tile's name alone for a whole-step launch ("fused_c128k8w8").
  std::string name() const;
  /// Inverse of name(); nullopt for anything else (a row written by another version).
  static std::optional<Config> parse(std::string_view name);
  /// Whether a launch needs pointers aligned beyond their element: TMA maps read in place need 16
  /// bytes, cp.async copies (Geometry::a_copy, w_copy) their width; a packed stage's A takes any.
  bool needs_aligned_pointers(const Shape& s) const;
  bool operator==(const Config&) const = default;
};

/// Whether `ops` is a list of launches a plan runs: [step], [i2h, h2o] or [xproj, recur, h2o], each
/// op's tile of the matching scope.
bool valid_sequence(const std::vector<Op>& ops);

/// Whether `config` can run `shape` on `device`; if not, `*why` (when given) says which op's tile
/// and why. Screens candidates before NVRTC sees them.
bool can_implement(const Config& config, const Shape& shape, const DeviceInfo& device, std::string* why);

}  // namespace rnnjit
