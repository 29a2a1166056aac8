// rnnjit-cache run as a user runs it: output and exit codes.
#include <catch2/catch.hpp>

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cli_support.hpp"
#include "temp_dir.hpp"
#include "unprivileged.hpp"
#include "rnnjit/cache/store.hpp"
#include "rnnjit/version.hpp"
#include "support/hash.hpp"

namespace fs = std::filesystem;
using Json = nlohmann::json;
using namespace rnnjit::cache;
using test::read_file;
using test::Result;

namespace {

// No system cache unless a test gives one ($RNNJIT_SYSTEM_CACHE in `env`, whose first entries
// win): list and show would show a system cache installed on this machine.
Result tool(const std::vector<std::string>& args, std::vector<std::string> env = {},
            test::As as = test::As::Self) {
  env.push_back("RNNJIT_SYSTEM_CACHE=off");
  return test::run(RNNJIT_CACHE_TOOL, args, env, as);
}

// list --json's records as an export holds them: without the source list gives each.
Json without_source(Json records) {
  for (Json& e : records) e.erase("source");
  return records;
}

// Every command that opens the cache, with arguments that would succeed on a healthy one.
std::vector<std::vector<std::string>> every_command(const test::TempDir& dir) {
  return {{"list"},           {"list", "--json"}, {"show", "1"}, {"stats"},  {"verify"},
          {"export", dir.file("x.json")}, {"import", dir.file("in.json")}, {"rm", "--all"}, {"prune"}, {"vacuum"}};
}

// A valid export file of one record, for the commands above.
void write_import(const test::TempDir& dir) {
  Store s(dir.file("in.sqlite"), Mode::Strict);
  TuningRecord r;
  r.key = {"gpu", {8, 16, 16, 8, "tf32"}, "t"};
  r.engine_version = "0.1.0";
  r.winner = "a";
  r.winner_us = 1.5;
  r.candidates = {{"a", 1.5, "ok", "", ""}};
  r.created_at = 1700000000;
  s.import_records({r}, {});
  REQUIRE(tool({"--cache", dir.file("in.sqlite"), "export", dir.file("in.json")}).code == 0);
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
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
  CHECK_THAT(r.out, Catch::Contains("--shape") && Catch::Contains("--dtype") && Catch::Contains("--steps") &&
                        Catch::Contains("--json"));
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
                                                                {"--cache", f.db, "rm", "--shape", "0,1,1,1"},
                                                                {"--cache", f.db, "list", "--steps", "-1"},
                                                                {"--cache", f.db, "rm", "--steps", "16777217"},
                                                                {"--cache", f.db, "list", "--steps", "8x"}}) {
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
  // dtype right after the shape, the other columns as they were.
  CHECK_THAT(rows[0], Catch::StartsWith("#") && Catch::Matches(".* gpu +B,I,H,O +dtype +precision +winner +winner µs +"
                                                               "candidates +engine +stale +created"));
  CHECK(rows[5] == "4 entries in " + f.db);
  // Every column starts where its heading does.
  for (const auto& [heading, cell] : {std::pair{"B,I,H,O", ",1024,256,128"}, std::pair{"dtype", " f32 "},
                                      std::pair{"precision", "tf32"}, std::pair{"created", "2025-11-24T16:00:00Z"}})
    for (int i = 1; i <= 4; ++i) {
      INFO(rows[i]);
      const std::string line = rows[i];
      std::size_t at = line.find(cell);
      REQUIRE(at != std::string::npos);
      if (std::string(heading) == "B,I,H,O") at = line.rfind(' ', at) + 1;
      if (cell[0] == ' ') ++at;
      CHECK(column(line, at) == column(rows[0], rows[0].find(heading)));
    }
  int stale = 0;
  for (int i = 1; i <= 4; ++i) stale += rows[i].find(" yes ") != std::string::npos;
  CHECK(stale == 1);
  CHECK_THAT(rows[1], Catch::Contains(kA100) && Catch::Contains("8,1024,256,128") && Catch::Contains("19.50"));
}

