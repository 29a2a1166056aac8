// bf16 storage on the GPU: every tensor of the step bf16, products of bf16 values summed in fp32,
// one rounding to bf16 on store. Steps against the float64 reference of the same bf16 values at odd
// and anchor shapes, pointers aligned to 2 bytes only, every candidate the tuner proposes and every
// pool tile that claims bf16, the combinations that are refused, the cache's entries (rnnjit-tune's
// too), graphs, background tuning, RnnCell, and the compute-sanitizer workload.
#include "cli_support.hpp"
#include "temp_dir.hpp"
#include "gpu_support.hpp"

#include <filesystem>
#include <set>
#include <utility>

#include "rnnjit/cache/store.hpp"

using rnnjit::DType;
using rnnjit::ErrorCode;
using rnnjit::Precision;
using rnnjit::Problem;
using namespace test;

namespace {

// A problem of bf16 tensors.
Problem bf16(std::int64_t b, std::int64_t i, std::int64_t h, std::int64_t o, Precision prec = Precision::BF16) {
  return {b, i, h, o, prec, DType::BF16};
}

// Each of 1, 5, 17, 129, 1000, 4097 as I, H and O at least once (all but 1000 no multiple of 8 bf16
// values, 16 bytes), batches 1, 3, 17, 33, 257: tails in every tile, rows TMA cannot take.
const Problem kOddShapes[] = {
    bf16(1, 1, 1, 1),         bf16(1, 4097, 1000, 17),   bf16(1, 5, 4097, 129),    bf16(3, 17, 5, 1000),
    bf16(3, 1000, 129, 4097), bf16(3, 129, 17, 5),       bf16(17, 5, 1, 4097),     bf16(17, 129, 1000, 1),
    bf16(33, 1, 129, 17),     bf16(33, 4097, 17, 5),     bf16(33, 17, 4097, 1000), bf16(257, 5, 17, 129),
    bf16(257, 129, 5, 1),     bf16(257, 1000, 1000, 4097)};

// kb-v0, b1-4k, mid.
const Problem kAnchors[] = {bf16(8, 1024, 256, 128), bf16(1, 4096, 4096, 4096), bf16(64, 2048, 2048, 1024)};

// Whether the reference for `p` is cheap enough to check unaligned pointers too.
bool cheap_reference(const Problem& p) {
  return double(p.batch) * double(p.input + p.hidden) * double(p.hidden) <= 1e8;
}

}  // namespace

TEST_CASE("bf16 steps match the float64 reference at odd shapes", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(31);
  for (const Problem& p : kOddShapes) check_step(engine, p, rng);
}

TEST_CASE("bf16 steps match the float64 reference at the anchor shapes, precision default or bf16", "[gpu][anchors]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(32);
  for (Precision prec : {Precision::Default, Precision::BF16})
    for (Problem p : kAnchors) {
      p.precision = prec;
      check_step(engine, p, rng);
    }
}

TEST_CASE("default precision with bf16 storage resolves to bf16 whatever the engine's default", "[gpu]") {
  for (Precision engine_default : {Precision::TF32, Precision::FP32}) {
    rnnjit::EngineOptions o = memory_only();
    o.default_precision = engine_default;
    rnnjit::Engine engine(o);
    CHECK(engine.resolve(bf16(3, 5, 17, 129, Precision::Default)).precision == Precision::BF16);
    CHECK(engine.resolve({3, 5, 17, 129}).precision == engine_default);
  }
}

// One element past an allocation's start: 2-byte aligned, not 4; two: 4-byte aligned, not 8 or 16.
// TMA takes neither, so wgmma plans run their fallback; packed stages copy, or read W by cp.async
// (70·36·48·21: i2h's rows of 84 bf16 in 8-byte copies, 4-byte ones at offset 2, the fallback at 1).
TEST_CASE("bf16 pointers aligned to 2 bytes but not 16 take the unaligned paths correctly", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(33);
  for (const Problem& p : {bf16(8, 1024, 256, 128), bf16(64, 2048, 2048, 1024), bf16(1, 4096, 4096, 4096),
                           bf16(3, 999, 17, 5), bf16(33, 17, 129, 1000), bf16(64, 256, 128, 64), bf16(70, 36, 48, 21)})
    for (std::size_t offset : {1, 2}) check_step(engine, p, rng, offset);
}

