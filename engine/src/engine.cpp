// Engine and RnnCell: the public API over the plan cache. What each part does lives beside it:
// device.hpp (the device), validate.hpp (arguments), plan_cache.hpp (plans), tuner.hpp (tuning).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <exception>
#include <optional>

#include "plan_cache.hpp"
#include "support/log.hpp"
#include "validate.hpp"

namespace rnnjit {
namespace {

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::Trace: return spdlog::level::trace;
    case LogLevel::Debug: return spdlog::level::debug;
    case LogLevel::Info: return spdlog::level::info;
    case LogLevel::Warn: return spdlog::level::warn;
    case LogLevel::Error: return spdlog::level::err;
    case LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::warn;
}

// Logs at debug, when it goes, how long the scope took: the start-up profile
// (docs/kernels.md, "Start-up and the background tuner").
class Phase {
 public:
  explicit Phase(const char* what) : what_(what) {}
  ~Phase() {
    support::log().debug("start-up: {} {} {:.2f} ms", what_, std::uncaught_exceptions() > unwinding_ ? "failed after" : "in",
                         std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0_).count());
  }
  Phase(const Phase&) = delete;
  Phase& operator=(const Phase&) = delete;

 private:
  const char* what_;
  const int unwinding_ = std::uncaught_exceptions();
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

// `make()`, timed as a start-up phase; its value is built in place (the engine's parts do not move).
template <class F>
decltype(auto) timed(const char* what, F&& make) {
  const Phase phase(what);
  return make();
}

// The device's primary context, retained for the engine's life: the one the CUDA runtime uses,
// so users' cudaMalloc'd pointers and streams are ours too.
class PrimaryContext {
 public:
  explicit PrimaryContext(int ordinal) {
    RNNJIT_CU(cuDeviceGet(&device_, ordinal));
    RNNJIT_CU(cuDevicePrimaryCtxRetain(&ctx_, device_));
  }
  ~PrimaryContext() { driver::api().cuDevicePrimaryCtxRelease(device_); }
  PrimaryContext(const PrimaryContext&) = delete;
  PrimaryContext& operator=(const PrimaryContext&) = delete;
  CUcontext get() const { return ctx_; }

 private:
  CUdevice device_ = 0;
  CUcontext ctx_ = nullptr;
};

// The whole-step launches' counters (rnnjit_shared.h), zeroed once, a set of kCountersPerCall a
// call in turn: two launches in flight share one only after kSets further calls.
class LaunchCounters {
 public:
  LaunchCounters() : buffer_(kSets * rnnjit_k::kCountersPerCall) {
    // On a stream of the engine's own: the legacy stream would first wait for the caller's work
    // queued on it, which the engine's creation has no need to.
    const OwnStream stream;
    RNNJIT_CU(cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(buffer_.get()), 0, buffer_.size(), stream.get()));
    RNNJIT_CU(cuStreamSynchronize(stream.get()));
  }
  unsigned* next() {
    const unsigned set = next_.fetch_add(1, std::memory_order_relaxed) % kSets;
    return reinterpret_cast<unsigned*>(buffer_.get()) + set * rnnjit_k::kCountersPerCall;
  }

 private:
  static constexpr unsigned kSets = 4096;
  DeviceBuffer buffer_;
  std::atomic<unsigned> next_{0};
};

}  // namespace

// Where an engine is made, only what its first step needs happens: the system cache is opened at
// the first miss of the cache (cache::Store), PRAGMA quick_check waits for the first write, and
// the background tuner's thread for its first job.
struct Engine::Impl {
  Precision default_precision;
  TuningMode tuning;
  DeviceInfo device;
  PointerChecker pointers;
  PrimaryContext context;
  cache::Store store;
  Jit jit;
  Tuner tuner;
  std::optional<LaunchCounters> counters;  // made in the engine's context
  std::optional<ScratchArena> arena;       // freed in the engine's context
  PlanCache plans;
  std::atomic<bool> stepped{false};  // the first rnn_step is the last start-up phase