TEST_CASE("rnnjit-cache list --json gives the full records, each with its source", "[cli]") {
  Fixture f;
  const Json j = f.json({"list", "--json"});
  const auto records = Store(f.db, Mode::ReadOnlyStrict).list_tuning();
  REQUIRE(j.size() == records.size());
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    const Json& e = j[i];
    CHECK(e["source"] == "user");  // without a system cache too: one schema on every host
    CHECK(e["gpu"] == r.key.gpu);
    CHECK(e["shape"] == Json({r.key.problem.b, r.key.problem.i, r.key.problem.h, r.key.problem.o}));
    CHECK(e["dtype"] == "f32");
    CHECK(e["steps"] == 0);  // always there, a step's 0 too: one schema for scripts
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
  const auto shown = lines(r.out);
  const auto shape =
      std::find_if(shown.begin(), shown.end(), [](const std::string& l) { return l.rfind("shape", 0) == 0; });
  REQUIRE(shape != shown.end());
  REQUIRE(shape + 1 != shown.end());
  CHECK_THAT(*(shape + 1), Catch::Matches("dtype +f32"));  // right after the shape
  for (const char* text : {kH100, "64,1024,256,128", "tf32", "i2h_mma16x32x32w1x2s4.h2o_mma16x32x32w1x2s4", "40.00",
                           "75.50", "fused_c16w16u4", "launch_failed", "no clusters", "failed", "2025-11-24T16:00:00Z"})
    CHECK_THAT(r.out, Catch::Contains(text));
  CHECK_THAT(r.out, Catch::Contains(rnnjit::template_hash()) && !Catch::Contains("stale"));
  const Json j = f.json({"show", key, "--json"});
  CHECK(j["shape"][0] == 64);
  CHECK(j["dtype"] == "f32");
  CHECK(j["source"] == "user");  // without a system cache too, as list --json
  CHECK(f.json({"show", std::string(kH100) + "/64,1024,256,128/f32/tf32", "--json"}) == j);
  // Row 4 of list is the H100's b=64 entry (sorted by gpu, then shape).
  CHECK(f.json({"show", "4", "--json"}) == j);
  CHECK_THAT(f.with({"show", "2"}).out, Catch::Contains("oldtemplates (stale)"));
  r = f.with({"show", "99"});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains("no entry '99'"));
  CHECK(f.with({"show", "nothing/1,2,3,4/tf32"}).code == 1);
  CHECK(f.with({"show", std::string(kH100) + "/64,1024,256,128/bf16/tf32"}).code == 1);
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

TEST_CASE("rnnjit-cache list on a missing cache lists nothing, exits 0 and creates nothing", "[cli]") {
  test::TempDir dir;
  const std::string db = dir.file("absent.sqlite");
  const auto r = tool({"--cache", db, "list"});
  CHECK(r.code == 0);
  CHECK(r.out == "0 entries: no cache at " + db + " yet\n");
  CHECK(r.err.empty());
  const auto j = tool({"--cache", db, "list", "--json", "--shape", "1,2,3,4"});
  CHECK(j.code == 0);
  CHECK(j.out == "[]\n");
  CHECK(fs::is_empty(dir.path));
}

TEST_CASE("rnnjit-cache on a missing cache says so, exits 1 and creates nothing", "[cli]") {
  test::TempDir dir;
  const std::string db = dir.file("absent.sqlite");
  for (const auto& cmd : std::vector<std::vector<std::string>>{
           {"show", "1"}, {"stats"}, {"verify"}, {"prune"}, {"rm", "--all"}, {"vacuum"}, {"export", dir.file("x.json")}}) {
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
    const Json exported = Json::parse(read_file(file));
    CHECK(exported["format"] == "rnnjit-cache");
    CHECK(exported["version"] == 3);
    CHECK(exported["engine_version"] == rnnjit::version());
    CHECK(exported["tuning"] == without_source(before));
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
  SECTION("no dtype in a version 2 file") {
    j["tuning"][3].erase("dtype");
    expect = "tuning record 3: field 'dtype' is missing";
  }
  SECTION("no steps in a version 3 file") {
    j["tuning"][2].erase("steps");
    expect = "tuning record 2: field 'steps' is missing";
  }
  SECTION("steps that are not an integer") {
    j["tuning"][1]["steps"] = 6.5;
    expect = "tuning record 1: field 'steps' must be an integer";
  }
  SECTION("a dtype that is not a storage type (the cache's own rule, as for import_records)") {
    j["tuning"][0]["dtype"] = "fp32";
    expect = "tuning record 0 (" + std::string(kA100) +
             "/8,1024,256,128/fp32/tf32): dtype 'fp32' is neither f32 nor bf16";
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << j.dump();

  // Into an existing cache: unchanged.
  const std::string target = f.dir.file("target.sqlite");
  {
    Store s(target, Mode::Strict);
    s.import_records({Store(f.db, Mode::ReadOnlyStrict).list_tuning()[0]}, {});
  }
  const Json before = Json::parse(tool({"--cache", target, "list", "--json"}).out);
  const std::string bytes = read_file(target);
  auto r = tool({"--cache", target, "import", file});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::Contains(file) && Catch::Contains(expect));
  CHECK(read_file(target) == bytes);
  CHECK(Json::parse(tool({"--cache", target, "list", "--json"}).out) == before);
  CHECK(Json::parse(tool({"--cache", target, "stats", "--json"}).out)["binaries"] == 0);
  // Into no cache: none made.
  const std::string absent = f.dir.file("absent.sqlite");
  r = tool({"--cache", absent, "import", file});
  CHECK(r.code == 1);
  CHECK_FALSE(fs::exists(absent));
}

TEST_CASE("rnnjit-cache export replaces its file through a fresh temporary name, nothing left beside it", "[cli]") {
  Fixture f;
  const std::string file = f.dir.file("out.json");
  std::ofstream(file, std::ios::binary) << "the previous export";
  fs::create_directory(file + ".tmp");  // a fixed temporary name would be in the way
  // The export's neighbours (the cache's -wal and -shm come and go with its readers).
  const auto names = [&] {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(f.dir.path))
      if (const std::string name = e.path().filename().string(); name.rfind("out.json", 0) == 0) out.insert(name);
    return out;
  };
  const auto before = names();
  const auto r = f.with({"export", file});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(Json::parse(read_file(file))["tuning"] == without_source(f.json({"list", "--json"})));
  CHECK(names() == before);
}

