// Background tuning on the GPU (EngineOptions::tuning = Background): the first call runs the
// prebuilt generic plan at once with correct results, the winner replaces it within seconds of steady
// calls, failing candidates are recorded, graph capture and threads meanwhile, and an engine
// destroyed while tuning is in flight.
#include "temp_dir.hpp"
#include "gpu_support.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "device.hpp"
#include "rnnjit/cache/store.hpp"
#include "tuner.hpp"

using rnnjit::PlanState;
using rnnjit::Precision;
using Clock = std::chrono::steady_clock;

namespace {

const rnnjit::Problem kKbV0{8, 1024, 256, 128, Precision::TF32};

// How long background tuning may take before a test calls it hung: on an H100 it takes about a
// second (NVRTC, then three rounds of timing).
constexpr auto kLimit = std::chrono::seconds(30);

rnnjit::EngineOptions background(const std::string& cache = "off") {
  rnnjit::EngineOptions o;
  o.cache_path = cache;
  o.system_cache_path = "off";
  o.tuning = rnnjit::TuningMode::Background;
  return o;
}

// Steps `s` on `engine` until its plan is tuned or kLimit passes, checking every result; returns
// the plan then.
rnnjit::PlanInfo step_until_tuned(rnnjit::Engine& engine, test::Step& s, cudaStream_t stream = nullptr) {
  const auto t0 = Clock::now();
  int steps = 0;
  while (engine.plan_info(s.p).state != PlanState::Tuned && Clock::now() - t0 < kLimit) {
    s.run(engine, stream);
    ++steps;
    INFO("step " << steps << " with " << engine.plan_info(s.p).config);
    REQUIRE(s.error(s.check_rows()) <= test::bound(s.p.precision));
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  INFO(steps << " steps in " << seconds << " s");
  const rnnjit::PlanInfo info = engine.plan_info(s.p);
  REQUIRE(info.state == PlanState::Tuned);
  // The job persists the winner just after it installs it: done when no job is pending.
  while (engine.stats().background_pending != 0 && Clock::now() - t0 < kLimit) std::this_thread::yield();
  REQUIRE(engine.stats().background_pending == 0);
  return info;
}

// The binary keys of a candidate (comma-separated in the cache, one a stage).
std::set<std::string> keys_of(const std::string& binary_key) {
  std::set<std::string> out;
  std::stringstream in(binary_key);
  for (std::string key; std::getline(in, key, ',');) out.insert(key);
  return out;
}

// A config of a one-stage cp.async ring, which gemm_tc.cu's static_assert refuses.
rnnjit::Config uncompilable() {
  const rnnjit::TcTile t{64, 64, 32, 2, 2, 1};
  return rnnjit::Config::pair(t, t);
}

}  // namespace

TEST_CASE("background: the first call runs the prebuilt generic plan at once and correctly, then the winner follows",
          "[gpu][background]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  std::mt19937 rng(31);
  test::Step s(kKbV0, rng);
  rnnjit::Engine engine(background(cache));
  const std::vector<std::string> candidates = engine.candidates(kKbV0);
  CHECK(engine.plan_info(kKbV0).state == PlanState::None);
  s.run(engine);
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  // The candidates still compile (NVRTC takes hundreds of ms): the generic plan runs, built with
  // the library.
  const rnnjit::PlanInfo first = engine.plan_info(kKbV0);
  CHECK(first.state == PlanState::Tuning);
  CHECK(first.config == "i2h_generic.h2o_generic");
  CHECK(std::find(candidates.begin(), candidates.end(), first.config) == candidates.end());
  CHECK(engine.stats().tunings == 0);
  CHECK(engine.stats().background_tunings == 1);

  const rnnjit::PlanInfo tuned = step_until_tuned(engine, s);
  CHECK(engine.stats().tunings == 1);
  // The winner runs and is persisted, every candidate timed.
  const auto rows = rnnjit::cache::Store(cache, rnnjit::cache::Mode::ReadOnlyStrict).list_tuning();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].winner == tuned.config);
  REQUIRE(rows[0].candidates.size() == candidates.size());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    CHECK(rows[0].candidates[i].config == candidates[i]);
    CHECK(rows[0].candidates[i].disposition == "ok");
    CHECK(rows[0].candidates[i].time_us >= rows[0].winner_us);
  }
  s.run(engine);
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  // A later process starts from the winner: nothing is tuned in the background.
  rnnjit::Engine again(background(cache));
  s.run(again);
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  CHECK(again.plan_info(kKbV0).state == PlanState::Tuned);
  CHECK(again.plan_info(kKbV0).config == tuned.config);
  CHECK(again.stats().background_tunings == 0);
}

