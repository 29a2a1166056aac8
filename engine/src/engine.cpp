// Engine and RnnCell: the public API over the plan cache. What each part does lives beside it:
// device.hpp (the device), validate.hpp (arguments), plan_cache.hpp (plans), tuner.hpp (tuning).
#include <algorithm>
#include <atomic>
#include <cmath>

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

// The whole-step launches' counters (rnnjit_shared.h), zeroed once, a set of kCountersPerCall a
// call in turn: two launches in flight share one only after kSets further calls.
class LaunchCounters {
 public:
  LaunchCounters() : buffer_(kSets * rnnjit_k::kCountersPerCall) {
    RNNJIT_CU(cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(buffer_.get()), 0, buffer_.size(), nullptr));
    RNNJIT_CU(cuStreamSynchronize(nullptr));
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

struct Engine::Impl {
  Precision default_precision;
  DeviceInfo device;
  PointerChecker pointers;
  CUdevice cu_device = 0;
  CUcontext ctx = nullptr;
  cache::Store store;
  Jit jit;
  Tuner tuner;
  PlanCache plans;
  std::optional<LaunchCounters> counters;  // made in the engine's context

  Impl(const EngineOptions& o, DeviceInfo dev)
      : default_precision(o.default_precision),
        device(std::move(dev)),
        pointers(device.ordinal, o.check_pointers ? PointerChecks::Full : PointerChecks::Cheap),
        store(cache::resolve_path(o.cache_path)),
        jit(store),
        tuner(device, jit, store),
        plans(tuner) {
    RNNJIT_CU(cuDeviceGet(&cu_device, device.ordinal));
    // The primary context: the one the CUDA runtime uses, so users' cudaMalloc'd pointers and
    // streams are ours too.
    RNNJIT_CU(cuDevicePrimaryCtxRetain(&ctx, cu_device));
    ContextScope scope(ctx);
    counters.emplace();
  }

  ~Impl() {
    try {
      ContextScope scope(ctx);
      plans.clear();
      counters.reset();
    } catch (...) {  // a dead driver: the modules die with the context anyway
    }
    driver::api().cuDevicePrimaryCtxRelease(cu_device);
  }

  Shape shape_of(const Problem& p) const { return rnnjit::shape_of(p, default_precision); }
};

Engine::Engine(const EngineOptions& options) {
  if (options.log_level) support::log().set_level(to_spdlog(*options.log_level));
  DeviceInfo dev = query_device(options.device);
  impl_ = std::make_unique<Impl>(options, std::move(dev));
  support::log().debug("engine on device {} ({}, {}), cache {}", impl_->device.ordinal, impl_->device.name,
                       impl_->device.arch, impl_->store.path());
}

Engine::~Engine() = default;

const DeviceInfo& Engine::device() const { return impl_->device; }
std::string Engine::cache_path() const { return impl_->store.path(); }

EngineStats Engine::stats() const {
  return {impl_->jit.compiles(), impl_->jit.cache_hits(), impl_->tuner.tunings(), impl_->tuner.cache_hits()};
}

Problem Engine::resolve(const Problem& p) const {
  Problem r = p;
  if (r.precision == Precision::Default) r.precision = impl_->default_precision;
  return r;
}

std::vector<std::string> Engine::candidates(const Problem& problem) const {
  std::vector<std::string> out;
  for (const Config& c : impl_->tuner.propose(impl_->shape_of(problem))) out.push_back(c.name());
  return out;
}

void Engine::rnn_step(const Problem& problem, const Weights& w, const void* x, const void* h, void* h_out, void* y,
                      Stream stream) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  ContextScope scope(im.ctx);
  const HiddenAliasing aliasing = check_step_buffers(s, w, x, h, h_out, y, im.pointers);
  const Args args{x, h, h_out, y, w.w1, w.b1, w.w2, w.b2, im.counters->next()};
  const std::shared_ptr<Plan> plan = im.plans.plan(s, args, stream);
  if (aliasing == HiddenAliasing::Apart) {
    plan->run(args, stream);
    return;
  }
  // h_out overlaps an input of i2h, which other CTAs may still read: stage h' in stream-ordered
  // scratch, then copy. Same kernels, same bits as separate buffers.
  const std::size_t bytes = std::size_t(s.b) * s.h * dtype_size(s.dtype);
  CUdeviceptr staged = 0;
  RNNJIT_CU(cuMemAllocAsync(&staged, bytes, stream));
  Args a = args;
  a.h_out = reinterpret_cast<void*>(staged);
  try {
    plan->run(a, stream);
    RNNJIT_CU(cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(h_out), staged, bytes, stream));
  } catch (...) {
    driver::api().cuMemFreeAsync(staged, stream);
    throw;
  }
  RNNJIT_CU(cuMemFreeAsync(staged, stream));
}