TEST_CASE("rnnjit-cache export refuses to write onto the cache file, however it is spelled", "[cli]") {
  Fixture f;
  const std::string bytes = read_file(f.db);
  for (const std::string& onto : {f.db, (f.dir.path / "." / "cache.sqlite").string()}) {
    const auto r = f.with({"export", onto});
    INFO(onto);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("refusing to export onto " + onto) && Catch::Contains("it is the cache"));
  }
  CHECK(read_file(f.db) == bytes);
  CHECK(f.with({"verify"}).out == "ok\n");
}

// Writes `file` (an export file's JSON) as NAME.json, imports it into a new cache NAME.sqlite (the
// fixture's four entries) and returns that cache's list --json.
Json import_into_new_cache(Fixture& f, const Json& file, const std::string& name) {
  const std::string path = f.dir.file((name + ".json").c_str()), cache = f.dir.file((name + ".sqlite").c_str());
  std::ofstream(path, std::ios::binary) << file.dump(1);
  const auto r = tool({"--cache", cache, "import", path});
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("imported 4 entries"));
  return Json::parse(tool({"--cache", cache, "list", "--json"}).out);
}

TEST_CASE("rnnjit-cache import reads a version 1 export file: its entries are f32", "[cli]") {
  Fixture f;
  const Json current = f.json({"list", "--json"});
  // A version 1 file is a version 3 file without dtypes and steps.
  Json v1{{"format", "rnnjit-cache"}, {"version", 1}, {"engine_version", "0.0.9"}, {"binaries", Json::array()}};
  v1["tuning"] = without_source(current);
  for (auto& e : v1["tuning"]) {
    e.erase("dtype");
    e.erase("steps");
  }
  const Json imported = import_into_new_cache(f, v1, "v1");
  CHECK(imported == current);
  for (const auto& e : imported) CHECK(e["dtype"] == "f32");
}

TEST_CASE("rnnjit-cache import reads a version 2 export file: its entries are one step", "[cli]") {
  Fixture f;
  const Json current = f.json({"list", "--json"});
  // A version 2 file is a version 3 file without steps; a bf16 entry keeps its dtype.
  Json v2{{"format", "rnnjit-cache"}, {"version", 2}, {"engine_version", "0.1.0"}, {"binaries", Json::array()}};
  v2["tuning"] = without_source(current);
  for (auto& e : v2["tuning"]) e.erase("steps");
  v2["tuning"][0]["dtype"] = "bf16";
  const Json imported = import_into_new_cache(f, v2, "v2");
  REQUIRE(imported.size() == 4);
  for (const auto& e : imported) CHECK(e["steps"] == 0);
  CHECK(imported[0]["dtype"] == "bf16");
  Json expect = current;
  expect[0]["dtype"] = "bf16";
  CHECK(imported == expect);
}

TEST_CASE("rnnjit-cache keeps an f32 and a bf16 entry of one problem apart", "[cli]") {
  Fixture f;
  {
    Store s(f.db, Mode::Strict);
    auto bf16 = s.list_tuning({std::string(kH100), ProblemKey{8, 1024, 256, 128, ""}, {}, {}}).at(0);
    REQUIRE(bf16.key.problem.dtype == "f32");
    bf16.key.problem.dtype = "bf16";
    bf16.winner_us = bf16.candidates[0].time_us = 5.25;
    s.put_tuning(bf16);
  }
  CHECK(f.json({"list", "--json"}).size() == 5);
  CHECK(f.json({"list", "--json", "--dtype", "f32"}).size() == 4);
  const Json only = f.json({"list", "--json", "--dtype", "bf16"});
  REQUIRE(only.size() == 1);
  CHECK(only[0]["winner_us"] == 5.25);
  const auto table = lines(f.with({"list", "--gpu", "H100"}).out);
  REQUIRE(table.size() == 5);  // header, 3 entries, the count
  CHECK_THAT(table[1], Catch::Contains(" bf16 ") && Catch::Contains("5.25"));
  CHECK_THAT(table[2], Catch::Contains(" f32 ") && Catch::Contains("19.50"));
  const std::string problem = std::string(kH100) + "/8,1024,256,128/";
  CHECK(f.json({"show", problem + "tf32", "--json"})["dtype"] == "f32");
  CHECK(f.json({"show", problem + "f32/tf32", "--json"})["winner_us"] == 19.5);
  CHECK(f.json({"show", problem + "bf16/tf32", "--json"})["winner_us"] == 5.25);
  CHECK(f.with({"rm", "--dtype", "bf16"}).out == "removed 1 entry\n");
  CHECK(f.json({"list", "--json"}).size() == 4);
  CHECK(f.json({"list", "--json", "--dtype", "bf16"}).empty());
}

