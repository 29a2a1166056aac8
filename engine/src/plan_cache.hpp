// The engine's plans in memory: per problem the tuned plan (tuning on a miss, now or in the
// background), the plan for pointers it does not take, and every plan replaced while a captured
// graph may still use it.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <stop_token>
#include <thread>

#include <sys/types.h>
#include <unordered_map>
#include <vector>

#include "tuner.hpp"

namespace rnnjit {

/// `option` if given, else $RNNJIT_TUNING ("blocking" or "background"; anything else is warned
/// about and ignored), else Blocking.
TuningMode resolve_tuning_mode(const std::optional<TuningMode>& option);

/// "blocking", "background": as $RNNJIT_TUNING spells them.
const char* tuning_mode_name(TuningMode m) noexcept;

/// One worker thread that runs jobs in the order they were submitted: the background tuner's,
/// apart from CUDA so that its life cycle is tested without a GPU. The thread starts at the first
/// submit. A job gets a stop token and should return soon once a stop is requested; an exception
/// it throws is logged and the next job runs. Thread-safe.
///
/// stop() (and the destructor) drops the queued jobs, requests the running one to stop and joins
/// it. So does the end of the process (std::exit, or main returning) for every queue still alive:
/// an engine never destroyed does not leave its thread running into the library's static
/// destructors. In a process forked from the one that started the worker there is no such thread:
/// stop() drops the queue without waiting or locking, pending() is 0 and submit() refuses.
class BackgroundQueue {
 public:
  using Job = std::function<void(std::stop_token)>;

  BackgroundQueue();
  ~BackgroundQueue();
  BackgroundQueue(const BackgroundQueue&) = delete;
  BackgroundQueue& operator=(const BackgroundQueue&) = delete;

  /// Queues `job`; false (and the job dropped) once stop() was called, or in a forked process.
  bool submit(Job job);
  /// See the class comment; idempotent. Never call it from a job.
  void stop();
  /// Jobs queued or running.
  std::int64_t pending() const;

 private:
  void run(std::stop_token stop);
  // True in a process forked from the one that started the worker; takes no lock.
  bool forked() const;

  std::mutex stop_mu_;  // one stop() at a time: the engine's and the exit handler's may meet
  // Guards what follows but owner_ and worker_, which only submit (before stopped_) and stop() touch.
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::deque<Job> jobs_;
  std::int64_t running_ = 0;
  bool stopped_ = false;
  std::atomic<pid_t> owner_{0};  // the process that started the worker; read without a lock
  std::unique_ptr<std::jthread> worker_;  // last: joined first
};

class PlanCache {
 public:
  /// Background tuning, when `mode` asks for it, runs on a thread of its own in `ctx`.
  PlanCache(Tuner& tuner, TuningMode mode, CUcontext ctx) : tuner_(tuner), mode_(mode), ctx_(ctx) {}

  /// The plan that runs `s` with `args`' pointers on `stream`: the tuned plan, else the cached
  /// winner, else per the tuning mode either tuned now (timing writes scratch outputs, never the
  /// caller's) or the heuristic's first candidate while a background job times the others; inside
  /// graph capture the heuristic's first candidate, tuned on the next uncaptured call. Where the
  /// plan does not take the pointers, the problem's plan without TMA. Thread-safe; steps of other
  /// problems go on while one tunes.
  std::shared_ptr<Plan> plan(const Shape& s, const Args& args, CUstream stream);

  /// Tunes `s` now with `args` (scratch buffers, filled), per `cache`, and uses the winner from
  /// now on.
  TuneReport tune(const Shape& s, const Args& args, CUstream stream, CacheUse cache);

  /// Runs `s` with `config` from now on, untimed. A sequence config (xproj, recur, h2o) runs the
  /// sequences of the problem `s` (steps 0), every chunk size.
  void pin(const Shape& s, const Config& config);

  /// What runs `s` now.
  PlanInfo info(const Shape& s) const;

  /// Problems handed to the background tuner, and how many of them are not finished.
  std::int64_t background_tunings() const { return background_tunings_; }
  std::int64_t background_pending() const { return background_.pending(); }

  /// Stops background tuning (the running job stops at its next check) and waits for it; the
  /// plans it would have installed are dropped. Then unloads every plan. In the engine's context,
  /// before it goes.
  void clear();

 private:
  struct ShapeHash {
    std::size_t operator()(const Shape& s) const noexcept;
  };
  // A plan in the hot map and where it stands (PlanState): Untuned is the heuristic's untimed
  // pick made while a stream was capturing, replaced at the next uncaptured call; Tuning is the
  // heuristic's pick running while a background job times the candidates.
  struct Entry {
    std::shared_ptr<Plan> plan;
    PlanState state = PlanState::Tuned;
  };
  std::shared_ptr<Plan> for_pointers(std::shared_ptr<Plan> plan, const Shape& s, const Args& args);
  // The plan of a problem no entry has tuned, made under tune_mu_.
  std::shared_ptr<Plan> make_plan(const Shape& s, const Args& args, CUstream stream, bool capturing);
  void install(const Shape& s, std::shared_ptr<Plan> plan, PlanState state);  // under tune_mu_
  // Under tune_mu_ with `s`'s entry Tuning: queues the job that tunes it.
  void start_background(const Shape& s);
  // `s`'s entry, if Tuning, becomes Tuned with the plan it runs: for every way a job ends without
  // installing, so that no entry stays Tuning for good.
  void settle(const Shape& s);
  // No job will time `s`: the heuristic's first candidate, built untimed and not persisted,
  // replaces the first plan (the slow generic one) and the entry, if still Tuning, becomes Tuned;
  // where it cannot be built the first plan stays. In the engine's context.
  void settle_untimed(const Shape& s);
  // The background job: times `s`'s candidates and installs and persists the winner unless the
  // entry was replaced meanwhile (tune, pin), in which case nothing is written.
  void tune_in_background(const Shape& s, std::stop_token stop);

  Tuner& tuner_;
  const TuningMode mode_;
  const CUcontext ctx_;
  mutable std::shared_mutex plans_mu_;  // guards the maps
  std::unordered_map<Shape, Entry, ShapeHash> plans_;
  std::unordered_map<Shape, std::shared_ptr<Plan>, ShapeHash> unaligned_;  // built on first need
  std::unordered_map<Shape, Config, ShapeHash> pinned_sequences_;        // by the problem's step Shape
  // Replaced plans stay loaded: a CUDA graph captured with one may still launch it.
  std::vector<std::shared_ptr<Plan>> retired_;
  std::mutex tune_mu_;  // one tuning or build at a time in the callers' threads
  std::atomic<std::int64_t> background_tunings_{0};
  BackgroundQueue background_;  // last: its job uses the members above, and stops first
};

}  // namespace rnnjit
