#include "tuner.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <future>
#include <limits>
#include <semaphore>
#include <thread>

#include "driver.hpp"
#include "rnnjit/gate.hpp"
#include "support/log.hpp"

namespace rnnjit {
namespace {

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

double time_plan(const Plan& plan, const Args& args, CUstream stream, int max_groups, double budget_ms) {
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
    StreamGate gate(stream);
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

std::string describe(const Shape& s) {
  return "B=" + std::to_string(s.b) + " I=" + std::to_string(s.i) + " H=" + std::to_string(s.h) +
         " O=" + std::to_string(s.o) + " " + precision_name(s.precision) +
         (s.steps > 0 ? " (sequence, chunks of " + std::to_string(s.steps) + " steps)" : "");
}

OwnStream::OwnStream(bool highest) {
  int least = 0, greatest = 0;
  if (highest) RNNJIT_CU(cuCtxGetStreamPriorityRange(&least, &greatest));
  RNNJIT_CU(cuStreamCreateWithPriority(&stream_, CU_STREAM_NON_BLOCKING, greatest));
}

OwnStream::~OwnStream() {
  // Errors are ignored: a destructor has nobody to tell, and a dead context frees everything.
  driver::api().cuStreamSynchronize(stream_);
  driver::api().cuStreamDestroy(stream_);
}

namespace {

// Elements of Scratch's buffers, in the order of its members: x, h, h_out, y, w1, b1, w2, b2, proj.
// A sequence chunk's x, h_out (its states), y and proj hold its steps' rows.
std::array<std::size_t, 9> scratch_elements(const Shape& s) {
  const std::size_t B = s.b, I = s.i, H = s.h, O = s.o, C = std::max(s.steps, 1);
  return {C * B * I, B * H, C * B * H, C * B * O, H * (I + H), H, O * H, O, s.steps > 0 ? C * B * H : 0};
}

// The 4-byte words a buffer of `n` elements of the shape's storage type takes.
std::size_t words(const Shape& s, std::size_t n) { return (n * dtype_size(s.dtype) + 3) / 4; }

// The estimate's first wgmma tile for `stage` that is not a multicast pair. Pairs have been timed
// against the others on few shapes: a step keeps the first pair without them a candidate where a
// multicast pair ranks first, and a sequence's untimed projections take none.
std::optional<WgmmaTile> first_unpaired(const Shape& s, Stage stage, const DeviceInfo& d) {
  for (const WgmmaTile& t : ranked<WgmmaTile>(s, stage, d))
    if (t.mcast == 1) return t;
  return std::nullopt;
}

}  // namespace

Scratch::Scratch(const Shape& s, Jit& jit, const std::string& arch)
    : x_(words(s, scratch_elements(s)[0])),
      h_(words(s, scratch_elements(s)[1])),
      h_out_(words(s, scratch_elements(s)[2])),
      y_(words(s, scratch_elements(s)[3])),
      w1_(words(s, scratch_elements(s)[4])),
      b1_(words(s, scratch_elements(s)[5])),
      w2_(words(s, scratch_elements(s)[6])),
      b2_(words(s, scratch_elements(s)[7])),
      proj_(words(s, scratch_elements(s)[8])),
      counters_(rnnjit_k::kCountersPerCall),
      args_{x_.get(),  h_.get(),  h_out_.get(), y_.get(),   w1_.get(),
            b1_.get(), w2_.get(), b2_.get(),    reinterpret_cast<unsigned*>(counters_.get()),
            proj_.get(), s.steps} {
  RNNJIT_CU(cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(counters_.get()), 0, counters_.size(), stream()));
  const Module fill(jit.get(fill_source(arch)));
  CUfunction fn = fill.function(static_cast<std::size_t>(store_arg(s.dtype)));  // fill_uniform<ST>
  const auto elements = scratch_elements(s);
  unsigned seed = 1;
  const DeviceBuffer* filled[] = {&x_, &h_, &w1_, &b1_, &w2_, &b2_};
  const std::size_t counts[] = {elements[0], elements[1], elements[4], elements[5], elements[6], elements[7]};
  for (std::size_t i = 0; i < std::size(filled); ++i) {
    void* p = filled[i]->get();
    unsigned long long n = counts[i];
    float scale = i < 2 ? 1.0f : 1.0f / std::sqrt(float(s.i + s.h));
    unsigned sd = seed++;
    void* params[] = {&p, &n, &sd, &scale};
    RNNJIT_CU(cuLaunchKernel(fn, 1024, 1, 1, 256, 1, 1, 0, stream(), params, nullptr));
  }
  RNNJIT_CU(cuStreamSynchronize(stream()));  // the module is unloaded next
}

std::size_t Scratch::bytes(const Shape& s) {
  std::size_t total = rnnjit_k::kCountersPerCall * sizeof(unsigned);
  for (std::size_t n : scratch_elements(s)) total += words(s, n) * 4;
  return total;
}

std::vector<Config> Tuner::propose(const Shape& s) const {
  if (s.steps > 0) return propose_sequence(s);
  std::vector<Config> out;
  auto add = [&](const Config& c) {
    const bool fits =
        out.size() < 4 && std::find(out.begin(), out.end(), c) == out.end() && can_implement(c, s, device_, nullptr);
    if (fits) out.push_back(c);
    return fits;
  };
  // The best `n` pairs of family F's tiles, the r-th i2h tile with the r-th h2o tile.
  auto add_pairs = [&]<KernelFamily F>(std::size_t n) {
    const auto i2h = ranked<F>(s, Stage::I2h, device_), h2o = ranked<F>(s, Stage::H2o, device_);
    for (std::size_t r = 0; r < n && r < i2h.size() && r < h2o.size(); ++r) add(Config::pair(i2h[r], h2o[r]));
  };
  // Whole-step tiles of family F, cheapest first, while fewer than `until` candidates are in and
  // at most `most` of F's.
  auto add_whole = [&]<KernelFamily F>(std::size_t until, int most) {
    int taken = 0;
    for (const F& t : ranked<F>(s, Stage::Step, device_))
      if (out.size() < until && taken < most && add(Config::whole(t))) ++taken;
  };
  // The same config with each wgmma stage's tile as `change` makes it, where it makes one that runs
  // there; the config itself where none does (add() then takes nothing: it is in already).
  auto wgmma_twin = [&](Config c, auto change) {
    for (Op& op : c.ops)
      if (auto* t = std::get_if<WgmmaTile>(&op.tile))
        if (const std::optional<WgmmaTile> twin = change(*t, op.stage); twin && twin->rejects(s, op.stage, device_).empty())
          *t = *twin;
    return c;
  };
  // Each wgmma launch on packed copies where that changes how it reads.
  auto packed = [](WgmmaTile t, Stage) {
    t.pack = 1;
    return std::optional(t);
  };
  // Each wgmma stage that its stores of C bind on kShortK.
  auto short_k = [&](const WgmmaTile&, Stage stage) {
    return WgmmaTile::stores_bound(s, stage) ? std::optional(WgmmaTile::kShortK) : std::nullopt;
  };
  // Hopper's TMA + wgmma pairs, where the shape allows them (can_implement screens the rest): three
  // for bf16 storage, whose tc pairs run at half wgmma's bf16 rate, two for f32 and, after the
  // first, its packed twin where that pair copies rows 4 bytes at a time: which wins turns on how
  // often A is re-read (once an N tile) against a launch and a pass over the rows. B=204 I=14
  // H=1807 O=9 tf32: 73.4 µs copied against 56.7 packed (H100). bf16 keeps its third pair: at B=63
  // I=21 H=170 O=258 the twin in its place went with 23.7 µs against 17.3 (H100).
  if (s.b > 16) {
    // First where both stages have few outputs (can_implement screens the rest): a warp streams
    // each row of A once against W's few rows (gemvt), where a GEMM tile's N would be mostly
    // padding and its CTAs few.
    add_pairs.template operator()<GemvtTile>(1);
    const std::size_t first_wgmma = out.size();
    add_pairs.template operator()<WgmmaTile>(1);
    if (const auto i2h = first_unpaired(s, Stage::I2h, device_), h2o = first_unpaired(s, Stage::H2o, device_); i2h && h2o)
      add(Config::pair(*i2h, *h2o));  // nothing new unless the first pair multicasts
    if (s.dtype == DType::F32 && out.size() > first_wgmma) add(wgmma_twin(out[first_wgmma], packed));
    // Where a stage is bound by its stores of C (short K, many outputs), the first pair with that
    // stage on tiles three to a SM takes the last wgmma pair's slot (WgmmaTile::kShortK).
    const bool short_k_in = out.size() > first_wgmma && add(wgmma_twin(out[first_wgmma], short_k));
    add_pairs.template operator()<WgmmaTile>((s.dtype == DType::BF16 ? 3 : 2) - (short_k_in ? 1 : 0));
  }
  if (s.b <= 16) {
    // Few rows: streaming the weights is the whole cost. Small problems are latency-bound: the
    // one-launch steps first, two tiles each that fit (can_implement screens by registers, so
    // large weights get none): clusters splitting K (Hopper), then the grid step.
    add_whole.template operator()<FusedTile>(4, 2);
    add_whole.template operator()<GridTile>(4, 2);
    // The one-launch streaming steps where the above did not fill half the slots: from batch 4
    // two on tensor cores and one on FFMA, whose re-reads of A then set its pace; below, two on
    // FFMA (docs/kernels.md, "gridmma").
    const bool wide = s.b >= 4;
    if (wide) add_whole.template operator()<GridMmaTile>(2, 4);
    add_whole.template operator()<StreamTile>(wide ? 3 : 2, 4);
    // A gemv pair, and a wgmma pair (ahead of the gemv pair from batch 4) where it reads the
    // operands in place (TMA or cp.async): packing A costs a launch, which at this size the second
    // gemv pair's slot pays back better (B=2 I=5707 H=3913 O=2569: 85 us against a packed wgmma
    // pair's 115 on an H100).
    const auto gemv_i2h = ranked<GemvTile>(s, Stage::I2h, device_), gemv_h2o = ranked<GemvTile>(s, Stage::H2o, device_);
    const bool in_place = !WgmmaTile::packs(s, Stage::I2h) && !WgmmaTile::packs(s, Stage::H2o);
    if (wide && in_place) add_pairs.template operator()<WgmmaTile>(1);
    if (!gemv_i2h.empty() && !gemv_h2o.empty()) add(Config::pair(gemv_i2h[0], gemv_h2o[0]));
    if (!wide && in_place) add_pairs.template operator()<WgmmaTile>(1);
    if (gemv_i2h.size() > 1 && gemv_h2o.size() > 1) add(Config::pair(gemv_i2h[1], gemv_h2o[1]));
    // bf16 storage, which the one-launch cluster, grid and gridmma steps do not serve: up to three
    // with the next gemv pairs.
    for (std::size_t r = 2; s.dtype == DType::BF16 && out.size() < 3 && r < std::min(gemv_i2h.size(), gemv_h2o.size()); ++r)
      add(Config::pair(gemv_i2h[r], gemv_h2o[r]));
  }
  // Tensor-core pairs that take any shape and pointer, on every GPU from sm_80.
  add_pairs.template operator()<TcTile>(TcTile::pool().size());
  // The prebuilt FFMA pair takes every shape and any pointer aligned to its element. It goes last
  // where every proposal reads through TMA in place: a first call tunes on the caller's pointers,
  // and one that TMA cannot take must still find a candidate.
  const Config generic = Config::pair(GenericTile{}, GenericTile{});
  if (std::ranges::all_of(out, [&](const Config& c) { return c.needs_aligned_pointers(s); })) {
    if (out.size() == 4) out.pop_back();
    add(generic);
  }
  return out;
}

// Each projection on the first tile that takes it, TMA + wgmma where it can, else the portable
// tensor-core GEMM (a chunk's projections are large GEMMs: kMaxChunk steps of rows); the candidates
// differ in the recurrence, the best four the recur family's estimate ranks.
std::vector<Config> Tuner::propose_sequence(const Shape& s) const {
  auto first = [&](Stage stage) -> std::optional<Tile> {
    if (const auto wgmma = first_unpaired(s, stage, device_)) return *wgmma;
    if (const auto tc = ranked<TcTile>(s, stage, device_); !tc.empty()) return tc.front();
    return std::nullopt;
  };
  std::vector<Config> out;
  const auto xproj = first(Stage::XProj), h2o = first(Stage::H2o);
  if (!xproj || !h2o) return out;
  for (const RecurTile& r : ranked<RecurTile>(s, Stage::Recur, device_)) {
    const Config c = Config::sequence(*xproj, r, *h2o);
    if (out.size() < 4 && can_implement(c, s, device_, nullptr)) out.push_back(c);
  }
  return out;
}

Config Tuner::fallback(const Shape& s) const {
  for (const Config& c : propose(s))
    if (!c.needs_aligned_pointers(s)) return c;
  // The r-th tc tiles of both GEMM stages: a step's pair, or around each recurrence for a sequence.
  const auto first = ranked<TcTile>(s, s.steps > 0 ? Stage::XProj : Stage::I2h, device_),
             h2o = ranked<TcTile>(s, Stage::H2o, device_);
  const auto recurrences = s.steps > 0 ? ranked<RecurTile>(s, Stage::Recur, device_) : std::vector<RecurTile>{};
  for (std::size_t r = 0; r < first.size() && r < h2o.size(); ++r) {
    std::vector<Config> configs;
    if (s.steps == 0) configs.push_back(Config::pair(first[r], h2o[r]));
    for (const RecurTile& t : recurrences) configs.push_back(Config::sequence(first[r], t, h2o[r]));
    for (const Config& c : configs)
      if (can_implement(c, s, device_, nullptr)) return c;
  }
  // The prebuilt FFMA pair takes any pointer aligned to its element.
  if (const Config generic = Config::pair(GenericTile{}, GenericTile{});
      s.steps == 0 && can_implement(generic, s, device_, nullptr))
    return generic;
  throw Error(ErrorCode::Unsupported, "no kernel config takes pointers aligned only to their element for this problem on " + device_.name);
}

cache::TuningKey Tuner::key(const Shape& s) const {
  cache::TuningKey k;
  k.gpu = device_.key;
  k.problem.b = s.b, k.problem.i = s.i, k.problem.h = s.h, k.problem.o = s.o;
  k.problem.precision = precision_name(s.precision);
  k.problem.dtype = dtype_name(s.dtype);
  k.problem.steps = s.steps;
  k.template_hash = template_hash();
  return k;
}

std::shared_ptr<Plan> Tuner::build(const Config& config, const Shape& shape) {
  std::vector<Binary> binaries;
  for (const KernelSource& src : sources_of(config, shape, device_.arch)) binaries.push_back(jit_.get(src));
  std::vector<const Binary*> refs;
  for (const Binary& b : binaries) refs.push_back(&b);
  return std::make_shared<Plan>(config, shape, refs);
}

Tuned Tuner::plan_for(const Shape& s, const Args& args, CUstream stream, Timing timing, CacheUse cache) {
  const auto t0 = std::chrono::steady_clock::now();
  Tuned out;
  out.report.problem = {s.b, s.i, s.h, s.o, s.precision, s.dtype};

  if (cache == CacheUse::Lookup) {
    auto rec = store_.find_tuning(key(s), version());
    support::log().debug("plan for {}: cache lookup {:.2f} ms ({})", describe(s), 1e3 * seconds_since(t0),
                         rec ? "hit" : "miss");
    if (rec) {
      const auto config = Config::parse(rec->winner);
      std::string why;
      if (config && can_implement(*config, s, device_, &why)) {
        try {  // nothing of the entry lands in `out` before all of it is read
          const auto t_build = std::chrono::steady_clock::now();
          std::shared_ptr<Plan> plan = build(*config, s);
          decltype(out.report.candidates) candidates;
          for (const auto& c : rec->candidates)
            candidates.push_back({c.config, c.time_us, parse_disposition(c.disposition), c.message});
          support::log().debug("plan for {}: cached {}, binaries fetched and modules loaded in {:.2f} ms", describe(s),
                               rec->winner, 1e3 * seconds_since(t_build));
          out.plan = std::move(plan);
          out.report.winner = rec->winner;
          out.report.winner_us = rec->winner_us;
          out.report.candidates = std::move(candidates);
          out.report.from_cache = true;
          out.report.seconds = seconds_since(t0);
          cache_hits_.fetch_add(1);
          return out;
        } catch (const Error& e) {  // an entry some other writer damaged, or a binary this driver refuses
          why = e.what();
        }
      }
      support::log().warn("cached winner '{}' is unusable here ({}); retuning", rec->winner, why);
    }
  }

  const std::vector<Config> configs = propose(s);
  if (configs.empty())
    throw Error(ErrorCode::Unsupported, "no kernel config can run B=" + std::to_string(s.b) + " I=" + std::to_string(s.i) +
                                            " H=" + std::to_string(s.h) + " O=" + std::to_string(s.o) + " on " + device_.name);
  // The prebuilt family has no recurrence: a sequence's first plan compiles.
  if (timing == Timing::Prebuilt && s.steps == 0) {
    const Config generic = Config::pair(GenericTile{}, GenericTile{});
    std::string why;
    if (!can_implement(generic, s, device_, &why)) throw Error(ErrorCode::Unsupported, generic.name() + ": " + why);
    out.plan = build(generic, s);
    support::log().debug("plan for {}: {} (prebuilt) loaded in {:.2f} ms", describe(s), generic.name(),
                         1e3 * seconds_since(t0));
    out.report.winner = generic.name();
    out.report.seconds = seconds_since(t0);
    return out;
  }
  if (timing != Timing::Measure) {
    out.plan = build(configs[0], s);
    support::log().debug("plan for {}: the heuristic's first candidate {}, untimed, built in {:.2f} ms", describe(s),
                         configs[0].name(), 1e3 * seconds_since(t0));
    out.report.winner = configs[0].name();
    out.report.seconds = seconds_since(t0);
    return out;
  }
  // Nothing stops a blocking tuning: measure() answers.
  Tuned measured = std::move(*measure(s, configs, args, stream));
  persist(measured);
  measured.report.seconds = seconds_since(t0);
  return measured;
}

std::optional<Tuned> Tuner::measure(const Shape& s, const std::vector<Config>& configs, const Args& args,
                                    CUstream stream, int rounds, std::stop_token stop, bool aside) {
  const auto t0 = std::chrono::steady_clock::now();
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
    for (KernelSource& src : sources_of(c, s, device_.arch)) {
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
        // A stopped tuning's results are dropped: what has not started is not compiled.
        if (!stop.stop_requested()) sources[i].binary = jit_.get(sources[i].source);
      } catch (const std::exception& e) {
        sources[i].error = e.what();
      }
      slots.release();
    }));

  Tuned out;
  out.report.problem = {s.b, s.i, s.h, s.o, s.precision, s.dtype};
  const double budget_ms = kTimingBudgetMs / rounds;
  std::vector<std::shared_ptr<Plan>> plans(configs.size());
  std::vector<std::string> binary_keys(configs.size());
  // RNNJIT_CU maps almost every driver error to LaunchFailed. Background tuning records only the
  // candidate's own failures for good: one caused by a capture on another thread, by memory, or
  // by a sticky fault of the context (which may be another kernel's, and fails every later call
  // anyway) escapes, so that the job ends and nothing is written.
  auto rethrow_unless_own = [&](const Error& e) {
    if (e.code() != ErrorCode::LaunchFailed) throw;
    if (!aside) return;
    const CUresult cause = driver::last_failure();
    const bool environment = cause == CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED ||
                             cause == CUDA_ERROR_STREAM_CAPTURE_INVALIDATED ||
                             cause == CUDA_ERROR_STREAM_CAPTURE_IMPLICIT || cause == CUDA_ERROR_OUT_OF_MEMORY;
    // A sticky error answers every call in the context, this synchronize included.
    if (environment || driver::api().cuStreamSynchronize(stream) != CUDA_SUCCESS)
      throw Error(ErrorCode::LaunchFailed,
                  std::string("not the candidate's own failure, nothing recorded: ") + e.what());
  };
  // Times plans[i] once more, keeping its fastest time. A launch failure is the candidate's: it
  // is recorded and the plan dropped; any other error is the engine's, and escapes.
  auto time_candidate = [&](std::size_t i, CandidateReport& c) {
    try {
      c.time_us = std::min(c.time_us, time_plan(*plans[i], args, stream, 20, budget_ms));
    } catch (const Error& e) {
      rethrow_unless_own(e);
      c.disposition = Disposition::LaunchFailed;
      c.message = e.what();
      c.time_us = std::numeric_limits<double>::infinity();
      plans[i].reset();
    }
  };
  for (std::size_t i = 0; i < configs.size(); ++i) {
    if (stop.stop_requested()) return std::nullopt;
    // A failing candidate is data: a disposition and time +inf, recorded like the others.
    CandidateReport c{configs[i].name(), std::numeric_limits<double>::infinity(), Disposition::Ok, ""};
    std::vector<const Binary*> binaries;
    for (std::size_t j : stages[i]) {
      compiling[j].wait();
      if (!sources[j].error.empty() && c.message.empty()) c.message = sources[j].error;
      binary_keys[i] += (binary_keys[i].empty() ? "" : ",") + sources[j].binary.key;
      binaries.push_back(&sources[j].binary);
    }
    if (stop.stop_requested()) return std::nullopt;
    support::log().debug("candidate {}: built after {:.0f} ms", c.config, 1e3 * seconds_since(t0));
    if (!c.message.empty()) {
      c.disposition = Disposition::CompileFailed;
      binary_keys[i].clear();
    } else {
      try {
        plans[i] = std::make_shared<Plan>(configs[i], s, binaries);
      } catch (const Error& e) {
        rethrow_unless_own(e);
        c.disposition = Disposition::LaunchFailed;
        c.message = e.what();
      }
      if (plans[i] && !plans[i]->accepts(args)) {
        c.disposition = Disposition::NotSupported;
        c.message = "TMA needs 16-byte aligned x, h, h_out and weights; these are not";
        plans[i].reset();
      }
      if (plans[i]) time_candidate(i, c);
    }
    out.report.candidates.push_back(c);
  }
  for (int round = 1; round < rounds; ++round)
    for (std::size_t i = 0; i < configs.size(); ++i) {
      if (stop.stop_requested()) return std::nullopt;
      if (plans[i]) time_candidate(i, out.report.candidates[i]);
    }

  cache::TuningRecord rec;
  rec.key = key(s);
  rec.engine_version = version();
  double best = std::numeric_limits<double>::infinity();
  std::size_t best_i = 0;
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const CandidateReport& c = out.report.candidates[i];
    support::log().debug("candidate {}: {:.1f} us ({}{}{})", c.config, c.time_us, disposition_name(c.disposition),
                         c.message.empty() ? "" : ": ", c.message);
    if (c.disposition == Disposition::CompileFailed || c.disposition == Disposition::LaunchFailed)
      support::log().warn("candidate {} failed: {}", c.config, c.message);
    if (c.time_us < best) best = c.time_us, best_i = i;
    rec.candidates.push_back({c.config, c.time_us, disposition_name(c.disposition), c.message,
                              c.disposition == Disposition::CompileFailed ? std::string() : binary_keys[i]});
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

  out.plan = plans[best_i];
  out.report.winner = rec.winner;
  out.report.winner_us = best;
  out.record = std::move(rec);
  out.report.seconds = seconds_since(t0);
  support::log().info("tuned {}: {} at {:.1f} us ({} candidates, {} round{}, {:.2f} s)", describe(s),
                      out.report.winner, best, configs.size(), rounds, rounds == 1 ? "" : "s", out.report.seconds);
  return out;
}

