// The first-call tuner: propose 3-4 configs for a shape, compile them in parallel, time
// them on the caller's stream, remember the winner in the cache.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "config.hpp"
#include "jit.hpp"
#include "plan.hpp"
#include "rnnjit/cache/store.hpp"

namespace rnnjit {

/// What the tuner hands the engine.
struct Tuned {
  std::shared_ptr<Plan> plan;
  TuneReport report;
};

class Tuner {
 public:
  Tuner(const DeviceInfo& device, Jit& jit, cache::Store& store) : device_(device), jit_(jit), store_(store) {}

  /// The heuristic's candidates for `shape`, best guess first; deterministic for a
  /// (device, shape, precision). Every one passes can_implement.
  std::vector<Config> propose(const Shape& shape) const;

  /// A plan for `shape`: the cached winner if there is one (and not `force`); else, when
  /// `may_time`, the fastest candidate timed on `stream` with `args` (whose outputs must
  /// be scratch); else the heuristic's first candidate, not persisted.
  Tuned plan_for(const Shape& shape, const StepArgs& args, CUstream stream, bool may_time, bool force);

  /// The best-ranked config whose kernels take any 4-byte aligned pointers (no TMA): what
  /// runs when a plan does not accept the caller's pointers.
  Config fallback(const Shape& shape) const;

  /// Compiles (or fetches) and loads one config.
  std::shared_ptr<Plan> build(const Config& config, const Shape& shape);

  std::int64_t tunings() const { return tunings_; }
  std::int64_t cache_hits() const { return cache_hits_; }

 private:
  cache::TuningKey key(const Shape& shape) const;

  const DeviceInfo& device_;
  Jit& jit_;
  cache::Store& store_;
  std::atomic<std::int64_t> tunings_{0};
  std::atomic<std::int64_t> cache_hits_{0};
};

/// Every tile the heuristic may propose, for i2h and h2o alike.
std::span<const Tile> tile_pool();

/// Time in µs of one call of `plan` back to back on `stream` (the median over at most `max_groups`
/// event pairs, each around up to 16 consecutive calls: a recurrent loop's steady state, where a
/// dependent launch overlaps the one before it), after a warm-up call; about `budget_ms` of GPU
/// time. Throws LaunchFailed.
double time_plan(const Plan& plan, const StepArgs& args, CUstream stream, int max_groups = 20, double budget_ms = 20);

}  // namespace rnnjit
