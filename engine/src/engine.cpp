#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <shared_mutex>
#include <unordered_map>

#include "device.hpp"
#include "kernels.hpp"
#include "support/log.hpp"
#include "tuner.hpp"

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

struct PlanKey {
  int b, i, h, o;
  Math math;
  bool operator==(const PlanKey&) const = default;
};

struct PlanKeyHash {
  std::size_t operator()(const PlanKey& k) const noexcept {
    std::size_t h = static_cast<std::size_t>(k.math);
    for (int v : {k.b, k.i, k.h, k.o}) h = h * 1000003u ^ static_cast<std::size_t>(v);
    return h;
  }
};

// A plan in the hot map; `tuned` is false for the heuristic's untimed pick made while a
// stream was capturing, which the next uncaptured call replaces by a tuned one.
struct Entry {
  std::shared_ptr<Plan> plan;
  bool tuned = false;
};

std::string arg_error(const char* name, const std::string& what) { return std::string(name) + " " + what; }

struct Span {
  const char* name;
  std::uintptr_t begin;
  std::size_t bytes;
  bool overlaps(const Span& o) const { return begin < o.begin + o.bytes && o.begin < begin + bytes; }
};

}  // namespace

const char* precision_name(Precision p) noexcept {
  switch (p) {
    case Precision::Default: return "default";
    case Precision::FP32: return "fp32";
    case Precision::TF32: return "tf32";
    case Precision::BF16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  for (Precision p : {Precision::Default, Precision::FP32, Precision::TF32, Precision::BF16})
    if (name == precision_name(p)) return p;
  throw Error(ErrorCode::InvalidArgument, "precision '" + name + "' is not one of fp32, tf32, bf16, default");
}

DeviceInfo query_device(int ordinal) {
  int count = 0;
  RNNJIT_CU(cuDeviceGetCount(&count));
  if (count == 0) throw Error(ErrorCode::NoDevice, "no CUDA device: the driver reports none");
  if (ordinal < 0 || ordinal >= count)
    throw Error(ErrorCode::NoDevice, "no CUDA device " + std::to_string(ordinal) + ": the driver reports " +
                                         std::to_string(count) + " device(s)");
  CUdevice dev = 0;
  RNNJIT_CU(cuDeviceGet(&dev, ordinal));
  DeviceInfo d;
  d.ordinal = ordinal;
  char name[256] = {};
  RNNJIT_CU(cuDeviceGetName(name, sizeof name, dev));
  d.name = name;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    RNNJIT_CU(cuDeviceGetAttribute(&v, a, dev));
    return v;
  };
  d.cc_major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  d.cc_minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  d.sm_count = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  d.l2_bytes = attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  d.smem_per_block_optin = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  d.arch = target_arch(d.cc_major, d.cc_minor);
  // The GPU key: what changes the best kernel. Name and compute capability fix the chip;
  // SM count, L2 and shared memory tell apart cut-down parts and MIG slices of one name.
  d.key = d.name + ";cc=" + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) +
          ";sms=" + std::to_string(d.sm_count) + ";l2=" + std::to_string(d.l2_bytes) +
          ";smem=" + std::to_string(d.smem_per_block_optin);
  return d;
}

struct Engine::Impl {
  Precision default_precision;
  bool check_pointers;
  DeviceInfo device;
  CUdevice cu_device = 0;
  CUcontext ctx = nullptr;
  cache::Store store;
  Jit jit;
  Tuner tuner;
  std::shared_mutex plans_mu;
  std::unordered_map<PlanKey, Entry, PlanKeyHash> plans;
  // The one-launch steps' launch counters, zeroed once, a set of StepArgs::kCountersPerCall a call
  // in turn: two launches in flight share one only after kBarrierSlots further calls.
  static constexpr unsigned kBarrierSlots = 4096, kCounters = kBarrierSlots * StepArgs::kCountersPerCall;
  DeviceBuffer barriers;
  std::atomic<unsigned> next_barrier{0};
  unsigned* barrier_slot() {
    const unsigned slot = next_barrier.fetch_add(1, std::memory_order_relaxed) % kBarrierSlots;
    return reinterpret_cast<unsigned*>(barriers.get()) + slot * StepArgs::kCountersPerCall;
  }
  // Per problem, the plan for pointers a TMA plan does not accept (built on first need).
  std::unordered_map<PlanKey, std::shared_ptr<Plan>, PlanKeyHash> unaligned;
  // Replaced plans stay loaded: a CUDA graph captured with one may still launch it.
  std::vector<std::shared_ptr<Plan>> retired;
  std::mutex tune_mu;