TEST_CASE("background: a candidate whose cached binary does not load is recorded as launch_failed, another wins",
          "[gpu][background]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  std::string victim;
  {
    // Every candidate's binaries, from a blocking tuning; then its record goes, so that the next
    // engine tunes again from these binaries.
    rnnjit::EngineOptions o = background(cache);
    o.tuning = rnnjit::TuningMode::Blocking;
    rnnjit::Engine(o).tune(kKbV0);
    rnnjit::cache::Store store(cache, rnnjit::cache::Mode::Strict);
    const auto rec = store.list_tuning().at(0);
    // The last candidate but the first whose binaries no other candidate uses: its kernels get
    // names the binary does not hold (symbols are not part of a binary's hash).
    std::vector<rnnjit::cache::BinaryRecord> broken;
    for (std::size_t i = rec.candidates.size() - 1; i > 0 && victim.empty(); --i) {
      const auto mine = keys_of(rec.candidates[i].binary_key);
      bool shared = false;
      for (std::size_t j = 0; j < rec.candidates.size(); ++j)
        for (const auto& key : keys_of(rec.candidates[j].binary_key)) shared |= j != i && mine.count(key) > 0;
      if (mine.empty() || shared) continue;
      victim = rec.candidates[i].config;
      for (const auto& key : mine) {
        auto b = store.find_binary(key);
        REQUIRE(b);
        std::string symbols = "rnnjit_no_such_kernel";
        for (char c : b->symbols) symbols += c == '\n' ? "\nrnnjit_no_such_kernel" : "";
        b->symbols = symbols;
        broken.push_back(*b);
      }
    }
    REQUIRE_FALSE(victim.empty());
    store.import_records({}, broken);
    store.remove_tuning({});
  }
  INFO("victim " << victim);
  std::mt19937 rng(32);
  test::Step s(kKbV0, rng);
  rnnjit::Engine engine(background(cache));
  s.run(engine);
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  const rnnjit::PlanInfo tuned = step_until_tuned(engine, s);
  CHECK(tuned.config != victim);
  const auto rows = rnnjit::cache::Store(cache, rnnjit::cache::Mode::ReadOnlyStrict).list_tuning();
  REQUIRE(rows.size() == 1);
  bool seen = false;
  for (const auto& c : rows[0].candidates) {
    INFO(c.config << ": " << c.disposition << " " << c.message);
    if (c.config != victim) {
      CHECK(c.disposition == "ok");
      continue;
    }
    seen = true;
    CHECK(c.disposition == "launch_failed");
    CHECK(std::isinf(c.time_us));
    CHECK_THAT(c.message, Catch::Contains("cuModuleGetFunction"));
  }
  CHECK(seen);
  CHECK(engine.stats().nvrtc_compiles == 0);  // every binary came from the cache
}