  Impl(const EngineOptions& o, DeviceInfo dev)
      // Default as the engine's default means tf32, as in the C API: a problem's Default resolves to a
      // precision that runs (and has an error_bound).
      : default_precision(o.default_precision == Precision::Default ? Precision::TF32 : o.default_precision),
        tuning(resolve_tuning_mode(o.tuning)),
        device(std::move(dev)),
        pointers(device.ordinal, o.check_pointers ? PointerChecks::Full : PointerChecks::Cheap),
        context(timed("primary context retained", [&] { return PrimaryContext(device.ordinal); })),
        store(timed("cache opened", [&] {
          return cache::Store(cache::resolve_path(o.cache_path), cache::Mode::Resilient,
                              cache::resolve_system_path(o.system_cache_path));
        })),
        jit(store),
        tuner(device, jit, store),
        plans(tuner, tuning, context.get()) {
    ContextScope scope(context.get());
    const Phase phase("launch counters zeroed");
    counters.emplace();
    arena.emplace();
  }

  ~Impl() {
    try {
      ContextScope scope(context.get());
      arena.reset();  // waits for the calls still in flight before anything of theirs goes
      plans.clear();  // stops the background tuner first
      counters.reset();
    } catch (...) {  // a dead driver: the modules die with the context anyway
    }
  }

  Shape shape_of(const Problem& p) const { return rnnjit::shape_of(p, default_precision); }

  // The shape of the chunk a sequence of `steps` runs in (its tuning's key).
  Shape chunk_shape(const Problem& p, std::int64_t steps) const {
    check_steps(steps);
    Shape s = shape_of(p);
    s.steps = sequence_chunk(steps, s.b, s.h);
    return s;
  }

  // The prewarm of a step or a sequence chunk, on random scratch data: it runs before the user's
  // data exists (a chunk's scratch holds its steps' x, states, y and projection).
  TuneReport tune_on_scratch(const Shape& s, bool force) {
    ContextScope scope(context.get());
    const Scratch scratch(s, jit, device.arch);
    return plans.tune(s, scratch.args(), scratch.stream(), force ? CacheUse::Retune : CacheUse::Lookup);
  }
};

Engine::Engine(const EngineOptions& options) {
  // bf16 products come with bf16 storage, whose Default resolves to them anyway: as the default of
  // f32 problems it would refuse every one.
  if (options.default_precision == Precision::BF16)
    throw Error(ErrorCode::InvalidArgument,
                "default_precision bf16: f32 tensors take fp32 or tf32, bf16 tensors resolve Default to bf16 themselves");
  if (options.log_level) support::log().set_level(to_spdlog(*options.log_level));
  const Phase all("engine made");
  timed("driver loaded (dlopen, cuInit)", [] { return &driver::api(); });
  DeviceInfo dev = timed("device queried", [&] { return query_device(options.device); });
  impl_ = std::make_unique<Impl>(options, std::move(dev));
  support::log().debug("engine on device {} ({}, {}), cache {}, tuning {}", impl_->device.ordinal, impl_->device.name,
                       impl_->device.arch, impl_->store.path(), tuning_mode_name(impl_->tuning));
}

Engine::~Engine() = default;

const DeviceInfo& Engine::device() const { return impl_->device; }
std::string Engine::cache_path() const { return impl_->store.path(); }

EngineStats Engine::stats() const {
  const Impl& im = *impl_;
  return {im.jit.compiles(),     im.jit.cache_hits(),           im.tuner.tunings(),
          im.tuner.cache_hits(), im.plans.background_tunings(), im.plans.background_pending()};
}

Problem Engine::resolve(const Problem& p) const {
  Problem r = p;
  r.precision = resolved_precision(p, impl_->default_precision);
  return r;
}

std::vector<std::string> Engine::candidates(const Problem& problem) const {
  std::vector<std::string> out;
  for (const Config& c : impl_->tuner.propose(impl_->shape_of(problem))) out.push_back(c.name());
  return out;
}

std::vector<std::string> Engine::sequence_candidates(const Problem& problem, std::int64_t steps) const {
  std::vector<std::string> out;
  for (const Config& c : impl_->tuner.propose(impl_->chunk_shape(problem, steps))) out.push_back(c.name());
  return out;
}

