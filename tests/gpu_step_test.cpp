#include "gpu_support.hpp"

#include "config.hpp"
#include "tuner.hpp"

#include <cstdlib>
#include <memory>
#include <thread>

using rnnjit::Precision;
using test::Step;

namespace {

// 30 shapes: odd sizes (1, 3, 999, 4097 among them), tails of every tile, aligned ones.
std::vector<rnnjit::Problem> random_shapes() {
  std::vector<rnnjit::Problem> out = {{1, 1, 1, 1},   {3, 999, 17, 5},  {4097, 3, 5, 7},   {2, 4097, 33, 1},
                                      {5, 7, 999, 3}, {1, 1, 4097, 1},  {33, 65, 129, 257}, {16, 32, 64, 8}};
  std::mt19937 rng(42);
  std::uniform_int_distribution<int> small(1, 300), batch(1, 200);
  while (out.size() < 30) out.push_back({batch(rng), small(rng), small(rng), small(rng)});
  return out;
}

void check_step(rnnjit::Engine& engine, const rnnjit::Problem& p, std::mt19937& rng, std::size_t offset = 0) {
  Step s(p, rng, offset);
  s.run(engine);
  const auto h1 = s.dh_out.download(), y1 = s.dy.download();
  const double err = s.error(s.check_rows());
  INFO("B=" << p.batch << " I=" << p.input << " H=" << p.hidden << " O=" << p.output << " "
            << rnnjit::precision_name(p.precision) << " offset " << offset << ": error " << err);
  CHECK(err <= test::bound(p.precision));
  s.run(engine);  // poisoned again: the second run must write the same bits
  CHECK(test::same_bits(s.dh_out.download(), h1));
  CHECK(test::same_bits(s.dy.download(), y1));
}

// The config of every tile T of `family` in the tuner's pool that can run `p` here: "i2h_T.h2o_T",
// or T's name for a whole-step family.
std::vector<std::string> pool_configs(const rnnjit::Engine& engine, const rnnjit::Problem& p, rnnjit::Family family) {
  const rnnjit::Shape s{int(p.batch), int(p.input), int(p.hidden), int(p.output),
                        p.precision == Precision::FP32 ? rnnjit::Math::Fp32 : rnnjit::Math::Tf32};
  std::vector<std::string> out;
  for (const rnnjit::Tile& t : rnnjit::tile_pool()) {
    const rnnjit::Config c{t, t};
    if (t.family == family && rnnjit::can_implement(c, s, engine.device(), nullptr)) out.push_back(c.name());
  }
  return out;
}
// Whether the device runs wgmma (sm_90a); a test that needs it says so where it does not.
bool runs_wgmma(const rnnjit::Engine& engine) {
  if (engine.device().arch == "sm_90a") return true;
  WARN("not an sm_90a device: no wgmma");
  return false;
}
std::vector<std::string> wgmma_configs(const rnnjit::Engine& engine, const rnnjit::Problem& p) {
  return pool_configs(engine, p, rnnjit::Family::Wgmma);
}

// A one-launch config stepping two problems on two streams at once, `steps` times: each call
// has its own barrier counter, so both keep the bits of their first, lone run.
void check_two_streams(rnnjit::Engine& engine, const rnnjit::Problem& p, const std::string& config, std::mt19937& rng,
                       int steps) {
  engine.pin(p, config);
  cudaStream_t streams[2];
  for (auto& st : streams) CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  Step a(p, rng), b(p, rng);
  a.run(engine, streams[0]);
  b.run(engine, streams[1]);
  const auto ya = a.dy.download(), yb = b.dy.download();
  for (int i = 0; i < steps; ++i) {
    engine.rnn_step(p, a.weights(), a.dx.get(), a.dh.get(), a.dh_out.get(), a.dy.get(), streams[0]);
    engine.rnn_step(p, b.weights(), b.dx.get(), b.dh.get(), b.dh_out.get(), b.dy.get(), streams[1]);
  }
  for (auto& st : streams) CUDA_OK(cudaStreamSynchronize(st));
  CHECK(test::same_bits(a.dy.download(), ya));
  CHECK(test::same_bits(b.dy.download(), yb));
  for (auto& st : streams) CUDA_OK(cudaStreamDestroy(st));
}

// `steps` steps of a recurrence back to back on one stream, each reading the h' the step before it
// wrote (outputs poisoned, no synchronization between steps, a launch counter each), each checked
// against the float64 reference from the h it read.
void check_chain(rnnjit::Engine& engine, const rnnjit::Problem& p, const std::string& config, std::mt19937& rng,
                 int steps) {
  engine.pin(p, config);
  Step s(p, rng);
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
    CHECK(rnnjit::relative_error(hs[t + 1]->download(), rh) <= test::bound(p.precision));
    CHECK(rnnjit::relative_error(ys[t]->download(), ry) <= test::bound(p.precision));
  }
}

