// rnnjit-cache (and rnnjit-tune's usage errors) run as a user runs them: output and exit codes.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "temp_dir.hpp"
#include "rnnjit/cache/store.hpp"
#include "rnnjit/version.hpp"
#include "support/hash.hpp"

extern char** environ;

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace rnnjit::cache;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}


struct Result {
  int code = -1;
  std::string out, err;
};

// Runs `tool` with `args` (no shell), `env` added to this process's environment; stdout and
// stderr are captured apart so that JSON output can be parsed.
Result run(const std::string& tool, const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  static int serial = 0;
  const fs::path dir = fs::temp_directory_path();
  const std::string tag = std::to_string(getpid()) + "-" + std::to_string(serial++);
  const std::string out_path = (dir / ("rnnjit-cli-out-" + tag)).string();
  const std::string err_path = (dir / ("rnnjit-cli-err-" + tag)).string();
  posix_spawn_file_actions_t actions;
  REQUIRE(posix_spawn_file_actions_init(&actions) == 0);
  REQUIRE(posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600) == 0);
  REQUIRE(posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600) == 0);
  std::vector<std::string> argv_s = {tool};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_s = env;
  for (char** e = environ; *e; ++e) env_s.emplace_back(*e);  // earlier entries win
  std::vector<char*> envp;
  for (auto& e : env_s) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, tool.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  REQUIRE(rc == 0);
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  Result r;
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  INFO(tool << " exited abnormally; stderr: " << r.err);
  REQUIRE(WIFEXITED(status));
  r.code = WEXITSTATUS(status);
  return r;
}

Result tool(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  return run(RNNJIT_CACHE_TOOL, args, env);
}

const char* const kH100 = "NVIDIA H100 80GB HBM3;cc=9.0;sms=132;l2=52428800;smem=232448";
const char* const kA100 = "NVIDIA A100-SXM4-40GB;cc=8.0;sms=108;l2=41943040;smem=166912";

// A cache made through the Store API: three current entries (two on one GPU), one of old
// templates, each with its binary, and a candidate that failed.
struct Fixture {
  test::TempDir dir;
  std::string db = dir.file("cache.sqlite");

  Fixture() {
    Store s(db, Mode::Strict);
    int n = 0;
    for (const auto& [gpu, b, hash] : {std::tuple{kH100, 8, rnnjit::template_hash()},
                                      std::tuple{kH100, 64, rnnjit::template_hash()},
                                      std::tuple{kA100, 8, rnnjit::template_hash()},
                                      std::tuple{kA100, 16, std::string("oldtemplates")}}) {
      TuningRecord r;
      r.key.gpu = gpu;
      r.key.problem.b = b;
      r.key.problem.i = 1024;
      r.key.problem.h = 256;
      r.key.problem.o = 128;
      r.key.problem.precision = "tf32";
      r.key.template_hash = hash;
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
      bin.cubin[2999] = 0xff;
      bin.hash = rnnjit::support::hash_hex(bin.cubin.data(), bin.cubin.size());
      s.put_binary(bin);
    }
  }

  Result with(std::vector<std::string> args) const {
    args.insert(args.begin(), {"--cache", db});
    return tool(args);
  }
  Json json(std::vector<std::string> args) const {
    const Result r = with(std::move(args));
    INFO(r.err);
    REQUIRE(r.code == 0);
    return Json::parse(r.out);
  }
};

// Damages one blob behind the cache's back.
void tamper(const std::string& db, const std::string& key) {
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
  const std::string sql = "UPDATE binaries SET cubin = zeroblob(10) WHERE key = '" + key + "'";
  const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Terminal column of byte offset `pos` in UTF-8 `line`.
std::size_t column(const std::string& line, std::size_t pos) {
  std::size_t n = 0;
  for (std::size_t i = 0; i < pos; ++i) n += (static_cast<unsigned char>(line[i]) & 0xC0) != 0x80;
  return n;
}

}  // namespace