PlanInfo Engine::plan_info(const Problem& problem) const { return impl_->plans.info(impl_->shape_of(problem)); }

void Engine::rnn_step(const Problem& problem, const Weights& w, const void* x, const void* h, void* h_out, void* y,
                      Stream stream) {
  Impl& im = *impl_;
  std::optional<Phase> first;  // its host side: checks, the plan, the launches enqueued
  // A load first: every call writing the flag would bounce its cache line between the callers' threads.
  if (!im.stepped.load(std::memory_order_relaxed) && !im.stepped.exchange(true, std::memory_order_relaxed))
    first.emplace("first step enqueued");
  const Shape s = im.shape_of(problem);
  ContextScope scope(im.context.get());
  const HiddenAliasing aliasing = check_step_buffers(s, w, x, h, h_out, y, im.pointers);
  const Args args{x, h, h_out, y, w.w1, w.b1, w.w2, w.b2, im.counters->next()};
  const std::shared_ptr<Plan> plan = im.plans.plan(s, args, stream);
  if (aliasing == HiddenAliasing::Apart) {
    plan->run(args, stream, &*im.arena);
    return;
  }
  // h_out overlaps an input of i2h, which other CTAs may still read: h' goes to the engine's
  // scratch first, then is copied over h on the stream. Same kernels, same bits as separate buffers.
  const std::size_t bytes = std::size_t(s.b) * s.h * dtype_size(s.dtype);
  ScratchArena::Lease staged(&*im.arena, bytes, stream);
  Args a = args;
  a.h_out = staged.get();
  plan->run(a, stream, &*im.arena);
  RNNJIT_CU(cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(h_out), reinterpret_cast<CUdeviceptr>(staged.get()), bytes,
                              stream));
  staged.release();
}

void Engine::rnn_sequence(const Problem& problem, std::int64_t steps, const Weights& w, const void* x, const void* h0,
                          void* y, void* h_n, void* h_all, Stream stream) {
  Impl& im = *impl_;
  Shape s = im.shape_of(problem);
  ContextScope scope(im.context.get());
  check_sequence_buffers(s, steps, w, x, h0, y, h_n, h_all, im.pointers);
  // Chunks of C steps (one tuning a chunk size): projections over the chunk's C·B rows, then its
  // recurrence. A last partial chunk of R < C steps takes the C steps ending at the last: its
  // projections cover C steps again, its recurrence runs only the R new ones.
  s.steps = sequence_chunk(steps, s.b, s.h);
  const std::int64_t chunk = s.steps, full = steps / chunk, rest = steps % chunk, chunks = full + (rest > 0);
  const std::size_t e = dtype_size(s.dtype), x_bytes = std::size_t(s.b) * s.i * e, h_bytes = std::size_t(s.b) * s.h * e,
                    y_bytes = std::size_t(s.b) * s.o * e, chunk_h = chunk * h_bytes;
  // Scratch: the chunk's projection, and without h_all the states in two regions of C steps. The
  // last chunk's region is the second, the one before it the first, and so on back: the partial
  // chunk's C states then run on from the previous chunk's in one block.
  const std::size_t proj_bytes = (chunk_h + 255) / 256 * 256;
  ScratchArena::Lease scratch(&*im.arena, proj_bytes + (h_all ? 0 : 2 * chunk_h), stream);
  char* const proj = scratch.get();
  char* const regions = proj + proj_bytes;
  auto state = [&](std::int64_t t) -> char* {  // where h_{t+1} goes
    if (h_all) return static_cast<char*>(h_all) + t * h_bytes;
    const std::int64_t j = t / chunk;
    return regions + ((chunks - 1 - j) % 2 == 0 ? chunk_h : 0) + (t % chunk) * h_bytes;
  };
  unsigned* counters = im.counters->next();  // the launches share one stream: each waits for the last
  std::shared_ptr<Plan> plan;
  for (std::int64_t j = 0; j < chunks; ++j) {
    const std::int64_t fresh = j < full ? chunk : rest, first = j * chunk, begin = first + fresh - chunk;
    Args a{static_cast<const char*>(x) + begin * x_bytes, first == 0 ? h0 : state(first - 1), state(begin),
           static_cast<char*>(y) + begin * y_bytes, w.w1, w.b1, w.w2, w.b2, counters, proj, static_cast<int>(fresh)};
    // The offsets of later chunks may lose the alignment TMA needs: the plan follows the pointers.
    if (!plan || !plan->accepts(a)) plan = im.plans.plan(s, a, stream);
    plan->run(a, stream, &*im.arena);
  }
  // h_n last, after every read of h0: it may alias h0.
  RNNJIT_CU(cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(h_n), reinterpret_cast<CUdeviceptr>(state(steps - 1)),
                              h_bytes, stream));
  scratch.release();
}