// Captures one step of `s` on `stream` into a graph (poisoned outputs: capture runs nothing), then
// replays it three times and waits.
void capture_and_replay(rnnjit::Engine& engine, Step& s, cudaStream_t stream) {
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

}  // namespace

TEST_CASE("steps match the float64 reference at 30 random and odd shapes", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(7);
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (auto p : random_shapes()) {
      p.precision = prec;
      check_step(engine, p, rng);
    }
}

TEST_CASE("pointers aligned to 4 but not 16 bytes take the scalar path correctly", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(8);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    check_step(engine, {8, 1024, 256, 128, prec}, rng, 1);
    check_step(engine, {3, 999, 17, 5, prec}, rng, 3);
  }
}

// Every wgmma tile of the tuner's pool as both stages, at shapes with tails everywhere: M past
// BM, N past BN, K segments ending inside a 32-float slice, more K splits than slices. tf32
// truncates each operand here (gemm_wgmma.cu), ~1.2e-3 of error on its own; with y only 12
// values long (3×4) cancellation took 2 % of random draws past 2e-3 (docs/tf32_error_model.py,
// 20000 draws; 0 of 20000 with 3×20), so the smallest shape has 20 outputs.
TEST_CASE("wgmma tiles match the reference at odd shapes", "[gpu][wgmma]") {
  rnnjit::Engine engine(test::memory_only());
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(15);
  const rnnjit::Problem shapes[] = {{100, 36, 44, 20}, {3, 4, 8, 20}, {300, 132, 260, 72}, {64, 2048, 2048, 1024}};
  int pinned = 0;
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (auto p : shapes) {
      p.precision = prec;
      for (const std::string& name : wgmma_configs(engine, p)) {
        INFO(name);
        engine.pin(p, name);
        check_step(engine, p, rng);
        ++pinned;
      }
    }
  CHECK(pinned > 40);
}

// The one-launch steps, every pool tile: the grid step (h' handed over through L2 behind a grid
// barrier) and, on Hopper, clusters splitting K whose last cluster computes y (launched as
// dependent launches). Odd sizes, fewer rows than CTAs or clusters, K slices shorter than a
// cluster, unaligned pointers, two streams running it at once (each call has its own launch
// counters), and a recurrence back to back (dependent launches overlapping, each reading what the
// one before it wrote).
TEST_CASE("the one-launch steps match the reference at odd shapes, on concurrent streams and back to back",
          "[gpu][grid]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(17);
  const rnnjit::Problem shapes[] = {{1, 1, 1, 1},  {3, 999, 17, 5},   {16, 1023, 33, 1},
                                    {8, 1024, 256, 128}, {1, 1024, 512, 256}, {5, 7, 300, 3}};
  const bool hopper = engine.device().cc_major >= 9;
  if (!hopper) WARN("compute capability below 9.0: no cluster step");
  for (rnnjit::Family family : {rnnjit::Family::Grid, rnnjit::Family::Fused}) {
    if (family == rnnjit::Family::Fused && !hopper) continue;
    for (Precision prec : {Precision::TF32, Precision::FP32})
      for (auto p : shapes) {
        p.precision = prec;
        const auto configs = pool_configs(engine, p, family);
        CHECK(!configs.empty());
        for (const std::string& c : configs) {
          INFO(c);
          engine.pin(p, c);
          check_step(engine, p, rng);
          check_step(engine, p, rng, 1);
        }
      }
    const rnnjit::Problem kb_v0{8, 1024, 256, 128};
    for (const std::string& c : pool_configs(engine, kb_v0, family)) {
      check_two_streams(engine, kb_v0, c, rng, 50);
      check_chain(engine, kb_v0, c, rng, 40);
    }
  }
  check_chain(engine, {3, 999, 17, 5}, "grid_c64w16", rng, 40);  // the scalar paths
  if (hopper) check_chain(engine, {3, 999, 17, 5}, "fused_c128k8w8", rng, 40);
}

