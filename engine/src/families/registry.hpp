// Every kernel family, and the operations the tuner, the jit and the plan apply to any tile.
// Adding a family: its descriptor (family.hpp says what it holds) and its kernel_templates/ file,
// then one line here.
#pragma once

#include <algorithm>
#include <variant>

#include "../kernel_source.hpp"
#include "fused_cluster.hpp"
#include "fused_grid.hpp"
#include "gemm_tc.hpp"
#include "gemm_wgmma.hpp"
#include "generic.hpp"
#include "gemv.hpp"
#include "gemvt.hpp"
#include "grid_mma.hpp"
#include "grid_stream.hpp"
#include "recur.hpp"

namespace rnnjit {

/// One launch's tile of any family: the registry.
using Tile = std::variant<TcTile, GemvTile, FusedTile, GridTile, StreamTile, GridMmaTile, WgmmaTile, GenericTile, RecurTile,
                          GemvtTile>;

/// The tile's procedural name (the family's name()).
std::string tile_name(const Tile& t);
/// The tile of whichever family `name` is the canonical name of.
std::optional<Tile> parse_tile(std::string_view name);
/// Whether one launch of it runs a stage, the whole step or a sequence chunk's recurrence.
Scope scope_of(const Tile& t);

/// Whether `t` can run `stage` of `s` on `d`: the family's own rules, then the device's limits
/// (threads, shared memory, co-resident CTAs); "" if it can, else why not.
std::string rejects(const Tile& t, Stage stage, const Shape& s, const DeviceInfo& d);
Geometry geometry(const Tile& t, Stage stage, const Shape& s);
Operands operands(const Tile& t, const Shape& s);

/// The NVRTC program of `stage` of `s` with `t` for `arch`.
KernelSource specialize(const Tile& t, Stage stage, const Shape& s, const std::string& arch);

/// The tiles of family F that can run `stage` of `s` on the device, cheapest first by the family's
/// estimate (ties keep the pool's order): a tile it rejects takes no rank from one it does not.
template <KernelFamily F>
std::vector<F> ranked(const Shape& s, Stage stage, const DeviceInfo& d) {
  std::vector<std::pair<double, F>> scored;
  for (const F& t : F::pool())
    if (rejects(t, stage, s, d).empty())
      scored.emplace_back(t.estimate(s, stage, d), t);
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<F> out;
  for (const auto& scored_tile : scored) out.push_back(scored_tile.second);
  return out;
}

}  // namespace rnnjit