TEST_CASE("rnnjit-cache --help and --version exit 0", "[cli]") {
  auto r = tool({"--help"});
  CHECK(r.code == 0);
  for (const char* cmd : {"path", "list", "show", "stats", "export", "import", "rm", "prune", "verify", "vacuum"})
    CHECK_THAT(r.out, Catch::Contains(cmd));
  r = tool({"list", "--help"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("--shape") && Catch::Contains("--json"));
  r = tool({"--version"});
  CHECK(r.code == 0);
  CHECK(r.out == rnnjit::version() + "\n");
}

TEST_CASE("rnnjit-cache bad usage exits 2 with a message on stderr", "[cli]") {
  Fixture f;
  for (const auto& args : std::vector<std::vector<std::string>>{{},
                                                                {"frobnicate"},
                                                                {"list", "--no-such-flag"},
                                                                {"show"},
                                                                {"--cache"},
                                                                {"export"},
                                                                {"--cache", f.db, "list", "--shape", "8,1024"},
                                                                {"--cache", f.db, "list", "--shape", "8,1024,256,x"},
                                                                {"--cache", f.db, "rm", "--shape", "0,1,1,1"}}) {
    const auto r = tool(args);
    INFO("args: " << Json(args).dump());
    CHECK(r.code == 2);
    CHECK(r.out.empty());
    CHECK_FALSE(r.err.empty());
  }
  CHECK_THAT(f.with({"list", "--shape", "8,1024"}).err, Catch::Contains("B,I,H,O"));
}

TEST_CASE("rnnjit-cache path follows --cache, then RNNJIT_CACHE", "[cli]") {
  CHECK(tool({"--cache", "/some/where.sqlite", "path"}).out == "/some/where.sqlite\n");
  CHECK(tool({"path"}, {"RNNJIT_CACHE=/env/c.sqlite"}).out == "/env/c.sqlite\n");
  CHECK(tool({"path"}, {"RNNJIT_CACHE=", "XDG_CACHE_HOME=/xdg"}).out == "/xdg/rnnjit/cache.sqlite\n");
}

TEST_CASE("rnnjit-cache list prints an aligned table, stale rows marked", "[cli]") {
  Fixture f;
  const auto r = f.with({"list"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const auto rows = lines(r.out);
  REQUIRE(rows.size() == 6);  // header, 4 entries, the count
  for (const char* heading : {"gpu", "B,I,H,O", "precision", "winner", "winner µs", "candidates", "engine", "stale",
                              "created"})
    CHECK_THAT(rows[0], Catch::Contains(heading));
  CHECK(rows[5] == "4 entries in " + f.db);
  // Every column starts where its heading does.
  for (const auto& [heading, cell] : {std::pair{"B,I,H,O", ",1024,256,128"}, std::pair{"precision", "tf32"},
                                      std::pair{"created", "2025-11-24T16:00:00Z"}})
    for (int i = 1; i <= 4; ++i) {
      INFO(rows[i]);
      const std::string line = rows[i];
      std::size_t at = line.find(cell);
      REQUIRE(at != std::string::npos);
      if (std::string(heading) == "B,I,H,O") at = line.rfind(' ', at) + 1;
      CHECK(column(line, at) == column(rows[0], rows[0].find(heading)));
    }
  int stale = 0;
  for (int i = 1; i <= 4; ++i) stale += rows[i].find(" yes ") != std::string::npos;
  CHECK(stale == 1);
  CHECK_THAT(rows[1], Catch::Contains(kA100) && Catch::Contains("8,1024,256,128") && Catch::Contains("19.50"));
}

TEST_CASE("rnnjit-cache list --json gives the full records", "[cli]") {
  Fixture f;
  const Json j = f.json({"list", "--json"});
  const auto records = Store(f.db, Mode::ReadOnlyStrict).list_tuning();
  REQUIRE(j.size() == records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const Json& e = j[i];
    CHECK(e["gpu"] == r.key.gpu);
    CHECK(e["shape"] == Json({r.key.problem.b, r.key.problem.i, r.key.problem.h, r.key.problem.o}));
    CHECK(e["precision"] == r.key.problem.precision);
    CHECK(e["template_hash"] == r.key.template_hash);
    CHECK(e["engine_version"] == r.engine_version);
    CHECK(e["winner"] == r.winner);
    CHECK(e["winner_us"] == r.winner_us);
    CHECK(e["created_at"] == r.created_at);
    REQUIRE(e["candidates"].size() == 3);
    CHECK(e["candidates"][0]["binary_key"] == r.candidates[0].binary_key);
    CHECK(e["candidates"][1]["time_us"] == 40.0);
    CHECK(e["candidates"][2]["time_us"].is_null());
    CHECK(e["candidates"][2]["disposition"] == "launch_failed");
    CHECK(e["candidates"][2]["message"] == "no clusters");
  }
}

TEST_CASE("rnnjit-cache list filters by --gpu, --shape and --precision", "[cli]") {
  Fixture f;
  CHECK(f.json({"list", "--json", "--gpu", "H100"}).size() == 2);
  CHECK(f.json({"list", "--json", "--gpu", "cc=8.0"}).size() == 2);
  CHECK(f.json({"list", "--json", "--shape", "8,1024,256,128"}).size() == 2);
  CHECK(f.json({"list", "--json", "--shape", "8,1024,256,128", "--gpu", "A100"}).size() == 1);
  CHECK(f.json({"list", "--json", "--precision", "tf32"}).size() == 4);
  CHECK(f.json({"list", "--json", "--precision", "fp32"}).empty());
  const auto r = f.with({"list", "--gpu", "H100"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("2 entries"));
  CHECK_THAT(r.out, !Catch::Contains("A100"));
}

TEST_CASE("rnnjit-cache show prints every field and candidate, by key or row number", "[cli]") {
  Fixture f;
  const std::string key = std::string(kH100) + "/64,1024,256,128/tf32";
  auto r = f.with({"show", key});
  INFO(r.err);
  REQUIRE(r.code == 0);
  for (const char* text : {kH100, "64,1024,256,128", "tf32", "i2h_mma16x32x32w1x2s4.h2o_mma16x32x32w1x2s4", "40.00",
                           "75.50", "fused_c16w16u4", "launch_failed", "no clusters", "failed", "2025-11-24T16:00:00Z"})
    CHECK_THAT(r.out, Catch::Contains(text));
  CHECK_THAT(r.out, Catch::Contains(rnnjit::template_hash()) && !Catch::Contains("stale"));
  const Json j = f.json({"show", key, "--json"});
  CHECK(j["shape"][0] == 64);
  // Row 4 of list is the H100's b=64 entry (sorted by gpu, then shape).
  CHECK(f.json({"show", "4", "--json"}) == j);
  CHECK_THAT(f.with({"show", "2"}).out, Catch::Contains("oldtemplates (stale)"));
  r = f.with({"show", "99"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("no entry '99'"));
  CHECK(f.with({"show", "nothing/1,2,3,4/tf32"}).code == 1);
}

TEST_CASE("rnnjit-cache stats counts entries, binaries and bytes per GPU", "[cli]") {
  Fixture f;
  const Json st = f.json({"stats", "--json"});
  CHECK(st["path"] == f.db);
  CHECK(st["entries"] == 4);
  CHECK(st["binaries"] == 4);
  CHECK(st["binary_bytes"] == 12000);
  CHECK(st["file_bytes"].get<std::int64_t>() >= 12000);
  CHECK(st["per_gpu"][kA100] == 2);
  CHECK(st["per_gpu"][kH100] == 2);
  const auto r = f.with({"stats"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("entries") && Catch::Contains("12000 bytes") && Catch::Contains(kH100));
}

TEST_CASE("rnnjit-cache on a missing cache says so, exits 1 and creates nothing", "[cli]") {
  test::TempDir dir;
  const std::string db = dir.file("absent.sqlite");
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"list"}, {"show", "1"}, {"stats"}, {"verify"}, {"prune"}, {"rm", "--all"}, {"vacuum"}, {"export", dir.file("x.json")}}) {
    std::vector<std::string> args = {"--cache", db};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const auto r = tool(args);
    INFO(cmd[0]);
    CHECK(r.code == 1);
    CHECK(r.err == "rnnjit-cache: no cache at " + db + "\n");
  }
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("rnnjit-cache on a garbage file says so, exits 1 and leaves it alone", "[cli]") {
  test::TempDir dir;
  const std::string db = dir.file("cache.sqlite");
  const std::string garbage(4096, 'g');
  std::ofstream(db, std::ios::binary) << garbage;
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"list"}, {"show", "1"}, {"stats"}, {"verify"}, {"prune"}, {"rm", "--all"}, {"vacuum"}, {"export", dir.file("x.json")}}) {
    std::vector<std::string> args = {"--cache", db};
    args.insert(args.end(), cmd.begin(), cmd.end());
    const auto r = tool(args);
    INFO(cmd[0] << ": " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::StartsWith("rnnjit-cache: cache " + db + ": not a SQLite database"));
  }
  CHECK(read_file(db) == garbage);
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
}

TEST_CASE("rnnjit-cache verify says ok on a healthy cache", "[cli]") {
  Fixture f;
  const auto r = f.with({"verify"});
  CHECK(r.code == 0);
  CHECK(r.out == "ok\n");
}

TEST_CASE("rnnjit-cache verify reports a tampered blob and exits 1", "[cli]") {
  Fixture f;
  tamper(f.db, "bin1");
  const auto r = f.with({"verify"});
  CHECK(r.code == 1);
  CHECK(r.out == "binary bin1: the cubin does not match its hash\n");
}

TEST_CASE("rnnjit-cache export then import into a fresh cache reproduces it", "[cli]") {
  Fixture f;
  const Json before = f.json({"list", "--json"});
  const auto binaries = Store(f.db, Mode::ReadOnlyStrict).list_binaries();
  for (const bool with_binaries : {false, true}) {
    INFO("with binaries: " << with_binaries);
    const std::string file = f.dir.file(with_binaries ? "with.json" : "without.json");
    std::vector<std::string> args = {"export", file};
    if (with_binaries) args.push_back("--with-binaries");
    auto r = f.with(args);
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_FALSE(fs::exists(file + ".tmp"));
    const Json exported = Json::parse(read_file(file));
    CHECK(exported["format"] == "rnnjit-cache");
    CHECK(exported["version"] == 1);
    CHECK(exported["engine_version"] == rnnjit::version());
    CHECK(exported["tuning"] == before);
    CHECK(exported["binaries"].size() == (with_binaries ? 4u : 0u));

    const std::string other = f.dir.file(with_binaries ? "b.sqlite" : "a.sqlite");
    r = tool({"--cache", other, "import", file});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("imported 4 entries"));
    r = tool({"--cache", other, "list", "--json"});
    REQUIRE(r.code == 0);
    CHECK(Json::parse(r.out) == before);
    const auto imported = Store(other, Mode::ReadOnlyStrict).list_binaries();
    if (with_binaries)
      CHECK(imported == binaries);
    else
      CHECK(imported.empty());
    CHECK(tool({"--cache", other, "verify"}).code == 0);
  }
}

