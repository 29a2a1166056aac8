// Engine::rnn_sequence on the GPU: against a float64 recurrence at odd sizes and lengths 1, 2, 3,
// 70 and 1000; every recur tile pinned, in whole and partial chunks, f32 and bf16 storage; T calls of rnn_step; without
// h_all and with h_n replacing h0 (the same bits); in a CUDA graph; RnnCell::sequence; bad
// arguments rejected with nothing written; the prewarm (tune_sequence).
#include "gpu_support.hpp"
#include "temp_dir.hpp"

#include <cstdint>
#include <functional>

#include "families/registry.hpp"

using rnnjit::Precision;
using rnnjit::Problem;

namespace {

// One random sequence problem stored as T (float or bf16): a step's weights and h0 (test::StepOf),
// x for `steps` steps, and the outputs, poisoned before each run.
template <class T>
struct SequenceOf {
  test::StepOf<T> step;
  std::int64_t steps;
  std::vector<float> xs;
  test::DeviceBuffer<T> dxs, dy, dh_n, dh_all;

  SequenceOf(const Problem& p, std::int64_t t, std::mt19937& rng)
      : step(p, rng),
        steps(t),
        dxs(std::size_t(t * p.batch * p.input)),
        dy(std::size_t(t * p.batch * p.output)),
        dh_n(std::size_t(p.batch * p.hidden)),
        dh_all(std::size_t(t * p.batch * p.hidden)) {
    std::uniform_real_distribution<float> d(0, 1);
    xs.resize(std::size_t(t * p.batch * p.input));
    for (float& v : xs) v = test::as_float(test::from_float<T>(d(rng)));
    dxs.upload(xs);
  }

  void poison() {
    dy.poison();
    dh_n.poison();
    dh_all.poison();
  }

  void run(rnnjit::Engine& e, bool with_all = true, cudaStream_t s = nullptr) {
    poison();
    e.rnn_sequence(step.p, steps, step.weights(), dxs.get(), step.dh.get(), dy.get(), dh_n.get(),
                   with_all ? dh_all.get() : nullptr, s);
    CUDA_OK(cudaStreamSynchronize(s));
  }

  // The float64 recurrence: every y_t and h_t, each step from the state before it as stored (bf16
  // rounds each h_t, which the next step and y_t read).
  void reference(std::vector<double>& ys, std::vector<double>& hs) const {
    const Problem& p = step.p;
    std::vector<float> x_t;
    std::vector<double> h_out, y;
    ys.clear();
    hs.clear();
    std::vector<double> h64(step.h.begin(), step.h.end());
    for (std::int64_t t = 0; t < steps; ++t) {
      x_t.assign(xs.begin() + t * p.batch * p.input, xs.begin() + (t + 1) * p.batch * p.input);
      reference_step64(x_t, h64, h_out, y);
      if constexpr (std::is_same_v<T, test::Bf16>) {
        // y_t from h_{t+1} as stored.
        for (double& v : h_out) v = test::as_float(test::from_float<T>(static_cast<float>(v)));
        y = projected(h_out);
      }
      ys.insert(ys.end(), y.begin(), y.end());
      hs.insert(hs.end(), h_out.begin(), h_out.end());
      h64 = h_out;
    }
  }

  // y and h_all of the last run within the precision's bound of the float64 recurrence.
  void check_against_reference() const {
    std::vector<double> ys, hs;
    reference(ys, hs);
    CHECK(rnnjit::relative_error(dy.download(), ys) <= test::bound(step.p.precision));
    CHECK(rnnjit::relative_error(dh_all.download(), hs) <= test::bound(step.p.precision));
  }

  // y = h·W2ᵀ + b2 in float64 for every batch row of h.
  std::vector<double> projected(const std::vector<double>& h) const {
    const Problem& p = step.p;
    std::vector<double> y(std::size_t(p.batch * p.output));
    for (std::int64_t b = 0; b < p.batch; ++b)
      for (std::int64_t o = 0; o < p.output; ++o) {
        double acc = step.b2[o];
        for (std::int64_t k = 0; k < p.hidden; ++k) acc += h[b * p.hidden + k] * step.w2[o * p.hidden + k];
        y[b * p.output + o] = acc;
      }
    return y;
  }