  Impl(const EngineOptions& o, DeviceInfo dev)
      : default_precision(o.default_precision),
        check_pointers(o.check_pointers),
        device(std::move(dev)),
        store(cache::resolve_path(o.cache_path)),
        jit(store),
        tuner(device, jit, store) {
    RNNJIT_CU(cuDeviceGet(&cu_device, device.ordinal));
    // The primary context: the one the CUDA runtime uses, so users' cudaMalloc'd pointers
    // and streams are ours too.
    RNNJIT_CU(cuDevicePrimaryCtxRetain(&ctx, cu_device));
    ContextScope scope(ctx);
    barriers = DeviceBuffer(kCounters);
    RNNJIT_CU(cuMemsetD32Async(reinterpret_cast<CUdeviceptr>(barriers.get()), 0, kCounters, nullptr));
    RNNJIT_CU(cuStreamSynchronize(nullptr));
  }

  ~Impl() {
    try {
      ContextScope scope(ctx);
      plans.clear();
      unaligned.clear();
      retired.clear();
      barriers = DeviceBuffer();
    } catch (...) {  // a dead driver: the modules die with the context anyway
    }
    driver::api().cuDevicePrimaryCtxRelease(cu_device);
  }

  Shape shape_of(const Problem& p) const {
    auto dim = [](const char* name, std::int64_t v) {
      if (v < 1 || v > kMaxDim)
        throw Error(ErrorCode::InvalidArgument,
                    arg_error(name, "= " + std::to_string(v) + " is out of range 1.." + std::to_string(kMaxDim)));
      return static_cast<int>(v);
    };
    Shape s{dim("batch", p.batch), dim("input", p.input), dim("hidden", p.hidden), dim("output", p.output)};
    const Precision prec = p.precision == Precision::Default ? default_precision : p.precision;
    if (prec == Precision::BF16) throw Error(ErrorCode::Unsupported, "bf16 storage is not served yet; use fp32 or tf32");
    s.math = prec == Precision::FP32 ? Math::Fp32 : Math::Tf32;
    return s;
  }

  // Throws unless `p` is 4-byte-aligned device memory of this device holding `bytes`.
  void check_pointer(const char* name, const void* p, std::size_t bytes) const {
    if (!p) throw Error(ErrorCode::InvalidArgument, arg_error(name, "is null"));
    if (reinterpret_cast<std::uintptr_t>(p) % alignof(float) != 0)
      throw Error(ErrorCode::InvalidArgument, arg_error(name, "is not 4-byte aligned"));
    if (!check_pointers) return;
    CUpointer_attribute attrs[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                   CU_POINTER_ATTRIBUTE_RANGE_START_ADDR, CU_POINTER_ATTRIBUTE_RANGE_SIZE,
                                   CU_POINTER_ATTRIBUTE_IS_MANAGED};
    // Each attribute writes at most 8 bytes, little-endian; zeroed slots read back right
    // whatever the attribute's width.
    unsigned long long v[5] = {};
    void* data[5] = {&v[0], &v[1], &v[2], &v[3], &v[4]};
    RNNJIT_CU(cuPointerGetAttributes(5, attrs, data, reinterpret_cast<CUdeviceptr>(p)));
    const auto type = static_cast<unsigned>(v[0]);
    const int ordinal = static_cast<int>(static_cast<std::int32_t>(v[1]));
    const bool managed = (v[4] & 0xff) != 0;
    if (type != CU_MEMORYTYPE_DEVICE && !managed)
      throw Error(ErrorCode::InvalidArgument, arg_error(name, type == CU_MEMORYTYPE_HOST ? "is page-locked host memory, not device memory"
                                                                                         : "is not device memory (a host pointer?)"));
    if (!managed && ordinal != device.ordinal)
      throw Error(ErrorCode::InvalidArgument, arg_error(name, "belongs to device " + std::to_string(ordinal) +
                                                                  ", the engine runs on device " + std::to_string(device.ordinal)));
    const auto begin = reinterpret_cast<std::uintptr_t>(p);
    if (v[3] != 0 && begin + bytes > v[2] + v[3])
      throw Error(ErrorCode::InvalidArgument,
                  arg_error(name, "needs " + std::to_string(bytes) + " bytes but its allocation ends " +
                                      std::to_string(v[2] + v[3] - begin) + " bytes after it"));
  }