TEST_CASE("rnnjit-cache keeps a step and a sequence entry of one problem apart", "[cli]") {
  Fixture f;
  {
    Store s(f.db, Mode::Strict);
    auto sequence = s.list_tuning({std::string(kH100), ProblemKey{8, 1024, 256, 128, ""}, {}, {}}).at(0);
    REQUIRE(sequence.key.problem.steps == 0);
    sequence.key.problem.steps = 64;
    sequence.winner_us = sequence.candidates[0].time_us = 6.25;
    s.put_tuning(sequence);
  }
  CHECK(f.json({"list", "--json"}).size() == 5);
  CHECK(f.json({"list", "--json", "--steps", "0"}).size() == 4);
  const Json only = f.json({"list", "--json", "--steps", "64"});
  REQUIRE(only.size() == 1);
  CHECK(only[0]["steps"] == 64);
  CHECK(only[0]["winner_us"] == 6.25);
  CHECK(f.json({"list", "--json", "--steps", "16"}).empty());
  // With a sequence listed, a steps column after the shape: its steps, "-" for a step entry.
  const auto table = lines(f.with({"list", "--gpu", "H100"}).out);
  REQUIRE(table.size() == 5);  // header, 3 entries, the count
  CHECK_THAT(table[0], Catch::Matches("# +gpu +B,I,H,O +steps +dtype +precision +winner .*"));
  CHECK_THAT(table[1], Catch::Matches("\\d +" + std::string(kH100) + " +8,1024,256,128 +- +f32 +tf32 .*19\\.50.*"));
  CHECK_THAT(table[2], Catch::Matches("\\d +" + std::string(kH100) + " +8,1024,256,128 +64 +f32 +tf32 .*6\\.25.*"));
  CHECK_THAT(table[3], Catch::Matches("\\d +" + std::string(kH100) + " +64,1024,256,128 +- +f32 .*"));
  // Without one, the table as it always was.
  CHECK_THAT(lines(f.with({"list", "--steps", "0"}).out).at(0), Catch::Matches("# +gpu +B,I,H,O +dtype .*"));
  // show: the sequence by its name; the names of the step entry, old and new, never give the sequence.
  const std::string problem = std::string(kH100) + "/8,1024,256,128/";
  const Json seq = f.json({"show", problem + "seq64/f32/tf32", "--json"});
  CHECK(seq["steps"] == 64);
  CHECK(seq["winner_us"] == 6.25);
  CHECK(f.json({"show", problem + "f32/tf32", "--json"})["steps"] == 0);
  CHECK(f.json({"show", problem + "tf32", "--json"})["steps"] == 0);
  CHECK(f.with({"show", problem + "seq16/f32/tf32"}).code == 1);
  const auto shown = lines(f.with({"show", problem + "seq64/f32/tf32"}).out);
  const auto shape =
      std::find_if(shown.begin(), shown.end(), [](const std::string& l) { return l.rfind("shape", 0) == 0; });
  REQUIRE(shape != shown.end());
  REQUIRE(shape + 1 != shown.end());
  CHECK_THAT(*(shape + 1), Catch::Matches("steps +64 \\(a sequence, tuned for chunks of 64 steps\\)"));
  CHECK_THAT(f.with({"show", problem + "f32/tf32"}).out, !Catch::Contains("steps"));
  // A row number names it too: list sorts it right after its step entry.
  CHECK(f.json({"show", "4", "--json"}) == seq);
  CHECK(f.with({"rm", "--steps", "64"}).out == "removed 1 entry\n");
  CHECK(f.json({"list", "--json"}).size() == 4);
  CHECK(f.json({"list", "--json", "--steps", "64"}).empty());
}

