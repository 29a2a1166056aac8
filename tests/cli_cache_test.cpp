// The tools run as a user runs them: output and exit codes.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/rnnjit.hpp"
#include "support/hash.hpp"

namespace fs = std::filesystem;
using namespace rnnjit::cache;

namespace {

struct Run {
  int code;
  std::string out;  // stdout and stderr
};

Run run(const std::string& tool, const std::string& args) {
  const std::string cmd = "'" + tool + "' " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  std::string out;
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  const int status = pclose(p);
  REQUIRE(WIFEXITED(status));
  return {WEXITSTATUS(status), out};
}

Run cache_tool(const std::string& args) { return run(RNNJIT_CACHE_TOOL, args); }

struct Fixture {
  fs::path dir;
  std::string db;
  Fixture() {
    char tmpl[] = "/tmp/rnnjit-cli-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    dir = tmpl;
    db = (dir / "cache.sqlite").string();
  }
  ~Fixture() { fs::remove_all(dir); }
  std::string with(const std::string& args) const { return "--cache '" + db + "' " + args; }

  // Three current entries (two on one GPU), one stale, and their binaries.
  void populate() {
    Store s(db, Mode::Strict);
    int n = 0;
    for (const auto& [gpu, b, hash] : {std::tuple{"NVIDIA H100 80GB HBM3;cc=9.0", 8, rnnjit::template_hash()},
                                      std::tuple{"NVIDIA H100 80GB HBM3;cc=9.0", 64, rnnjit::template_hash()},
                                      std::tuple{"NVIDIA A100;cc=8.0", 8, rnnjit::template_hash()},
                                      std::tuple{"NVIDIA A100;cc=8.0", 16, std::string("oldtemplates")}}) {
      TuningRecord r;
      r.key = {gpu, {b, 1024, 256, 128, "tf32"}, hash};
      r.engine_version = rnnjit::version();
      r.winner = "i2h_gemv_r1w4u4.h2o_gemv_r1w4u4";
      r.winner_us = 11.5 + b;
      const std::string key = "bin" + std::to_string(n++);
      r.candidates = {{r.winner, r.winner_us, "ok", "", key},
                      {"i2h_mma16x32x32w1x2s4.h2o_mma16x32x32w1x2s4", 40.0, "ok", "", ""},
                      {"fused_c16w16u4", std::numeric_limits<double>::infinity(), "launch_failed", "no clusters", ""}};
      r.created_at = 1764000000;
      s.put_tuning(r);
      BinaryRecord bin{key, "gemv.cu", "sm_90a", "13.0", "_Z4gemv", std::vector<std::uint8_t>(3000, 7), "", 1764000000};
      bin.cubin[5] = 0;
      bin.hash = rnnjit::support::hash_hex(bin.cubin.data(), bin.cubin.size());
      s.put_binary(bin);
    }
  }
};

}  // namespace

TEST_CASE("rnnjit-cache --help, --version and bad usage", "[cli]") {
  auto r = cache_tool("--help");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("list") && Catch::Contains("import"));
  r = cache_tool("--version");
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains(rnnjit::version()));
  CHECK(cache_tool("").code == 2);
  CHECK(cache_tool("frobnicate").code == 2);
  CHECK(cache_tool("list --no-such-flag").code == 2);
  Fixture f;
  f.populate();
  r = cache_tool(f.with("list --shape 8,1024"));
  CHECK(r.code == 2);
  CHECK_THAT(r.out, Catch::Contains("B,I,H,O"));
}

TEST_CASE("rnnjit-cache path follows --cache and RNNJIT_CACHE", "[cli]") {
  CHECK(cache_tool("--cache /some/where.sqlite path").out == "/some/where.sqlite\n");
  CHECK(run("/usr/bin/env", "RNNJIT_CACHE=/env/c.sqlite '" RNNJIT_CACHE_TOOL "' path").out == "/env/c.sqlite\n");
}

TEST_CASE("rnnjit-cache list, filters, JSON, show and stats", "[cli]") {
  Fixture f;
  f.populate();
  auto r = cache_tool(f.with("list"));
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("4 entries") && Catch::Contains("8,1024,256,128") && Catch::Contains("yes"));
  r = cache_tool(f.with("list --json"));
  REQUIRE(r.code == 0);
  const auto j = nlohmann::json::parse(r.out);
  REQUIRE(j.size() == 4);
  CHECK(j[0]["candidates"].size() == 3);
  CHECK(j[0]["candidates"][2]["time_us"].is_null());
  CHECK(nlohmann::json::parse(cache_tool(f.with("list --json --gpu H100")).out).size() == 2);
  CHECK(nlohmann::json::parse(cache_tool(f.with("list --json --shape 8,1024,256,128")).out).size() == 2);
  CHECK(nlohmann::json::parse(cache_tool(f.with("list --json --precision fp32")).out).empty());
  r = cache_tool(f.with("show 1"));
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("fused_c16w16u4") && Catch::Contains("launch_failed") && Catch::Contains("failed"));
  r = cache_tool(f.with("show 'NVIDIA H100 80GB HBM3;cc=9.0/64,1024,256,128/tf32' --json"));
  CHECK(r.code == 0);
  CHECK(nlohmann::json::parse(r.out)["shape"][0] == 64);
  CHECK(cache_tool(f.with("show 99")).code == 1);
  r = cache_tool(f.with("stats --json"));
  CHECK(r.code == 0);
  const auto st = nlohmann::json::parse(r.out);
  CHECK(st["entries"] == 4);
  CHECK(st["binaries"] == 4);
  CHECK(st["per_gpu"]["NVIDIA A100;cc=8.0"] == 2);
}