TEST_CASE("rnnjit-cache import rejects a file with one malformed record and imports nothing", "[cli]") {
  Fixture f;
  const std::string file = f.dir.file("export.json");
  REQUIRE(f.with({"export", file, "--with-binaries"}).code == 0);
  Json j = Json::parse(read_file(file));
  std::string expect;
  SECTION("a missing field") {
    j["tuning"][2].erase("winner");
    expect = "tuning record 2: field 'winner' is missing";
  }
  SECTION("a field of the wrong type") {
    j["tuning"][1]["created_at"] = "yesterday";
    expect = "tuning record 1: field 'created_at' must be an integer";
  }
  SECTION("a candidate's field of the wrong type") {
    j["tuning"][0]["candidates"][1]["time_us"] = "fast";
    expect = "tuning record 0: field 'candidates[1].time_us' must be a number or null";
  }
  SECTION("bad base64") {
    j["binaries"][1]["cubin_base64"] = "@@@@";
    expect = "binary record 1: field 'cubin_base64' is not valid base64";
  }
  SECTION("a hash that does not match the cubin") {
    j["binaries"][3]["hash"] = "0000000000000000";
    expect = "binary record 3 (bin3): hash '0000000000000000' does not match the cubin";
  }
  SECTION("a winner that is not a candidate") {
    j["tuning"][1]["winner"] = "nothing";
    expect = "tuning record 1";
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << j.dump();

  // Into an existing cache: unchanged.
  const std::string target = f.dir.file("target.sqlite");
  {
    Store s(target, Mode::Strict);
    s.import_records({Store(f.db, Mode::ReadOnlyStrict).list_tuning()[0]}, {});
  }
  const Json before = Json::parse(tool({"--cache", target, "list", "--json"}).out);
  auto r = tool({"--cache", target, "import", file});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains(file) && Catch::Contains(expect));
  CHECK(Json::parse(tool({"--cache", target, "list", "--json"}).out) == before);
  CHECK(Json::parse(tool({"--cache", target, "stats", "--json"}).out)["binaries"] == 0);
  // Into no cache: none made.
  const std::string absent = f.dir.file("absent.sqlite");
  r = tool({"--cache", absent, "import", file});
  CHECK(r.code == 1);
  CHECK_FALSE(fs::exists(absent));
}