TEST_CASE("background rounds: a candidate that fails to compile is recorded, the others are timed in every round",
          "[gpu][background]") {
  // The runtime's primary context, current on this thread: the engine's, where measure() runs.
  CUDA_OK(cudaSetDevice(0));
  CUDA_OK(cudaFree(nullptr));
  const rnnjit::DeviceInfo device = rnnjit::query_device(0);
  rnnjit::cache::Store store("off");
  rnnjit::Jit jit(store);
  rnnjit::Tuner tuner(device, jit, store);
  const rnnjit::Shape s = rnnjit::shape_of(kKbV0, Precision::TF32);
  std::vector<rnnjit::Config> configs = tuner.propose(s);
  configs.insert(configs.begin() + 1, uncompilable());
  std::optional<rnnjit::Tuned> t;
  {
    const rnnjit::Scratch scratch(s, jit, device.arch);
    t = tuner.measure(s, configs, scratch.args(), scratch.stream(), rnnjit::kBackgroundRounds);
  }
  REQUIRE(t);
  REQUIRE(t->report.candidates.size() == configs.size());
  for (std::size_t i = 0; i < configs.size(); ++i) {
    const auto& c = t->report.candidates[i];
    INFO(c.config << ": " << c.message);
    CHECK(c.disposition == (i == 1 ? rnnjit::Disposition::CompileFailed : rnnjit::Disposition::Ok));
    CHECK(std::isfinite(c.time_us) == (i != 1));
  }
  CHECK_THAT(t->report.candidates[1].message, Catch::Contains("the cp.async ring needs two stages at least"));
  CHECK(t->report.winner != uncompilable().name());
  // measure() writes nothing (a background job persists only what it installs); persist() writes
  // the failure beside the times.
  const rnnjit::cache::TuningKey key{device.key, {s.b, s.i, s.h, s.o, "tf32", "f32"}, rnnjit::template_hash()};
  CHECK_FALSE(store.find_tuning(key, rnnjit::version()));
  tuner.persist(*t);
  const auto rec = store.find_tuning(key, rnnjit::version());
  REQUIRE(rec);
  CHECK(rec->winner == t->report.winner);
  CHECK(rec->candidates.at(1).disposition == "compile_failed");
  CHECK(rec->candidates.at(1).binary_key.empty());
}

TEST_CASE("background: a pick made inside graph capture is tuned by the next uncaptured call, in the background",
          "[gpu][background]") {
  rnnjit::Engine engine(background());
  std::mt19937 rng(33);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  test::Step s(kKbV0, rng);
  test::capture_and_replay(engine, s, stream);
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  const rnnjit::PlanInfo captured = engine.plan_info(kKbV0);
  CHECK(captured.state == PlanState::Untuned);
  CHECK(engine.stats().background_tunings == 0);
  s.run(engine, stream);  // the capture's pick runs on while the others are timed
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  CHECK(engine.plan_info(kKbV0).config == captured.config);
  CHECK(engine.stats().background_tunings == 1);
  step_until_tuned(engine, s, stream);
  test::capture_and_replay(engine, s, stream);  // the winner, captured
  CHECK(s.error(kKbV0.batch) <= test::bound(Precision::TF32));
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST_CASE("background: threads stepping two problems while their winners are installed get correct results",
          "[gpu][background]") {
  rnnjit::Engine engine(background());
  const rnnjit::Problem problems[] = {kKbV0, {3, 999, 17, 5, Precision::FP32}};
  std::vector<std::unique_ptr<test::Step>> steps;
  std::mt19937 rng(34);
  for (int t = 0; t < 4; ++t) steps.push_back(std::make_unique<test::Step>(problems[t % 2], rng));
  const std::vector<std::vector<double>> reference = [&] {
    std::vector<std::vector<double>> out;
    for (const auto& s : steps) {
      std::vector<double> rh, ry;
      rnnjit::reference_step(s->p.batch, s->p.input, s->p.hidden, s->p.output, s->w1.data(), s->b1.data(),
                             s->w2.data(), s->b2.data(), s->x.data(), s->h.data(), rh, ry);
      out.push_back(ry);
    }
    return out;
  }();
  std::vector<std::string> errors(4);
  std::vector<std::thread> threads;
  const auto tuned = [&] {
    for (const auto& p : problems)
      if (engine.plan_info(p).state != PlanState::Tuned) return false;
    return true;
  };
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      cudaStream_t stream = nullptr;
      try {
        if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) throw std::runtime_error("stream");
        test::Step& s = *steps[t];
        const auto t0 = Clock::now();
        std::vector<float> y(s.p.batch * s.p.output);
        // Past the installs, and a few steps more.
        for (int after = 0; after < 5 && Clock::now() - t0 < kLimit; after += tuned()) {
          // Poisoned on this stream: the legacy stream's memset is not ordered with it.
          if (cudaMemsetAsync(s.dy.get(), 0xff, y.size() * 4, stream) != cudaSuccess) throw std::runtime_error("poison");
          engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh.get(), s.dh_out.get(), s.dy.get(), stream);
          if (cudaMemcpyAsync(y.data(), s.dy.get(), y.size() * 4, cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
              cudaStreamSynchronize(stream) != cudaSuccess)
            throw std::runtime_error("copy");
          const double err = rnnjit::relative_error(y, reference[t]);
          if (!(err <= test::bound(s.p.precision)))
            throw std::runtime_error("error " + std::to_string(err) + " with " + engine.plan_info(s.p).config);
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
      }
      if (stream) cudaStreamDestroy(stream);
    });
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) {
    INFO("thread " << t << ": " << errors[t]);
    CHECK(errors[t].empty());
  }
  CHECK(tuned());
  CHECK(engine.stats().background_tunings == 2);
  CHECK(engine.stats().tunings == 2);
}

