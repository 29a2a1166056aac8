// The tuner and the cache on a GPU: what the first call records, and a second process
// that starts from the cache without NVRTC.
#include "temp_dir.hpp"
#include "gpu_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rnnjit/cache/store.hpp"

namespace fs = std::filesystem;

namespace {


const rnnjit::Problem kProblem{8, 1024, 256, 128};

// Runs this test binary again, in a fresh process, on the hidden test case below.
std::string run_child(const fs::path& cache) {
  const std::string cmd = "RNNJIT_CACHE='" + cache.string() + "' '" + fs::read_symlink("/proc/self/exe").string() +
                          "' '[.child]' 2>&1";
  FILE* pipe = popen(cmd.c_str(), "r");
  REQUIRE(pipe);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, pipe)) out += buf;
  const int status = pclose(pipe);
  INFO(out);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);
  return out;
}

}  // namespace

TEST_CASE("child: one step from the cache in $RNNJIT_CACHE, printing the engine's counters", "[.child]") {
  rnnjit::Engine engine;  // cache location from the environment, as a user's process
  std::mt19937 rng(21);
  test::Step s(kProblem, rng);
  s.run(engine);
  REQUIRE(s.error(kProblem.batch) <= 2e-3);
  const auto st = engine.stats();
  std::printf("STATS compiles=%lld binary_hits=%lld tunings=%lld tuning_hits=%lld\n", (long long)st.nvrtc_compiles,
              (long long)st.binary_cache_hits, (long long)st.tunings, (long long)st.tuning_cache_hits);
}

TEST_CASE("the first call times 3-4 candidates and a second process compiles nothing", "[gpu][cache]") {
  test::TempDir dir;
  const fs::path cache = dir.path / "cache.sqlite";

  const std::string first = run_child(cache);
  CHECK_THAT(first, Catch::Contains("tunings=1 tuning_hits=0"));
  long long compiles = -1;
  REQUIRE(std::sscanf(first.substr(first.find("STATS")).c_str(), "STATS compiles=%lld", &compiles) == 1);
  CHECK(compiles >= 3);

  rnnjit::cache::Store store(cache.string(), rnnjit::cache::Mode::Strict);
  const auto rows = store.list_tuning();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].candidates.size() >= 3);
  CHECK(rows[0].candidates.size() <= 4);
  for (const auto& c : rows[0].candidates) {
    CHECK(c.disposition == "ok");
    CHECK(c.time_us > 0);
    CHECK(c.time_us >= rows[0].winner_us);
  }
  CHECK(rows[0].key.template_hash == rnnjit::template_hash());

  const std::string second = run_child(cache);
  long long hits = -1;
  CHECK_THAT(second, Catch::Contains("STATS compiles=0 ") && Catch::Contains(" tunings=0 tuning_hits=1"));
  REQUIRE(std::sscanf(second.substr(second.find("STATS")).c_str(), "STATS compiles=0 binary_hits=%lld", &hits) == 1);
  CHECK(hits >= 1);  // one binary per stage, or one for a fused step
}

TEST_CASE("force retunes a cached problem and tune() reports the candidates", "[gpu][cache]") {
  test::TempDir dir;
  rnnjit::EngineOptions o;
  o.cache_path = (dir.path / "c.sqlite").string();
  rnnjit::Engine engine(o);
  const auto first = engine.tune(kProblem);
  CHECK_FALSE(first.from_cache);
  CHECK(first.candidates.size() >= 3);
  CHECK(first.winner_us <= first.candidates[0].time_us);
  const auto again = engine.tune(kProblem);
  CHECK(again.from_cache);
  CHECK(again.winner == first.winner);
  const auto forced = engine.tune(kProblem, true);
  CHECK_FALSE(forced.from_cache);
  CHECK(engine.stats().tunings == 2);
}

TEST_CASE("a cache file that is garbage never fails a step", "[gpu][cache]") {
  test::TempDir dir;
  const fs::path cache = dir.path / "cache.sqlite";
  std::ofstream(cache) << std::string(10000, 'x');
  rnnjit::EngineOptions o;
  o.cache_path = cache.string();
  rnnjit::Engine engine(o);
  std::mt19937 rng(22);
  test::Step s(kProblem, rng);
  s.run(engine);
  CHECK(s.error(kProblem.batch) <= 2e-3);
}