TEST_CASE("every candidate the tuner proposes for bf16 shapes matches the reference", "[gpu][candidates]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(34);
  int pinned = 0;
  for (const Problem& p : {bf16(8, 1024, 256, 128), bf16(1, 4096, 4096, 4096), bf16(64, 2048, 2048, 1024),
                           bf16(16, 4096, 4096, 4096), bf16(3, 999, 17, 5), bf16(33, 17, 129, 1000),
                           bf16(257, 1000, 1000, 4097)}) {
    const std::vector<std::string> names = engine.candidates(p);
    CHECK(!names.empty());
    for (const std::string& name : names) {
      INFO(name);
      engine.pin(p, name);
      REQUIRE(engine.plan_info(p).config == name);
      check_step(engine, p, rng);
      if (cheap_reference(p)) check_step(engine, p, rng, 1);
      ++pinned;
    }
  }
  CHECK(pinned >= 14);
}

// Beyond what the tuner proposes: each family's pool tile that says it can run a bf16 problem here
// (can_implement) runs it correctly, so that a later tuner rule cannot pick a broken one.
TEST_CASE("every pool tile that takes a bf16 problem matches the reference", "[gpu][pool]") {
  rnnjit::Engine& engine = shared_engine();
  std::mt19937 rng(35);
  int pinned = 0;
  auto run_family = [&]<class F>() {
    for (const Problem& p : {bf16(3, 999, 17, 5), bf16(16, 1023, 33, 1), bf16(70, 37, 45, 21), bf16(64, 256, 128, 64),
                             bf16(70, 36, 48, 21)})
      pinned += check_pool<F>(engine, p, rng, {0, 1});
  };
  run_family.template operator()<rnnjit::TcTile>();
  run_family.template operator()<rnnjit::GemvTile>();
  run_family.template operator()<rnnjit::GemvtTile>();
  run_family.template operator()<rnnjit::FusedTile>();
  run_family.template operator()<rnnjit::GridTile>();
  run_family.template operator()<rnnjit::StreamTile>();
  run_family.template operator()<rnnjit::GridMmaTile>();
  run_family.template operator()<rnnjit::WgmmaTile>();
  run_family.template operator()<rnnjit::GenericTile>();
  CHECK(pinned > 0);
}

TEST_CASE("bf16 with tf32 or fp32 and bf16 products of f32 tensors are Unsupported, nothing written", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(36);
  Bf16Step b(bf16(4, 32, 16, 8), rng);
  Step f({4, 32, 16, 8, Precision::BF16}, rng);  // f32 tensors
  for (auto* out : {&b.dh_out, &b.dy}) out->poison();
  f.dh_out.poison();
  f.dy.poison();
  auto unsupported = [&](const char* what, auto&& call) {
    INFO(what);
    test::expect_error(ErrorCode::Unsupported, nullptr, call);
  };
  for (Precision prec : {Precision::TF32, Precision::FP32}) {
    const Problem p = bf16(4, 32, 16, 8, prec);
    INFO(rnnjit::precision_name(prec));
    unsupported("bf16 storage, other products",
                [&] { engine.rnn_step(p, b.weights(), b.dx.get(), b.dh.get(), b.dh_out.get(), b.dy.get()); });
    unsupported("tune", [&] { engine.tune(p); });
  }
  unsupported("f32 storage, bf16 products",
              [&] { engine.rnn_step(f.p, f.weights(), f.dx.get(), f.dh.get(), f.dh_out.get(), f.dy.get()); });
  CHECK(engine.stats().tunings == 0);
  CUDA_OK(cudaDeviceSynchronize());
  for (auto* out : {&b.dh_out, &b.dy})
    for (float v : out->download()) REQUIRE(std::isnan(v));
  for (float v : f.dh_out.download()) REQUIRE(std::isnan(v));
  for (float v : f.dy.download()) REQUIRE(std::isnan(v));
}

TEST_CASE("bf16 pointers are checked in 2-byte elements before anything is written", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(37);
  const Problem p = bf16(4, 32, 16, 8);
  Bf16Step s(p, rng);
  s.dh_out.poison();
  s.dy.poison();
  const auto w = s.weights();
  void* odd = reinterpret_cast<char*>(s.dx.get()) + 1;
  test::expect_error(ErrorCode::InvalidArgument, "x is not 2-byte aligned",
                     [&] { engine.rnn_step(p, w, odd, s.dh.get(), s.dh_out.get(), s.dy.get()); });
  // 4×512 bf16 values are 4096 bytes; the buffer holds 4×32 (and the allocation's slack).
  test::expect_error(ErrorCode::InvalidArgument, "x needs 4096 bytes", [&] {
    engine.rnn_step(bf16(4, 512, 16, 8), w, s.dx.get(), s.dh.get(), s.dh_out.get(), s.dy.get());
  });
  CUDA_OK(cudaDeviceSynchronize());
  for (float v : s.dh_out.download()) REQUIRE(std::isnan(v));
  for (float v : s.dy.download()) REQUIRE(std::isnan(v));
}

