// The tuner and the cache on a GPU: what the first call records, a second process that starts
// from the cache (or from a system cache) without NVRTC, and processes that exit while background
// tuning writes the cache.
#include "temp_dir.hpp"
#include "cli_support.hpp"
#include "gpu_support.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "rnnjit/cache/store.hpp"

namespace fs = std::filesystem;

namespace {


const rnnjit::Problem kProblem{8, 1024, 256, 128};

// Runs this test binary again, in a fresh process, on the hidden test case `tag` (below), with
// `cache` as $RNNJIT_CACHE and `env` ("NAME='value' ...") added.
std::string run_child(const fs::path& cache, const std::string& tag = "[.child]", const std::string& env = "") {
  const std::string cmd = "RNNJIT_CACHE='" + cache.string() + "' " + env + " '" +
                          fs::read_symlink("/proc/self/exe").string() + "' '" + tag + "' 2>&1";
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
  REQUIRE(s.error(kProblem.batch) <= test::bound(kProblem.precision));
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

// A cache hit whose rows cannot be read (here a candidate's disposition no version of rnnjit
// writes, as another writer might leave it) is warned about and tuned again, not an error of the
// step; the new entry replaces it and the next engine loads it.
TEST_CASE("a cached entry that fails to load is retuned, and the next engine loads the new one", "[gpu][cache]") {
  test::TempDir dir;
  rnnjit::EngineOptions o;
  o.cache_path = (dir.path / "c.sqlite").string();
  {
    rnnjit::Engine first(o);
    REQUIRE_FALSE(first.tune(kProblem).from_cache);
  }
  {
    rnnjit::cache::Store store(*o.cache_path, rnnjit::cache::Mode::Strict);
    auto records = store.list_tuning();
    REQUIRE(records.size() == 1);
    REQUIRE_FALSE(records[0].candidates.empty());
    records[0].candidates[0].disposition = "damaged";
    store.put_tuning(records[0]);
  }
  rnnjit::Engine second(o);
  std::mt19937 rng(25);
  test::Step s(kProblem, rng);
  s.run(second);
  CHECK(s.error(kProblem.batch) <= test::bound(kProblem.precision));
  CHECK(second.stats().tunings == 1);
  CHECK(second.plan_info(kProblem).state == rnnjit::PlanState::Tuned);
  rnnjit::Engine third(o);
  const auto again = third.tune(kProblem);
  CHECK(again.from_cache);
  CHECK(third.stats().tunings == 0);
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
  CHECK(s.error(kProblem.batch) <= test::bound(kProblem.precision));
}

TEST_CASE("a process with an empty cache starts from the system cache: no NVRTC, nothing written to it",
          "[gpu][cache]") {
  test::TempDir dir;
  const fs::path tuned = dir.path / "tuned.sqlite";
  run_child(tuned);  // tunes kProblem into it
  // Shipped in a read-only directory, as an image's /usr/local/share would be.
  const fs::path share = dir.path / "share";
  fs::create_directory(share);
  const fs::path sys = share / "system.sqlite";
  fs::copy_file(tuned, sys);
  fs::permissions(sys, fs::perms::owner_read);
  fs::permissions(share, fs::perms::owner_read | fs::perms::owner_exec);
  const std::string before = test::read_file(sys.string());

  const fs::path user = dir.path / "user.sqlite";
  const std::string out = run_child(user, "[.child]", "RNNJIT_SYSTEM_CACHE='" + sys.string() + "'");
  CHECK_THAT(out, Catch::Contains("STATS compiles=0 ") && Catch::Contains(" tunings=0 tuning_hits=1"));
  CHECK(test::read_file(sys.string()) == before);
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(share)) names.push_back(e.path().filename().string());
  CHECK(names == std::vector<std::string>{"system.sqlite"});
  // The user cache holds no entry: the system's served, and nothing was tuned.
  CHECK(rnnjit::cache::Store(user.string(), rnnjit::cache::Mode::ReadOnlyStrict).list_tuning().empty());
  fs::permissions(share, fs::perms::owner_all);  // for the TempDir's removal
}

TEST_CASE("child: a background tuning cut short by std::exit, with the engine never destroyed", "[.child_exit]") {
  auto* engine = new rnnjit::Engine;  // $RNNJIT_TUNING=background; never destroyed, as in a program that exits
  std::mt19937 rng(23);
  test::Step s({64, 2048, 2048, 1024}, rng);
  s.run(*engine);
  REQUIRE(s.error(s.check_rows()) <= test::bound(s.p.precision));
  REQUIRE(engine->plan_info(s.p).state == rnnjit::PlanState::Tuning);
  std::printf("EXITING\n");
  std::fflush(stdout);
  std::exit(0);
}

TEST_CASE("child: a background tuning cut short by _exit, its thread killed wherever it is", "[.child_kill]") {
  rnnjit::Engine engine;  // $RNNJIT_TUNING=background
  std::mt19937 rng(24);
  test::Step s({8, 1024, 256, 128}, rng);
  s.run(engine);
  REQUIRE(s.error(s.check_rows()) <= test::bound(s.p.precision));
  // Somewhere in the compiles, the timing or the write.
  std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 1500)(rng)));
  std::printf("EXITING\n");
  std::fflush(stdout);
  _exit(0);
}

TEST_CASE("a process that exits while background tuning runs leaves a valid cache, the next one uses it",
          "[gpu][cache]") {
  for (const char* tag : {"[.child_exit]", "[.child_kill]", "[.child_kill]", "[.child_kill]"}) {
    INFO(tag);
    test::TempDir dir;
    const fs::path cache = dir.path / "cache.sqlite";
    const std::string out = run_child(cache, tag, "RNNJIT_TUNING=background");
    CHECK_THAT(out, Catch::Contains("EXITING"));
    CHECK(rnnjit::cache::Store(cache.string(), rnnjit::cache::Mode::ReadOnlyStrict).verify().empty());
    CHECK_THAT(run_child(cache), Catch::Contains("STATS "));  // a step from it, checked
  }
}