TuneReport Engine::tune(const Problem& problem, bool force) {
  return impl_->tune_on_scratch(impl_->shape_of(problem), force);
}

TuneReport Engine::tune_sequence(const Problem& problem, std::int64_t steps, bool force) {
  return impl_->tune_on_scratch(impl_->chunk_shape(problem, steps), force);
}

void Engine::pin(const Problem& problem, const std::string& config) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  const auto c = Config::parse(config);
  if (!c) throw Error(ErrorCode::InvalidArgument, "'" + config + "' is not a config name");
  std::string why;
  // A sequence config must take the largest chunk's projections.
  Shape chunked = s;
  if (c->is_sequence()) chunked.steps = sequence_chunk(kMaxChunk, s.b, s.h);
  if (!can_implement(*c, chunked, im.device, &why)) throw Error(ErrorCode::InvalidArgument, config + ": " + why);
  ContextScope scope(im.context.get());
  im.plans.pin(s, *c);
}

namespace {
// Frees a cell's state buffers (in the engine's context, made current by the caller); cuMemFree's
// status is left: this runs on paths that are already failing or ending.
void free_state(void* (&state)[2]) {
  for (void*& buf : state) {
    if (buf) driver::api().cuMemFree(reinterpret_cast<CUdeviceptr>(buf));
    buf = nullptr;
  }
}
}  // namespace

RnnCell::RnnCell(Engine& engine, const Problem& problem, const Weights& weights)
    : engine_(engine), problem_(engine.resolve(problem)), weights_(weights) {
  const Shape s = engine_.impl_->shape_of(problem_);
  ContextScope scope(engine_.impl_->context.get());
  const std::size_t n = std::size_t(s.b) * s.h * dtype_size(s.dtype);
  try {
    for (void*& buf : state_) {
      CUdeviceptr p = 0;
      RNNJIT_CU(cuMemAlloc(&p, n));
      buf = reinterpret_cast<void*>(p);
    }
    reset();
  } catch (...) {  // no destructor runs for a constructor that throws
    free_state(state_);
    throw;
  }
}

RnnCell::~RnnCell() {
  try {
    ContextScope scope(engine_.impl_->context.get());
    free_state(state_);
  } catch (...) {  // never throw from a destructor
  }
}

void RnnCell::reset(const void* h0, Stream stream) {
  const std::size_t e = dtype_size(problem_.dtype), n = std::size_t(problem_.batch) * problem_.hidden * e;
  ContextScope scope(engine_.impl_->context.get());
  const auto dst = reinterpret_cast<CUdeviceptr>(state_[current_]);
  if (h0) {
    engine_.impl_->pointers.check("h0", h0, n, e);
    RNNJIT_CU(cuMemcpyDtoDAsync(dst, reinterpret_cast<CUdeviceptr>(h0), n, stream));
  } else {
    RNNJIT_CU(cuMemsetD8Async(dst, 0, n, stream));
  }
}

void RnnCell::step(const void* x, void* y, Stream stream) {
  engine_.rnn_step(problem_, weights_, x, state_[current_], state_[1 - current_], y, stream);
  current_ = 1 - current_;
}

void RnnCell::sequence(std::int64_t steps, const void* x, void* y, void* h_all, Stream stream) {
  engine_.rnn_sequence(problem_, steps, weights_, x, state_[current_], y, state_[1 - current_], h_all, stream);
  current_ = 1 - current_;
}

const void* RnnCell::hidden() const { return state_[current_]; }
const Problem& RnnCell::problem() const { return problem_; }

}  // namespace rnnjit
