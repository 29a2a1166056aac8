#include <catch2/catch.hpp>

#include <spdlog/sinks/base_sink.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <random>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/error.hpp"
#include "support/hash.hpp"
#include "support/log.hpp"

namespace fs = std::filesystem;
using namespace rnnjit::cache;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/rnnjit-cache-XXXXXX";
    REQUIRE(mkdtemp(tmpl));
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::permissions(path, fs::perms::owner_all, ec);
    fs::remove_all(path, ec);
  }
  std::string file(const char* name = "cache.sqlite") const { return (path / name).string(); }
};

// Counts the warnings the library logs while it lives.
class WarningCounter {
 public:
  WarningCounter() : sink_(std::make_shared<Sink>()) { rnnjit::support::log().sinks().push_back(sink_); }
  ~WarningCounter() {
    auto& sinks = rnnjit::support::log().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  int count() const { return sink_->warnings; }

 private:
  struct Sink : spdlog::sinks::base_sink<std::mutex> {
    int warnings = 0;
    void sink_it_(const spdlog::details::log_msg& m) override { warnings += m.level == spdlog::level::warn; }
    void flush_() override {}
  };
  std::shared_ptr<Sink> sink_;
};

TuningRecord record(const std::string& gpu = "H100;cc=9.0", std::int64_t b = 8, const std::string& hash = "t1",
                    const std::string& version = "0.1.0") {
  TuningRecord r;
  r.key.gpu = gpu;
  r.key.problem = ProblemKey{b, 1024, 256, 128, "tf32"};
  r.key.template_hash = hash;
  r.engine_version = version;
  r.winner = "cfg-b";
  r.winner_us = 3.5;
  r.candidates = {{"cfg-a", 7.25, "ok", "", "k1,k2"},
                  {"cfg-b", 3.5, "ok", "", "k3"},
                  {"cfg-c", std::numeric_limits<double>::infinity(), "compile_failed", "NVRTC said no", ""}};
  r.created_at = 1700000000;
  return r;
}

BinaryRecord binary(const std::string& key, std::size_t size = 4096) {
  BinaryRecord b;
  b.key = key;
  b.kernel = "gemv.cu i2h gemv_r1w4u4";
  b.arch = "sm_90a";
  b.nvrtc_version = "13.0";
  b.symbols = "_Z4gemvILi8EEvPKf";
  std::mt19937 rng(static_cast<unsigned>(size));
  b.cubin.resize(size);
  for (auto& c : b.cubin) c = static_cast<std::uint8_t>(rng() % 4);  // plenty of zero bytes
  b.hash = rnnjit::support::hash_hex(b.cubin.data(), b.cubin.size());
  b.created_at = 1700000001;
  return b;
}

int user_version(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* s = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &s, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(s) == SQLITE_ROW);
  const int v = sqlite3_column_int(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return v;
}

void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  INFO((err ? err : ""));
  sqlite3_free(err);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

bool has_corrupt_sibling(const TempDir& dir) {
  for (const auto& e : fs::directory_iterator(dir.path))
    if (e.path().filename().string().find("cache.sqlite.corrupt-") == 0) return true;
  return false;
}

// A store that must still work: a round trip through it.
void check_usable(Store& s) {
  s.put_tuning(record());
  const auto back = s.find_tuning(record().key, "0.1.0");
  REQUIRE(back);
  CHECK(*back == record());
  s.put_binary(binary("k3"));
  CHECK(s.find_binary("k3"));
}

}  // namespace

TEST_CASE("a new cache file gets the current schema", "[cache]") {
  TempDir dir;
  { Store s(dir.file("sub/dir/cache.sqlite"), Mode::Strict); CHECK(s.persistent()); }
  CHECK(user_version(dir.file("sub/dir/cache.sqlite")) == kSchemaVersion);
}

TEST_CASE("a file of an older schema version is migrated", "[cache]") {
  TempDir dir;
  raw_exec(dir.file(), "CREATE TABLE unrelated (x); PRAGMA user_version = 0;");
  Store s(dir.file(), Mode::Strict);
  CHECK(user_version(dir.file()) == kSchemaVersion);
  check_usable(s);
}

