#include "plan_cache.hpp"

#include "support/log.hpp"

namespace rnnjit {

std::size_t PlanCache::ShapeHash::operator()(const Shape& s) const noexcept {
  std::size_t h = static_cast<std::size_t>(s.precision) * 31u + static_cast<std::size_t>(s.dtype);
  for (int v : {s.b, s.i, s.h, s.o}) h = h * 1000003u ^ static_cast<std::size_t>(v);
  return h;
}

std::shared_ptr<Plan> PlanCache::plan(const Shape& s, const Args& args, CUstream stream) {
  // The plan in the map, if it is tuned (or, while capturing, any).
  auto cached = [&](bool capturing) -> std::shared_ptr<Plan> {
    std::shared_lock lock(plans_mu_);
    auto it = plans_.find(s);
    return it != plans_.end() && (it->second.tuned || capturing) ? it->second.plan : nullptr;
  };
  if (auto p = cached(false)) return for_pointers(std::move(p), s, args);
  std::unique_lock tuning(tune_mu_);
  CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
  RNNJIT_CU(cuStreamIsCapturing(stream, &capture));
  const bool capturing = capture != CU_STREAM_CAPTURE_STATUS_NONE;
  if (auto p = cached(capturing)) {
    tuning.unlock();  // for_pointers may take it
    return for_pointers(std::move(p), s, args);
  }
  Tuned t;
  if (capturing) {
    t = tuner_.plan_for(s, args, stream, Timing::HeuristicFirst, CacheUse::Lookup);
  } else {
    // Timing runs write only scratch, so the caller's outputs (and an h_out aliasing h) see
    // exactly one run: the real one after tuning.
    const std::size_t hb = std::size_t(s.b) * s.h, yb = std::size_t(s.b) * s.o;
    DeviceBuffer scratch(hb + yb);
    Args timing = args;
    timing.h_out = scratch.get();
    timing.y = scratch.get() + hb;
    t = tuner_.plan_for(s, timing, stream, Timing::Measure, CacheUse::Lookup);
    RNNJIT_CU(cuStreamSynchronize(stream));  // scratch is freed next
  }
  install(s, t.plan, !capturing || t.report.from_cache);
  tuning.unlock();  // for_pointers may take it
  return for_pointers(t.plan, s, args);
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
  support::log().info("B={} I={} H={} O={}: pointers not 16-byte aligned, using {}", s.b, s.i, s.h, s.o,
                      built->config().name());
  std::unique_lock lock(plans_mu_);
  return unaligned_[s] = std::move(built);
}

TuneReport PlanCache::tune(const Shape& s, const Args& args, CUstream stream, CacheUse cache) {
  std::lock_guard tuning(tune_mu_);
  Tuned t = tuner_.plan_for(s, args, stream, Timing::Measure, cache);
  RNNJIT_CU(cuStreamSynchronize(stream));
  install(s, t.plan, true);
  return t.report;
}

void PlanCache::pin(const Shape& s, const Config& config) {
  std::lock_guard tuning(tune_mu_);
  install(s, tuner_.build(config, s), true);
}

void PlanCache::clear() {
  std::lock_guard tuning(tune_mu_);
  std::unique_lock lock(plans_mu_);
  plans_.clear();
  unaligned_.clear();
  retired_.clear();
}

void PlanCache::install(const Shape& s, std::shared_ptr<Plan> plan, bool tuned) {
  std::unique_lock lock(plans_mu_);
  Entry& e = plans_[s];
  if (e.plan) retired_.push_back(e.plan);
  e = {std::move(plan), tuned};
}

}  // namespace rnnjit