TEST_CASE("rnnjit-cache import rejects a file that is not an export", "[cli]") {
  Fixture f;
  const std::string file = f.dir.file("other.json");
  for (const std::string& text : {std::string("not json"), std::string("[1, 2]"),
                                  std::string(R"({"format":"rnnjit-cache","version":4,"tuning":[],"binaries":[]})"),
                                  std::string(R"({"format":"rnnjit-cache","version":0,"tuning":[],"binaries":[]})"),
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

TEST_CASE("rnnjit-cache export from two processes onto one file: both succeed, the file is one export, whole",
          "[cli]") {
  // Two caches whose exports differ, big enough (binaries of 64 KiB) that the writes overlap.
  test::TempDir dir;
  const std::string a = dir.file("a.sqlite"), b = dir.file("b.sqlite"), out = dir.file("out.json");
  for (const auto& [db, rows] : {std::pair{a, 40}, std::pair{b, 25}}) {
    Store s(db, Mode::Strict);
    for (int n = 1; n <= rows; ++n) {
      TuningRecord r;
      r.key = {db == a ? kH100 : kA100, {n, 1024, 256, 128, "tf32"}, rnnjit::template_hash()};
      r.engine_version = rnnjit::version();
      const std::string key = "bin" + std::to_string(n);
      r.candidates = {{"w", double(n), "ok", "", key}};
      r.winner = r.candidates[0].config;
      r.winner_us = r.candidates[0].time_us;
      r.created_at = 1764000000;
      s.put_tuning(r);
      BinaryRecord bin{key, "gemv.cu", "sm_90a", "13.0", "", std::vector<std::uint8_t>(65536, std::uint8_t(n)), "",
                       1764000000};
      bin.hash = rnnjit::support::hash_hex(bin.cubin.data(), bin.cubin.size());
      s.put_binary(bin);
    }
  }
  const Json tuning_a = without_source(Json::parse(tool({"--cache", a, "list", "--json"}).out));
  const Json tuning_b = without_source(Json::parse(tool({"--cache", b, "list", "--json"}).out));
  REQUIRE(tuning_a != tuning_b);
  for (int round = 0; round < 12; ++round) {
    INFO("round " << round);
    Result ra, rb;
    std::string why_a, why_b;
    std::thread ta([&] { why_a = test::spawn(RNNJIT_CACHE_TOOL, {"--cache", a, "export", out, "--with-binaries"}, {}, ra); });
    std::thread tb([&] { why_b = test::spawn(RNNJIT_CACHE_TOOL, {"--cache", b, "export", out, "--with-binaries"}, {}, rb); });
    ta.join();
    tb.join();
    REQUIRE(why_a.empty());
    REQUIRE(why_b.empty());
    INFO(ra.err << rb.err);
    CHECK(ra.code == 0);
    CHECK(rb.code == 0);
    Json exported;
    REQUIRE_NOTHROW(exported = Json::parse(read_file(out)));
    CHECK((exported["tuning"] == tuning_a || exported["tuning"] == tuning_b));
    CHECK(exported["binaries"].size() == (exported["tuning"] == tuning_a ? 40u : 25u));
    // No temporary left (the caches' -wal and -shm come and go with their readers).
    std::vector<std::string> outs;
    for (const auto& name : names_in(dir.path))
      if (name.rfind("out.json", 0) == 0) outs.push_back(name);
    CHECK(outs == std::vector<std::string>{"out.json"});
  }
}

TEST_CASE("rnnjit-cache reads a cache in a read-only directory with every read command, and writes nothing",
          "[cli]") {
  Fixture f;
  const Json entries = f.json({"list", "--json"});
  const std::string bytes = read_file(f.db);
  test::TempDir out_dir;  // writable by all: where the export goes
  fs::permissions(out_dir.path, fs::perms::all);
  std::string kind;
  SECTION("file and directory read-only") {
    kind = "both";
    test::make_read_only(f.db);
  }
  SECTION("the directory read-only, the file writable") {
    kind = "directory";
    fs::permissions(f.db, fs::perms::all);
  }
  test::make_read_only(f.dir.path);
  INFO(kind);
  const auto names = names_in(f.dir.path);
  const auto as_reader = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--cache", f.db});
    return tool(args, {}, test::As::Unprivileged);
  };
  auto r = as_reader({"list"});
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("4 entries in " + f.db));
  r = as_reader({"list", "--json"});
  CHECK(r.code == 0);
  CHECK(Json::parse(r.out) == entries);
  r = as_reader({"show", "2"});
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("oldtemplates (stale)"));
  r = as_reader({"stats", "--json"});
  CHECK(r.code == 0);
  CHECK(Json::parse(r.out)["entries"] == 4);
  r = as_reader({"verify"});
  CHECK(r.code == 0);
  CHECK(r.out == "ok\n");
  const std::string exported = out_dir.file("export.json");
  r = as_reader({"export", exported, "--with-binaries"});
  CHECK(r.code == 0);
  CHECK(Json::parse(read_file(exported))["tuning"] == without_source(entries));
  for (const auto& cmd : std::vector<std::vector<std::string>>{{"rm", "--all"}, {"prune"}, {"vacuum"}, {"import", exported}}) {
    r = as_reader(cmd);
    INFO(cmd[0] << ": " << r.err);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("cannot be written"));
  }
  CHECK(read_file(f.db) == bytes);
  CHECK(names_in(f.dir.path) == names);
}

TEST_CASE("rnnjit-cache refuses another application's database with every command and leaves it byte-identical",
          "[cli]") {
  test::TempDir dir;
  const std::string db = dir.file("other.sqlite");
  std::string why;
  {
    sqlite3* raw = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &raw) == SQLITE_OK);
    std::string sql;
    SECTION("other tables at schema version 0") {
      sql = "CREATE TABLE notes (x); INSERT INTO notes VALUES ('keep me');";
      why = "it holds tables (notes) but no rnnjit schema version";
    }
    SECTION("another application_id") {
      sql = "PRAGMA application_id = 1234; CREATE TABLE tuning (x);";
      why = "its application_id is 0x000004d2, another application's";
    }
    SECTION("a negative user_version") {
      sql = "PRAGMA user_version = -1; CREATE TABLE notes (x);";
      why = "its schema version -1 is not one rnnjit writes";
    }
    const int rc = sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr);
    sqlite3_close(raw);
    REQUIRE(rc == SQLITE_OK);
  }
  write_import(dir);
  const std::string bytes = read_file(db);
  const auto names = names_in(dir.path);
  for (auto args : every_command(dir)) {
    args.insert(args.begin(), {"--cache", db});
    const auto r = tool(args);
    INFO(Json(args).dump() << ": " << r.err);
    CHECK(r.code == 1);
    CHECK(r.err == "rnnjit-cache: cache " + db + ": not an rnnjit cache: " + why +
                       (r.err.find("(rnnjit's is") != std::string::npos ? " (rnnjit's is 0x726e6e6a)" : "") +
                       "; it is left as it is, give another file\n");
    CHECK_THAT(r.err, !Catch::Contains("prune"));
  }
  CHECK(read_file(db) == bytes);
  CHECK(names_in(dir.path) == names);
}