TEST_CASE("tuning records round-trip, failed candidates at +inf", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record());
  const auto back = s.find_tuning(record().key, "0.1.0");
  REQUIRE(back);
  CHECK(*back == record());
  CHECK(std::isinf(back->candidates[2].time_us));
  CHECK(back->candidates[2].message == "NVRTC said no");
  CHECK_FALSE(s.find_tuning({"other gpu", record().key.problem, "t1"}, "0.1.0"));
}

TEST_CASE("binaries come back byte for byte", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  for (std::size_t size : {std::size_t(1), std::size_t(4096), std::size_t(3) << 20}) {
    const auto b = binary("key" + std::to_string(size), size);
    s.put_binary(b);
    const auto back = s.find_binary(b.key);
    REQUIRE(back);
    CHECK(*back == b);
  }
  CHECK_FALSE(s.find_binary("absent"));
}

TEST_CASE("rows of another template hash or engine version are never used and get replaced", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record());
  CHECK_FALSE(s.find_tuning({record().key.gpu, record().key.problem, "t2"}, "0.1.0"));
  CHECK_FALSE(s.find_tuning(record().key, "0.2.0"));
  auto newer = record("H100;cc=9.0", 8, "t2");
  newer.winner = "cfg-a";
  s.put_tuning(newer);
  CHECK(s.list_tuning().size() == 1);
  CHECK(s.find_tuning(newer.key, "0.1.0")->winner == "cfg-a");
  s.put_tuning(record("H100;cc=9.0", 8, "t2", "0.2.0"));
  const auto all = s.list_tuning();
  REQUIRE(all.size() == 1);
  CHECK(all[0].engine_version == "0.2.0");
}

TEST_CASE("a tampered binary is dropped on read", "[cache]") {
  TempDir dir;
  {
    Store s(dir.file(), Mode::Strict);
    s.put_binary(binary("k"));
  }
  raw_exec(dir.file(), "UPDATE binaries SET cubin = zeroblob(4096) WHERE key = 'k'");
  Store s(dir.file(), Mode::Strict);
  CHECK(s.verify().size() == 1);
  CHECK_FALSE(s.find_binary("k"));
  CHECK(s.list_binaries().empty());
  CHECK(s.verify().empty());
}

