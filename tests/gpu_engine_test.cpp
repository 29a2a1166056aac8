// The engine on the GPU: steps against the float64 reference at random, odd and anchor shapes,
// aliasing, graph capture, argument validation, threads, RnnCell.
#include "gpu_support.hpp"

#include <thread>

using rnnjit::Precision;
using test::Step;
using namespace test;


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
    CHECK(s.error(s.check_rows()) <= test::bound(engine.resolve(p).precision));
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

TEST_CASE("bad arguments are rejected with a clear error and nothing is written", "[gpu]") {
  rnnjit::Engine engine(test::memory_only());
  std::mt19937 rng(12);
  const rnnjit::Problem p{4, 32, 16, 8};
  Step s(p, rng);
  s.dh_out.poison();
  s.dy.poison();
  const auto w = s.weights();
  float* x = s.dx.get();
  float* h = s.dh.get();
  float* ho = s.dh_out.get();
  float* y = s.dy.get();
  using rnnjit::ErrorCode;
  test::expect_error(ErrorCode::InvalidArgument, "x is null", [&] { engine.rnn_step(p, w, nullptr, h, ho, y); });
  test::expect_error(ErrorCode::InvalidArgument, "weights.b2 is null", [&] {
    engine.rnn_step(p, {w.w1, w.b1, w.w2, nullptr}, x, h, ho, y);
  });
  std::vector<float> host(1024);
  test::expect_error(ErrorCode::InvalidArgument, "h is not device memory",
                     [&] { engine.rnn_step(p, w, x, host.data(), ho, y); });
  test::expect_error(ErrorCode::InvalidArgument, "not 4-byte aligned", [&] {
    engine.rnn_step(p, w, reinterpret_cast<float*>(reinterpret_cast<char*>(x) + 2), h, ho, y);
  });
  test::expect_error(ErrorCode::InvalidArgument, "batch = 0", [&] { engine.rnn_step({0, 32, 16, 8}, w, x, h, ho, y); });
  test::expect_error(ErrorCode::InvalidArgument, "hidden = -3", [&] {
    engine.rnn_step({4, 32, -3, 8}, w, x, h, ho, y);
  });
  test::expect_error(ErrorCode::InvalidArgument, "input = 2097152", [&] {
    engine.rnn_step({4, 2 * rnnjit::kMaxDim, 16, 8}, w, x, h, ho, y);
  });
  // A larger problem than the buffers hold: the allocation is too small.
  test::expect_error(ErrorCode::InvalidArgument, "x needs 8192 bytes", [&] {
    engine.rnn_step({4, 512, 16, 8}, w, x, h, ho, y);
  });
  test::expect_error(ErrorCode::InvalidArgument, "y overlaps h", [&] { engine.rnn_step(p, w, x, h, ho, h); });
  test::expect_error(ErrorCode::InvalidArgument, "h_out overlaps weights.w1",
                     [&] { engine.rnn_step(p, w, x, h, const_cast<void*>(w.w1), y); });
  test::expect_error(ErrorCode::Unsupported, "bf16", [&] {
    engine.rnn_step({4, 32, 16, 8, Precision::BF16}, w, x, h, ho, y);
  });
  test::expect_error(ErrorCode::Unsupported, "bf16 storage", [&] {
    engine.rnn_step({4, 32, 16, 8, Precision::TF32, rnnjit::DType::BF16}, w, x, h, ho, y);
  });
  CUDA_OK(cudaDeviceSynchronize());
  for (float v : s.dh_out.download()) REQUIRE(std::isnan(v));
  for (float v : s.dy.download()) REQUIRE(std::isnan(v));
  int devices = 0;
  CUDA_OK(cudaGetDeviceCount(&devices));
  if (devices > 1) {
    CUDA_OK(cudaSetDevice(1));
    test::DevBuf other(1024);
    CUDA_OK(cudaSetDevice(0));
    test::expect_error(ErrorCode::InvalidArgument, "belongs to device 1",
                       [&] { engine.rnn_step(p, w, other.get(), h, ho, y); });
  }
}

// Default as the engine's default precision means tf32, as in the C API: a problem's Default then
// resolves to a precision that runs and has an error bound.
TEST_CASE("an engine made with default precision Default runs tf32", "[gpu]") {
  rnnjit::EngineOptions o = test::memory_only();
  o.default_precision = Precision::Default;
  rnnjit::Engine engine(o);
  const rnnjit::Problem p{8, 64, 32, 16};
  CHECK(engine.resolve(p).precision == Precision::TF32);
  std::mt19937 rng(31);
  check_step(engine, p, rng);
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
    CHECK(steps[t]->error(steps[t]->p.batch) <= test::bound(engine.resolve(steps[t]->p).precision));
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