TuneReport Engine::tune(const Problem& problem, bool force) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  ContextScope scope(im.ctx);
  const std::size_t B = s.b, I = s.i, H = s.h, O = s.o;
  // Random scratch inputs: prewarm runs before the user's data exists.
  DeviceBuffer x(B * I), h(B * H), h_out(B * H), y(B * O), w1(H * (I + H)), b1(H), w2(O * H), b2(O);
  CUstream stream = nullptr;
  RNNJIT_CU(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  struct StreamGuard {
    CUstream s;
    ~StreamGuard() { driver::api().cuStreamDestroy(s); }
  } guard{stream};
  {
    const Module fill(im.jit.get(fill_source(im.device.arch)));
    CUfunction fn = fill.function(0);
    unsigned seed = 1;
    for (const DeviceBuffer* b : {&x, &h, &w1, &b1, &w2, &b2}) {
      float* p = b->get();
      unsigned long long n = b->size();
      float scale = b == &x || b == &h ? 1.0f : 1.0f / std::sqrt(float(I + H));
      unsigned sd = seed++;
      void* params[] = {&p, &n, &sd, &scale};
      RNNJIT_CU(cuLaunchKernel(fn, 1024, 1, 1, 256, 1, 1, 0, stream, params, nullptr));
    }
    RNNJIT_CU(cuStreamSynchronize(stream));
  }
  const Args args{x.get(), h.get(), h_out.get(), y.get(), w1.get(), b1.get(), w2.get(), b2.get(), im.counters->next()};
  return im.plans.tune(s, args, stream, force ? CacheUse::Retune : CacheUse::Lookup);
}

void Engine::pin(const Problem& problem, const std::string& config) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  const auto c = Config::parse(config);
  if (!c) throw Error(ErrorCode::InvalidArgument, "'" + config + "' is not a config name");
  std::string why;
  if (!can_implement(*c, s, im.device, &why)) throw Error(ErrorCode::InvalidArgument, config + ": " + why);
  ContextScope scope(im.ctx);
  im.plans.pin(s, *c);
}

RnnCell::RnnCell(Engine& engine, const Problem& problem, const Weights& weights)
    : engine_(engine), problem_(engine.resolve(problem)), weights_(weights) {
  const Shape s = engine_.impl_->shape_of(problem_);
  ContextScope scope(engine_.impl_->ctx);
  const std::size_t n = std::size_t(s.b) * s.h * dtype_size(s.dtype);
  for (void*& buf : state_) {
    CUdeviceptr p = 0;
    RNNJIT_CU(cuMemAlloc(&p, n));
    buf = reinterpret_cast<void*>(p);
  }
  reset();
}

RnnCell::~RnnCell() {
  try {
    ContextScope scope(engine_.impl_->ctx);
    for (void* buf : state_)
      if (buf) driver::api().cuMemFree(reinterpret_cast<CUdeviceptr>(buf));
  } catch (...) {  // never throw from a destructor
  }
}

void RnnCell::reset(const void* h0, Stream stream) {
  const std::size_t e = dtype_size(problem_.dtype), n = std::size_t(problem_.batch) * problem_.hidden * e;
  ContextScope scope(engine_.impl_->ctx);
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

const void* RnnCell::hidden() const { return state_[current_]; }
const Problem& RnnCell::problem() const { return problem_; }

}  // namespace rnnjit