  // One step in float64 from a float64 state (rnnjit::reference_step takes a float state).
  void reference_step64(const std::vector<float>& x, const std::vector<double>& h, std::vector<double>& h_out,
                        std::vector<double>& y) const {
    const Problem& p = step.p;
    const std::int64_t K = p.input + p.hidden;
    h_out.assign(std::size_t(p.batch * p.hidden), 0);
    y.assign(std::size_t(p.batch * p.output), 0);
    for (std::int64_t b = 0; b < p.batch; ++b) {
      for (std::int64_t n = 0; n < p.hidden; ++n) {
        double acc = step.b1[n];
        for (std::int64_t k = 0; k < p.input; ++k) acc += double(x[b * p.input + k]) * step.w1[n * K + k];
        for (std::int64_t k = 0; k < p.hidden; ++k) acc += h[b * p.hidden + k] * step.w1[n * K + p.input + k];
        h_out[b * p.hidden + n] = std::tanh(acc);
      }
    }
    y = projected(h_out);
  }
};
using Sequence = SequenceOf<float>;

}  // namespace

TEST_CASE("a sequence matches the float64 recurrence at odd sizes and lengths 1, 2, 3, 70 and 1000", "[gpu][sequence]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(51);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    std::vector<std::pair<Problem, std::int64_t>> cases;
    for (std::int64_t t : {1, 2, 3})
      for (Problem p : {Problem{3, 9, 7, 5}, Problem{17, 33, 65, 9}, Problem{8, 1024, 256, 128}, Problem{70, 37, 45, 21}})
        cases.push_back({p, t});
    cases.push_back({Problem{2, 5, 7, 3}, 1000});
    cases.push_back({Problem{17, 33, 65, 9}, 70});
    cases.push_back({Problem{8, 64, 32, 16}, 1000});
    for (auto [p, t] : cases) {
      p.precision = prec;
      INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " T=" << t << " "
                << rnnjit::precision_name(prec));
      Sequence s(p, t, rng);
      s.run(engine);
      s.check_against_reference();
      // h_n is the last state, h_all's last row, bit for bit.
      const auto all = s.dh_all.download();
      const std::vector<float> last(all.end() - p.batch * p.hidden, all.end());
      CHECK(test::same_bits(s.dh_n.download(), last));
      // Run to run, the same bits.
      const auto y1 = s.dy.download();
      s.run(engine);
      CHECK(test::same_bits(s.dy.download(), y1));
    }
  }
}

namespace {

// Pins each recur tile this GPU runs for `p` over `t` steps, with the projections of the heuristic's
// first candidate, and calls check() with it pinned; how many ran.
int each_recur_tile(rnnjit::Engine& engine, const Problem& p, std::int64_t t, const std::function<void()>& check) {
  const auto base = rnnjit::Config::parse(engine.sequence_candidates(p, t).at(0));
  REQUIRE(base);
  int pinned = 0;
  for (const rnnjit::RecurTile& tile : rnnjit::RecurTile::pool()) {
    const std::string name = rnnjit::Config::sequence(base->ops[0].tile, tile, base->ops[2].tile).name();
    try {
      engine.pin(p, name);
    } catch (const rnnjit::Error& e) {  // a tile this GPU cannot run (clusters before sm_90, shared memory)
      CHECK(e.code() == rnnjit::ErrorCode::InvalidArgument);
      continue;
    }
    INFO(name << " B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " T=" << t << " "
              << rnnjit::precision_name(p.precision) << " " << rnnjit::dtype_name(p.dtype));
    check();
    ++pinned;
  }
  return pinned;
}

// One sequence of `p` against the float64 recurrence, then again without h_all: the same bits.
template <class T>
void check_sequence(rnnjit::Engine& engine, const Problem& p, std::int64_t t, std::mt19937& rng) {
  SequenceOf<T> s(p, t, rng);
  s.run(engine);
  s.check_against_reference();
  const auto y1 = s.dy.download(), h_n = s.dh_n.download();
  s.run(engine, false);
  CHECK(test::same_bits(s.dy.download(), y1));
  CHECK(test::same_bits(s.dh_n.download(), h_n));
}

}  // namespace

