// Several GPUs in one process (issue 25): engines on devices 0 and 1 stepping and tuning at once
// from several threads, a pointer of one device refused by the other's engine, one cache file
// shared by both engines and by two processes, a tuning on one device never stalling the other's
// steps. The binary needs two GPUs: gpu_main.cpp skips it (exit 77) where there are fewer.
#include "cli_support.hpp"
#include "gpu_support.hpp"
#include "temp_dir.hpp"

#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "rnnjit/cache/store.hpp"

using rnnjit::Precision;
using rnnjit::Problem;
using Clock = std::chrono::steady_clock;

namespace {

rnnjit::EngineOptions on(int device, const std::string& cache = "off") {
  rnnjit::EngineOptions o;
  o.device = device;
  o.cache_path = cache;
  return o;
}

}  // namespace

TEST_CASE("engines on devices 0 and 1 step and tune at once from several threads, every result right",
          "[gpu][multi]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  rnnjit::Engine engines[] = {rnnjit::Engine(on(0, cache)), rnnjit::Engine(on(1, cache))};
  const Problem problems[] = {{8, 1024, 256, 128}, {3, 999, 17, 5, Precision::FP32}, {70, 37, 45, 21}};
  std::vector<std::string> errors(6);
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&, t] {
      const int device = t % 2;
      try {
        if (cudaSetDevice(device) != cudaSuccess) throw std::runtime_error("cudaSetDevice");
        std::mt19937 rng(60 + t);
        for (int round = 0; round < 3; ++round)
          for (const Problem& p : problems) {
            test::Step s(p, rng);  // this thread's device
            s.run(engines[device]);
            const double err = s.error(p.batch);
            if (!(err <= test::bound(p.precision)))
              throw std::runtime_error("device " + std::to_string(device) + ": error " + std::to_string(err));
          }
        if (t < 2) engines[device].tune(problems[0], true);  // a retuning beside the other threads' steps
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 6; ++t) {
    INFO("thread " << t);
    CHECK(errors[t].empty());
  }
  // Keyed by each engine's GPU: one entry a problem and GPU model (two cards of one model share it).
  const auto rows = rnnjit::cache::Store(cache, rnnjit::cache::Mode::ReadOnlyStrict).list_tuning();
  std::set<std::string> gpus;
  for (const auto& r : rows) gpus.insert(r.key.gpu);
  CHECK(gpus.count(engines[0].device().key) == 1);
  CHECK(gpus.count(engines[1].device().key) == 1);
  const std::size_t models = engines[0].device().key == engines[1].device().key ? 1 : 2;
  CHECK(rows.size() == std::size(problems) * models);
}

TEST_CASE("a pointer of device 1 given to the engine of device 0 is rejected and nothing is written", "[gpu][multi]") {
  rnnjit::Engine engine(on(0));
  std::mt19937 rng(62);
  const Problem p{8, 64, 32, 16};
  CUDA_OK(cudaSetDevice(0));
  test::Step s(p, rng);
  CUDA_OK(cudaSetDevice(1));
  test::DevBuf foreign(std::size_t(p.batch * p.input));
  CUDA_OK(cudaSetDevice(0));
  s.dh_out.poison();
  s.dy.poison();
  test::expect_error(rnnjit::ErrorCode::InvalidArgument, "x belongs to device 1, the engine runs on device 0",
                     [&] { engine.rnn_step(p, s.weights(), foreign.get(), s.dh.get(), s.dh_out.get(), s.dy.get()); });
  CUDA_OK(cudaDeviceSynchronize());
  for (float v : s.dy.download()) REQUIRE(std::isnan(v));
  for (float v : s.dh_out.download()) REQUIRE(std::isnan(v));
}

TEST_CASE("a tuning on device 0 never stalls the steps on device 1, one cache file between them", "[gpu][multi]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  rnnjit::Engine e0(on(0, cache)), e1(on(1, cache));
  std::mt19937 rng(63);
  const Problem stepped{8, 1024, 256, 128}, tuned{64, 2048, 2048, 1024};
  CUDA_OK(cudaSetDevice(1));
  test::Step s(stepped, rng);
  s.run(e1);  // tuned before the clock
  const double quiet = [&] {
    std::vector<double> t;
    for (int i = 0; i < 20; ++i) {
      const auto t0 = Clock::now();
      s.run(e1);
      t.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  }();
  std::atomic<bool> tuning{true};
  auto tuner = std::async(std::launch::async, [&] {
    for (int i = 0; i < 3; ++i) e0.tune(tuned, true);  // compiles and times, then writes the shared file
    tuning = false;
  });
  double slowest = 0;
  int steps = 0;
  while (tuning) {
    const auto t0 = Clock::now();
    s.run(e1);
    slowest = std::max(slowest, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++steps;
  }
  tuner.get();
  INFO(steps << " steps on device 1 while device 0 tuned; slowest " << slowest << " ms, quiet median " << quiet << " ms");
  CHECK(steps > 10);
  // A tuning takes hundreds of ms: a step that waited for it (a lock, the file) would show it.
  CHECK(slowest < quiet + 50.0);
  CHECK(s.error(stepped.batch) <= test::bound(Precision::TF32));
}

TEST_CASE("two processes, one a device, tune into one cache file at once and leave it valid", "[gpu][multi]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  auto tune_on = [&](int device) {
    test::Result r;
    const std::string why = test::spawn(RNNJIT_TUNE_TOOL,
                                        {"--device", std::to_string(device), "--cache", cache, "--shape", "8,1024,256,128",
                                         "--shape", "3,999,17,5", "--precision", "all", "--check"},
                                        {}, r);
    return why.empty() ? r : test::Result{-1, "", why};
  };
  auto a = std::async(std::launch::async, tune_on, 0), b = std::async(std::launch::async, tune_on, 1);
  const test::Result ra = a.get(), rb = b.get();
  INFO(ra.err << rb.err);
  CHECK(ra.code == 0);
  CHECK(rb.code == 0);
  const test::Result verify = test::run(RNNJIT_CACHE_TOOL, {"--cache", cache, "verify"});
  CHECK(verify.code == 0);
  CHECK(rnnjit::cache::Store(cache, rnnjit::cache::Mode::ReadOnlyStrict).list_tuning().size() >= 4);
}