TEST_CASE("rnnjit-cache on a missing or damaged cache says so and touches nothing", "[cli]") {
  Fixture f;
  auto r = cache_tool(f.with("list"));
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("no cache at"));
  CHECK_FALSE(fs::exists(f.db));
  std::ofstream(f.db) << std::string(4096, 'g');
  for (const char* cmd : {"list", "stats", "verify", "prune", "rm --all"}) {
    r = cache_tool(f.with(cmd));
    INFO(cmd << ": " << r.out);
    CHECK(r.code == 1);
    CHECK_THAT(r.out, Catch::Contains(f.db) && Catch::Contains("not a database"));
  }
  CHECK(fs::file_size(f.db) == 4096);
  CHECK(std::distance(fs::directory_iterator(f.dir), fs::directory_iterator()) == 1);
}

TEST_CASE("rnnjit-cache verify finds a tampered binary", "[cli]") {
  Fixture f;
  f.populate();
  auto r = cache_tool(f.with("verify"));
  CHECK(r.code == 0);
  CHECK(r.out == "ok\n");
  {
    // Damage one blob behind the cache's back.
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(f.db.c_str(), &raw) == SQLITE_OK);
    REQUIRE(sqlite3_exec(raw, "UPDATE binaries SET cubin = zeroblob(10) WHERE key = 'bin1'", nullptr, nullptr,
                         nullptr) == SQLITE_OK);
    sqlite3_close(raw);
  }
  r = cache_tool(f.with("verify"));
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("does not match its hash"));
}

TEST_CASE("rnnjit-cache export then import reproduces the cache", "[cli]") {
  Fixture f;
  f.populate();
  const std::string before = cache_tool(f.with("list --json")).out;
  for (const bool binaries : {false, true}) {
    const std::string file = (f.dir / "export.json").string();
    auto r = cache_tool(f.with("export '" + file + "'" + (binaries ? " --with-binaries" : "")));
    REQUIRE(r.code == 0);
    const std::string other = (f.dir / (binaries ? "b.sqlite" : "a.sqlite")).string();
    r = cache_tool("--cache '" + other + "' import '" + file + "'");
    INFO(r.out);
    REQUIRE(r.code == 0);
    CHECK(cache_tool("--cache '" + other + "' list --json").out == before);
    const auto st = nlohmann::json::parse(cache_tool("--cache '" + other + "' stats --json").out);
    CHECK(st["binaries"] == (binaries ? 4 : 0));
    CHECK(cache_tool("--cache '" + other + "' verify").code == 0);
  }
}

TEST_CASE("rnnjit-cache import rejects a file with one malformed record, importing nothing", "[cli]") {
  Fixture f;
  f.populate();
  const std::string file = (f.dir / "export.json").string();
  REQUIRE(cache_tool(f.with("export '" + file + "' --with-binaries")).code == 0);
  auto j = nlohmann::json::parse(std::ifstream(file));
  const std::string target = (f.dir / "target.sqlite").string();
  SECTION("a missing field") { j["tuning"][2].erase("winner"); }
  SECTION("bad base64") { j["binaries"][1]["cubin_base64"] = "@@@@"; }
  SECTION("a hash that does not match") { j["binaries"][3]["hash"] = "0000000000000000"; }
  SECTION("a winner that is not a candidate") { j["tuning"][1]["winner"] = "nothing"; }
  std::ofstream(file) << j.dump();
  REQUIRE(cache_tool("--cache '" + target + "' stats").code == 1);  // no cache yet
  const auto r = cache_tool("--cache '" + target + "' import '" + file + "'");
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("record"));
  if (fs::exists(target)) CHECK(nlohmann::json::parse(cache_tool("--cache '" + target + "' list --json").out).empty());
}

TEST_CASE("rnnjit-cache rm and prune", "[cli]") {
  Fixture f;
  f.populate();
  CHECK(cache_tool(f.with("rm")).code == 2);
  auto r = cache_tool(f.with("rm --shape 64,1024,256,128"));
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("removed 1 entry"));
  r = cache_tool(f.with("prune"));
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("removed 1 stale entry and 2 unused binaries"));
  CHECK(nlohmann::json::parse(cache_tool(f.with("list --json")).out).size() == 2);
  CHECK(cache_tool(f.with("rm --all")).code == 0);
  CHECK(nlohmann::json::parse(cache_tool(f.with("list --json")).out).empty());
  CHECK(cache_tool(f.with("vacuum")).code == 0);
}

TEST_CASE("rnnjit-tune without a GPU fails clearly; bad usage is exit 2", "[cli]") {
  CHECK(run(RNNJIT_TUNE_TOOL, "--help").code == 0);
  CHECK(run(RNNJIT_TUNE_TOOL, "").code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, "--shape 1,2,3").code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, "--shape 8,16,16,8 --precision fp64").code == 2);
  const auto r = run("/usr/bin/env",
                     "RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1 '" RNNJIT_TUNE_TOOL "' --shape 8,16,16,8");
  CHECK(r.code == 1);
  CHECK_THAT(r.out, Catch::Contains("no CUDA driver"));
}