// Every recur tile this GPU runs: shapes with H below the CTAs (CTAs of no rows), batches past a
// staged chunk, odd sizes; lengths of one chunk, of a chunk and a partial one (3: chunks of 2; 70:
// of 64), with and without h_all.
TEST_CASE("every recur tile matches the float64 recurrence in whole and partial chunks", "[gpu][sequence][recur]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(56);
  int pinned = 0;
  for (Problem p : {Problem{3, 9, 7, 5}, Problem{8, 1024, 256, 128}, Problem{70, 37, 45, 21}, Problem{1, 64, 300, 7}})
    for (Precision prec : {Precision::FP32, Precision::TF32})
      for (std::int64_t t : {1, 3, 70}) {
        p.precision = prec;
        pinned += each_recur_tile(engine, p, t, [&] { check_sequence<float>(engine, p, t, rng); });
      }
  CHECK(pinned >= 4 * 2 * 3 * 8);
}

// bf16 storage on every recur tile: odd sizes (element loads), rows of 4-element units (8-byte
// loads), CTAs of no rows, one chunk and a partial one, against the float64 recurrence of the
// states as stored.
TEST_CASE("bf16 sequences match the float64 recurrence of their stored states on every recur tile",
          "[gpu][sequence][recur][bf16]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(58);
  int pinned = 0;
  for (Problem p : {Problem{3, 9, 7, 5}, Problem{8, 1024, 256, 128}, Problem{70, 37, 45, 21}, Problem{1, 64, 300, 7}})
    for (std::int64_t t : {3, 70}) {
      p.precision = Precision::BF16, p.dtype = rnnjit::DType::BF16;
      pinned += each_recur_tile(engine, p, t, [&] { check_sequence<test::Bf16>(engine, p, t, rng); });
    }
  CHECK(pinned >= 4 * 2 * 8);
}

// Small enough for racecheck: every recur tile at one shape whose hidden size the clusters take,
// over a whole chunk and a partial one, in f32 and bf16 storage.
TEST_CASE("sanitizer workload: every recur tile over a sequence", "[gpu][sequence][sanitize]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(57);
  const Problem f32{5, 12, 96, 7, Precision::FP32}, bf16{5, 12, 96, 7, Precision::BF16, rnnjit::DType::BF16};
  int pinned = each_recur_tile(engine, f32, 6, [&] {
    SequenceOf<float> s(f32, 6, rng);
    s.run(engine);
    s.check_against_reference();
  });
  pinned += each_recur_tile(engine, bf16, 6, [&] {
    SequenceOf<test::Bf16> s(bf16, 6, rng);
    s.run(engine);
    s.check_against_reference();
  });
  CHECK(pinned >= 16);
}

// The prewarm: tune_sequence times the chunk size a length runs in and persists it, so that a first
// rnn_sequence of any length with that chunk runs without tuning, here and in a new engine.
TEST_CASE("tune_sequence prewarms the chunk a length runs in, for this engine and the next", "[gpu][sequence]") {
  test::TempDir dir;
  rnnjit::EngineOptions o;
  o.cache_path = (dir.path / "cache.sqlite").string();
  const Problem p{3, 33, 65, 9, Precision::TF32};
  std::mt19937 rng(58);
  {
    rnnjit::Engine engine(o);
    const rnnjit::TuneReport r = engine.tune_sequence(p, 100);  // chunks of 64
    CHECK_FALSE(r.from_cache);
    CHECK(rnnjit::Config::parse(r.winner)->is_sequence());
    CHECK(engine.tune_sequence(p, 70).from_cache);  // the same chunk
    CHECK_THROWS_AS(engine.tune_sequence(p, 0), rnnjit::Error);
    Sequence s(p, 80, rng);
    s.run(engine);
    s.check_against_reference();
    CHECK(engine.stats().tunings == 1);
  }
  rnnjit::Engine again(o);
  Sequence s(p, 64, rng);
  s.run(again);
  s.check_against_reference();
  CHECK(again.stats().tunings == 0);
}

