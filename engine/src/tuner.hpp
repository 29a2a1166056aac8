// The first-call tuner: propose 3-4 configs for a shape, compile them in parallel, time them on the
// caller's stream, remember the winner in the cache.
#pragma once

#include <atomic>
#include <memory>
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

/// Whether plan_for may time candidates on the caller's stream.
enum class Timing {
  Measure,         ///< compile and time every candidate (outputs must be scratch)
  HeuristicFirst,  ///< no timing (a stream capturing a graph): the heuristic's first candidate, not persisted
};

/// Whether plan_for consults the cache first.
enum class CacheUse {
  Lookup,  ///< a cached winner ends the search
  Retune,  ///< time the candidates even if a winner is cached
};

class Tuner {
 public:
  Tuner(const DeviceInfo& device, Jit& jit, cache::Store& store) : device_(device), jit_(jit), store_(store) {}

  /// The heuristic's candidates for `shape`, best guess first; deterministic for a (device, shape).
  /// Every one passes can_implement.
  std::vector<Config> propose(const Shape& shape) const;

  /// A plan for `shape`: the cached winner if there is one and `cache` allows; else, with
  /// Timing::Measure, the fastest candidate timed on `stream` with `args` (whose outputs must be
  /// scratch), persisted; else the heuristic's first candidate.
  Tuned plan_for(const Shape& shape, const Args& args, CUstream stream, Timing timing, CacheUse cache);

  /// The best-ranked config whose launches take any 4-byte aligned pointers (no TMA): what runs
  /// when a plan does not accept the caller's pointers.
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

/// Time in µs of one call of `plan` back to back on `stream` (the median over at most `max_groups`
/// event pairs, each around up to 16 consecutive calls: a recurrent loop's steady state, where a
/// dependent launch overlaps the one before it), after a warm-up call; about `budget_ms` of GPU
/// time. Throws LaunchFailed.
double time_plan(const Plan& plan, const Args& args, CUstream stream, int max_groups = 20, double budget_ms = 20);

}  // namespace rnnjit