TEST_CASE("rnnjit-cache import rejects a file that is not an export", "[cli]") {
  Fixture f;
  const std::string file = f.dir.file("other.json");
  for (const std::string& text : {std::string("not json"), std::string("[1, 2]"),
                                  std::string(R"({"format":"rnnjit-cache","version":2,"tuning":[],"binaries":[]})"),
                                  std::string(R"({"format":"rnnjit-cache","version":1,"tuning":{}})")}) {
    std::ofstream(file, std::ios::binary | std::ios::trunc) << text;
    const auto r = f.with({"import", file});
    INFO(text << ": " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains(file));
  }
  CHECK(f.with({"import", f.dir.file("absent.json")}).code == 1);
  CHECK(f.json({"list", "--json"}).size() == 4);
}

TEST_CASE("rnnjit-cache rm removes what the filters match, and nothing without one", "[cli]") {
  Fixture f;
  auto r = f.with({"rm"});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--all"));
  CHECK(f.json({"list", "--json"}).size() == 4);
  r = f.with({"rm", "--shape", "64,1024,256,128"});
  CHECK(r.code == 0);
  CHECK(r.out == "removed 1 entry\n");
  CHECK(f.json({"list", "--json"}).size() == 3);
  CHECK(f.with({"rm", "--gpu", "A100", "--precision", "fp32"}).out == "removed 0 entries\n");
  CHECK(f.with({"rm", "--gpu", "A100"}).out == "removed 2 entries\n");
  CHECK(f.with({"rm", "--all"}).out == "removed 1 entry\n");
  CHECK(f.json({"list", "--json"}).empty());
}