TEST_CASE("a sequence matches T calls of rnn_step, with the same bits with or without h_all, h_n replacing h0",
          "[gpu][sequence]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(52);
  for (Problem p : {Problem{8, 1024, 256, 128}, Problem{3, 999, 17, 5}, Problem{70, 37, 45, 21, Precision::FP32}}) {
    INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output);
    constexpr std::int64_t kSteps = 5;
    Sequence s(p, kSteps, rng);
    s.run(engine);
    const auto ys = s.dy.download(), h_n = s.dh_n.download();
    // The same steps one call each, h' into the next step's h: both within the bound of the
    // float64 recurrence (the sequence projects x apart from h, so the bits differ).
    std::vector<double> ref_y, ref_h;
    s.reference(ref_y, ref_h);
    test::DevBuf h(std::size_t(p.batch * p.hidden)), y(std::size_t(p.batch * p.output));
    CUDA_OK(cudaMemcpy(h.get(), s.step.dh.get(), p.batch * p.hidden * sizeof(float), cudaMemcpyDeviceToDevice));
    std::vector<float> step_ys;
    for (std::int64_t t = 0; t < kSteps; ++t) {
      engine.rnn_step(p, s.step.weights(), s.dxs.get() + t * p.batch * p.input, h.get(), h.get(), y.get());
      const auto yt = y.download();
      step_ys.insert(step_ys.end(), yt.begin(), yt.end());
    }
    CHECK(rnnjit::relative_error(step_ys, ref_y) <= test::bound(p.precision));
    CHECK(rnnjit::relative_error(ys, ref_y) <= test::bound(p.precision));
    const std::vector<double> ref_n(ref_h.end() - p.batch * p.hidden, ref_h.end());
    CHECK(rnnjit::relative_error(h.download(), ref_n) <= test::bound(p.precision));
    CHECK(rnnjit::relative_error(h_n, ref_n) <= test::bound(p.precision));
    // Without h_all: the same y and h_n.
    s.run(engine, false);
    CHECK(test::same_bits(s.dy.download(), ys));
    CHECK(test::same_bits(s.dh_n.download(), h_n));
    for (float v : s.dh_all.download()) REQUIRE(std::isnan(v));  // untouched: still the poison
    // h_n replacing h0, as a loop over chunks of a long sequence does.
    for (bool with_all : {true, false}) {
      CUDA_OK(cudaMemcpy(h.get(), s.step.dh.get(), p.batch * p.hidden * sizeof(float), cudaMemcpyDeviceToDevice));
      s.poison();
      engine.rnn_sequence(p, kSteps, s.step.weights(), s.dxs.get(), h.get(), s.dy.get(), h.get(),
                          with_all ? s.dh_all.get() : nullptr);
      CUDA_OK(cudaDeviceSynchronize());
      CHECK(test::same_bits(s.dy.download(), ys));
      CHECK(test::same_bits(h.download(), h_n));
    }
  }
}