  // The plan for `s`, tuning on a miss. `args` are the caller's; timing writes scratch.
  std::shared_ptr<Plan> plan(const Shape& s, const StepArgs& args, CUstream stream) {
    const PlanKey key{s.b, s.i, s.h, s.o, s.math};
    {
      std::shared_lock lock(plans_mu);
      auto it = plans.find(key);
      if (it != plans.end() && it->second.tuned) return it->second.plan;
    }
    std::lock_guard tuning(tune_mu);
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    RNNJIT_CU(cuStreamIsCapturing(stream, &capture));
    const bool capturing = capture != CU_STREAM_CAPTURE_STATUS_NONE;
    {
      std::shared_lock lock(plans_mu);
      auto it = plans.find(key);
      if (it != plans.end() && (it->second.tuned || capturing)) return it->second.plan;
    }
    Tuned t;
    if (capturing) {
      t = tuner.plan_for(s, args, stream, false, false);
    } else {
      // Timing runs write only scratch, so the caller's outputs (and an h_out aliasing h)
      // see exactly one run: the real one after tuning.
      const std::size_t hb = std::size_t(s.b) * s.h, yb = std::size_t(s.b) * s.o;
      DeviceBuffer scratch(hb + yb);
      StepArgs timing = args;
      timing.h_out = scratch.get();
      timing.y = scratch.get() + hb;
      t = tuner.plan_for(s, timing, stream, true, false);
      RNNJIT_CU(cuStreamSynchronize(stream));  // scratch is freed next
    }
    std::unique_lock lock(plans_mu);
    Entry& e = plans[key];
    if (e.plan) retired.push_back(e.plan);
    e = {t.plan, !capturing || t.report.from_cache};
    return e.plan;
  }

  // `plan` if it takes these pointers, else the problem's plan without TMA.
  std::shared_ptr<Plan> for_pointers(std::shared_ptr<Plan> plan, const Shape& s, const StepArgs& args) {
    if (plan->accepts(args)) return plan;
    const PlanKey key{s.b, s.i, s.h, s.o, s.math};
    auto cached = [&]() -> std::shared_ptr<Plan> {
      std::shared_lock lock(plans_mu);
      auto it = unaligned.find(key);
      return it != unaligned.end() ? it->second : nullptr;
    };
    if (auto p = cached()) return p;
    std::lock_guard tuning(tune_mu);  // one build per problem; steps of other problems go on
    if (auto p = cached()) return p;
    auto built = tuner.build(tuner.fallback(s), s);
    support::log().info("B={} I={} H={} O={}: pointers not 16-byte aligned, using {}", s.b, s.i, s.h, s.o,
                        built->config().name());
    std::unique_lock lock(plans_mu);
    return unaligned[key] = std::move(built);
  }

  void install(const Shape& s, std::shared_ptr<Plan> plan) {
    std::unique_lock lock(plans_mu);
    Entry& e = plans[PlanKey{s.b, s.i, s.h, s.o, s.math}];
    if (e.plan) retired.push_back(e.plan);
    e = {std::move(plan), true};
  }
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

void Engine::rnn_step(const Problem& problem, const Weights& w, const float* x, const float* h, float* h_out,
                      float* y, Stream stream) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  const std::size_t B = s.b, I = s.i, H = s.h, O = s.o;
  ContextScope scope(im.ctx);
  im.check_pointer("x", x, B * I * 4);
  im.check_pointer("h", h, B * H * 4);
  im.check_pointer("h_out", h_out, B * H * 4);
  im.check_pointer("y", y, B * O * 4);
  im.check_pointer("weights.w1", w.w1, H * (I + H) * 4);
  im.check_pointer("weights.b1", w.b1, H * 4);
  im.check_pointer("weights.w2", w.w2, O * H * 4);
  im.check_pointer("weights.b2", w.b2, O * 4);

  auto span = [](const char* name, const void* p, std::size_t bytes) {
    return Span{name, reinterpret_cast<std::uintptr_t>(p), bytes};
  };
  const Span sx = span("x", x, B * I * 4), sh = span("h", h, B * H * 4), sho = span("h_out", h_out, B * H * 4),
             sy = span("y", y, B * O * 4), sw1 = span("weights.w1", w.w1, H * (I + H) * 4),
             sb1 = span("weights.b1", w.b1, H * 4), sw2 = span("weights.w2", w.w2, O * H * 4),
             sb2 = span("weights.b2", w.b2, O * 4);
  for (const Span& o : {sx, sh, sho, sw1, sb1, sw2, sb2})
    if (sy.overlaps(o)) throw Error(ErrorCode::InvalidArgument, std::string("y overlaps ") + o.name);
  for (const Span& o : {sw1, sb1, sw2, sb2})
    if (sho.overlaps(o)) throw Error(ErrorCode::InvalidArgument, std::string("h_out overlaps ") + o.name);