TEST_CASE("a damaged file is moved aside and replaced, with one warning", "[cache]") {
  TempDir dir;
  const auto write = [&](const std::string& bytes) { std::ofstream(dir.file(), std::ios::binary) << bytes; };
  SECTION("random garbage") {
    std::mt19937 rng(3);
    std::string junk(20000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    write(junk);
  }
  SECTION("a text file") { write(std::string(3000, 'x') + "\nnot sqlite\n"); }
  SECTION("a truncated cache") {
    {
      Store s(dir.file(), Mode::Strict);
      for (int b = 1; b <= 40; ++b) s.put_tuning(record("gpu", b));
      for (int k = 0; k < 8; ++k) s.put_binary(binary("k" + std::to_string(k), 20000));
    }
    fs::resize_file(dir.file(), fs::file_size(dir.file()) / 2);
  }
  WarningCounter warnings;
  Store s(dir.file());
  // A truncated file may open and fail at its first read: use it before judging.
  check_usable(s);
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK(has_corrupt_sibling(dir));
  CHECK(s.persistent());
}

TEST_CASE("an empty file becomes a fresh cache", "[cache]") {
  TempDir dir;
  std::ofstream(dir.file()).close();
  WarningCounter warnings;
  Store s(dir.file());
  check_usable(s);
  CHECK(warnings.count() == 0);
  CHECK(s.persistent());
}

TEST_CASE("a read-only cache continues in memory with one warning", "[cache]") {
  TempDir dir;
  { Store s(dir.file(), Mode::Strict); }
  fs::permissions(dir.file(), fs::perms::owner_read | fs::perms::group_read | fs::perms::others_read);
  fs::permissions(dir.path, fs::perms::owner_read | fs::perms::owner_exec);
  // root ignores permission bits; then the read-only open is forced through a query
  // parameter, which SQLite honours for everyone.
  const std::string path = geteuid() == 0 ? "file:" + dir.file() + "?mode=ro" : dir.file();
  WarningCounter warnings;
  Store s(path);
  check_usable(s);
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK_FALSE(s.persistent());
}

TEST_CASE("a database locked past the busy timeout continues in memory", "[cache]") {
  TempDir dir;
  { Store s(dir.file(), Mode::Strict); }
  setenv("RNNJIT_CACHE_BUSY_MS", "100", 1);
  sqlite3* other = nullptr;
  REQUIRE(sqlite3_open(dir.file().c_str(), &other) == SQLITE_OK);
  REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
  WarningCounter warnings;
  {
    Store s(dir.file());
    check_usable(s);
    CHECK(warnings.count() == 1);
    CHECK_FALSE(s.persistent());
  }
  sqlite3_exec(other, "ROLLBACK", nullptr, nullptr, nullptr);
  sqlite3_close(other);
  unsetenv("RNNJIT_CACHE_BUSY_MS");
  CHECK_FALSE(has_corrupt_sibling(dir));
}

TEST_CASE("a schema this build does not know is left alone", "[cache]") {
  TempDir dir;
  SECTION("a newer user_version") { raw_exec(dir.file(), "CREATE TABLE future (x); PRAGMA user_version = 7;"); }
  SECTION("a foreign table named tuning") { raw_exec(dir.file(), "CREATE TABLE tuning (other, columns);"); }
  const auto before = fs::file_size(dir.file());
  WarningCounter warnings;
  Store s(dir.file());
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK_FALSE(s.persistent());
  CHECK_FALSE(has_corrupt_sibling(dir));
  CHECK(fs::file_size(dir.file()) == before);
  CHECK_THROWS_WITH(Store(dir.file(), Mode::Strict), Catch::Contains(dir.file()));
}

TEST_CASE("strict mode reports a damaged file by name and leaves it", "[cache]") {
  TempDir dir;
  std::ofstream(dir.file()) << std::string(5000, 'z');
  try {
    Store s(dir.file(), Mode::Strict);
    FAIL("opened garbage");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::CacheError);
    CHECK_THAT(e.what(), Catch::Contains(dir.file()) && Catch::Contains("not a database"));
  }
  CHECK(fs::file_size(dir.file()) == 5000);
  CHECK_THROWS_WITH(Store(dir.file("absent.sqlite"), Mode::ReadOnlyStrict), Catch::Contains("no cache at"));
}

TEST_CASE("8 processes writing shared and own keys lose nothing", "[cache]") {
  TempDir dir;
  { Store s(dir.file(), Mode::Strict); }
  constexpr int kProcs = 8, kRecords = 50;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        Store s(dir.file(), Mode::Strict);
        for (int r = 0; r < kRecords; ++r) {
          // Even r: a key every process writes; odd r: this process's own key.
          const std::int64_t b = r % 2 == 0 ? r + 1 : 1000 * (p + 1) + r;
          s.put_tuning(record("gpu", b));
          s.put_binary(binary("bin" + std::to_string(b), 512));
        }
      } catch (...) {
        rc = 1;
      }
      _exit(rc);
    }
    kids.push_back(pid);
  }
  for (pid_t pid : kids) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  Store s(dir.file(), Mode::Strict);
  const auto rows = s.list_tuning();
  CHECK(rows.size() == kRecords / 2 + kProcs * kRecords / 2);
  for (const auto& r : rows) CHECK(r == record("gpu", r.key.problem.b));
  CHECK(s.list_binaries().size() == rows.size());
  CHECK(s.verify().empty());
}