TEST_CASE("a sequence captured in a CUDA graph replays with the bits of an uncaptured one", "[gpu][sequence]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(53);
  const Problem p{8, 1024, 256, 128};
  Sequence s(p, 16, rng);
  s.run(engine);  // tunes (never inside a capture)
  s.check_against_reference();
  const auto ys = s.dy.download(), h_n = s.dh_n.download();
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  s.poison();
  cudaGraph_t graph;
  CUDA_OK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  engine.rnn_sequence(p, s.steps, s.step.weights(), s.dxs.get(), s.step.dh.get(), s.dy.get(), s.dh_n.get(), nullptr,
                      stream);
  CUDA_OK(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  CUDA_OK(cudaGraphInstantiate(&exec, graph, 0));
  for (int replay = 0; replay < 3; ++replay) {
    s.poison();
    CUDA_OK(cudaGraphLaunch(exec, stream));
    CUDA_OK(cudaStreamSynchronize(stream));
    CHECK(test::same_bits(s.dy.download(), ys));
    CHECK(test::same_bits(s.dh_n.download(), h_n));
  }
  CUDA_OK(cudaGraphExecDestroy(exec));
  CUDA_OK(cudaGraphDestroy(graph));
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST_CASE("RnnCell::sequence advances the state as its steps do", "[gpu][sequence]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(54);
  const Problem p{5, 7, 33, 3, Precision::FP32};
  Sequence s(p, 7, rng);
  rnnjit::RnnCell by_steps(engine, p, s.step.weights()), by_sequence(engine, p, s.step.weights());
  by_steps.reset(s.step.dh.get());
  by_sequence.reset(s.step.dh.get());
  test::DevBuf y(std::size_t(p.batch * p.output));
  std::vector<float> ys;
  for (std::int64_t t = 0; t < s.steps; ++t) {
    by_steps.step(s.dxs.get() + t * p.batch * p.input, y.get());
    const auto yt = y.download();
    ys.insert(ys.end(), yt.begin(), yt.end());
  }
  s.poison();
  by_sequence.sequence(3, s.dxs.get(), s.dy.get());
  by_sequence.sequence(4, s.dxs.get() + 3 * p.batch * p.input, s.dy.get() + 3 * p.batch * p.output);
  CUDA_OK(cudaDeviceSynchronize());
  // Both within the bound of the float64 recurrence (a sequence projects x apart from h).
  std::vector<double> ref_y, ref_h;
  s.reference(ref_y, ref_h);
  CHECK(rnnjit::relative_error(ys, ref_y) <= test::bound(p.precision));
  CHECK(rnnjit::relative_error(s.dy.download(), ref_y) <= test::bound(p.precision));
  std::vector<float> a(std::size_t(p.batch * p.hidden)), b(a.size());
  CUDA_OK(cudaMemcpy(a.data(), by_steps.hidden(), a.size() * sizeof(float), cudaMemcpyDeviceToHost));
  CUDA_OK(cudaMemcpy(b.data(), by_sequence.hidden(), b.size() * sizeof(float), cudaMemcpyDeviceToHost));
  const std::vector<double> ref_n(ref_h.end() - p.batch * p.hidden, ref_h.end());
  CHECK(rnnjit::relative_error(a, ref_n) <= test::bound(p.precision));
  CHECK(rnnjit::relative_error(b, ref_n) <= test::bound(p.precision));
}

TEST_CASE("a sequence with bad arguments is rejected with a clear error and nothing is written", "[gpu][sequence]") {
  rnnjit::Engine& engine = test::shared_engine();
  std::mt19937 rng(55);
  const Problem p{3, 9, 7, 5};
  Sequence s(p, 4, rng);
  const rnnjit::Weights w = s.step.weights();
  const float* x = s.dxs.get();
  const float* h0 = s.step.dh.get();
  float *y = s.dy.get(), *h_n = s.dh_n.get(), *h_all = s.dh_all.get();
  struct Bad {
    const char* message;
    std::function<void()> call;
  };
  const Bad bad[] = {
      {"steps = 0 is out of range", [&] { engine.rnn_sequence(p, 0, w, x, h0, y, h_n, h_all); }},
      {"steps = 16777217 is out of range", [&] { engine.rnn_sequence(p, rnnjit::kMaxSteps + 1, w, x, h0, y, h_n, h_all); }},
      {"x is null", [&] { engine.rnn_sequence(p, 4, w, nullptr, h0, y, h_n, h_all); }},
      {"h_n is null", [&] { engine.rnn_sequence(p, 4, w, x, h0, y, nullptr, h_all); }},
      // x holds 4 steps: 5 need more than its allocation.
      {"x needs", [&] { engine.rnn_sequence(p, 5, w, x, h0, y, h_n, nullptr); }},
      {"y overlaps x", [&] { engine.rnn_sequence(p, 1, w, x, h0, const_cast<float*>(x), h_n, h_all); }},
      {"y overlaps h_all", [&] { engine.rnn_sequence(p, 4, w, x, h0, h_all, h_n, h_all); }},
      {"h_n overlaps x", [&] { engine.rnn_sequence(p, 4, w, x, h0, y, const_cast<float*>(x), h_all); }},
      {"h_all overlaps h_n", [&] { engine.rnn_sequence(p, 4, w, x, h0, y, h_all, h_all); }},
  };
  for (const Bad& b : bad) {
    INFO(b.message);
    s.poison();
    test::expect_error(rnnjit::ErrorCode::InvalidArgument, b.message, b.call);
    CUDA_OK(cudaDeviceSynchronize());
    for (const auto* out : {&s.dy, &s.dh_n, &s.dh_all})
      for (float v : out->download()) REQUIRE(std::isnan(v));
  }
}