// The one-launch streaming steps (FFMA and tensor cores), every pool tile: rows fewer than CTAs,
// shares not a multiple of ROWS (or of 16-row blocks) or shorter than the prefetch, scalar paths
// (odd sizes, unaligned pointers), b1-4k and batches 8 and 16 at 4096, two streams at once, and a
// recurrence back to back.
TEST_CASE("the streaming steps match the reference at odd shapes and on concurrent streams", "[gpu][stream]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(18);
  const std::vector<rnnjit::Problem> stream_shapes = {{1, 1, 1, 1},     {3, 999, 17, 5},       {16, 1023, 33, 1},
                                                     {2, 4096, 1031, 999}, {5, 7, 300, 3}, {1, 4096, 4096, 4096},
                                                     {4, 512, 1024, 2047}};
  const std::vector<rnnjit::Problem> mma_shapes = {{3, 999, 17, 5},       {16, 1023, 33, 1}, {5, 7, 300, 3},
                                                  {4, 512, 1024, 2047},  {8, 4096, 4096, 4096},
                                                  {13, 2052, 4100, 1001}, {16, 4096, 4096, 4096}};
  for (rnnjit::Family family : {rnnjit::Family::GridStream, rnnjit::Family::GridMma}) {
    int pinned = 0;
    for (Precision prec : {Precision::TF32, Precision::FP32})
      for (auto p : family == rnnjit::Family::GridStream ? stream_shapes : mma_shapes) {
        p.precision = prec;
        // The scalar path (offset pointers) at the odd and small shapes; at 4096 its reference
        // would cost the test more than it covers.
        const bool large = double(p.batch) * (p.input + p.hidden) * p.hidden > 1e8;
        for (const std::string& name : pool_configs(engine, p, family)) {
          INFO(name);
          engine.pin(p, name);
          check_step(engine, p, rng);
          if (!large) check_step(engine, p, rng, 1);
          ++pinned;
        }
      }
    CHECK(pinned >= 40);
  }
  check_two_streams(engine, {2, 4096, 1031, 999}, "stream_c128w8r2u4p8", rng, 20);
  check_two_streams(engine, {13, 2052, 4100, 1001}, "gridmma_c128w8b2u2p1", rng, 20);
  check_chain(engine, {8, 1024, 2048, 1000}, "gridmma_c128w8b2u4p1", rng, 40);
  check_chain(engine, {3, 999, 17, 5}, "gridmma_c128w16b2u2p0", rng, 40);  // the scalar path
}

TEST_CASE("a wgmma plan given pointers TMA cannot take runs its fallback", "[gpu][wgmma]") {
  rnnjit::Engine engine(test::memory_only());
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(16);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    const rnnjit::Problem p{64, 256, 128, 64, prec};
    engine.pin(p, wgmma_configs(engine, p).at(0));
    check_step(engine, p, rng, 1);
    check_step(engine, p, rng, 0);
  }
}

TEST_CASE("the anchor shapes match the reference in both precisions", "[gpu][anchors]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(9);
  const rnnjit::Problem shapes[] = {
      {8, 1024, 256, 128}, {1, 4096, 4096, 4096}, {64, 2048, 2048, 1024}, {256, 16384, 16384, 8192}};
  for (Precision prec : {Precision::TF32, Precision::FP32})
    for (auto p : shapes) {
      p.precision = prec;
      check_step(engine, p, rng);
    }
}

