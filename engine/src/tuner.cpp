#include "tuner.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <future>
#include <semaphore>
#include <limits>
#include <thread>

#include "driver.hpp"
#include "gate.hpp"
#include "support/log.hpp"

namespace rnnjit {
namespace {

// The tiles the heuristic chooses among.
const Tile kTiles[] = {
    Tile::mma(16, 32, 32, 1, 2, 4),   Tile::mma(16, 64, 32, 1, 4, 4),  Tile::mma(32, 32, 32, 1, 2, 4),
    Tile::mma(32, 64, 32, 2, 2, 4),   Tile::mma(64, 64, 32, 2, 2, 4),  Tile::mma(64, 128, 32, 2, 4, 3),
    Tile::mma(128, 64, 32, 4, 2, 3),  Tile::mma(128, 128, 32, 2, 4, 3), Tile::gemv(1, 4, 4),
    Tile::gemv(2, 4, 4),              Tile::gemv(4, 4, 2),              Tile::gemv(1, 8, 2),
    // Hopper: ~128 CTAs in clusters of 8 (or 16, or 4) splitting K, 64 for GPUs with fewer SMs.
    Tile::fused(128, 8, 8),           Tile::fused(128, 16, 8),          Tile::fused(128, 4, 8),
    Tile::fused(64, 8, 8),
    // One CTA a SM over (nearly) every SM; 64 for GPUs with fewer than 128. More warps: a
    // shorter K slice a warp, fewer loads in its one round.
    Tile::grid(128, 8),               Tile::grid(128, 16),              Tile::grid(64, 16),
    // Weights too large to hold: one CTA a SM streams them, 8 W2 rows a CTA (128 KiB at H = 4096)
    // staged across the grid barrier; more rows a warp for larger batches (A is re-read once per
    // ROWS rows); 64 CTAs for GPUs with fewer than 128 SMs.
    Tile::stream(128, 16, 1, 8, 8),   Tile::stream(128, 16, 1, 4, 8),   Tile::stream(128, 8, 2, 4, 8), 
    Tile::stream(128, 8, 4, 2, 8),    Tile::stream(64, 16, 1, 8, 4),
    // The same on tensor cores, for batches of 4 to 16: 8 to 16 KiB of W in flight a warp, 64 to
    // 128 KiB a SM; two 16-row blocks a warp where registers allow (batch ≤ 8), else one. At 16
    // warps the staged W2 chunks measured no gain at batches 4 and 8 (H200): none there.
    Tile::gridmma(128, 16, 2, 2, 0),  Tile::gridmma(128, 8, 2, 4, 1),   Tile::gridmma(128, 16, 1, 2, 2),
    Tile::gridmma(128, 8, 2, 2, 1),   Tile::gridmma(64, 16, 2, 2, 0),
    // Hopper. Batch 256 (kb-large): one M tile over the whole batch streams W once, 128 N
    // tiles fill 132 SMs, or half as many with K split in two. Batch ≤ 64 (mid): n64 tiles
    // with K split 2 to 8 ways, since A is re-read from L2 once per N tile. The shallower
    // rings fit fp32's cross copy of A in every slot (a 128x128 fp32 tile takes 4 stages at most).
    Tile::wgmma(256, 128, 2, 4, 1),   Tile::wgmma(256, 128, 2, 4, 2),  Tile::wgmma(128, 128, 2, 6, 1),
    Tile::wgmma(128, 128, 2, 4, 1),   Tile::wgmma(128, 128, 2, 3, 1),  Tile::wgmma(256, 64, 2, 2, 1),
    Tile::wgmma(64, 128, 1, 6, 4),    Tile::wgmma(64, 64, 1, 8, 2),    Tile::wgmma(64, 64, 1, 8, 3),
    Tile::wgmma(64, 64, 1, 8, 4),     Tile::wgmma(64, 64, 1, 8, 6),    Tile::wgmma(64, 64, 1, 8, 8),
    Tile::wgmma(64, 64, 1, 4, 3),     Tile::wgmma(64, 64, 1, 4, 4),    Tile::wgmma(64, 64, 1, 4, 6),
    // Batch ≤ 16: W's rows on the M side and a 16-row batch tile (n16), so that the ring holds
    // ~180 KiB of W in flight a SM (tf32; fp32's slots also hold A's cross copy: 144 KiB in 18);
    // 128 CTAs at 4096 columns.
    Tile::wgmma(16, 64, 1, 22, 2),    Tile::wgmma(16, 128, 1, 12, 4),  Tile::wgmma(16, 64, 1, 18, 2),
};

// Rough cost models, only to order the candidates that are then timed.
// Mma: waves of CTAs over the SMs, each CTA's work (MACs plus operand traffic, which
// dominates small tiles), and a penalty when too few warps are resident to hide latency.
double estimate_mma(const Tile& t, const Shape& s, int m, int n, int k, const DeviceInfo& d) {
  const double ctas = std::ceil(double(m) / t.bm) * std::ceil(double(n) / t.bn);
  const double by_smem = std::floor(double(d.smem_per_block_optin) / double(t.smem_bytes(s)));
  const double occupancy = std::max(1.0, std::min({by_smem, 2048.0 / t.threads(), 32.0}));
  const double per_sm = std::ceil(ctas / d.sm_count);
  const double waves = std::ceil(per_sm / occupancy);
  const double resident_warps = std::min(per_sm, occupancy) * t.threads() / 32.0;
  const double mac_weight = s.math == Math::Fp32 ? 3.0 : 1.0;  // 3xTF32
  const double cta_cost = double(k) * (t.bm * t.bn * mac_weight + 8.0 * (t.bm + t.bn));
  return waves * std::min(per_sm, occupancy) * cta_cost * (1.0 + 8.0 / std::min(resident_warps, 16.0));
}

// Gemv: the weights stream once; what varies is how many warps there are to keep loads in
// flight (16 a SM saturate) and how often A is re-read per weight (M/ROWS).
double estimate_gemv(const Tile& t, int m, int n, int k, const DeviceInfo& d) {
  const double warps = std::ceil(double(n) / t.rows);
  const double fill = std::min(1.0, warps / (16.0 * d.sm_count));
  return double(n) * k * (1.0 + double(m) / (8.0 * t.rows)) / fill;
}

// The one-launch streaming steps: the weights stream once at HBM rate when enough bytes are in
// flight (~32 KiB a SM) and the CTAs' own load units keep up (~40 GB/s a SM); the batch's A
// ([x | h], then h'), re-read by every CTA, goes at ~120 GB/s a SM with its misses to L2, which
// bounds larger batches.
double streamed(const Tile& t, double weights, double in_flight, double a_bytes) {
  const double rate = std::min({3.0e12, t.cluster * 40e9, 3.0e12 * in_flight / (4 << 20)});
  return std::max(weights / rate, a_bytes / 120e9);
}

// GridStream: every ROWS rows re-read A through L1 (measured at batch 8: ROWS 2 78 µs, 4 83, 1 86).
double estimate_stream(const Tile& t, const Shape& s) {
  const double weights = 4.0 * (double(s.h) * (s.i + s.h) + double(s.o) * s.h);
  const double in_flight = double(t.cluster) * t.warps * 32 * 16 * t.unroll * t.rows;
  const double a_bytes = 4.0 * s.b *
                         (std::ceil(double(s.h) / t.cluster / t.rows) * (s.i + s.h) +
                          std::ceil(double(s.o) / t.cluster / t.rows) * s.h);
  return streamed(t, weights, in_flight, a_bytes);
}

// GridMma: as GridStream, the weights at HBM rate when enough are in flight; a CTA's rows come in
// 16-row blocks (the busiest CTA sets the time) and it reads the batch's A once every ROWS blocks.
double estimate_gridmma(const Tile& t, const Shape& s) {
  auto blocks = [&](int n) { return std::ceil(std::ceil(n / 16.0) / t.cluster); };  // a CTA
  const double weights = 4.0 * t.cluster * 16.0 * (blocks(s.h) * (s.i + s.h) + blocks(s.o) * s.h);
  const double in_flight = double(t.cluster) * t.warps * t.unroll * t.rows * 2048;
  const double a_bytes =
      4.0 * s.b * (std::ceil(blocks(s.h) / t.rows) * (s.i + s.h) + std::ceil(blocks(s.o) / t.rows) * s.h);
  return streamed(t, weights, in_flight, a_bytes);
}

// Wgmma, one CTA a SM: waves of CTAs, each the larger of its tensor-core time (~1024 MACs a
// clock, twice for fp32's tf32 + bf16 passes) and its A and W slices through L2 (~32 bytes a
// clock a SM when all stream), plus the split's reduction through DSMEM. Clusters cannot span
// GPCs: on the H100 only 30 of 4 CTAs (not 33) and 15 of 8 are resident at once, so about 10% of
// SMs idle for SPLIT > 2.
double estimate_wgmma(const Tile& t, const Shape& s, int m, int n, int k, const DeviceInfo& d) {
  const double ctas = std::ceil(double(m) / t.bm) * std::ceil(double(n) / t.bn) * t.split;
  const double clusters = std::floor(double(d.sm_count) / t.split * (t.split > 2 ? 0.9 : 1.0));
  const double waves = std::ceil(ctas / (clusters * t.split));
  const double k_cta = std::ceil(std::ceil(k / 32.0) / t.split) * 32.0;
  const double macs = double(t.bm) * t.bn * k_cta * (s.math == Math::Fp32 ? 2.0 : 1.0);
  const double bytes = (t.bm + t.bn) * k_cta * 4.0;
  return waves * (std::max(macs / 1024.0, bytes / 32.0) + t.split * t.bm * t.bn * 4.0 / 32.0);
}

// The tiles of `family` for one stage (output columns n over k), cheapest first.
std::vector<Tile> ranked(Family family, const Shape& s, int n, int k, const DeviceInfo& d) {
  std::vector<std::pair<double, Tile>> scored;
  for (const Tile& t : kTiles) {
    if (t.family != family || static_cast<std::int64_t>(t.smem_bytes(s)) > d.smem_per_block_optin) continue;
    switch (family) {
      case Family::Mma: scored.emplace_back(estimate_mma(t, s, s.b, n, k, d), t); break;
      case Family::Wgmma: scored.emplace_back(estimate_wgmma(t, s, s.b, n, k, d), t); break;
      case Family::GridStream: scored.emplace_back(estimate_stream(t, s), t); break;
      case Family::GridMma: scored.emplace_back(estimate_gridmma(t, s), t); break;
      default: scored.emplace_back(estimate_gemv(t, s.b, n, k, d), t); break;
    }
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<Tile> out;
  for (const auto& [cost, t] : scored) out.push_back(t);
  return out;
}

const char* precision_of(Math m) { return m == Math::Fp32 ? "fp32" : "tf32"; }

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// RAII for the events of one timing.
class Events {
 public:
  explicit Events(std::size_t n) : events_(n, nullptr) {
    for (auto& e : events_) RNNJIT_CU(cuEventCreate(&e, CU_EVENT_DEFAULT));
  }
  ~Events() {
    for (auto e : events_)
      if (e) driver::api().cuEventDestroy(e);
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  CUevent operator[](std::size_t i) const { return events_[i]; }

 private:
  std::vector<CUevent> events_;
};

}  // namespace

std::span<const Tile> tile_pool() { return kTiles; }

double time_plan(const Plan& plan, const StepArgs& args, CUstream stream, int max_groups, double budget_ms) {
  Events ev(2 * static_cast<std::size_t>(max_groups));
  auto elapsed = [&](int i) {
    float ms = 0;
    RNNJIT_CU(cuEventElapsedTime(&ms, ev[2 * i], ev[2 * i + 1]));
    return double(ms);
  };
  // Warm-up, also timed once to size the repeats to the budget.
  RNNJIT_CU(cuEventRecord(ev[0], stream));
  plan.run(args, stream);
  RNNJIT_CU(cuEventRecord(ev[1], stream));
  RNNJIT_CU(cuEventSynchronize(ev[1]));
  const double first_ms = elapsed(0);
  // Calls in the budget; short ones go in groups of up to 16 (the calls of one plan on one stream
  // may share a launch counter: each waits for the one before it).
  const int calls = std::clamp(static_cast<int>(budget_ms / std::max(first_ms, 1e-3)), 3, 16 * max_groups);
  const int per_group = std::clamp(calls / max_groups, 1, 16);
  const int groups = std::clamp(calls / per_group, 3, max_groups);
  {
    Gate gate(stream);
    for (int g = 0; g < groups; ++g) {
      RNNJIT_CU(cuEventRecord(ev[2 * g], stream));
      for (int i = 0; i < per_group; ++i) plan.run(args, stream);
      RNNJIT_CU(cuEventRecord(ev[2 * g + 1], stream));
    }
  }
  RNNJIT_CU(cuEventSynchronize(ev[2 * groups - 1]));
  std::vector<double> times;
  for (int g = 0; g < groups; ++g) times.push_back(elapsed(g) * 1000.0 / per_group);
  std::nth_element(times.begin(), times.begin() + groups / 2, times.end());
  return times[groups / 2];
}

std::vector<Config> Tuner::propose(const Shape& s) const {
  std::vector<Config> out;
  auto add = [&](const Config& c) {
    const bool fits =
        out.size() < 4 && std::find(out.begin(), out.end(), c) == out.end() && can_implement(c, s, device_, nullptr);
    if (fits) out.push_back(c);
    return fits;
  };
  const auto mma_i2h = ranked(Family::Mma, s, s.h, s.i + s.h, device_);
  const auto mma_h2o = ranked(Family::Mma, s, s.o, s.h, device_);
  // Hopper's TMA + wgmma pairs, where the shape allows them (can_implement screens the rest).
  auto add_wgmma = [&](std::size_t pairs) {
    const auto i2h = ranked(Family::Wgmma, s, s.h, s.i + s.h, device_);
    const auto h2o = ranked(Family::Wgmma, s, s.o, s.h, device_);
    for (std::size_t r = 0; r < pairs && r < i2h.size() && r < h2o.size(); ++r) add({i2h[r], h2o[r]});
  };
  if (s.b > 16) add_wgmma(2);
  if (s.b <= 16) {
    // Few rows: streaming the weights is the whole cost. Small problems are latency-bound: the
    // one-launch steps first, two tiles each that fit (can_implement screens by registers, so
    // large weights get none): clusters splitting K (Hopper), then the grid step; larger weights
    // the one-launch streaming steps; then gemv pairs and the best tensor-core pair.
    for (Family f : {Family::Fused, Family::Grid}) {
      int taken = 0;
      for (const Tile& t : kTiles)
        if (t.family == f && taken < 2 && add(Config::fused(t))) ++taken;
    }
    // The one-launch streaming steps where the above did not fill half the slots: from batch 4 two
    // on tensor cores and one on FFMA, whose re-reads of A then set its pace; below, two on FFMA.
    const bool wide = s.b >= 4;
    if (wide)
      for (const Tile& t : ranked(Family::GridMma, s, s.h, s.i + s.h, device_))
        if (out.size() < 2) add(Config::fused(t));
    for (const Tile& t : ranked(Family::GridStream, s, s.h, s.i + s.h, device_))
      if (out.size() < (wide ? 3u : 2u)) add(Config::fused(t));
    // A gemv pair, and a TMA-fed tensor-core pair (ahead of the gemv pair from batch 4).
    const auto gemv_i2h = ranked(Family::Gemv, s, s.h, s.i + s.h, device_);
    const auto gemv_h2o = ranked(Family::Gemv, s, s.o, s.h, device_);
    if (wide) add_wgmma(1);
    if (!gemv_i2h.empty() && !gemv_h2o.empty()) add({gemv_i2h[0], gemv_h2o[0]});
    if (!wide) add_wgmma(1);
    if (gemv_i2h.size() > 1 && gemv_h2o.size() > 1) add({gemv_i2h[1], gemv_h2o[1]});
  }
  for (std::size_t r = 0; r < mma_i2h.size() && r < mma_h2o.size(); ++r) add({mma_i2h[r], mma_h2o[r]});
  return out;
}

Config Tuner::fallback(const Shape& s) const {
  for (const Config& c : propose(s))
    if (!c.needs_aligned16()) return c;
  const auto i2h = ranked(Family::Mma, s, s.h, s.i + s.h, device_);
  const auto h2o = ranked(Family::Mma, s, s.o, s.h, device_);
  for (std::size_t r = 0; r < i2h.size() && r < h2o.size(); ++r)
    if (can_implement({i2h[r], h2o[r]}, s, device_, nullptr)) return {i2h[r], h2o[r]};
  throw Error(ErrorCode::Unsupported, "no kernel config takes 4-byte aligned pointers for this problem on " + device_.name);
}

cache::TuningKey Tuner::key(const Shape& s) const {
  return {device_.key, {s.b, s.i, s.h, s.o, precision_of(s.math)}, template_hash()};
}

std::shared_ptr<Plan> Tuner::build(const Config& config, const Shape& shape) {
  std::vector<Binary> binaries;
  for (const KernelSource& src : step_sources(config, shape, device_.arch)) binaries.push_back(jit_.get(src));
  std::vector<const Binary*> refs;
  for (const Binary& b : binaries) refs.push_back(&b);
  return std::make_shared<Plan>(config, shape, refs);
}

Tuned Tuner::plan_for(const Shape& s, const StepArgs& args, CUstream stream, bool may_time, bool force) {
  const auto t0 = std::chrono::steady_clock::now();
  Tuned out;
  out.report.problem = {s.b, s.i, s.h, s.o, s.math == Math::Fp32 ? Precision::FP32 : Precision::TF32};
  const cache::TuningKey k = key(s);

  if (!force) {
    if (auto rec = store_.find_tuning(k, version())) {
      const auto config = Config::parse(rec->winner);
      std::string why;
      if (config && can_implement(*config, s, device_, &why)) {
        cache_hits_.fetch_add(1);
        out.plan = build(*config, s);
        out.report.winner = rec->winner;
        out.report.winner_us = rec->winner_us;
        for (const auto& c : rec->candidates) out.report.candidates.push_back({c.config, c.time_us, c.disposition, c.message});
        out.report.from_cache = true;
        out.report.seconds = seconds_since(t0);
        support::log().debug("plan for {}: cached {}", rec->key.problem.precision, rec->winner);
        return out;
      }
      support::log().warn("cached winner '{}' is unusable here ({}); retuning", rec->winner, why);
    }
  }

  const std::vector<Config> configs = propose(s);
  if (configs.empty())
    throw Error(ErrorCode::Unsupported, "no kernel config can run B=" + std::to_string(s.b) + " I=" + std::to_string(s.i) +
                                            " H=" + std::to_string(s.h) + " O=" + std::to_string(s.o) + " on " + device_.name);
  if (!may_time) {
    support::log().debug("stream is capturing: using the heuristic's first candidate {} untimed", configs[0].name());
    out.plan = build(configs[0], s);
    out.report.winner = configs[0].name();
    out.report.seconds = seconds_since(t0);
    return out;
  }

  // Compile in parallel (NVRTC is CPU work and thread-safe), at most one job per core,
  // while this thread already times the candidates whose stages are ready; candidates often
  // share a stage, which is compiled once.
  struct Compiled {
    KernelSource source;
    Binary binary;
    std::string error;
  };
  std::vector<Compiled> sources;
  std::vector<std::vector<std::size_t>> stages;  // per candidate: its programs in `sources`
  for (const Config& c : configs) {
    stages.emplace_back();
    for (KernelSource& src : step_sources(c, s, device_.arch)) {
      const std::string src_key = src.key();
      std::size_t i = 0;
      while (i < sources.size() && sources[i].source.key() != src_key) ++i;
      if (i == sources.size()) sources.push_back({std::move(src), {}, {}});
      stages.back().push_back(i);
    }
  }
  std::counting_semaphore<> slots(std::max<std::ptrdiff_t>(1, std::thread::hardware_concurrency()));
  std::vector<std::future<void>> compiling;  // destroyed (joined) before `sources`
  for (std::size_t i = 0; i < sources.size(); ++i)
    compiling.push_back(std::async(std::launch::async, [&, i] {
      slots.acquire();
      try {
        sources[i].binary = jit_.get(sources[i].source);
      } catch (const std::exception& e) {
        sources[i].error = e.what();
      }
      slots.release();
    }));

  cache::TuningRecord rec;
  rec.key = k;
  rec.engine_version = version();
  std::vector<std::shared_ptr<Plan>> plans(configs.size());
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    cache::CandidateResult c{configs[i].name(), std::numeric_limits<double>::infinity(), "ok", "", ""};
    std::vector<const Binary*> binaries;
    for (std::size_t j : stages[i]) {
      compiling[j].wait();
      if (!sources[j].error.empty() && c.message.empty()) c.message = sources[j].error;
      c.binary_key += (c.binary_key.empty() ? "" : ",") + sources[j].binary.key;
      binaries.push_back(&sources[j].binary);
    }
    if (!c.message.empty()) {
      c.disposition = "compile_failed";
      c.binary_key.clear();
    } else {
      try {
        plans[i] = std::make_shared<Plan>(configs[i], s, binaries);
        if (plans[i]->accepts(args)) {
          c.time_us = time_plan(*plans[i], args, stream);
        } else {
          c.disposition = "not_supported";
          c.message = "TMA needs 16-byte aligned x, h, h_out and weights; these are not";
          plans[i].reset();
        }
      } catch (const Error& e) {
        // A launch failure that poisons the context cannot be timed around; rethrow those.
        if (e.code() != ErrorCode::LaunchFailed) throw;
        c.disposition = "launch_failed";
        c.message = e.what();
        plans[i].reset();
      }
    }
    support::log().debug("candidate {}: {:.1f} us ({}{}{})", c.config, c.time_us, c.disposition,
                         c.message.empty() ? "" : ": ", c.message);
    if (c.disposition != "ok" && c.disposition != "not_supported")
      support::log().warn("candidate {} failed: {}", c.config, c.message);
    if (c.time_us < best) best = c.time_us, best_i = i;
    rec.candidates.push_back(c);
    out.report.candidates.push_back({c.config, c.time_us, c.disposition, c.message});
  }
  if (!std::isfinite(best)) {
    std::string all;
    for (const auto& c : rec.candidates) all += "\n  " + c.config + ": " + c.message;
    throw Error(ErrorCode::CompileFailed, "every candidate failed:" + all);
  }
  tunings_.fetch_add(1);
  rec.winner = configs[best_i].name();
  rec.winner_us = best;
  rec.created_at = static_cast<std::int64_t>(std::time(nullptr));
  store_.put_tuning(rec);

  out.plan = plans[best_i];
  out.report.winner = rec.winner;
  out.report.winner_us = best;
  out.report.seconds = seconds_since(t0);
  support::log().info("tuned B={} I={} H={} O={} {}: {} at {:.1f} us ({} candidates, {:.2f} s)", s.b, s.i, s.h, s.o,
                      rec.key.problem.precision, rec.winner, best, configs.size(), out.report.seconds);
  return out;
}

}  // namespace rnnjit