TEST_CASE("rnnjit-cache on a directory, a FIFO or a file: URI: a clear error from every command, exit 1, "
          "nothing changed", "[cli]") {
  test::TempDir dir;
  write_import(dir);
  std::string path, why;
  SECTION("a directory") {
    path = dir.file("sub");
    fs::create_directory(path);
    why = "is a directory, not a cache file";
  }
  SECTION("a FIFO") {
    path = dir.file("fifo");
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    why = "is not a regular file (a FIFO); a cache is a SQLite file";
  }
  SECTION("a file: URI of an existing cache") {
    fs::copy_file(dir.file("in.sqlite"), dir.file("cache.sqlite"));
    path = "file:" + dir.file("cache.sqlite");
    why = "SQLite URIs (file:...) are not accepted; give the file's path";
  }
  SECTION("a file: URI of no file") {
    path = "file:" + dir.file("new.sqlite") + "?mode=rwc";
    why = "SQLite URIs (file:...) are not accepted; give the file's path";
  }
  const auto names = names_in(dir.path);
  const std::string copy = fs::exists(dir.file("cache.sqlite")) ? read_file(dir.file("cache.sqlite")) : "";
  auto commands = every_command(dir);
  if (path.rfind("file:", 0) == 0) commands.push_back({"path"});  // refused alike
  for (auto args : commands) {
    args.insert(args.begin(), {"--cache", path});
    Result r;
    const std::string failed = test::spawn(RNNJIT_CACHE_TOOL, args, {}, r, test::As::Self, std::chrono::seconds(20));
    INFO(Json(args).dump() << ": " << r.err);
    REQUIRE(failed.empty());  // a FIFO opened as a database would wait here for a writer
    CHECK(r.code == 1);
    CHECK(r.err == "rnnjit-cache: cache " + path + ": " + why + "\n");
    CHECK(r.out.empty());
  }
  CHECK(names_in(dir.path) == names);
  if (!copy.empty()) CHECK(read_file(dir.file("cache.sqlite")) == copy);
}

TEST_CASE("rnnjit-cache export refuses the cache's -wal and -shm names and a symlink to it", "[cli]") {
  Fixture f;
  const std::string bytes = read_file(f.db);
  fs::create_symlink(f.db, f.dir.file("link.sqlite"));
  for (const std::string& onto : {f.db + "-wal", f.db + "-shm", f.dir.file("link.sqlite")}) {
    const auto r = f.with({"export", onto});
    INFO(onto);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("refusing to export onto " + onto) && Catch::Contains("it is the cache"));
  }
  CHECK(read_file(f.db) == bytes);
  // A reader's -wal may be there, SQLite's own, never an export.
  if (fs::exists(f.db + "-wal")) CHECK(read_file(f.db + "-wal").find("rnnjit-cache") == std::string::npos);
  CHECK(fs::is_symlink(f.dir.file("link.sqlite")));
  CHECK(f.with({"verify"}).out == "ok\n");
}

TEST_CASE("rnnjit-cache import refuses records that are well formed but mean nothing to the engine", "[cli]") {
  Fixture f;
  const std::string file = f.dir.file("export.json");
  REQUIRE(f.with({"export", file, "--with-binaries"}).code == 0);
  Json j = Json::parse(read_file(file));
  std::string expect;
  SECTION("an unknown precision") {
    j["tuning"][1]["precision"] = "fp64";
    expect = "tuning record 1 (" + std::string(kA100) + "/16,1024,256,128/f32/fp64): precision 'fp64' is none of";
  }
  SECTION("a size past the engine's limit") {
    j["tuning"][0]["shape"][2] = 1048577;
    expect = "tuning record 0 (" + std::string(kA100) + "/8,1024,1048577,128/f32/tf32): shape 8,1024,1048577,128 has "
             "a size outside 1..1048576";
  }
  SECTION("negative steps") {
    j["tuning"][0]["steps"] = -64;
    expect = "tuning record 0 (" + std::string(kA100) + "/8,1024,256,128/seq-64/f32/tf32): steps -64 is outside "
             "0..16777216";
  }
  SECTION("a size of 8.5") {
    j["tuning"][0]["shape"][0] = 8.5;
    expect = "tuning record 0: field 'shape' must be a list of four integers";
  }
  SECTION("a size past 2^63") {
    j["tuning"][0]["shape"][0] = std::uint64_t(1) << 63;
    expect = "tuning record 0: field 'shape[0]' holds 9223372036854775808, out of range";
  }
  SECTION("a negative time") {
    j["tuning"][2]["candidates"][1]["time_us"] = -3.0;
    expect = "candidate 1: time_us -3 is not a time";
  }
  SECTION("a timestamp past the year 9999") {
    j["tuning"][3]["created_at"] = 300000000000;
    expect = "created_at 300000000000 is outside 0..253402300799";
  }
  SECTION("an escape sequence in a text field") {
    j["tuning"][0]["winner"] = "\x1b[31mred";
    j["tuning"][0]["candidates"][0]["config"] = "\x1b[31mred";
    expect = "winner '\\x1b[31mred' holds a control character";
  }
  SECTION("a record twice") {
    j["tuning"].push_back(j["tuning"][1]);
    expect = "tuning records 1 and 4 are both " + std::string(kA100) + "/16,1024,256,128/f32/tf32";
  }
  SECTION("a binary twice") {
    j["binaries"].push_back(j["binaries"][0]);
    expect = "binary records 0 and 4 both have key bin0";
  }
  std::ofstream(file, std::ios::binary | std::ios::trunc) << j.dump();
  const std::string bytes = read_file(f.db);
  const auto r = f.with({"import", file});
  CHECK(r.code == 1);
  CHECK_THAT(r.err, Catch::StartsWith("rnnjit-cache: " + file + ": ") && Catch::Contains(expect));
  CHECK(r.err.find('\x1b') == std::string::npos);
  CHECK(read_file(f.db) == bytes);
}