TEST_CASE("list and remove filter by gpu, shape and precision", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("NVIDIA H100;cc=9.0", 8));
  s.put_tuning(record("NVIDIA H100;cc=9.0", 64));
  s.put_tuning(record("NVIDIA A100;cc=8.0", 8));
  CHECK(s.list_tuning().size() == 3);
  CHECK(s.list_tuning({std::string("H100"), {}, {}}).size() == 2);
  CHECK(s.list_tuning({{}, ProblemKey{8, 1024, 256, 128, ""}, {}}).size() == 2);
  CHECK(s.list_tuning({{}, {}, std::string("fp32")}).empty());
  CHECK(s.remove_tuning({std::string("A100"), {}, {}}) == 1);
  CHECK(s.remove_tuning({{}, ProblemKey{64, 1024, 256, 128, ""}, {}}) == 1);
  CHECK(s.list_tuning().size() == 1);
  const auto st = s.stats();
  CHECK(st.entries == 1);
  REQUIRE(st.per_gpu.size() == 1);
  CHECK(st.per_gpu[0].gpu == "NVIDIA H100;cc=9.0");
  CHECK(st.file_bytes > 0);
}

TEST_CASE("prune removes stale rows, then binaries no candidate uses", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("gpu", 8, "current"));
  s.put_tuning(record("gpu", 16, "old"));
  auto other = record("gpu", 32, "current");
  for (auto& c : other.candidates) c.binary_key = "k9";
  s.put_tuning(other);
  for (const char* k : {"k1", "k2", "k3", "k9", "orphan"}) s.put_binary(binary(k, 64));
  const auto r = s.prune("current", "0.1.0");
  CHECK(r.stale_entries == 1);
  CHECK(r.orphan_binaries == 1);
  CHECK(s.list_tuning().size() == 2);
  CHECK_FALSE(s.find_binary("orphan"));
  CHECK(s.find_binary("k2"));  // second of a comma-separated list
  s.remove_tuning({{}, ProblemKey{32, 1024, 256, 128, ""}, {}});
  CHECK(s.prune("current", "0.1.0").orphan_binaries == 1);  // k9 went with its row
  s.vacuum();
  CHECK(s.verify().empty());
}

TEST_CASE("import is all or nothing and names the bad record", "[cache]") {
  TempDir dir;
  Store s(dir.file(), Mode::Strict);
  auto bad = binary("k2");
  bad.hash = "0000000000000000";
  try {
    s.import_records({record("gpu", 1), record("gpu", 2)}, {binary("k1"), bad});
    FAIL("imported a bad binary");
  } catch (const rnnjit::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("binary record 1") && Catch::Contains("hash"));
  }
  auto no_winner = record("gpu", 3);
  no_winner.winner = "not-a-candidate";
  CHECK_THROWS_WITH(s.import_records({record("gpu", 1), no_winner}, {}), Catch::Contains("tuning record 1"));
  CHECK(s.list_tuning().empty());
  CHECK(s.list_binaries().empty());
  s.import_records({record("gpu", 1), record("gpu", 2)}, {binary("k1")});
  CHECK(s.list_tuning().size() == 2);
  CHECK(s.list_binaries().size() == 1);
}

TEST_CASE("resolve_path follows the option, RNNJIT_CACHE, XDG_CACHE_HOME, HOME", "[cache]") {
  const auto saved = [](const char* n) { const char* v = std::getenv(n); return v ? std::optional<std::string>(v) : std::nullopt; };
  const auto cache = saved("RNNJIT_CACHE"), xdg = saved("XDG_CACHE_HOME"), home = saved("HOME");
  unsetenv("RNNJIT_CACHE");
  setenv("XDG_CACHE_HOME", "/x", 1);
  setenv("HOME", "/h", 1);
  CHECK(resolve_path(std::string("/opt/c.sqlite")) == "/opt/c.sqlite");
  CHECK(resolve_path(std::nullopt) == "/x/rnnjit/cache.sqlite");
  unsetenv("XDG_CACHE_HOME");
  CHECK(resolve_path(std::nullopt) == "/h/.cache/rnnjit/cache.sqlite");
  setenv("RNNJIT_CACHE", "off", 1);
  CHECK(resolve_path(std::nullopt) == "off");
  Store memory(resolve_path(std::nullopt));
  CHECK_FALSE(memory.persistent());
  CHECK(memory.path() == ":memory:");
  for (auto [name, v] : {std::pair{"RNNJIT_CACHE", cache}, {"XDG_CACHE_HOME", xdg}, {"HOME", home}})
    v ? setenv(name, v->c_str(), 1) : unsetenv(name);
}
