// Shared by the GPU tests: device buffers through the CUDA runtime (as users hold them),
// random problems, and the check against the float64 reference.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <random>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "rnnjit/rnnjit.hpp"
#include "validate.hpp"

#define CUDA_OK(call) REQUIRE((call) == cudaSuccess)

namespace test {

/// A bfloat16 element as the engine stores it.
using Bf16 = __nv_bfloat16;

/// `v` as an element of T: float as it is; bf16 rounded to nearest even.
template <class T>
T from_float(float v) {
  if constexpr (std::is_same_v<T, Bf16>)
    return __float2bfloat16(v);
  else
    return v;
}
/// An element as a float, exactly.
inline float as_float(float v) { return v; }
inline float as_float(Bf16 v) { return __bfloat162float(v); }
/// The storage type of T's elements.
template <class T>
constexpr rnnjit::DType dtype_of() {
  return std::is_same_v<T, Bf16> ? rnnjit::DType::BF16 : rnnjit::DType::F32;
}

/// cudaMalloc'd elements of T (float or Bf16), `offset` elements into the allocation (to test
/// unaligned pointers); uploaded from and downloaded as floats.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer(std::size_t n, std::size_t offset = 0) : n_(n) {
    CUDA_OK(cudaMalloc(&base_, (n + offset) * sizeof(T) + 16));
    ptr_ = base_ + offset;
  }
  ~DeviceBuffer() { cudaFree(base_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  void upload(const std::vector<float>& v) {
    REQUIRE(v.size() == n_);
    std::vector<T> raw(n_);
    std::transform(v.begin(), v.end(), raw.begin(), from_float<T>);
    CUDA_OK(cudaMemcpy(ptr_, raw.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<float> download(std::size_t count) const {
    std::vector<T> raw(count);
    CUDA_OK(cudaMemcpy(raw.data(), ptr_, count * sizeof(T), cudaMemcpyDeviceToHost));
    std::vector<float> v(count);
    std::transform(raw.begin(), raw.end(), v.begin(), [](T e) { return as_float(e); });
    return v;
  }
  std::vector<float> download() const { return download(n_); }
  /// All bits set: a NaN (float or bf16), so an element the kernel never wrote fails the check.
  /// Done before it returns: cudaMemset runs on the legacy stream, which a step on a non-blocking
  /// stream does not wait for, so a late poison could land on the step's results.
  void poison() {
    CUDA_OK(cudaMemset(ptr_, 0xff, n_ * sizeof(T)));
    CUDA_OK(cudaStreamSynchronize(nullptr));
  }

 private:
  T* base_ = nullptr;
  T* ptr_ = nullptr;
  std::size_t n_;
};
using DevBuf = DeviceBuffer<float>;

/// Host copies and device buffers of one random problem stored as T (the problem's dtype), drawn
/// fresh each time: inputs like torch.rand, weights like nn.Linear's init, each value one T holds
/// exactly, so that the reference sees what the device reads.
template <class T>
struct StepOf {
  rnnjit::Problem p;
  std::vector<float> w1, b1, w2, b2, x, h;
  DeviceBuffer<T> dw1, db1, dw2, db2, dx, dh, dh_out, dy;

  StepOf(const rnnjit::Problem& problem, std::mt19937& rng, std::size_t offset = 0)
      : p(problem),
        dw1(p.hidden * (p.input + p.hidden), offset), db1(p.hidden, offset), dw2(p.output * p.hidden, offset),
        db2(p.output, offset), dx(p.batch * p.input, offset), dh(p.batch * p.hidden, offset),
        dh_out(p.batch * p.hidden, offset), dy(p.batch * p.output, offset) {
    REQUIRE(p.dtype == dtype_of<T>());
    const float k1 = 1.0f / std::sqrt(float(p.input + p.hidden)), k2 = 1.0f / std::sqrt(float(p.hidden));
    auto fill = [&](std::vector<float>& v, std::size_t n, float lo, float hi) {
      std::uniform_real_distribution<float> d(lo, hi);
      v.resize(n);
      for (auto& e : v) e = as_float(from_float<T>(d(rng)));
    };
    fill(w1, p.hidden * (p.input + p.hidden), -k1, k1);
    fill(b1, p.hidden, -k1, k1);
    fill(w2, p.output * p.hidden, -k2, k2);
    fill(b2, p.output, -k2, k2);
    fill(x, p.batch * p.input, 0, 1);
    fill(h, p.batch * p.hidden, 0, 1);
    dw1.upload(w1), db1.upload(b1), dw2.upload(w2), db2.upload(b2), dx.upload(x), dh.upload(h);
  }

  rnnjit::Weights weights() const { return {dw1.get(), db1.get(), dw2.get(), db2.get()}; }

  void run(rnnjit::Engine& e, cudaStream_t s = nullptr) {
    dh_out.poison();
    dy.poison();
    e.rnn_step(p, weights(), dx.get(), dh.get(), dh_out.get(), dy.get(), s);
    CUDA_OK(cudaStreamSynchronize(s));
  }

  /// Max of the relative errors of h' and y over the first `rows` batch rows (the
  /// reference is O(B·H·(I+H)) in float64: big batches are sampled).
  double error(std::int64_t rows) const {
    std::vector<double> rh, ry;
    rnnjit::reference_step(rows, p.input, p.hidden, p.output, w1.data(), b1.data(), w2.data(), b2.data(), x.data(),
                           h.data(), rh, ry);
    const std::vector<float> got_h = dh_out.download(rows * p.hidden);
    if constexpr (std::is_same_v<T, Bf16>) ry = projected(got_h, rows);
    return std::max(rnnjit::relative_error(got_h, rh), rnnjit::relative_error(dy.download(rows * p.output), ry));
  }

  /// y = h'·W2ᵀ + b2 in float64 from h' as stored. bf16's output projection reads h' rounded to
  /// bf16 (2⁻⁹ of each term): against the float64 h' a y of few outputs that cancels (B = O = 1)
  /// can pass 1e-2 from that rounding alone, so y is checked against what it read.
  std::vector<double> projected(const std::vector<float>& h_out, std::int64_t rows) const {
    std::vector<double> out(rows * p.output);
    for (std::int64_t r = 0; r < rows; ++r)
      for (std::int64_t o = 0; o < p.output; ++o) {
        double acc = b2[o];
        for (std::int64_t j = 0; j < p.hidden; ++j) acc += double(h_out[r * p.hidden + j]) * w2[o * p.hidden + j];
        out[r * p.output + o] = acc;
      }
    return out;
  }

  std::int64_t check_rows() const {
    const double work = double(p.batch) * double(p.input + p.hidden) * double(p.hidden);
    return work > 4e8 ? std::min<std::int64_t>(p.batch, 2) : p.batch;
  }
};
using Step = StepOf<float>;
using Bf16Step = StepOf<Bf16>;

/// rnnjit::error_bound, with Default as the default engine's precision, which every test engine
/// keeps unless it sets its own (and then resolves before asking).
inline double bound(rnnjit::Precision p) {
  return rnnjit::error_bound(p == rnnjit::Precision::Default ? rnnjit::EngineOptions{}.default_precision : p);
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

/// Runs `call`, which must throw an rnnjit::Error of `code` whose message contains `text` (any
/// message where `text` is null).
template <class F>
void expect_error(rnnjit::ErrorCode code, const char* text, F&& call) {
  try {
    call();
    FAIL("accepted: " << (text ? text : "a call that must throw"));
  } catch (const rnnjit::Error& e) {
    INFO(e.what());
    CHECK(e.code() == code);
    if (text) CHECK_THAT(e.message(), Catch::Contains(text));
  }
}

inline rnnjit::EngineOptions memory_only() {
  rnnjit::EngineOptions o;
  o.cache_path = "off";
  return o;
}

/// The device fixture: one memory-only engine the tests of a binary share (plans pinned by one
/// test stay pinned for the next). A test that counts tunings or needs a fresh engine makes its own.
/// Never destroyed: it would outlive the CUDA runtime's teardown at exit.
inline rnnjit::Engine& shared_engine() {
  static rnnjit::Engine* engine = new rnnjit::Engine(memory_only());
  return *engine;
}

}  // namespace test

namespace test {

// 30 shapes: odd sizes (1, 3, 999, 4097 among them), tails of every tile, aligned ones.
inline std::vector<rnnjit::Problem> random_shapes() {
  std::vector<rnnjit::Problem> out = {{1, 1, 1, 1},   {3, 999, 17, 5},  {4097, 3, 5, 7},   {2, 4097, 33, 1},
                                      {5, 7, 999, 3}, {1, 1, 4097, 1},  {33, 65, 129, 257}, {16, 32, 64, 8}};
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> small(1, 300), batch(1, 200);
  while (out.size() < 30) out.push_back({batch(rng), small(rng), small(rng), small(rng)});
  return out;
}

template <class T>
void check_step_of(rnnjit::Engine& engine, const rnnjit::Problem& p, std::mt19937& rng, std::size_t offset) {
  test::StepOf<T> s(p, rng, offset);
  s.run(engine);
  const auto h1 = s.dh_out.download(), y1 = s.dy.download();
  const double err = s.error(s.check_rows());
  const rnnjit::Precision prec = engine.resolve(p).precision;
  INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " "
            << rnnjit::dtype_name(p.dtype) << " " << rnnjit::precision_name(prec) << " offset " << offset << ": error "
            << err);
  CHECK(err <= test::bound(prec));
  s.run(engine);  // poisoned again: the second run must write the same bits
  CHECK(test::same_bits(s.dh_out.download(), h1));
  CHECK(test::same_bits(s.dy.download(), y1));
}

/// One step of `p` (of its dtype) on fresh random data against the reference, then a rerun that
/// must write the same bits. `offset` elements past each allocation's start: unaligned pointers.
inline void check_step(rnnjit::Engine& engine, const rnnjit::Problem& p, std::mt19937& rng, std::size_t offset = 0) {
  if (p.dtype == rnnjit::DType::BF16)
    check_step_of<Bf16>(engine, p, rng, offset);
  else
    check_step_of<float>(engine, p, rng, offset);
}

// The config of every tile T of family F's pool that can run `p` here: "i2h_T.h2o_T", or T's
// name for a whole-step family.
template <class F>
std::vector<std::string> pool_configs(const rnnjit::Engine& engine, const rnnjit::Problem& p) {
  const rnnjit::Shape s = rnnjit::shape_of(p, rnnjit::Precision::TF32);
  std::vector<std::string> out;
  for (const F& t : F::pool()) {
    const rnnjit::Config c = F::kScope == rnnjit::Scope::Step ? rnnjit::Config::whole(t) : rnnjit::Config::pair(t, t);
    if (rnnjit::can_implement(c, s, engine.device(), nullptr)) out.push_back(c.name());
  }
  return out;
}
// Pins every config of family F's pool that can run `p` here and checks a step of each against the
// reference (then the same bits again) at each pointer offset of `offsets` (elements past
// cudaMalloc's alignment); how many configs ran.
template <class F>
int check_pool(rnnjit::Engine& engine, const rnnjit::Problem& p, std::mt19937& rng,
               const std::vector<std::size_t>& offsets) {
  int pinned = 0;
  for (const std::string& name : pool_configs<F>(engine, p)) {
    INFO(name);
    engine.pin(p, name);
    for (std::size_t offset : offsets) check_step(engine, p, rng, offset);
    ++pinned;
  }
  return pinned;
}
// Whether the device runs wgmma (sm_90a); a test that needs it says so where it does not.
inline bool runs_wgmma(const rnnjit::Engine& engine) {
  if (engine.device().arch == "sm_90a") return true;
  WARN("not an sm_90a device: no wgmma");
  return false;
}
inline std::vector<std::string> wgmma_configs(const rnnjit::Engine& engine, const rnnjit::Problem& p) {
  return pool_configs<rnnjit::WgmmaTile>(engine, p);
}

// A config stepping `count` problems on as many streams at once, `steps` times, each call into
// outputs of its own (poisoned): each call has its own barrier counter and scratch (more streams
// than the engine keeps scratch buffers take stream-ordered memory), so every call's h' and y keep
// the bits of its problem's first, lone run, which is checked against the reference.
inline void check_streams(rnnjit::Engine& engine, const rnnjit::Problem& p, const std::string& config, std::mt19937& rng,
                          int steps, int count = 2) {
  engine.pin(p, config);
  std::vector<cudaStream_t> streams(count);
  for (auto& st : streams) CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  std::vector<std::unique_ptr<test::Step>> runs;
  std::vector<std::vector<float>> lone_h, lone_y;
  for (int i = 0; i < count; ++i) {
    runs.push_back(std::make_unique<test::Step>(p, rng));
    runs.back()->run(engine, streams[i]);
    CHECK(runs.back()->error(runs.back()->check_rows()) <= test::bound(engine.resolve(p).precision));
    lone_h.push_back(runs.back()->dh_out.download());
    lone_y.push_back(runs.back()->dy.download());
  }
  // outputs[i][t]: h' and y of stream i's step t.
  std::vector<std::vector<std::pair<std::unique_ptr<test::DevBuf>, std::unique_ptr<test::DevBuf>>>> outputs(count);
  for (auto& per_stream : outputs)
    for (int t = 0; t < steps; ++t) {
      per_stream.emplace_back(std::make_unique<test::DevBuf>(p.batch * p.hidden),
                              std::make_unique<test::DevBuf>(p.batch * p.output));
      per_stream.back().first->poison();
      per_stream.back().second->poison();
    }
  for (int t = 0; t < steps; ++t)
    for (int i = 0; i < count; ++i) {
      test::Step& r = *runs[i];
      engine.rnn_step(p, r.weights(), r.dx.get(), r.dh.get(), outputs[i][t].first->get(), outputs[i][t].second->get(),
                      streams[i]);
    }
  for (int i = 0; i < count; ++i) {
    CUDA_OK(cudaStreamSynchronize(streams[i]));
    for (int t = 0; t < steps; ++t) {
      INFO(config << " stream " << i << " of " << count << ", step " << t);
      CHECK(test::same_bits(outputs[i][t].first->download(), lone_h[i]));
      CHECK(test::same_bits(outputs[i][t].second->download(), lone_y[i]));
    }
    CUDA_OK(cudaStreamDestroy(streams[i]));
  }
}

// `steps` steps of a recurrence back to back on one stream, each reading the h' the step before it
// wrote (outputs poisoned, no synchronization between steps, a launch counter each), each checked
// against the float64 reference from the h it read.
inline void check_chain(rnnjit::Engine& engine, const rnnjit::Problem& p, const std::string& config, std::mt19937& rng,
                 int steps) {
  engine.pin(p, config);
  test::Step s(p, rng);
  std::vector<std::unique_ptr<test::DevBuf>> xs, hs, ys;
  std::vector<std::vector<float>> x_host;
  std::uniform_real_distribution<float> d(0, 1);
  hs.push_back(std::make_unique<test::DevBuf>(p.batch * p.hidden));
  hs[0]->upload(s.h);
  for (int t = 0; t < steps; ++t) {
    x_host.emplace_back(p.batch * p.input);
    for (auto& v : x_host.back()) v = d(rng);
    xs.push_back(std::make_unique<test::DevBuf>(p.batch * p.input));
    xs.back()->upload(x_host.back());
    hs.push_back(std::make_unique<test::DevBuf>(p.batch * p.hidden));
    hs.back()->poison();
    ys.push_back(std::make_unique<test::DevBuf>(p.batch * p.output));
    ys.back()->poison();
  }
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  for (int t = 0; t < steps; ++t)
    engine.rnn_step(p, s.weights(), xs[t]->get(), hs[t]->get(), hs[t + 1]->get(), ys[t]->get(), stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaStreamDestroy(stream));
  for (int t = 0; t < steps; ++t) {
    std::vector<double> rh, ry;
    const std::vector<float> h = hs[t]->download();
    rnnjit::reference_step(p.batch, p.input, p.hidden, p.output, s.w1.data(), s.b1.data(), s.w2.data(), s.b2.data(),
                           x_host[t].data(), h.data(), rh, ry);
    INFO(config << " step " << t << " of " << steps);
    CHECK(rnnjit::relative_error(hs[t + 1]->download(), rh) <= test::bound(engine.resolve(p).precision));
    CHECK(rnnjit::relative_error(ys[t]->download(), ry) <= test::bound(engine.resolve(p).precision));
  }
}

// Captures one step of `s` on `stream` into a graph (poisoned outputs: capture runs nothing), then
// replays it three times and waits.
template <class T>
void capture_and_replay(rnnjit::Engine& engine, StepOf<T>& s, cudaStream_t stream) {
  s.dh_out.poison();
  s.dy.poison();
  cudaGraph_t graph;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh_out.get(), s.dy.get(), stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  CHECK(std::isnan(s.dy.download()[0]));  // captured, not run
  for (int replay = 0; replay < 3; ++replay) CUDA_OK(cudaGraphLaunch(exec, stream));
  CUDA_OK(cudaStreamSynchronize(stream));
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
}


// `config` run once on a stream of its own (within the precision's bound), then captured in a graph
// and replayed: the replay gives the bits of the uncaptured run.
inline void check_replay(rnnjit::Engine& engine, const rnnjit::Problem& p, const std::string& config, std::mt19937& rng) {
  engine.pin(p, config);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  test::Step s(p, rng);
  s.run(engine, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  CHECK(s.error(p.batch) <= test::bound(engine.resolve(p).precision));
  const auto h_ref = s.dh_out.download(), y_ref = s.dy.download();
  capture_and_replay(engine, s, stream);
  CHECK(test::same_bits(s.dh_out.download(), h_ref));
  CHECK(test::same_bits(s.dy.download(), y_ref));
  CUDA_OK(cudaStreamDestroy(stream));
}

}  // namespace test