TEST_CASE("the cache keeps bf16 and f32 entries of one shape apart", "[gpu][cache]") {
  TempDir dir;
  rnnjit::EngineOptions o;
  o.cache_path = (dir.path / "cache.sqlite").string();
  const Problem f32{8, 1024, 256, 128, Precision::TF32}, b = bf16(8, 1024, 256, 128);
  {
    rnnjit::Engine engine(o);
    CHECK_FALSE(engine.tune(f32).from_cache);
    CHECK_FALSE(engine.tune(b).from_cache);  // not the f32 entry of the same sizes
    CHECK(engine.stats().tunings == 2);
  }
  {
    rnnjit::cache::Store store(*o.cache_path, rnnjit::cache::Mode::ReadOnlyStrict);
    const auto rows = store.list_tuning();
    REQUIRE(rows.size() == 2);
    std::set<std::pair<std::string, std::string>> kinds;  // (dtype, precision)
    for (const auto& r : rows) {
      CHECK(rnnjit::cache::shape_text(r.key.problem) == "8,1024,256,128");
      CHECK(r.key.problem.steps == 0);
      kinds.emplace(r.key.problem.dtype, r.key.problem.precision);
      if (r.key.problem.dtype == "bf16") CHECK_THAT(rnnjit::cache::entry_name(r.key), Catch::EndsWith("/bf16/bf16"));
    }
    CHECK(kinds == std::set<std::pair<std::string, std::string>>{{"bf16", "bf16"}, {"f32", "tf32"}});
    CHECK(store.list_tuning({std::nullopt, std::nullopt, std::nullopt, "bf16"}).size() == 1);
  }

  // A new engine steps both from the file, each with its own entry's plan, without tuning.
  rnnjit::Engine again(o);
  std::mt19937 rng(38);
  check_step(again, f32, rng);
  check_step(again, b, rng);
  CHECK(again.stats().tunings == 0);
  CHECK(again.stats().tuning_cache_hits == 2);
}

TEST_CASE("rnnjit-tune --dtype bf16 prewarms checked bf16 entries that a new engine steps from", "[gpu][cache]") {
  TempDir dir;
  const std::string cache = (dir.path / "cache.sqlite").string();
  test::Result r;
  const std::string why = test::spawn(RNNJIT_TUNE_TOOL,
                                      {"--cache", cache, "--dtype", "bf16", "--shape", "8,1024,256,128", "--shape",
                                       "3,999,17,5", "--check"},
                                      {}, r);
  INFO(why << r.out << r.err);
  REQUIRE(why.empty());
  CHECK(r.code == 0);
  // Two rows checked against float64 of the same bf16 inputs, within bf16's bound.
  std::size_t passed = 0;
  for (std::size_t at = r.out.find(" pass"); at != std::string::npos; at = r.out.find(" pass", at + 1)) ++passed;
  CHECK(passed == 2);
  CHECK(r.out.find("FAIL") == std::string::npos);
  {
    rnnjit::cache::Store store(cache, rnnjit::cache::Mode::ReadOnlyStrict);
    const auto rows = store.list_tuning();
    REQUIRE(rows.size() == 2);
    for (const auto& row : rows) {
      CHECK(row.key.problem.dtype == "bf16");
      CHECK(row.key.problem.precision == "bf16");
    }
  }
  rnnjit::EngineOptions o;
  o.cache_path = cache;
  rnnjit::Engine engine(o);
  std::mt19937 rng(41);
  check_step(engine, bf16(8, 1024, 256, 128), rng);
  check_step(engine, bf16(3, 999, 17, 5), rng);
  CHECK(engine.stats().tunings == 0);
  CHECK(engine.stats().tuning_cache_hits == 2);
}

