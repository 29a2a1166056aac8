#include "plan_cache.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "support/log.hpp"

namespace rnnjit {
namespace {

// The queues alive in this process, stopped when it exits (see BackgroundQueue).
struct LiveQueues {
  std::mutex mu;
  std::vector<BackgroundQueue*> queues;
};

LiveQueues& live_queues() {
  static LiveQueues* const live = new LiveQueues;  // never destroyed: the exit handler uses it
  return *live;
}

void stop_at_exit() {
  LiveQueues& live = live_queues();
  // Held while stopping: a queue being destroyed meanwhile waits here before it goes.
  std::lock_guard lock(live.mu);
  for (BackgroundQueue* q : live.queues) q->stop();
}

// Registers stop_at_exit once, when the first worker starts. Exit handlers and static destructors
// run in the reverse order of their registration and construction, so the handler runs before
// the destructors of the statics made before it: the logger, the driver's table, and what the
// engine's first calls made (the template hash, the NVRTC version, the families' pools).
void stop_at_exit_once() {
  [[maybe_unused]] static const bool registered = [] {
    support::log();  // made before the handler, so it outlives the jobs it stops
    const bool ok = std::atexit(stop_at_exit) == 0;
    if (!ok) support::log().warn("cannot register an exit handler: background tuning is not stopped at exit");
    return ok;
  }();
}

}  // namespace

const char* tuning_mode_name(TuningMode m) noexcept {
  return m == TuningMode::Background ? "background" : "blocking";
}

TuningMode resolve_tuning_mode(const std::optional<TuningMode>& option) {
  if (option) return *option;
  const char* env = std::getenv("RNNJIT_TUNING");
  if (!env || !*env) return TuningMode::Blocking;
  for (const TuningMode m : {TuningMode::Blocking, TuningMode::Background})
    if (std::string(env) == tuning_mode_name(m)) return m;
  support::log().warn("RNNJIT_TUNING='{}' is neither blocking nor background; tuning blocks", env);
  return TuningMode::Blocking;
}

BackgroundQueue::BackgroundQueue() {
  LiveQueues& live = live_queues();
  std::lock_guard lock(live.mu);
  live.queues.push_back(this);
}

BackgroundQueue::~BackgroundQueue() {
  {
    LiveQueues& live = live_queues();
    std::lock_guard lock(live.mu);
    live.queues.erase(std::find(live.queues.begin(), live.queues.end(), this));
  }
  stop();
}

bool BackgroundQueue::submit(Job job) {
  // A forked child has no worker (and mu_ may be held by the parent's worker, frozen at the
  // fork): a job queued here would never run, so none is.
  if (forked()) return false;
  std::lock_guard lock(mu_);
  if (stopped_) return false;
  jobs_.push_back(std::move(job));
  if (!worker_) {
    stop_at_exit_once();
    owner_.store(getpid());
    worker_ = std::make_unique<std::jthread>([this](std::stop_token stop) { run(stop); });
  }
  wake_.notify_one();
  return true;
}

bool BackgroundQueue::forked() const {
  const pid_t owner = owner_.load();
  return owner != 0 && owner != getpid();
}

void BackgroundQueue::stop() {
  if (forked()) {
    // Checked before any lock: the parent's worker may have held mu_ (or a stop() stop_mu_)
    // when the process forked, and no thread here will ever release it. Only the forking
    // thread exists here, and joining another process's thread is undefined (glibc happens to
    // return at once); the object is dropped, never joined, and submit() refuses from now on.
    static_cast<void>(worker_.release());
    return;
  }
  std::lock_guard stopping(stop_mu_);
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    jobs_.clear();
  }
  if (!worker_) return;
  worker_->request_stop();  // wakes the idle worker too: its wait takes the token
  worker_->join();
  worker_.reset();
}

std::int64_t BackgroundQueue::pending() const {
  if (forked()) return 0;  // nothing runs here; and mu_ may be held for good (see stop)
  std::lock_guard lock(mu_);
  return static_cast<std::int64_t>(jobs_.size()) + running_;
}

void BackgroundQueue::run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (wake_.wait(lock, stop, [&] { return !jobs_.empty(); })) {
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    // A thread of the library must not end the process: the job's failure is its own.
    try {
      job(stop);
    } catch (const std::exception& e) {
      support::log().warn("background job failed: {}", e.what());
    } catch (...) {
      support::log().warn("background job failed with an exception that is not a std::exception");
    }
    lock.lock();
    --running_;
  }
}

std::size_t PlanCache::ShapeHash::operator()(const Shape& s) const noexcept {
  std::size_t h = static_cast<std::size_t>(s.precision) * 31u + static_cast<std::size_t>(s.dtype);
  for (int v : {s.b, s.i, s.h, s.o, s.steps}) h = h * 1000003u ^ static_cast<std::size_t>(v);
  return h;
}