TEST_CASE("rnnjit-cache prune removes the stale row and the binaries no row uses", "[cli]") {
  Fixture f;
  REQUIRE(f.with({"rm", "--shape", "64,1024,256,128"}).code == 0);  // its binary becomes unused
  const auto r = f.with({"prune"});
  CHECK(r.code == 0);
  CHECK(r.out == "removed 1 stale entry and 2 unused binaries\n");
  const Json left = f.json({"list", "--json"});
  REQUIRE(left.size() == 2);
  for (const auto& e : left) CHECK(e["template_hash"] == rnnjit::template_hash());
  CHECK(f.json({"stats", "--json"})["binaries"] == 2);
  CHECK(f.with({"prune"}).out == "removed 0 stale entries and 0 unused binaries\n");
}

TEST_CASE("rnnjit-cache vacuum keeps every entry", "[cli]") {
  Fixture f;
  const Json before = f.json({"list", "--json"});
  const auto r = f.with({"vacuum"});
  CHECK(r.code == 0);
  CHECK(r.out == "vacuumed " + f.db + "\n");
  CHECK(f.json({"list", "--json"}) == before);
  CHECK(f.with({"verify"}).code == 0);
}

TEST_CASE("rnnjit-tune without a GPU fails clearly, and bad usage is exit 2", "[cli]") {
  CHECK(run(RNNJIT_TUNE_TOOL, {"--help"}).code == 0);
  CHECK(run(RNNJIT_TUNE_TOOL, {}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "1,2,3"}).code == 2);
  CHECK(run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8", "--precision", "fp64"}).code == 2);
  const auto r = run(RNNJIT_TUNE_TOOL, {"--shape", "8,16,16,8"}, {"RNNJIT_DRIVER_LIBRARY=/nonexistent/libcuda.so.1"});
  CHECK(r.code == 1);
  CHECK_THAT(r.out + r.err, Catch::Contains("no CUDA driver"));
}