TEST_CASE("background: destroying the engine while tuning is in flight returns promptly, the cache valid",
          "[gpu][background]") {
  test::TempDir dir;
  const std::string cache = (dir.path / "c.sqlite").string();
  const rnnjit::Problem mid{64, 2048, 2048, 1024, Precision::FP32};
  std::mt19937 rng(35);
  test::Step s(mid, rng);
  std::optional<rnnjit::Engine> engine(std::in_place, background(cache));
  s.run(*engine);
  CHECK(s.error(s.check_rows()) <= test::bound(Precision::FP32));
  CHECK(engine->plan_info(mid).state == PlanState::Tuning);
  const auto t0 = Clock::now();
  engine.reset();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  // The compiles already running finish (NVRTC cannot be interrupted); nothing else waits.
  INFO("destroyed in " << seconds << " s");
  CHECK(seconds < 10);
  CHECK(rnnjit::cache::Store(cache, rnnjit::cache::Mode::ReadOnlyStrict).verify().empty());
  rnnjit::EngineOptions o = background(cache);
  o.tuning = rnnjit::TuningMode::Blocking;
  rnnjit::Engine blocking(o);
  s.run(blocking);
  CHECK(s.error(s.check_rows()) <= test::bound(Precision::FP32));
}

TEST_CASE("background: a job with no memory to time apart leaves the heuristic's pick, untimed, not the generic plan",
          "[gpu][background]") {
  rnnjit::Engine engine(background());
  // Weights of 0.5 GB; all but 1.5 copies of the problem taken first, so that timing apart
  // (a copy, and room for packed copies as large again, within half of what is free) cannot.
  const rnnjit::Problem p{1, 8192, 8192, 8, Precision::TF32};
  std::mt19937 rng(36);
  test::Step s(p, rng);
  const std::size_t need = rnnjit::Scratch::bytes(rnnjit::shape_of(p, Precision::TF32));
  std::size_t free = 0, total = 0;
  CUDA_OK(cudaMemGetInfo(&free, &total));
  REQUIRE(free > 3 * need);
  void* hog = nullptr;
  CUDA_OK(cudaMalloc(&hog, free - 3 * need / 2));
  s.run(engine);
  CHECK(s.error(p.batch) <= test::bound(Precision::TF32));
  // The generic plan ran the first step; the job may already have failed and replaced it (it
  // did under compute-sanitizer, where the step is slow).
  const std::string first = engine.plan_info(p).config;
  CHECK((first == "i2h_generic.h2o_generic" || first == engine.candidates(p).at(0)));
  const auto t0 = Clock::now();
  while (engine.stats().background_pending != 0 && Clock::now() - t0 < kLimit) std::this_thread::yield();
  CUDA_OK(cudaFree(hog));
  const rnnjit::PlanInfo info = engine.plan_info(p);
  CHECK(info.state == PlanState::Tuned);
  CHECK(info.config == engine.candidates(p).at(0));
  CHECK(engine.stats().tunings == 0);  // nothing was timed
  s.run(engine);
  CHECK(s.error(p.batch) <= test::bound(Precision::TF32));
}