std::shared_ptr<Plan> PlanCache::plan(const Shape& s, const Args& args, CUstream stream) {
  // The plan in the map, unless it is a capture's untimed pick and this call may tune.
  auto cached = [&](bool capturing) -> std::shared_ptr<Plan> {
    std::shared_lock lock(plans_mu_);
    auto it = plans_.find(s);
    return it != plans_.end() && (it->second.state != PlanState::Untuned || capturing) ? it->second.plan : nullptr;
  };
  if (auto p = cached(false)) return for_pointers(std::move(p), s, args);
  std::unique_lock tuning(tune_mu_);
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  RNNJIT_CU(cuStreamIsCapturing(stream, &capture));
  const bool capturing = capture != CU_STREAM_CAPTURE_STATUS_NONE;
  std::shared_ptr<Plan> p = cached(capturing);
  if (!p) p = make_plan(s, args, stream, capturing);
  tuning.unlock();  // for_pointers may take it
  return for_pointers(std::move(p), s, args);
}

std::shared_ptr<Plan> PlanCache::make_plan(const Shape& s, const Args& args, CUstream stream, bool capturing) {
  if (s.steps > 0) {
    std::optional<Config> pinned;
    {
      std::shared_lock lock(plans_mu_);
      const auto it = pinned_sequences_.find(one_step(s));
      if (it != pinned_sequences_.end()) pinned = it->second;
    }
    if (pinned) {
      auto p = tuner_.build(*pinned, s);
      install(s, p, PlanState::Tuned);
      return p;
    }
  }
  const bool background = mode_ == TuningMode::Background && !capturing;
  if (background) {
    // A capture's untimed pick (the only entry cached() passes over) runs on while it is tuned.
    std::unique_lock lock(plans_mu_);
    if (auto it = plans_.find(s); it != plans_.end()) {
      it->second.state = PlanState::Tuning;
      std::shared_ptr<Plan> p = it->second.plan;
      lock.unlock();  // the job installs under it
      start_background(s);
      return p;
    }
  }
  if (capturing || background) {
    try {
      // Outside a capture the prebuilt generic plan runs while the candidates compile; a graph
      // keeps its plan, so a capture gets the heuristic's pick.
      Tuned t = tuner_.plan_for(s, args, stream, capturing ? Timing::HeuristicFirst : Timing::Prebuilt, CacheUse::Lookup);
      const PlanState state = t.report.from_cache ? PlanState::Tuned : capturing ? PlanState::Untuned : PlanState::Tuning;
      install(s, t.plan, state);
      if (state == PlanState::Tuning) start_background(s);
      return t.plan;
    } catch (const Error& e) {
      // A first plan that cannot be built here (the prebuilt one on a GPU older than it) is one
      // failing candidate: this call tunes now, where every candidate's failure is data.
      const ErrorCode c = e.code();
      if (!background || (c != ErrorCode::CompileFailed && c != ErrorCode::LaunchFailed && c != ErrorCode::Unsupported))
        throw;
      support::log().warn("{}: the first plan cannot run here ({}); tuning now", describe(s), e.what());
    }
  }
  // Timing runs write only scratch, so the caller's outputs (and an h_out aliasing h) see
  // exactly one run: the real one after tuning. A sequence chunk is timed whole: its states and
  // y rows for every step of the chunk (its x holds them all).
  const std::size_t rows = std::size_t(s.b) * std::max(s.steps, 1), hb = rows * s.h, yb = rows * s.o;
  DeviceBuffer scratch(hb + yb);
  Args timing = args;
  timing.h_out = scratch.get();
  timing.y = scratch.get() + hb;
  if (s.steps > 0) timing.steps = s.steps;
  Tuned t = tuner_.plan_for(s, timing, stream, Timing::Measure, CacheUse::Lookup);
  RNNJIT_CU(cuStreamSynchronize(stream));  // scratch is freed next
  install(s, t.plan, PlanState::Tuned);
  return t.plan;
}

void PlanCache::start_background(const Shape& s) {
  if (!background_.submit([this, s](std::stop_token stop) { tune_in_background(s, stop); })) {
    support::log().debug("{}: no background tuning (the engine is going, or this is a forked process)", describe(s));
    settle_untimed(s);  // no job will: the entry must not stay Tuning, nor run the generic plan for good
    return;
  }
  background_tunings_.fetch_add(1);
}

void PlanCache::settle(const Shape& s) {
  std::unique_lock lock(plans_mu_);
  if (auto it = plans_.find(s); it != plans_.end() && it->second.state == PlanState::Tuning)
    it->second.state = PlanState::Tuned;
}

void PlanCache::settle_untimed(const Shape& s) {
  std::shared_ptr<Plan> pick;
  try {
    const std::vector<Config> configs = tuner_.propose(s);
    if (!configs.empty()) pick = tuner_.build(configs[0], s);
  } catch (const std::exception& e) {
    support::log().warn("{}: the heuristic's first candidate cannot be built either ({}); the first plan stays",
                        describe(s), e.what());
  }
  std::unique_lock lock(plans_mu_);
  auto it = plans_.find(s);
  if (it == plans_.end() || it->second.state != PlanState::Tuning) return;  // tune() or pin() came first
  if (pick) {
    retired_.push_back(std::move(it->second.plan));
    it->second.plan = std::move(pick);
  }
  it->second.state = PlanState::Tuned;
}