TEST_CASE("h_out aliasing h gives the same bits as separate buffers", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(10);
  for (const rnnjit::Problem p : {rnnjit::Problem{8, 1024, 256, 128}, rnnjit::Problem{3, 999, 17, 5, Precision::FP32}}) {
    Step s(p, rng);
    s.run(engine);
    const auto separate_h = s.dh_out.download(), separate_y = s.dy.download();
    // The first call for this problem was already tuned; alias on a fresh engine too, so
    // that tuning itself runs with h_out == h.
    for (int fresh = 0; fresh < 2; ++fresh) {
      rnnjit::Engine other(test::memory_only());
      rnnjit::Engine& e = fresh ? other : engine;
      s.dh.upload(s.h);
      s.dy.poison();
      e.rnn_step(p, s.weights(), s.dx.get(), s.dh.get(), s.dh.get(), s.dy.get());
      CUDA_OK(cudaDeviceSynchronize());
      CHECK(test::same_bits(s.dh.download(), separate_h));
      CHECK(test::same_bits(s.dy.download(), separate_y));
    }
  }
}

TEST_CASE("a step captured in a CUDA graph replays correctly", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(11);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // First: a problem the engine has never seen is captured (heuristic pick, no tuning);
  // then: the same problem, now tuned outside capture, captured again.
  const rnnjit::Problem p{8, 1024, 256, 128};
  Step s(p, rng);
  for (int round = 0; round < 2; ++round) {
    capture_and_replay(engine, s, stream);
    CHECK(s.error(p.batch) <= test::bound(Precision::TF32));
    CHECK(engine.stats().tunings == round);  // capture never tunes
    if (round == 0) s.run(engine, stream);   // uncaptured: tunes, replacing the untimed pick
    CHECK(engine.stats().tunings == 1);
  }
  CUDA_OK(cudaStreamDestroy(stream));
}

// fp32 wgmma stages write A's cross copies to stream-ordered scratch: a captured step must
// allocate and free it inside the graph and give the bits of an uncaptured one, and steps on two
// streams at once must not share it.
TEST_CASE("an fp32 wgmma step replays in a CUDA graph with the bits of an uncaptured one", "[gpu][wgmma]") {
  rnnjit::Engine engine(test::memory_only());
  if (!runs_wgmma(engine)) return;
  std::mt19937 rng(16);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  const rnnjit::Problem p{100, 36, 44, 20, Precision::FP32};
  engine.pin(p, "i2h_wgmma128x128g2s3k1.h2o_wgmma64x64g1s4k2");
  Step s(p, rng);
  s.run(engine, stream);
  CUDA_OK(cudaStreamSynchronize(stream));
  CHECK(s.error(p.batch) <= test::bound(Precision::FP32));
  const auto h_ref = s.dh_out.download(), y_ref = s.dy.download();
  capture_and_replay(engine, s, stream);
  CHECK(test::same_bits(s.dh_out.download(), h_ref));
  CHECK(test::same_bits(s.dy.download(), y_ref));
  CUDA_OK(cudaStreamDestroy(stream));
  // Each call's scratch is its own: two streams stepping at once keep their lone runs' bits.
  check_two_streams(engine, {300, 132, 260, 72, Precision::FP32}, "i2h_wgmma128x128g2s4k1.h2o_wgmma128x128g2s4k1", rng, 4);
}