TEST_CASE("rnnjit-cache list and show spell out control characters a file holds, never print them raw", "[cli]") {
  Fixture f;
  sqlite3* raw = nullptr;
  REQUIRE(sqlite3_open(f.db.c_str(), &raw) == SQLITE_OK);
  const int rc = sqlite3_exec(raw,
                              "UPDATE tuning SET winner = 'w' || char(27) || '[2J', engine_version = 'v' || char(7)"
                              " WHERE b = 64; UPDATE candidates SET config = 'w' || char(27) || '[2J', message ="
                              " 'line one' || char(10) || 'line' || char(13) WHERE rank = 0 AND tuning_id ="
                              " (SELECT id FROM tuning WHERE b = 64)",
                              nullptr, nullptr, nullptr);
  sqlite3_close(raw);
  REQUIRE(rc == SQLITE_OK);
  for (const auto& args : std::vector<std::vector<std::string>>{{"list"}, {"show", "4"}, {"verify"}}) {
    const auto r = f.with(args);
    INFO(args[0] << ":\n" << r.out);
    CHECK(r.code == (args[0] == "verify" ? 1 : 0));
    CHECK_THAT(r.out, Catch::Contains(args[0] == "verify" ? "engine_version 'v\\x07' holds a control character"
                                                          : "w\\x1b[2J"));
    for (const char c : r.out) CHECK((c == '\n' || static_cast<unsigned char>(c) >= 0x20));
  }
  CHECK_THAT(f.with({"list"}).out, Catch::Contains("v\\x07"));
  // A message's own lines stay lines; a carriage return does not.
  CHECK_THAT(f.with({"show", "4"}).out, Catch::Contains("line one\nline\\x0d"));
}

TEST_CASE("rnnjit-cache --shape filters take the sizes the engine takes, and name a bad one", "[cli]") {
  Fixture f;
  for (const auto& [shape, why] : std::vector<std::pair<std::string, std::string>>{
           {"8,1024,256,1048577", "O = 1048577 is outside 1..1048576"},
           {"8,-1,256,128", "I = -1 is outside 1..1048576"},
           {"8,99999999999999999999,256,128", "I = 99999999999999999999 is outside 1..1048576"},
           {"8.5,1024,256,128", "B = '8.5' is not an integer"}}) {
    for (const char* cmd : {"list", "rm"}) {
      const auto r = f.with({cmd, "--shape", shape});
      INFO(cmd << " " << shape);
      CHECK(r.code == 2);
      CHECK(r.err == "rnnjit-cache: --shape '" + shape + "': " + why + "\n");
    }
  }
  CHECK(f.json({"list", "--json", "--shape", " 8, 1024, 256, 128 "}).size() == 2);
}

namespace {

// The Fixture and a system cache beside it holding the Fixture's current H100 batch-8 entry (the
// same entry, which the cache overrides) and one of its own, H100 batch 32.
struct Layered : Fixture {
  std::string sys = dir.file("system.sqlite");
  Layered() {
    const TuningKey h100_8{kH100, {8, 1024, 256, 128, "tf32"}, rnnjit::template_hash()};
    const auto same = Store(db, Mode::ReadOnlyStrict).find_tuning(h100_8, rnnjit::version());
    REQUIRE(same);
    TuningRecord own = *same;
    own.key.problem.b = 32;
    own.winner_us = 99.5;
    Store(sys, Mode::Strict).import_records({*same, own}, {});
  }
  Result layered(std::vector<std::string> args, const std::string& cache) const {
    args.insert(args.begin(), {"--cache", cache});
    return tool(args, {"RNNJIT_SYSTEM_CACHE=" + sys});
  }
  Result layered(const std::vector<std::string>& args) const { return layered(args, db); }
};

// The files of `dir` but the cache's own, with their bytes.
std::map<std::string, std::string> others(const Fixture& f) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(f.dir.path))
    if (e.path().filename().string().rfind("cache.sqlite", 0) != 0) out[e.path().filename().string()] = read_file(e.path());
  return out;
}

}  // namespace