void PlanCache::tune_in_background(const Shape& s, std::stop_token stop) {
  // Everything inside the outer try, the context's push first: a failure anywhere (the push
  // included) settles the entry instead of leaving it Tuning, and the plans unload in the context.
  try {
    const ContextScope scope(ctx_);
    const RelaxedCapture relaxed;
    std::optional<Tuned> t;
    try {
      t = tuner_.tune_aside(s, stop);
    } catch (const std::exception& e) {
      // No winner (no memory to time apart, every candidate failed): the heuristic's pick
      // replaces the generic plan, untimed, and no later call starts another job.
      support::log().warn("background tuning of {} failed ({}); the heuristic's first candidate runs, untimed",
                          describe(s), e.what());
      return settle_untimed(s);
    }
    if (!t) return settle(s);  // stopped: the engine is going
    // Under tune_mu_ from the check to the write, so that a tune() or pin() cannot come between:
    // theirs is persisted after this one, or this one is not persisted at all.
    std::lock_guard tuning(tune_mu_);
    {
      std::unique_lock lock(plans_mu_);
      auto it = plans_.find(s);
      // tune() or pin() replaced the heuristic's pick meanwhile: theirs stays, in the cache too.
      if (it == plans_.end() || it->second.state != PlanState::Tuning) return;
      support::log().debug("{}: background tuning installs {} in place of {}", describe(s), t->report.winner,
                           it->second.plan->config().name());
      retired_.push_back(std::move(it->second.plan));
      it->second = {std::move(t->plan), PlanState::Tuned};
    }
    tuner_.persist(*t);  // after plans_mu_: the steps of other problems do not wait on SQLite
  } catch (const std::exception& e) {
    // The plan it runs goes on, as tuned, so that no later call starts another job.
    support::log().warn("background tuning of {} failed ({}); the plan it runs stays", describe(s), e.what());
    settle(s);
  } catch (...) {
    support::log().warn("background tuning of {} failed; the plan it runs stays", describe(s));
    settle(s);
  }
}

std::shared_ptr<Plan> PlanCache::for_pointers(std::shared_ptr<Plan> plan, const Shape& s, const Args& args) {
  if (plan->accepts(args)) return plan;
  auto cached = [&]() -> std::shared_ptr<Plan> {
    std::shared_lock lock(plans_mu_);
    auto it = unaligned_.find(s);
    return it != unaligned_.end() ? it->second : nullptr;
  };
  if (auto p = cached()) return p;
  std::lock_guard tuning(tune_mu_);  // one build per problem; steps of other problems go on
  if (auto p = cached()) return p;
  auto built = tuner_.build(tuner_.fallback(s), s);
  support::log().info("{}: pointers not 16-byte aligned, using {}", describe(s), built->config().name());
  std::unique_lock lock(plans_mu_);
  return unaligned_[s] = std::move(built);
}

TuneReport PlanCache::tune(const Shape& s, const Args& args, CUstream stream, CacheUse cache) {
  std::lock_guard tuning(tune_mu_);
  Tuned t = tuner_.plan_for(s, args, stream, Timing::Measure, cache);
  RNNJIT_CU(cuStreamSynchronize(stream));
  install(s, t.plan, PlanState::Tuned);
  return t.report;
}

void PlanCache::pin(const Shape& s, const Config& config) {
  std::lock_guard tuning(tune_mu_);
  if (!config.is_sequence()) return install(s, tuner_.build(config, s), PlanState::Tuned);
  // Every chunk size of the problem's sequences, each built at its first use (make_plan).
  std::unique_lock lock(plans_mu_);
  pinned_sequences_[s] = config;
  auto of_problem = [&](const Shape& k) { return k.steps > 0 && one_step(k) == s; };
  for (auto it = plans_.begin(); it != plans_.end();) {
    if (!of_problem(it->first)) {
      ++it;
      continue;
    }
    retired_.push_back(std::move(it->second.plan));
    it = plans_.erase(it);
  }
  std::erase_if(unaligned_, [&](auto& e) {
    if (!of_problem(e.first)) return false;
    retired_.push_back(std::move(e.second));
    return true;
  });
}

PlanInfo PlanCache::info(const Shape& s) const {
  std::shared_lock lock(plans_mu_);
  auto it = plans_.find(s);
  if (it == plans_.end()) return {};
  return {it->second.state, it->second.plan->config().name()};
}

void PlanCache::clear() {
  background_.stop();  // before the locks: the job installs under plans_mu_
  std::lock_guard tuning(tune_mu_);
  std::unique_lock lock(plans_mu_);
  plans_.clear();
  unaligned_.clear();
  pinned_sequences_.clear();
  retired_.clear();
}

void PlanCache::install(const Shape& s, std::shared_ptr<Plan> plan, PlanState state) {
  std::unique_lock lock(plans_mu_);
  Entry& e = plans_[s];
  if (e.plan) retired_.push_back(e.plan);
  e = {std::move(plan), state};
}

}  // namespace rnnjit