TEST_CASE("a bf16 step captured in a CUDA graph replays correctly", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(39);
  cudaStream_t stream;
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  // Captured first (the heuristic's pick, untuned), then tuned outside capture and captured again.
  Bf16Step s(bf16(8, 1024, 256, 128), rng);
  for (int round = 0; round < 2; ++round) {
    capture_and_replay(engine, s, stream);
    CHECK(s.error(s.p.batch) <= bound(Precision::BF16));
    CHECK(engine.stats().tunings == round);
    if (round == 0) s.run(engine, stream);
  }
  CUDA_OK(cudaStreamDestroy(stream));
}

TEST_CASE("a bf16 step under background tuning is correct from the first call", "[gpu]") {
  rnnjit::EngineOptions o = memory_only();
  o.tuning = rnnjit::TuningMode::Background;
  rnnjit::Engine engine(o);
  std::mt19937 rng(40);
  for (const Problem& p : {bf16(8, 1024, 256, 128), bf16(33, 17, 129, 1000)}) {
    // One call: the plan may change under the next, so no same-bits rerun here.
    Bf16Step s(p, rng);
    s.run(engine);
    CHECK(s.error(p.batch) <= bound(Precision::BF16));
    const rnnjit::PlanState state = engine.plan_info(p).state;
    CHECK((state == rnnjit::PlanState::Tuning || state == rnnjit::PlanState::Tuned));
  }
}

TEST_CASE("RnnCell advances a bf16 hidden state like the reference recurrence", "[gpu]") {
  rnnjit::Engine engine(memory_only());
  std::mt19937 rng(41);
  const Problem p = bf16(5, 37, 29, 11);
  Bf16Step s(p, rng);
  rnnjit::RnnCell cell(engine, p, s.weights());
  cell.reset(s.dh.get());
  std::vector<float> h = s.h;
  std::vector<Bf16> raw(p.batch * p.hidden);
  for (int t = 0; t < 6; ++t) {
    std::vector<float> x(p.batch * p.input);
    std::uniform_real_distribution<float> d(0, 1);
    for (auto& v : x) v = as_float(from_float<Bf16>(d(rng)));
    s.dx.upload(x);
    s.dy.poison();
    cell.step(s.dx.get(), s.dy.get());
    CUDA_OK(cudaDeviceSynchronize());
    std::vector<double> rh, ry;
    rnnjit::reference_step(p.batch, p.input, p.hidden, p.output, s.w1.data(), s.b1.data(), s.w2.data(), s.b2.data(),
                           x.data(), h.data(), rh, ry);
    CUDA_OK(cudaMemcpy(raw.data(), cell.hidden(), raw.size() * sizeof(Bf16), cudaMemcpyDeviceToHost));
    std::vector<float> got_h(raw.size());
    std::transform(raw.begin(), raw.end(), got_h.begin(), [](Bf16 e) { return as_float(e); });
    INFO("step " << t);
    CHECK(rnnjit::relative_error(got_h, rh) <= bound(Precision::BF16));
    CHECK(rnnjit::relative_error(s.dy.download(), ry) <= bound(Precision::BF16));
    h = got_h;  // the recurrence continues from what the GPU computed
  }
}

// Small odd bf16 shapes for compute-sanitizer (memcheck, racecheck) to run in seconds: every
// candidate the tuner proposes for each, pointers 2-byte aligned too, h_out aliasing h.
TEST_CASE("sanitizer workload: bf16 at odd shapes, every candidate", "[gpu][sanitize]") {
  rnnjit::Engine& engine = shared_engine();
  std::mt19937 rng(42);
  for (const Problem& p : {bf16(3, 999, 17, 5), bf16(17, 36, 44, 20), bf16(5, 7, 33, 3), bf16(70, 37, 45, 21),
                           bf16(70, 36, 48, 21), bf16(1, 5, 129, 17)})
    for (const std::string& name : engine.candidates(p)) {
      INFO(name);
      engine.pin(p, name);
      check_step(engine, p, rng);
      check_step(engine, p, rng, 1);
    }
  // h_out aliasing h: the state buffer holds h, then h'.
  Bf16Step s(bf16(9, 13, 21, 6), rng);
  s.dh_out.upload(s.h);
  s.dy.poison();
  engine.rnn_step(s.p, s.weights(), s.dx.get(), s.dh_out.get(), s.dh_out.get(), s.dy.get());
  CUDA_OK(cudaDeviceSynchronize());
  CHECK(s.error(s.p.batch) <= bound(Precision::BF16));
}