  const StepArgs args{x, h, h_out, y, w.w1, w.b1, w.w2, w.b2, im.barrier_slot()};
  const std::shared_ptr<Plan> plan = im.for_pointers(im.plan(s, args, stream), s, args);
  if (!sho.overlaps(sh) && !sho.overlaps(sx)) {
    plan->run(args, stream);
    return;
  }
  // h_out overlaps an input of i2h, which other CTAs may still read: stage h' in
  // stream-ordered scratch, then copy. Same kernels, same bits as separate buffers.
  CUdeviceptr staged = 0;
  RNNJIT_CU(cuMemAllocAsync(&staged, B * H * 4, stream));
  StepArgs a = args;
  a.h_out = reinterpret_cast<float*>(staged);
  try {
    plan->run(a, stream);
    RNNJIT_CU(cuMemcpyDtoDAsync(reinterpret_cast<CUdeviceptr>(h_out), staged, B * H * 4, stream));
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
    const Binary fill = im.jit.get(fill_source(im.device.arch));
    CUmodule module = nullptr;
    RNNJIT_CU(cuModuleLoadData(&module, fill.image.data()));
    struct ModuleGuard {
      CUmodule m;
      ~ModuleGuard() { driver::api().cuModuleUnload(m); }
    } module_guard{module};
    CUfunction fn = nullptr;
    RNNJIT_CU(cuModuleGetFunction(&fn, module, fill.lowered_names[0].c_str()));
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
  const StepArgs args{x.get(), h.get(), h_out.get(), y.get(), w1.get(), b1.get(), w2.get(), b2.get(), im.barrier_slot()};
  std::lock_guard tuning(im.tune_mu);
  Tuned t = im.tuner.plan_for(s, args, stream, true, force);
  RNNJIT_CU(cuStreamSynchronize(stream));
  im.install(s, t.plan);
  return t.report;
}

void Engine::pin(const Problem& problem, const std::string& config) {
  Impl& im = *impl_;
  const Shape s = im.shape_of(problem);
  const auto c = Config::parse(config);
  if (!c) throw Error(ErrorCode::InvalidArgument, "'" + config + "' is not a config name");
  std::string why;
  if (!can_implement(*c, s, im.device, &why)) throw Error(ErrorCode::InvalidArgument, config + ": " + why);
  ContextScope scope(im.ctx);
  std::lock_guard tuning(im.tune_mu);
  im.install(s, im.tuner.build(*c, s));
}

RnnCell::RnnCell(Engine& engine, const Problem& problem, const Weights& weights)
    : engine_(engine), problem_(engine.resolve(problem)), weights_(weights) {
  const Shape s = engine_.impl_->shape_of(problem_);
  ContextScope scope(engine_.impl_->ctx);
  const std::size_t n = std::size_t(s.b) * s.h * sizeof(float);
  for (float*& buf : state_) {
    CUdeviceptr p = 0;
    RNNJIT_CU(cuMemAlloc(&p, n));
    buf = reinterpret_cast<float*>(p);
  }
  reset();
}

RnnCell::~RnnCell() {
  try {
    ContextScope scope(engine_.impl_->ctx);
    for (float* buf : state_)
      if (buf) driver::api().cuMemFree(reinterpret_cast<CUdeviceptr>(buf));
  } catch (...) {  // never throw from a destructor
  }
}

void RnnCell::reset(const float* h0, Stream stream) {
  const std::size_t n = std::size_t(problem_.batch) * problem_.hidden;
  ContextScope scope(engine_.impl_->ctx);
  const auto dst = reinterpret_cast<CUdeviceptr>(state_[current_]);
  if (h0) {
    engine_.impl_->check_pointer("h0", h0, n * sizeof(float));
    RNNJIT_CU(cuMemcpyDtoDAsync(dst, reinterpret_cast<CUdeviceptr>(h0), n * sizeof(float), stream));
  } else {
    RNNJIT_CU(cuMemsetD32Async(dst, 0, n, stream));
  }
}

void RnnCell::step(const float* x, float* y, Stream stream) {
  engine_.rnn_step(problem_, weights_, x, state_[current_], state_[1 - current_], y, stream);
  current_ = 1 - current_;
}

const float* RnnCell::hidden() const { return state_[current_]; }
const Problem& RnnCell::problem() const { return problem_; }

}  // namespace rnnjit