TEST_CASE("bad arguments are rejected with a clear error and nothing is written", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(12);
  const rnnjit::Problem p{4, 32, 16, 8};
  Step s(p, rng);
  s.dh_out.poison();
  s.dy.poison();
  auto expect = [&](rnnjit::ErrorCode code, const char* text, auto&& call) {
    try {
      call();
      FAIL("accepted: " << text);
    } catch (const rnnjit::Error& e) {
      CHECK(e.code() == code);
      CHECK_THAT(e.what(), Catch::Contains(text));
    }
  };
  const auto w = s.weights();
  float* x = s.dx.get();
  float* h = s.dh.get();
  float* ho = s.dh_out.get();
  float* y = s.dy.get();
  using rnnjit::ErrorCode;
  expect(ErrorCode::InvalidArgument, "x is null", [&] { engine.rnn_step(p, w, nullptr, h, ho, y); });
  expect(ErrorCode::InvalidArgument, "weights.b2 is null",
         [&] { engine.rnn_step(p, {w.w1, w.b1, w.w2, nullptr}, x, h, ho, y); });
  std::vector<float> host(1024);
  expect(ErrorCode::InvalidArgument, "h is not device memory", [&] { engine.rnn_step(p, w, x, host.data(), ho, y); });
  expect(ErrorCode::InvalidArgument, "not 4-byte aligned",
         [&] { engine.rnn_step(p, w, reinterpret_cast<float*>(reinterpret_cast<char*>(x) + 2), h, ho, y); });
  expect(ErrorCode::InvalidArgument, "batch = 0", [&] { engine.rnn_step({0, 32, 16, 8}, w, x, h, ho, y); });
  expect(ErrorCode::InvalidArgument, "hidden = -3", [&] { engine.rnn_step({4, 32, -3, 8}, w, x, h, ho, y); });
  expect(ErrorCode::InvalidArgument, "input = 2097152",
         [&] { engine.rnn_step({4, 2 * rnnjit::kMaxDim, 16, 8}, w, x, h, ho, y); });
  // A larger problem than the buffers hold: the allocation is too small.
  expect(ErrorCode::InvalidArgument, "x needs 8192 bytes",
         [&] { engine.rnn_step({4, 512, 16, 8}, w, x, h, ho, y); });
  expect(ErrorCode::InvalidArgument, "y overlaps h", [&] { engine.rnn_step(p, w, x, h, ho, h); });
  expect(ErrorCode::InvalidArgument, "h_out overlaps weights.w1",
         [&] { engine.rnn_step(p, w, x, h, const_cast<float*>(w.w1), y); });
  expect(ErrorCode::Unsupported, "bf16", [&] { engine.rnn_step({4, 32, 16, 8, Precision::BF16}, w, x, h, ho, y); });
  CUDA_OK(cudaDeviceSynchronize());
  for (float v : s.dh_out.download()) REQUIRE(std::isnan(v));
  for (float v : s.dy.download()) REQUIRE(std::isnan(v));
  int devices = 0;
  CUDA_OK(cudaGetDeviceCount(&devices));
  if (devices > 1) {
    CUDA_OK(cudaSetDevice(1));
    test::DevBuf other(1024);
    CUDA_OK(cudaSetDevice(0));
    expect(ErrorCode::InvalidArgument, "belongs to device 1", [&] { engine.rnn_step(p, w, other.get(), h, ho, y); });
  }
}

TEST_CASE("without pointer checks steps still compute and cheap checks still reject", "[gpu]") {
  rnnjit::EngineOptions o = test::memory_only();
  o.check_pointers = false;
  rnnjit::Engine engine(o);
  std::mt19937 rng(15);
  check_step(engine, {8, 1024, 256, 128}, rng);
  Step s({4, 32, 16, 8}, rng);
  CHECK_THROWS_WITH(engine.rnn_step(s.p, s.weights(), nullptr, s.dh.get(), s.dh_out.get(), s.dy.get()),
                    Catch::Contains("x is null"));
  CHECK_THROWS_WITH(engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh_out.get(), s.dh.get()),
                    Catch::Contains("y overlaps h"));
}

TEST_CASE("threads sharing one engine tune and step concurrently and get the right results", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  // Two problems, each stepped by two threads on their own streams: first calls race to tune.
  const rnnjit::Problem problems[] = {{8, 1024, 256, 128}, {3, 999, 17, 5, Precision::FP32}};
  std::vector<std::unique_ptr<Step>> steps;
  std::mt19937 rng(16);
  for (int t = 0; t < 4; ++t) steps.push_back(std::make_unique<Step>(problems[t % 2], rng));
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        cudaStream_t stream;
        if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) throw std::runtime_error("stream");
        Step& s = *steps[t];
        for (int i = 0; i < 20; ++i)
          engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh_out.get(), s.dy.get(), stream);
        if (cudaStreamSynchronize(stream) != cudaSuccess || cudaStreamDestroy(stream) != cudaSuccess)
          throw std::runtime_error("synchronize");
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    INFO("thread " << t << ": " << errors[t]);
    CHECK(errors[t].empty());
    CHECK(steps[t]->error(steps[t]->p.batch) <= test::bound(steps[t]->p.precision == Precision::FP32 ? Precision::FP32
                                                                                                     : Precision::TF32));
  }
  CHECK(engine.stats().tunings == 2);  // each problem tuned once, whoever came first
}