TEST_CASE("rnnjit-cache list and show mark each row with the file it came from when a system cache exists", "[cli]") {
  Layered f;
  const auto before = others(f);
  auto r = f.layered({"list"});
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  auto rows = lines(r.out);
  REQUIRE(rows.size() == 8);  // header, 4 + 2 entries, the count
  CHECK_THAT(rows[0], Catch::Matches("# +source +gpu +B,I,H,O +dtype .*"));
  for (int i = 1; i <= 4; ++i) CHECK_THAT(rows[i], Catch::Matches("\\d +user +.*"));
  CHECK_THAT(rows[5], Catch::Matches("5 +system, overridden +" + std::string(kH100) + " +8,1024,256,128 .*"));
  CHECK_THAT(rows[6], Catch::Matches("6 +system +" + std::string(kH100) + " +32,1024,256,128 .*99\\.50.*"));
  CHECK(rows[7] == "6 entries: 4 in " + f.db + " (user), 2 in " + f.sys + " (system)");
  // Filtered, a row keeps its number, which show takes.
  r = f.layered({"list", "--shape", "32,1024,256,128"});
  CHECK_THAT(lines(r.out).at(1), Catch::StartsWith("6  system "));
  r = f.layered({"show", "6"});
  CHECK_THAT(r.out, Catch::StartsWith("source  system (" + f.sys + ")\n") && Catch::Contains("32,1024,256,128"));
  // By key, the cache's entry first, as the engine looks.
  r = f.layered({"show", std::string(kH100) + "/8,1024,256,128/tf32"});
  CHECK_THAT(r.out, Catch::StartsWith("source  user (" + f.db + ")\n"));
  r = f.layered({"show", std::string(kH100) + "/32,1024,256,128/f32/tf32", "--json"});
  REQUIRE(r.code == 0);
  CHECK(Json::parse(r.out)["source"] == "system");
  const Json all = Json::parse(f.layered({"list", "--json"}).out);
  REQUIRE(all.size() == 6);
  CHECK(all[0]["source"] == "user");
  CHECK(all[4]["source"] == "system, overridden");
  CHECK(all[5]["source"] == "system");
  CHECK(all[5]["winner_us"] == 99.5);
  CHECK(others(f) == before);  // the system cache is only read
  // Without a system cache file, no source column.
  r = f.with({"list"});
  CHECK_THAT(lines(r.out).at(0), Catch::StartsWith("#  gpu "));
  CHECK(lines(r.out).back() == "4 entries in " + f.db);
}

TEST_CASE("rnnjit-cache lists the system cache's entries where no cache exists yet, and creates none", "[cli]") {
  Layered f;
  const std::string none = f.dir.file("none.sqlite");
  auto r = f.layered({"list"}, none);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(lines(r.out).size() == 4);
  CHECK(lines(r.out).back() == "2 entries: 0 in " + none + " (user), 2 in " + f.sys + " (system)");
  r = f.layered({"show", "2"}, none);
  CHECK(r.code == 0);
  CHECK_THAT(r.out, Catch::Contains("32,1024,256,128"));
  CHECK(f.layered({"stats"}, none).code == 1);  // the other commands need the cache itself
  CHECK_FALSE(fs::exists(none));
}

TEST_CASE("rnnjit-cache --system works on the system cache alone, and not with --cache", "[cli]") {
  Layered f;
  const std::vector<std::string> env = {"RNNJIT_SYSTEM_CACHE=" + f.sys};
  auto r = tool({"--system", "path"}, env);
  CHECK(r.out == f.sys + "\n");
  r = tool({"--system", "list"}, env);
  CHECK(r.code == 0);
  CHECK_THAT(lines(r.out).at(0), Catch::StartsWith("#  gpu "));
  CHECK(lines(r.out).back() == "2 entries in " + f.sys);
  CHECK(tool({"--system", "verify"}, env).out == "ok\n");
  r = tool({"--system", "--cache", f.db, "list"}, env);
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--cache excludes --system"));
  r = tool({"--system", "list"});
  CHECK(r.code == 1);
  CHECK(r.err == "rnnjit-cache: the system cache is off (off): there is nothing to list\n");
  // import makes one, as for the cache.
  write_import(f.dir);
  const std::vector<std::string> fresh = {"RNNJIT_SYSTEM_CACHE=" + f.dir.file("new/system.sqlite")};
  r = tool({"--system", "import", f.dir.file("in.json")}, fresh);
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(lines(tool({"--system", "list"}, fresh).out).back() == "1 entry in " + f.dir.file("new/system.sqlite"));
}

TEST_CASE("rnnjit-cache with a damaged system cache warns, lists the cache and leaves the file", "[cli]") {
  Layered f;
  std::ofstream(f.sys, std::ios::trunc) << std::string(4000, 'q');
  const auto before = others(f);
  const auto r = f.layered({"list"});
  CHECK(r.code == 0);
  CHECK_THAT(r.err, Catch::Contains("cache " + f.sys + ": not a SQLite database") &&
                        Catch::Contains("the system cache is not used"));
  CHECK(lines(r.out).back() == "4 entries: 4 in " + f.db + " (user), 0 in " + f.sys + " (system)");
  CHECK(others(f) == before);
}
