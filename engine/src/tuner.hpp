// The first-call tuner: propose 3-4 configs for a shape, compile them in parallel, time them on the
// caller's stream (or, in the background, on a stream of its own), remember the winner in the cache.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
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
  /// measure()'s result as the cache keeps it; persisted by plan_for, by persist() for a
  /// background tuning (only once its plan is installed). Empty otherwise.
  cache::TuningRecord record;
};

/// Whether plan_for may time candidates on the caller's stream.
enum class Timing {
  Measure,  ///< compile and time every candidate (outputs must be scratch)
  /// No timing (a stream capturing a graph): the heuristic's first candidate, not persisted.
  HeuristicFirst,
  /// No timing, no NVRTC (background tuning's first call): the generic family's prebuilt
  /// binary, which runs any problem while the candidates are timed; not persisted.
  Prebuilt,
};

/// Whether plan_for consults the cache first.
enum class CacheUse {
  Lookup,  ///< a cached winner ends the search
  Retune,  ///< time the candidates even if a winner is cached
};

/// "B=8 I=1024 H=256 O=128 tf32": a problem in the logs.
std::string describe(const Shape& s);

/// A non-blocking stream of the engine's own, in the current context: nothing it runs waits for
/// the caller's streams (the legacy default stream among them), nor they for it.
class OwnStream {
 public:
  /// `highest`: the context's highest stream priority, whose CTAs the GPU dispatches before those
  /// of other streams waiting for room. Throws LaunchFailed.
  explicit OwnStream(bool highest = false);
  /// Waits for the stream's work, then destroys it; the context must be current.
  ~OwnStream();
  OwnStream(const OwnStream&) = delete;
  OwnStream& operator=(const OwnStream&) = delete;
  CUstream get() const { return stream_; }

 private:
  CUstream stream_ = nullptr;
};

/// Random buffers of one problem (inputs like torch.rand, weights scaled as nn.Linear's, outputs,
/// launch counters) on a stream of their own: where candidates are timed apart from the caller's
/// buffers and streams (prewarm, background tuning). Made in the current context, which must be
/// current when it goes.
class Scratch {
 public:
  /// Allocates and fills the buffers, and waits for them. Throws LaunchFailed, OutOfMemory.
  Scratch(const Shape& s, Jit& jit, const std::string& arch);

  /// Bytes of device memory a Scratch of `s` allocates.
  static std::size_t bytes(const Shape& s);

  CUstream stream() const { return stream_.get(); }
  const Args& args() const { return args_; }

 private:
  DeviceBuffer x_, h_, h_out_, y_, w1_, b1_, w2_, b2_, proj_, counters_;
  // After the buffers: its work is done before they are freed. The highest priority: timing
  // beside a busy caller (background tuning), a candidate's CTAs go before the caller's waiting ones.
  OwnStream stream_{true};
  Args args_;
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

  /// The best-ranked config whose launches take any pointer aligned to its element (no TMA): what runs
  /// when a plan does not accept the caller's pointers.
  Config fallback(const Shape& shape) const;

  /// Compiles `configs` in parallel (one NVRTC job a core) and times each on `stream` with `args`
  /// (whose outputs must be scratch) as soon as its stages are built; with `rounds` > 1 the ones
  /// that ran are timed again, in turn, each round within 1/rounds of one timing's GPU budget, and
  /// each keeps its fastest round. A failing candidate is data (its disposition, time +inf). Returns
  /// the winner loaded and the record (not persisted: see Tuned::record); nullopt once `stop` is
  /// requested (seen between compiles and between timings). Throws CompileFailed when every
  /// candidate failed. With `aside` (background tuning), a driver failure that is not the
  /// candidate's own (the context in a sticky error, a capture forbidding the call, memory) ends
  /// the measure with that Error instead of being recorded against the candidate.
  std::optional<Tuned> measure(const Shape& shape, const std::vector<Config>& configs, const Args& args, CUstream stream,
                               int rounds = 1, std::stop_token stop = {}, bool aside = false);

  /// Writes `tuned`'s record (from measure()) to the cache.
  void persist(const Tuned& tuned);

  /// Background tuning of `shape`: measure() of its candidates in kBackgroundRounds rounds on a
  /// Scratch (stream and buffers) of its own, beside whatever the caller's streams run; nothing
  /// waits on the caller's streams. The engine's context must be current. Not persisted: the
  /// caller persists the result if it uses it.
  std::optional<Tuned> tune_aside(const Shape& shape, std::stop_token stop);

  /// Compiles (or fetches) and loads one config.
  std::shared_ptr<Plan> build(const Config& config, const Shape& shape);

  std::int64_t tunings() const { return tunings_; }
  std::int64_t cache_hits() const { return cache_hits_; }

 private:
  cache::TuningKey key(const Shape& shape) const;
  std::vector<Config> propose_sequence(const Shape& shape) const;

  const DeviceInfo& device_;
  Jit& jit_;
  cache::Store& store_;
  std::atomic<std::int64_t> tunings_{0};
  std::atomic<std::int64_t> cache_hits_{0};
};

/// GPU time that timing one candidate takes, about (time_plan's budget).
constexpr double kTimingBudgetMs = 20;

/// Rounds of background tuning: the caller's kernels may run beside it, so a candidate is timed
/// three times, interleaved with the others, and keeps its fastest round (see measure()).
constexpr int kBackgroundRounds = 3;

/// Time in µs of one call of `plan` back to back on `stream` (the median over at most `max_groups`
/// event pairs, each around up to 16 consecutive calls: a recurrent loop's steady state, where a
/// dependent launch overlaps the one before it), after a warm-up call; about `budget_ms` of GPU
/// time. Throws LaunchFailed.
double time_plan(const Plan& plan, const Args& args, CUstream stream, int max_groups = 20,
                 double budget_ms = kTimingBudgetMs);

}  // namespace rnnjit