TEST_CASE("RnnCell advances its hidden state like the reference recurrence", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(13);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    const rnnjit::Problem p{5, 37, 29, 11, prec};
    Step s(p, rng);
    rnnjit::RnnCell cell(engine, p, s.weights());
    cell.reset(s.dh.get());
    std::vector<float> h = s.h;
    for (int t = 0; t < 6; ++t) {
      std::vector<float> x(p.batch * p.input);
      std::uniform_real_distribution<float> d(0, 1);
      for (auto& v : x) v = d(rng);
      s.dx.upload(x);
      s.dy.poison();
      cell.step(s.dx.get(), s.dy.get());
      CUDA_OK(cudaDeviceSynchronize());
      std::vector<double> rh, ry;
      rnnjit::reference_step(p.batch, p.input, p.hidden, p.output, s.w1.data(), s.b1.data(), s.w2.data(),
                             s.b2.data(), x.data(), h.data(), rh, ry);
      std::vector<float> got_h(p.batch * p.hidden);
      CUDA_OK(cudaMemcpy(got_h.data(), cell.hidden(), got_h.size() * 4, cudaMemcpyDeviceToHost));
      INFO("step " << t << " " << rnnjit::precision_name(prec));
      CHECK(rnnjit::relative_error(got_h, rh) <= test::bound(prec));
      CHECK(rnnjit::relative_error(s.dy.download(), ry) <= test::bound(prec));
      h = got_h;  // the recurrence continues from what the GPU computed
    }
    cell.reset();
    std::vector<float> zeros(p.batch * p.hidden);
    CUDA_OK(cudaMemcpy(zeros.data(), cell.hidden(), zeros.size() * 4, cudaMemcpyDeviceToHost));
    for (float v : zeros) CHECK(v == 0.0f);
  }
}

// Small odd shapes for compute-sanitizer (memcheck, racecheck) to run in seconds; both
// paths (16-byte and scalar copies), both precisions, aliasing.
TEST_CASE("sanitizer workload: odd shapes on every kernel path", "[gpu][sanitize]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(14);
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    check_step(engine, {3, 999, 17, 5, prec}, rng);
    check_step(engine, {17, 36, 44, 20, prec}, rng);
    check_step(engine, {5, 7, 33, 3, prec}, rng, 1);
    engine.pin({6, 36, 44, 20, prec}, "grid_c64w16");
    check_step(engine, {6, 36, 44, 20, prec}, rng);
    if (engine.device().cc_major >= 9) {
      const rnnjit::Problem p{6, 36, 44, 20, prec};
      for (const std::string& name : pool_configs(engine, p, rnnjit::Family::Fused)) {
        engine.pin(p, name);
        check_step(engine, p, rng);
        check_step(engine, p, rng, 1);
      }
    }
    engine.pin({3, 40, 300, 21, prec}, "stream_c64w16r1u8p4");
    check_step(engine, {3, 40, 300, 21, prec}, rng);
    check_step(engine, {3, 40, 300, 21, prec}, rng, 1);
    // One n8 tile of batch and two, the scalar path, a tail group, rows fewer than CTAs.
    for (const auto& [name, batch] : {std::pair{"gridmma_c64w16b2u2p0", 7}, std::pair{"gridmma_c128w8b2u2p1", 11}}) {
      const rnnjit::Problem p{batch, 40, 300, 21, prec};
      engine.pin(p, name);
      check_step(engine, p, rng);
      check_step(engine, p, rng, 1);
    }
    if (engine.device().arch == "sm_90a") {
      const rnnjit::Problem p{70, 36, 44, 20, prec};
      for (const std::string& name : wgmma_configs(engine, p)) {
        engine.pin(p, name);
        check_step(engine, p, rng);
      }
    }
    Step s({9, 13, 21, 6, prec}, rng);
    engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh.get(), s.dy.get());
    CUDA_OK(cudaDeviceSynchronize());
  }
}
