// The engine's plans in memory: per problem the tuned plan (tuning on a miss), the plan for
// pointers it does not take, and every plan replaced while a captured graph may still use it.
#pragma once

#include <memory>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>
#include <vector>

#include "tuner.hpp"

namespace rnnjit {

class PlanCache {
 public:
  explicit PlanCache(Tuner& tuner) : tuner_(tuner) {}

  /// The plan that runs `s` with `args`' pointers on `stream`: the tuned plan, tuned now on a miss
  /// (timing writes scratch outputs, never the caller's), or inside graph capture the heuristic's
  /// first candidate, tuned on the next uncaptured call; where the plan does not take the
  /// pointers, the problem's plan without TMA. Thread-safe; steps of other problems go on while
  /// one tunes.
  std::shared_ptr<Plan> plan(const Shape& s, const Args& args, CUstream stream);

  /// Tunes `s` now with `args` (scratch buffers, filled), per `cache`, and uses the winner from
  /// now on.
  TuneReport tune(const Shape& s, const Args& args, CUstream stream, CacheUse cache);

  /// Runs `s` with `config` from now on, untimed.
  void pin(const Shape& s, const Config& config);

  /// Unloads every plan (in the engine's context, before it goes).
  void clear();

 private:
  struct ShapeHash {
    std::size_t operator()(const Shape& s) const noexcept;
  };
  // A plan in the hot map; `tuned` is false for the heuristic's untimed pick made while a stream
  // was capturing, which the next uncaptured call replaces by a tuned one.
  struct Entry {
    std::shared_ptr<Plan> plan;
    bool tuned = false;
  };
  std::shared_ptr<Plan> for_pointers(std::shared_ptr<Plan> plan, const Shape& s, const Args& args);
  void install(const Shape& s, std::shared_ptr<Plan> plan, bool tuned);  // under tune_mu_

  Tuner& tuner_;
  std::shared_mutex plans_mu_;  // guards the maps
  std::unordered_map<Shape, Entry, ShapeHash> plans_;
  std::unordered_map<Shape, std::shared_ptr<Plan>, ShapeHash> unaligned_;  // built on first need
  // Replaced plans stay loaded: a CUDA graph captured with one may still launch it.
  std::vector<std::shared_ptr<Plan>> retired_;
  std::mutex tune_mu_;  // one tuning or build at a time
};

}  // namespace rnnjit