std::optional<Tuned> Tuner::tune_aside(const Shape& s, std::stop_token stop) {
  // A second copy of the problem (3.2 GB at B=256 I=H=16384 O=8192) and room for a candidate's
  // packed copies of it (as large again, at most), made while the caller's process runs on: where
  // that would take over half of the free memory, the caller's own allocations could fail for it,
  // and the heuristic's pick runs untimed instead.
  std::size_t free = 0, total = 0;
  RNNJIT_CU(cuMemGetInfo(&free, &total));
  const std::size_t need = 2 * Scratch::bytes(s);
  if (need > free / 2)
    throw Error(ErrorCode::OutOfMemory, "timing apart needs " + std::to_string(need >> 20) + " MiB, over half of the " +
                                            std::to_string(free >> 20) + " MiB free");
  const auto t0 = std::chrono::steady_clock::now();
  const Scratch scratch(s, jit_, device_.arch);
  support::log().debug("{}: a copy of the problem to time on, made in {:.0f} ms", describe(s), 1e3 * seconds_since(t0));
  return measure(s, propose(s), scratch.args(), scratch.stream(), kBackgroundRounds, stop, true);
}

void Tuner::persist(const Tuned& tuned) { store_.put_tuning(tuned.record); }

}  // namespace rnnjit
