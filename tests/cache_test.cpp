// The tuning cache on real files: schema, round trips, staleness, damage, locks, processes.
#include <catch2/catch.hpp>

#include <spdlog/sinks/base_sink.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "scoped_env.hpp"
#include "temp_dir.hpp"
#include "unprivileged.hpp"
#include "rnnjit/cache/exchange.hpp"
#include "rnnjit/cache/store.hpp"
#include "rnnjit/error.hpp"
#include "support/hash.hpp"
#include "support/log.hpp"

namespace fs = std::filesystem;
using namespace rnnjit::cache;

namespace {


// Counts the warnings the library logs while it lives.
class WarningCounter {
 public:
  WarningCounter() : sink_(std::make_shared<Sink>()) { rnnjit::support::log().sinks().push_back(sink_); }
  ~WarningCounter() {
    auto& sinks = rnnjit::support::log().sinks();
    sinks.erase(std::remove(sinks.begin(), sinks.end(), sink_), sinks.end());
  }
  WarningCounter(const WarningCounter&) = delete;
  WarningCounter& operator=(const WarningCounter&) = delete;
  int count() const { return sink_->warnings; }

 private:
  struct Sink : spdlog::sinks::base_sink<std::mutex> {
    int warnings = 0;
    void sink_it_(const spdlog::details::log_msg& m) override { warnings += m.level == spdlog::level::warn; }
    void flush_() override {}
  };
  std::shared_ptr<Sink> sink_;
};


const char* const kVersion = "0.1.0";

TuningRecord record(const std::string& gpu = "H100;cc=9.0", std::int64_t b = 8, const std::string& hash = "t1",
                    const std::string& version = kVersion) {
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
  for (auto& c : b.cubin) c = static_cast<std::uint8_t>(rng() % 4);  // a quarter of them 0x00
  b.hash = rnnjit::support::hash_hex(b.cubin.data(), b.cubin.size());
  b.created_at = 1700000001;
  return b;
}

// A raw connection, to look at or damage a cache behind the Store's back.
class Raw {
 public:
  explicit Raw(const std::string& path, int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) == SQLITE_OK);
  }
  ~Raw() { sqlite3_close(db_); }
  Raw(const Raw&) = delete;
  Raw& operator=(const Raw&) = delete;
  int exec(const std::string& sql) { return sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr); }
  void must(const std::string& sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    INFO(sql << ": " << (err ? err : ""));
    sqlite3_free(err);
    REQUIRE(rc == SQLITE_OK);
  }
  std::vector<std::string> texts(const std::string& sql) {
    sqlite3_stmt* s = nullptr;
    REQUIRE(sqlite3_prepare_v2(db_, sql.c_str(), -1, &s, nullptr) == SQLITE_OK);
    std::vector<std::string> out;
    int rc = 0;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      const auto* t = sqlite3_column_text(s, 0);
      out.emplace_back(t ? reinterpret_cast<const char*>(t) : "");
    }
    sqlite3_finalize(s);
    REQUIRE(rc == SQLITE_DONE);
    return out;
  }

 private:
  sqlite3* db_ = nullptr;
};

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << bytes;
  f.close();
  REQUIRE(f);
}

// The candidates and binaries tables, unchanged since schema version 1.
const std::string kCandidatesAndBinaries = R"sql(
CREATE TABLE candidates (
  tuning_id INTEGER NOT NULL REFERENCES tuning(id) ON DELETE CASCADE,
  rank INTEGER NOT NULL, config TEXT NOT NULL,
  time_us REAL,  -- NULL: the candidate failed (+infinity)
  disposition TEXT NOT NULL, message TEXT NOT NULL, binary_key TEXT NOT NULL,
  PRIMARY KEY (tuning_id, rank));
CREATE TABLE binaries (
  key TEXT PRIMARY KEY, kernel TEXT NOT NULL, arch TEXT NOT NULL, nvrtc_version TEXT NOT NULL,
  symbols TEXT NOT NULL, cubin BLOB NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL);
)sql";

// Schema version 1 as it was released, without application_id, as that build made it.
const std::string kSchemaV1 = R"sql(
CREATE TABLE tuning (
  id INTEGER PRIMARY KEY,
  gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL, h INTEGER NOT NULL, o INTEGER NOT NULL,
  precision TEXT NOT NULL, template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
  winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (gpu, b, i, h, o, precision, template_hash));
)sql" + kCandidatesAndBinaries + "PRAGMA user_version = 1;\n";

// Schema version 2 as it was released (its last build stamped the application_id as well).
const std::string kSchemaV2 = R"sql(
CREATE TABLE tuning (
  id INTEGER PRIMARY KEY,
  gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL, h INTEGER NOT NULL, o INTEGER NOT NULL,
  dtype TEXT NOT NULL DEFAULT 'f32',
  precision TEXT NOT NULL, template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
  winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (gpu, b, i, h, o, dtype, precision, template_hash));
)sql" + kCandidatesAndBinaries + "PRAGMA user_version = 2;\n";

std::vector<std::string> names_in(const test::TempDir& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir.path)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> corrupt_siblings(const test::TempDir& dir) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir.path))
    if (e.path().filename().string().rfind("cache.sqlite.corrupt-", 0) == 0) out.push_back(e.path());
  return out;
}

// A store that must still work: a round trip of each kind of record through it.
void check_usable(Store& s) {
  s.put_tuning(record());
  const auto back = s.find_tuning(record().key, kVersion);
  REQUIRE(back);
  CHECK(*back == record());
  s.put_binary(binary("k3"));
  const auto bin = s.find_binary("k3");
  REQUIRE(bin);
  CHECK(*bin == binary("k3"));
}

// A cache with enough rows and multi-page blobs that damage lands in real data.
void fill(const std::string& path) {
  Store s(path, Mode::Strict);
  for (int b = 1; b <= 40; ++b) s.put_tuning(record("gpu", b));
  for (char k = '0'; k < '8'; ++k) s.put_binary(binary(std::string("k") + k, 20000));
}

}  // namespace

TEST_CASE("a new cache file gets the current schema, its directories made", "[cache]") {
  test::TempDir dir;
  const std::string path = dir.file("sub/dir/cache.sqlite");
  {
    Store s(path, Mode::Strict);
    CHECK(s.persistent());
    CHECK(s.path() == path);
  }
  Raw raw(path, SQLITE_OPEN_READONLY);
  CHECK(raw.texts("PRAGMA user_version") == std::vector<std::string>{std::to_string(kSchemaVersion)});
  CHECK(raw.texts("PRAGMA application_id") == std::vector<std::string>{std::to_string(kApplicationId)});
  CHECK(raw.texts("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name") ==
        std::vector<std::string>{"binaries", "candidates", "tuning"});
  CHECK(raw.texts("PRAGMA journal_mode") == std::vector<std::string>{"wal"});
}

TEST_CASE("another application's database is refused in every mode and left byte-identical", "[cache]") {
  test::TempDir dir;
  std::string why;
  SECTION("other tables at schema version 0") {
    why = "it holds tables (unrelated) but no rnnjit schema version";
    Raw(dir.file()).must("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (42);");
  }
  SECTION("rnnjit's tables and one more, without the application_id") {
    why = "its tables (binaries, candidates, extra, tuning) are not rnnjit's (binaries, candidates, tuning)";
    {
      Raw raw(dir.file());
      raw.must(kSchemaV1);
      raw.must("CREATE TABLE extra (x);");
    }
  }
  SECTION("another application_id, rnnjit's tables") {
    why = "its application_id is 0x12345678, another application's (rnnjit's is 0x726e6e6a)";
    {
      Store s(dir.file(), Mode::Strict);
      s.put_tuning(record());
    }
    Raw(dir.file()).must("PRAGMA application_id = 305419896;");
  }
  SECTION("a negative user_version") {
    why = "its schema version -3 is not one rnnjit writes";
    Raw(dir.file()).must("CREATE TABLE unrelated (x); PRAGMA user_version = -3;");
  }
  SECTION("a user_version past rnnjit's without its application_id") {
    why = "schema version 7 without rnnjit's application_id";
    Raw(dir.file()).must("CREATE TABLE future (x); PRAGMA user_version = 7;");
  }
  INFO(why);
  const std::string before = read_file(dir.file());
  for (const Mode mode : {Mode::Strict, Mode::ReadOnlyStrict}) {
    try {
      Store s(dir.file(), mode);
      FAIL("opened another application's database");
    } catch (const rnnjit::Error& e) {
      CHECK(e.code() == rnnjit::ErrorCode::CacheError);
      CHECK_THAT(e.what(), Catch::Contains("cache " + dir.file() + ": not an rnnjit cache: " + why) &&
                               !Catch::Contains("prune"));
    }
  }
  {
    WarningCounter warnings;
    Store s(dir.file());
    CHECK_FALSE(s.persistent());
    check_usable(s);
    CHECK(warnings.count() == 1);
  }
  CHECK(read_file(dir.file()) == before);
  CHECK(corrupt_siblings(dir).empty());
  CHECK(names_in(dir) == std::vector<std::string>{"cache.sqlite"});  // no -wal, no -shm
}

TEST_CASE("a cache made before the application_id is recognised by its tables and stamped when written",
          "[cache]") {
  test::TempDir dir;
  {
    Store s(dir.file(), Mode::Strict);
    s.put_tuning(record());
  }
  Raw(dir.file()).must("PRAGMA application_id = 0;");
  const std::string before = read_file(dir.file());
  {
    Store s(dir.file(), Mode::ReadOnlyStrict);  // read as it is, not stamped
    CHECK(s.list_tuning() == std::vector<TuningRecord>{record()});
  }
  CHECK(read_file(dir.file()) == before);
  {
    WarningCounter warnings;
    Store s(dir.file());
    CHECK(s.persistent());
    CHECK(s.find_tuning(record().key, kVersion) == record());
    CHECK(warnings.count() == 0);
  }
  CHECK(Raw(dir.file()).texts("PRAGMA application_id") == std::vector<std::string>{std::to_string(kApplicationId)});
}

TEST_CASE("a version 1 cache is migrated: its rows kept, as f32, with their ids and candidates", "[cache]") {
  test::TempDir dir;
  {
    // Schema version 1 as it was released, and rows as that build wrote them.
    Raw raw(dir.file());
    raw.must(kSchemaV1);
    raw.must(R"sql(
INSERT INTO tuning VALUES (5, 'gpu', 8, 1024, 256, 128, 'tf32', 't1', '0.1.0', 'cfg-b', 3.5, 1700000000);
INSERT INTO tuning VALUES (9, 'gpu', 16, 1024, 256, 128, 'tf32', 't1', '0.1.0', 'cfg-b', 3.5, 1700000000);
INSERT INTO candidates VALUES (5, 0, 'cfg-a', 7.25, 'ok', '', 'k1,k2'), (5, 1, 'cfg-b', 3.5, 'ok', '', 'k3'),
  (5, 2, 'cfg-c', NULL, 'compile_failed', 'NVRTC said no', '');
INSERT INTO candidates VALUES (9, 0, 'cfg-a', 7.25, 'ok', '', 'k1,k2'), (9, 1, 'cfg-b', 3.5, 'ok', '', 'k3'),
  (9, 2, 'cfg-c', NULL, 'compile_failed', 'NVRTC said no', '');
)sql");
  }
  WarningCounter warnings;
  {
    Store s(dir.file());
    CHECK(s.persistent());
    CHECK(s.list_tuning() == std::vector<TuningRecord>{record("gpu", 8), record("gpu", 16)});
    CHECK(s.find_tuning(record("gpu", 16).key, kVersion) == record("gpu", 16));
    // The new key: a bf16 row of the same problem is another row, not a replacement.
    auto bf16 = record("gpu", 8);
    bf16.key.problem.dtype = "bf16";
    s.put_tuning(bf16);
    CHECK(s.list_tuning().size() == 3);
    CHECK(s.find_tuning(record("gpu", 8).key, kVersion) == record("gpu", 8));
  }
  CHECK(warnings.count() == 0);
  Raw raw(dir.file());
  CHECK(raw.texts("PRAGMA user_version") == std::vector<std::string>{std::to_string(kSchemaVersion)});
  CHECK(raw.texts("PRAGMA application_id") == std::vector<std::string>{std::to_string(kApplicationId)});
  CHECK(raw.texts("SELECT id || ' ' || dtype || ' ' || steps FROM tuning WHERE dtype = 'f32' ORDER BY id") ==
        std::vector<std::string>{"5 f32 0", "9 f32 0"});
  CHECK(raw.texts("PRAGMA foreign_key_check").empty());
  CHECK(raw.texts("SELECT count(*) FROM candidates") == std::vector<std::string>{"9"});
  // The candidates still belong to the rebuilt table: removing a row takes its candidates.
  Store(dir.file(), Mode::Strict).remove_tuning({{}, ProblemKey{16, 1024, 256, 128, ""}, {}, {}});
  CHECK(raw.texts("SELECT count(*) FROM candidates") == std::vector<std::string>{"6"});
}

TEST_CASE("a version 2 cache is migrated: its rows kept, as one step, with their ids and candidates", "[cache]") {
  test::TempDir dir;
  {
    // Schema version 2 as it was released, and rows as that build wrote them: an f32 and a bf16
    // entry of one problem, and another problem.
    Raw raw(dir.file());
    raw.must(kSchemaV2);
    raw.must("PRAGMA application_id = " + std::to_string(kApplicationId));
    raw.must(R"sql(
INSERT INTO tuning VALUES (5, 'gpu', 8, 1024, 256, 128, 'f32', 'tf32', 't1', '0.1.0', 'cfg-b', 3.5, 1700000000);
INSERT INTO tuning VALUES (7, 'gpu', 8, 1024, 256, 128, 'bf16', 'tf32', 't1', '0.1.0', 'cfg-b', 3.5, 1700000000);
INSERT INTO tuning VALUES (9, 'gpu', 16, 1024, 256, 128, 'f32', 'tf32', 't1', '0.1.0', 'cfg-b', 3.5, 1700000000);
)sql");
    for (const char* id : {"5", "7", "9"})
      raw.must(std::string("INSERT INTO candidates VALUES (") + id + ", 0, 'cfg-a', 7.25, 'ok', '', 'k1,k2'), (" + id +
               ", 1, 'cfg-b', 3.5, 'ok', '', 'k3'), (" + id + ", 2, 'cfg-c', NULL, 'compile_failed', 'NVRTC said no', '');");
  }
  auto bf16 = record("gpu", 8);
  bf16.key.problem.dtype = "bf16";
  WarningCounter warnings;
  {
    Store s(dir.file());
    CHECK(s.persistent());
    const auto rows = s.list_tuning();
    CHECK(rows == std::vector<TuningRecord>{bf16, record("gpu", 8), record("gpu", 16)});
    for (const auto& r : rows) CHECK(r.key.problem.steps == 0);
    CHECK(s.find_tuning(record("gpu", 16).key, kVersion) == record("gpu", 16));
    CHECK(s.find_tuning(bf16.key, kVersion) == bf16);
    // The new key: a sequence entry of the same problem is another row, not a replacement.
    auto sequence = record("gpu", 8);
    sequence.key.problem.steps = 64;
    sequence.winner = "cfg-a";
    sequence.winner_us = 7.25;
    s.put_tuning(sequence);
    CHECK(s.list_tuning().size() == 4);
    CHECK(s.find_tuning(record("gpu", 8).key, kVersion) == record("gpu", 8));
    CHECK(s.find_tuning(sequence.key, kVersion) == sequence);
  }
  CHECK(warnings.count() == 0);
  Raw raw(dir.file());
  CHECK(raw.texts("PRAGMA user_version") == std::vector<std::string>{"3"});
  CHECK(raw.texts("PRAGMA application_id") == std::vector<std::string>{std::to_string(kApplicationId)});
  CHECK(raw.texts("SELECT id || ' ' || dtype || ' ' || steps FROM tuning WHERE id IN (5, 7, 9) ORDER BY id") ==
        std::vector<std::string>{"5 f32 0", "7 bf16 0", "9 f32 0"});
  CHECK(raw.texts("PRAGMA foreign_key_check").empty());
  CHECK(raw.texts("SELECT count(*) FROM candidates") == std::vector<std::string>{"12"});
  // The candidates still belong to the rebuilt table: removing a row takes its candidates.
  CHECK(Store(dir.file(), Mode::Strict).remove_tuning({{}, ProblemKey{16, 1024, 256, 128, ""}, {}, {}}) == 1);
  CHECK(raw.texts("SELECT count(*) FROM candidates") == std::vector<std::string>{"9"});
}

TEST_CASE("an empty file is a database without tables: it becomes a cache, silently", "[cache]") {
  test::TempDir dir;
  write_file(dir.file(), "");
  WarningCounter warnings;
  Store s(dir.file());
  check_usable(s);
  CHECK(s.persistent());
  CHECK(warnings.count() == 0);
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("a read-only open of an old schema asks for a writable one and changes nothing", "[cache]") {
  test::TempDir dir;
  Raw(dir.file()).must(kSchemaV1);
  const std::string before = read_file(dir.file());
  CHECK_THROWS_WITH(Store(dir.file(), Mode::ReadOnlyStrict),
                    Catch::Contains(dir.file()) && Catch::Contains("older") && Catch::Contains("writable"));
  CHECK(read_file(dir.file()) == before);
}

TEST_CASE("a read-only open of a missing file fails and creates nothing", "[cache]") {
  test::TempDir dir;
  CHECK_THROWS_WITH(Store(dir.file(), Mode::ReadOnlyStrict), Catch::Contains("no cache at " + dir.file()));
  CHECK_FALSE(fs::exists(dir.file()));
}

TEST_CASE("a tuning record round-trips, a failed candidate at +inf with its message", "[cache]") {
  test::TempDir dir;
  {
    Store s(dir.file(), Mode::Strict);
    s.put_tuning(record());
  }
  Store s(dir.file(), Mode::Strict);  // from the file, not from a connection's memory
  const auto back = s.find_tuning(record().key, kVersion);
  REQUIRE(back);
  CHECK(*back == record());
  REQUIRE(back->candidates.size() == 3);
  CHECK(std::isinf(back->candidates[2].time_us));
  CHECK(back->candidates[2].time_us > 0);
  CHECK(back->candidates[2].disposition == "compile_failed");
  CHECK(back->candidates[2].message == "NVRTC said no");
  CHECK_FALSE(s.find_tuning({"other gpu", record().key.problem, "t1"}, kVersion));
  auto other_precision = record().key;
  other_precision.problem.precision = "fp32";
  CHECK_FALSE(s.find_tuning(other_precision, kVersion));
}

TEST_CASE("a put of the same key replaces the record", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record());
  auto again = record();
  again.winner = "cfg-a";
  again.winner_us = 7.25;
  again.candidates.pop_back();
  s.put_tuning(again);
  CHECK(*s.find_tuning(record().key, kVersion) == again);
  CHECK(s.list_tuning().size() == 1);
}

TEST_CASE("binaries come back byte for byte, zero bytes and megabytes included", "[cache]") {
  test::TempDir dir;
  std::vector<BinaryRecord> put;
  {
    Store s(dir.file(), Mode::Strict);
    for (std::size_t size : {std::size_t(1), std::size_t(4096), std::size_t(3) << 20}) {
      put.push_back(binary("key" + std::to_string(size), size));
      s.put_binary(put.back());
    }
  }
  Store s(dir.file(), Mode::Strict);
  for (const auto& b : put) {
    const auto back = s.find_binary(b.key);
    REQUIRE(back);
    CHECK(back->cubin.size() == b.cubin.size());
    CHECK(*back == b);
  }
  CHECK(std::count(put[1].cubin.begin(), put[1].cubin.end(), 0) > 0);
  CHECK_FALSE(s.find_binary("absent"));
}

TEST_CASE("a row of another template hash is never returned and a put for the new hash removes it", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("gpu", 8, "t1"));
  s.put_tuning(record("gpu", 16, "t1"));  // another problem: not stale for b=8
  CHECK_FALSE(s.find_tuning({"gpu", record().key.problem, "t2"}, kVersion));
  auto newer = record("gpu", 8, "t2");
  newer.winner = "cfg-a";
  s.put_tuning(newer);
  CHECK_FALSE(s.find_tuning(record("gpu", 8, "t1").key, kVersion));
  CHECK(s.find_tuning(newer.key, kVersion)->winner == "cfg-a");
  const auto rows = s.list_tuning();
  REQUIRE(rows.size() == 2);
  CHECK(rows[0] == newer);
  CHECK(rows[1] == record("gpu", 16, "t1"));
}

TEST_CASE("a row of another engine version is never returned and a put for the new version replaces it", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("gpu", 8, "t1", "0.1.0"));
  CHECK_FALSE(s.find_tuning(record().key, "0.2.0"));
  s.put_tuning(record("gpu", 8, "t1", "0.2.0"));
  CHECK_FALSE(s.find_tuning(record().key, "0.1.0"));
  const auto rows = s.list_tuning();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].engine_version == "0.2.0");
}

TEST_CASE("a tampered binary is not returned and its row is removed", "[cache]") {
  test::TempDir dir;
  {
    Store s(dir.file(), Mode::Strict);
    s.put_binary(binary("k"));
    s.put_binary(binary("intact", 100));
  }
  {
    Raw raw(dir.file());
    raw.must("UPDATE binaries SET cubin = zeroblob(4096) WHERE key = 'k'");
  }
  WarningCounter warnings;
  Store s(dir.file(), Mode::Strict);
  CHECK_FALSE(s.find_binary("k"));
  CHECK(warnings.count() == 1);
  const auto left = s.list_binaries();
  REQUIRE(left.size() == 1);
  CHECK(left[0].key == "intact");
}

TEST_CASE("a damaged file is moved aside and replaced, with one warning", "[cache]") {
  test::TempDir dir;
  std::string kind;
  SECTION("random garbage") {
    kind = "garbage";
    std::mt19937 rng(3);
    std::string junk(20000, '\0');
    for (auto& c : junk) c = static_cast<char>(rng());
    write_file(dir.file(), junk);
  }
  SECTION("a text file") {
    kind = "text";
    write_file(dir.file(), std::string(3000, 'x') + "\nnot sqlite\n");
  }
  SECTION("a cache truncated to half") {
    kind = "truncated";
    fill(dir.file());
    fs::resize_file(dir.file(), fs::file_size(dir.file()) / 2);
  }
  SECTION("a cache with pages overwritten, its header intact (found by quick_check)") {
    kind = "pages";
    fill(dir.file());
    std::string bytes = read_file(dir.file());
    REQUIRE(bytes.size() > 4 * 4096);
    std::fill(bytes.begin() + 4096, bytes.begin() + 4 * 4096, '\x5a');
    write_file(dir.file(), bytes);
    Raw raw(dir.file(), SQLITE_OPEN_READONLY);
    // The header still reads.
    CHECK(raw.texts("PRAGMA user_version") == std::vector<std::string>{std::to_string(kSchemaVersion)});
  }
  const std::string original = read_file(dir.file());
  INFO(kind);
  WarningCounter warnings;
  Store s(dir.file());
  check_usable(s);
  check_usable(s);
  CHECK(s.persistent());
  CHECK(warnings.count() == 1);
  const auto aside = corrupt_siblings(dir);
  REQUIRE(aside.size() == 1);
  CHECK(read_file(aside[0].string()) == original);
  CHECK(Raw(dir.file()).texts("PRAGMA integrity_check") == std::vector<std::string>{"ok"});
}

TEST_CASE("strict mode reports a damaged file by name and cause, and leaves it", "[cache]") {
  test::TempDir dir;
  write_file(dir.file(), std::string(5000, 'z'));
  for (const Mode mode : {Mode::Strict, Mode::ReadOnlyStrict}) {
    try {
      Store s(dir.file(), mode);
      FAIL("opened garbage");
    } catch (const rnnjit::Error& e) {
      CHECK(e.code() == rnnjit::ErrorCode::CacheError);
      CHECK_THAT(e.what(), Catch::Contains(dir.file()) && Catch::Contains("not a SQLite database"));
    }
  }
  CHECK(read_file(dir.file()) == std::string(5000, 'z'));
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("a SQLite URI is refused: strict modes say so, the engine's mode goes on in memory", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  const std::string before = read_file(dir.file());
  const std::string uri = "file:" + dir.file() + "?mode=ro";
  for (const Mode mode : {Mode::Strict, Mode::ReadOnlyStrict})
    CHECK_THROWS_WITH(Store(uri, mode), Catch::Contains("cache " + uri + ": SQLite URIs (file:...) are not accepted"));
  WarningCounter warnings;
  Store s(uri);
  CHECK_FALSE(s.persistent());
  CHECK(s.path() == ":memory:");
  CHECK_FALSE(s.find_tuning(record().key, kVersion));  // memory starts empty
  check_usable(s);
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK(read_file(dir.file()) == before);
}

TEST_CASE("a directory, a FIFO or a device is refused before it is opened, in every mode", "[cache]") {
  test::TempDir dir;
  std::string path, why;
  SECTION("a directory") {
    path = dir.file("sub");
    fs::create_directory(path);
    why = "is a directory";
  }
  SECTION("a FIFO (opening it would wait for a writer)") {
    path = dir.file("fifo");
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    why = "is not a regular file (a FIFO)";
  }
  SECTION("a device") {
    path = "/dev/null";
    why = "is not a regular file (a device";
  }
  INFO(path);
  for (const Mode mode : {Mode::Strict, Mode::ReadOnlyStrict})
    CHECK_THROWS_WITH(Store(path, mode), Catch::StartsWith("cache_error: cache " + path + ": " + why));
  WarningCounter warnings;
  Store s(path);
  CHECK_FALSE(s.persistent());
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK(names_in(dir) == (path == "/dev/null" ? std::vector<std::string>{} : std::vector<std::string>{
                                                                                  fs::path(path).filename().string()}));
}

namespace {
// What a reader of a read-only cache must see: fill()'s rows and binaries.
void expect_filled(test::Findings& f, Store& s, const std::string& when, std::size_t rows = 40) {
  f.expect(s.find_tuning(record("gpu", 3).key, kVersion) == record("gpu", 3), when + ": find_tuning misses");
  f.expect(s.find_binary("k5") == binary("k5", 20000), when + ": find_binary misses");
  const std::size_t n = s.list_tuning().size();
  f.expect(n == rows, when + ": list_tuning has " + std::to_string(n) + " rows");
}
}  // namespace

TEST_CASE("a read-only cache serves every lookup, and the engine's first write goes to memory with one warning",
          "[cache]") {
  test::TempDir dir;
  test::open_to_all(dir.path);
  fill(dir.file());
  std::string kind;
  SECTION("file and directory read-only (opened immutable)") {
    kind = "both";
    test::make_read_only(dir.file());
    test::make_read_only(dir.path);
  }
  SECTION("the directory read-only, a -wal beside the file") {
    kind = "wal";
    // A reader holds the WAL open while the file is made read-only: its committed pages stay in
    // the -wal, which a read must replay.
    Raw holder(dir.file());
    holder.must("PRAGMA wal_autocheckpoint = 0; UPDATE tuning SET winner_us = winner_us WHERE b = 1;");
    fs::copy_file(dir.file() + "-wal", dir.file("wal-copy"));
    fs::copy_file(dir.file() + "-shm", dir.file("shm-copy"));
  }
  SECTION("the file read-only in a writable directory") {
    // SQLite's reader makes a -shm and a -wal here, as it did before: not immutable, since the
    // file's owner may be writing it.
    kind = "file";
    test::make_read_only(dir.file());
    fs::permissions(dir.path, fs::perms::all);
  }
  if (kind == "wal") {
    // The holder has gone (its close checkpointed and removed the WAL): put the WAL back as it was.
    fs::rename(dir.file("wal-copy"), dir.file() + "-wal");
    fs::rename(dir.file("shm-copy"), dir.file() + "-shm");
    for (const char* f : {"", "-wal", "-shm"}) test::make_read_only(dir.file() + f);
    test::make_read_only(dir.path);
  }
  INFO(kind);
  const std::string before = read_file(dir.file());
  auto names = names_in(dir);
  if (kind == "file") names = {"cache.sqlite", "cache.sqlite-shm", "cache.sqlite-wal"};
  const std::string findings = test::unprivileged([&] {
    test::Findings f;
    {
      Store s(dir.file(), Mode::ReadOnlyStrict);
      expect_filled(f, s, "ReadOnlyStrict");
      f.expect(s.verify().empty(), "verify found problems");
      f.expect(s.stats().entries == 40, "stats");
    }
    try {
      Store s(dir.file(), Mode::Strict);
      f.expect(false, "Strict opened a read-only cache for writing");
    } catch (const rnnjit::Error& e) {
      f.expect(std::string(e.what()).find("cannot be written") != std::string::npos, e.what());
    }
    WarningCounter warnings;
    Store s(dir.file());
    f.expect(s.persistent() && s.read_only() && s.path() == dir.file(), "Resilient did not open the file read-only");
    expect_filled(f, s, "before a write");
    f.expect(warnings.count() == 0, "a warning before any write");
    s.put_tuning(record("gpu", 500));
    f.expect(warnings.count() == 1, "no warning at the first write");
    f.expect(!s.persistent() && !s.read_only(), "still on the file after a write");
    expect_filled(f, s, "after a write", 41);
    f.expect(s.find_tuning(record("gpu", 500).key, kVersion) == record("gpu", 500), "the write is lost");
    s.put_binary(binary("new"));
    f.expect(s.find_binary("new") == binary("new"), "the binary written is lost");
    f.expect(warnings.count() == 1, "more than one warning");
    return f.text;
  });
  INFO(findings);
  CHECK(findings.empty());
  CHECK(read_file(dir.file()) == before);
  CHECK(names_in(dir) == names);
}

TEST_CASE("a database locked past the busy timeout: writes go on in memory with correct results", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  const test::ScopedEnv busy("RNNJIT_CACHE_BUSY_MS", "100");
  Raw other(dir.file());
  other.must("BEGIN EXCLUSIVE");
  WarningCounter warnings;
  Store s(dir.file());
  CHECK(s.persistent());  // WAL: a held write lock does not stop readers
  CHECK(s.find_tuning(record("gpu", 3).key, kVersion));
  check_usable(s);  // the put meets the lock, and continues in memory
  CHECK_FALSE(s.persistent());
  check_usable(s);
  CHECK(warnings.count() == 1);
  CHECK_FALSE(s.find_tuning(record("gpu", 3).key, kVersion));  // the file's rows stay in the file
  other.must("ROLLBACK");
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("a database locked at open continues in memory, and strict mode says it is locked", "[cache]") {
  test::TempDir dir;
  const test::ScopedEnv busy("RNNJIT_CACHE_BUSY_MS", "100");
  Raw other(dir.file());
  // A rollback-journal database under an exclusive lock cannot even be read.
  other.must("CREATE TABLE unrelated (x); BEGIN EXCLUSIVE; INSERT INTO unrelated VALUES (1);");
  {
    WarningCounter warnings;
    Store s(dir.file());
    CHECK_FALSE(s.persistent());
    check_usable(s);
    CHECK(warnings.count() == 1);
  }
  CHECK_THROWS_WITH(Store(dir.file(), Mode::Strict), Catch::Contains(dir.file()) && Catch::Contains("locked"));
  other.must("COMMIT");
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("a schema this build does not know is left untouched", "[cache]") {
  test::TempDir dir;
  std::string why;
  SECTION("a newer user_version") {
    why = "schema version 7 is newer than this build's " + std::to_string(kSchemaVersion);
    Raw(dir.file()).must("CREATE TABLE future (x); PRAGMA user_version = 7; PRAGMA application_id = " +
                         std::to_string(kApplicationId));
  }
  SECTION("a foreign table named tuning at version 0") {
    why = "not an rnnjit cache: it holds tables (tuning)";
    Raw(dir.file()).must("CREATE TABLE tuning (other, columns);");
  }
  SECTION("a tuning table with other columns at the current version") {
    why = "table 'tuning' has columns";
    {
      Store s(dir.file(), Mode::Strict);
    }
    Raw(dir.file()).must("DROP TABLE tuning; CREATE TABLE tuning (id INTEGER PRIMARY KEY, gpu TEXT);");
  }
  INFO(why);
  const std::string before = read_file(dir.file());
  {
    WarningCounter warnings;
    Store s(dir.file());
    CHECK_FALSE(s.persistent());
    check_usable(s);
    CHECK(warnings.count() == 1);
  }
  CHECK_THROWS_WITH(Store(dir.file(), Mode::Strict), Catch::Contains(dir.file()) && Catch::Contains(why));
  CHECK(read_file(dir.file()) == before);
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("8 processes writing shared and own keys to one file lose nothing", "[cache]") {
  test::TempDir dir;
  constexpr int kProcs = 8, kRecords = 50;
  std::vector<pid_t> kids;
  for (int p = 0; p < kProcs; ++p) {
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int rc = 0;
      try {
        // Every child opens (and may create and migrate) the file at once.
        Store s(dir.file(), Mode::Strict);
        for (int r = 0; r < kRecords; ++r) {
          // Even r: a key every process writes; odd r: this process's own key.
          const std::int64_t b = r % 2 == 0 ? r + 1 : 1000 * (p + 1) + r;
          s.put_tuning(record("gpu", b));
          s.put_binary(binary("bin" + std::to_string(b), 512));
          if (!s.find_tuning(record("gpu", b).key, kVersion)) rc = 3;
        }
        if (!s.persistent()) rc = 4;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "child %d: %s\n", p, e.what());
        rc = 1;
      } catch (...) {
        rc = 2;
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
  std::multiset<std::int64_t> seen;
  for (const auto& r : rows) {
    seen.insert(r.key.problem.b);
    CHECK(r == record("gpu", r.key.problem.b));
  }
  for (int p = 0; p < kProcs; ++p)
    for (int r = 0; r < kRecords; ++r) {
      const std::int64_t b = r % 2 == 0 ? r + 1 : 1000 * (p + 1) + r;
      INFO("b = " << b);
      CHECK(seen.count(b) == 1);
    }
  CHECK(rows.size() == kRecords / 2 + kProcs * kRecords / 2);
  CHECK(s.list_binaries().size() == rows.size());
  CHECK(Raw(dir.file()).texts("PRAGMA integrity_check") == std::vector<std::string>{"ok"});
}

TEST_CASE("threads sharing one Store see each other's writes", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  std::vector<std::thread> threads;
  std::atomic<int> misses{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 25; ++r) {
        const auto rec = record("gpu", 100 * (t + 1) + r);
        s.put_tuning(rec);
        if (!s.find_tuning(rec.key, kVersion)) ++misses;
      }
    });
  for (auto& t : threads) t.join();
  CHECK(misses == 0);
  CHECK(s.list_tuning().size() == 100);
}

TEST_CASE("off and :memory: are memory caches", "[cache]") {
  for (const char* path : {"off", ":memory:"}) {
    WarningCounter warnings;
    Store s(path);
    CHECK_FALSE(s.persistent());
    CHECK(s.path() == ":memory:");
    check_usable(s);
    CHECK(s.stats().file_bytes == 0);
    CHECK(warnings.count() == 0);
  }
  CHECK_FALSE(fs::exists("off"));
}

namespace {
// Two rows on an H100 (batch 8 and 64) and one on an A100 (batch 8).
void put_two_gpus(Store& s) {
  s.put_tuning(record("NVIDIA H100;cc=9.0", 8));
  s.put_tuning(record("NVIDIA H100;cc=9.0", 64));
  s.put_tuning(record("NVIDIA A100;cc=8.0", 8));
}
}  // namespace

TEST_CASE("list filters by gpu substring, shape and precision", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  put_two_gpus(s);
  auto fp32 = record("NVIDIA A100;cc=8.0", 8);
  fp32.key.problem.precision = "fp32";
  s.put_tuning(fp32);
  CHECK(s.list_tuning().size() == 4);
  CHECK(s.list_tuning({std::string("H100"), {}, {}, {}}).size() == 2);
  CHECK(s.list_tuning({std::string("cc=8.0"), {}, {}, {}}).size() == 2);
  CHECK(s.list_tuning({{}, ProblemKey{8, 1024, 256, 128, "ignored"}, {}, {}}).size() == 3);
  CHECK(s.list_tuning({{}, ProblemKey{8, 1024, 256, 129, ""}, {}, {}}).empty());
  const auto only = s.list_tuning({{}, {}, std::string("fp32"), {}});
  REQUIRE(only.size() == 1);
  CHECK(only[0] == fp32);
  CHECK(s.list_tuning({std::string("A100"), ProblemKey{8, 1024, 256, 128, ""}, std::string("tf32"), {}}).size() == 1);
}

TEST_CASE("remove_tuning removes the matching rows and their candidates", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  put_two_gpus(s);
  CHECK(s.remove_tuning({std::string("A100"), {}, {}, {}}) == 1);
  CHECK(s.remove_tuning({{}, ProblemKey{64, 1024, 256, 128, ""}, {}, {}}) == 1);
  CHECK(s.remove_tuning({std::string("nothing"), {}, {}, {}}) == 0);
  const auto left = s.list_tuning();
  REQUIRE(left.size() == 1);
  CHECK(left[0] == record("NVIDIA H100;cc=9.0", 8));
  CHECK(s.remove_tuning({}) == 1);
  CHECK(Raw(dir.file()).texts("SELECT count(*) FROM candidates") == std::vector<std::string>{"0"});
}

TEST_CASE("stats counts entries, binaries and bytes, per GPU", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  put_two_gpus(s);
  s.put_binary(binary("a", 1000));
  s.put_binary(binary("b", 234));
  const Stats st = s.stats();
  CHECK(st.entries == 3);
  CHECK(st.binaries == 2);
  CHECK(st.binary_bytes == 1234);
  CHECK(st.file_bytes > 1234);
  REQUIRE(st.per_gpu.size() == 2);
  CHECK(st.per_gpu[0].gpu == "NVIDIA A100;cc=8.0");
  CHECK(st.per_gpu[0].entries == 1);
  CHECK(st.per_gpu[1].gpu == "NVIDIA H100;cc=9.0");
  CHECK(st.per_gpu[1].entries == 2);
}

TEST_CASE("prune removes stale rows, then binaries no candidate uses", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("gpu", 8, "current"));
  s.put_tuning(record("gpu", 16, "old"));
  s.put_tuning(record("gpu", 24, "current", "0.0.9"));
  auto other = record("gpu", 32, "current");
  for (auto& c : other.candidates) c.binary_key = "k9";
  s.put_tuning(other);
  for (const char* k : {"k1", "k2", "k3", "k9", "orphan"}) s.put_binary(binary(k, 64));
  const auto r = s.prune("current", kVersion);
  CHECK(r.stale_entries == 2);
  CHECK(r.orphan_binaries == 1);
  CHECK(s.list_tuning().size() == 2);
  CHECK_FALSE(s.find_binary("orphan"));
  CHECK(s.find_binary("k1"));
  CHECK(s.find_binary("k2"));  // the second of a comma-separated list
  s.remove_tuning({{}, ProblemKey{32, 1024, 256, 128, ""}, {}, {}});
  const auto again = s.prune("current", kVersion);
  CHECK(again.stale_entries == 0);
  CHECK(again.orphan_binaries == 1);  // k9 went with its row
  CHECK_FALSE(s.find_binary("k9"));
}

TEST_CASE("verify is empty for a healthy cache", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  Store s(dir.file(), Mode::ReadOnlyStrict);
  CHECK(s.verify().empty());
}

TEST_CASE("verify reports a tampered blob and a row that does not decode, one line each", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  {
    Raw raw(dir.file());
    raw.must("UPDATE binaries SET cubin = zeroblob(20000) WHERE key = 'k5'");
    raw.must("UPDATE tuning SET winner = 'nobody' WHERE b = 7");
    raw.must("DELETE FROM candidates WHERE tuning_id = (SELECT id FROM tuning WHERE b = 9)");
  }
  Store s(dir.file(), Mode::ReadOnlyStrict);
  const auto problems = s.verify();
  REQUIRE(problems.size() == 3);
  CHECK_THAT(problems[0], Catch::Contains("gpu/7,1024,256,128/f32/tf32") && Catch::Contains("'nobody'"));
  CHECK_THAT(problems[1], Catch::Contains("gpu/9,1024,256,128/f32/tf32") && Catch::Contains("no candidates"));
  CHECK_THAT(problems[2], Catch::Contains("binary k5") && Catch::Contains("hash"));
}

TEST_CASE("vacuum keeps every record and gives freed pages back", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  Store s(dir.file(), Mode::Strict);
  CHECK(s.remove_tuning({{}, ProblemKey{1, 1024, 256, 128, ""}, {}, {}}) == 1);
  const auto tuning = s.list_tuning();
  {
    Raw raw(dir.file());
    raw.must("DELETE FROM binaries WHERE key <> 'k0'");
    REQUIRE(std::stoll(raw.texts("PRAGMA freelist_count")[0]) > 0);
  }
  s.vacuum();
  Raw raw(dir.file());
  CHECK(raw.texts("PRAGMA freelist_count") == std::vector<std::string>{"0"});
  CHECK(s.list_tuning() == tuning);
  CHECK(*s.find_binary("k0") == binary("k0", 20000));
  CHECK(s.verify().empty());
}

TEST_CASE("import writes every record or, on a bad one, none and names it", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  s.put_tuning(record("gpu", 100));
  auto bad = binary("k2");
  bad.hash = "0000000000000000";
  try {
    s.import_records({record("gpu", 1), record("gpu", 2)}, {binary("k1"), bad});
    FAIL("imported a binary whose hash does not match");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::CacheError);
    CHECK_THAT(e.what(), Catch::Contains("binary record 1") && Catch::Contains("k2") && Catch::Contains("hash"));
  }
  auto no_winner = record("gpu", 3);
  no_winner.winner = "not-a-candidate";
  CHECK_THROWS_WITH(s.import_records({record("gpu", 1), no_winner}, {}),
                    Catch::Contains("tuning record 1") && Catch::Contains("not-a-candidate"));
  const auto rows = s.list_tuning();
  REQUIRE(rows.size() == 1);
  CHECK(rows[0] == record("gpu", 100));
  CHECK(s.list_binaries().empty());
  s.import_records({record("gpu", 1), record("gpu", 2)}, {binary("k1")});
  CHECK(s.list_tuning().size() == 3);
  CHECK(*s.find_binary("k1") == binary("k1"));
}

TEST_CASE("an import that fails halfway through writing leaves the file as it was", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  // A trigger makes the second binary's insert fail after the tuning rows and the first
  // binary are written.
  Raw(dir.file()).must("CREATE TRIGGER refuse BEFORE INSERT ON binaries WHEN NEW.key = 'second'"
                       " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
  Store s(dir.file(), Mode::Strict);
  const auto tuning = s.list_tuning();
  const auto binaries = s.list_binaries();
  CHECK_THROWS_WITH(s.import_records({record("gpu", 500), record("gpu", 501)}, {binary("first"), binary("second")}),
                    Catch::Contains("refused by the test") && Catch::Contains(dir.file()));
  CHECK(s.list_tuning() == tuning);
  CHECK(s.list_binaries() == binaries);
  s.import_records({record("gpu", 500)}, {binary("first")});  // the store is still usable
  CHECK(s.list_tuning().size() == tuning.size() + 1);
}

TEST_CASE("resolve_path follows the option, RNNJIT_CACHE, XDG_CACHE_HOME, then HOME", "[cache]") {
  const test::ScopedEnv cache("RNNJIT_CACHE", nullptr), xdg("XDG_CACHE_HOME", "/x"), home("HOME", "/h");
  CHECK(resolve_path(std::string("/opt/c.sqlite")) == "/opt/c.sqlite");
  CHECK(resolve_path(std::nullopt) == "/x/rnnjit/cache.sqlite");
  {
    const test::ScopedEnv no_xdg("XDG_CACHE_HOME", nullptr);
    CHECK(resolve_path(std::nullopt) == "/h/.cache/rnnjit/cache.sqlite");
    const test::ScopedEnv no_home("HOME", nullptr);
    CHECK(resolve_path(std::nullopt) == "off");
  }
  const test::ScopedEnv off("RNNJIT_CACHE", "off");
  CHECK(resolve_path(std::nullopt) == "off");
  CHECK(resolve_path(std::string("/opt/c.sqlite")) == "/opt/c.sqlite");
}

TEST_CASE("an f32 and a bf16 entry of one gpu, shape and precision are kept apart", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  const TuningRecord f32 = record();
  auto bf16 = record();
  bf16.key.problem.dtype = "bf16";
  bf16.winner = "cfg-a";
  bf16.winner_us = 7.25;
  s.put_tuning(f32);
  s.put_tuning(bf16);  // not a stale row of the f32 entry, nor its replacement
  CHECK(s.find_tuning(f32.key, kVersion) == f32);
  CHECK(s.find_tuning(bf16.key, kVersion) == bf16);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{bf16, f32});
  CHECK(s.list_tuning({{}, {}, {}, std::string("f32")}) == std::vector<TuningRecord>{f32});
  CHECK(s.list_tuning({{}, {}, std::string("tf32"), std::string("bf16")}) == std::vector<TuningRecord>{bf16});
  CHECK(s.remove_tuning({{}, {}, {}, std::string("bf16")}) == 1);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{f32});
  // Staleness is per key too: a bf16 put removes no f32 row, not even one of another version.
  const auto old_f32 = record("H100;cc=9.0", 8, "t1", "0.0.9");
  s.put_tuning(old_f32);
  s.put_tuning(bf16);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{bf16, old_f32});
}

TEST_CASE("a step entry and sequence entries of one gpu, shape, dtype and precision are kept apart", "[cache]") {
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  const TuningRecord step = record();
  auto seq64 = record();
  seq64.key.problem.steps = 64;
  seq64.winner = "cfg-a";
  seq64.winner_us = 7.25;
  auto seq16 = seq64;
  seq16.key.problem.steps = 16;
  seq16.winner_us = 7.5;
  seq16.candidates[0].time_us = 7.5;
  // Named apart in every message; the step entry as it always was.
  CHECK(entry_name(step.key) == "H100;cc=9.0/8,1024,256,128/f32/tf32");
  CHECK(entry_name(seq64.key) == "H100;cc=9.0/8,1024,256,128/seq64/f32/tf32");
  CHECK(shape_text(seq64.key.problem) == "8,1024,256,128");
  CHECK_NOTHROW(validate({step, seq64, seq16}, {}));  // three entries, not one twice
  s.put_tuning(step);
  s.put_tuning(seq64);  // not a stale row of the step entry, nor its replacement
  s.put_tuning(seq16);
  CHECK(s.find_tuning(step.key, kVersion) == step);
  CHECK(s.find_tuning(seq64.key, kVersion) == seq64);
  CHECK(s.find_tuning(seq16.key, kVersion) == seq16);
  auto seq32 = step.key;
  seq32.problem.steps = 32;
  CHECK_FALSE(s.find_tuning(seq32, kVersion));
  CHECK(s.list_tuning() == std::vector<TuningRecord>{step, seq16, seq64});
  Filter only;
  only.steps = 0;
  CHECK(s.list_tuning(only) == std::vector<TuningRecord>{step});
  only.steps = 64;
  CHECK(s.list_tuning(only) == std::vector<TuningRecord>{seq64});
  only.dtype = "bf16";
  CHECK(s.list_tuning(only).empty());
  only.dtype.reset();
  CHECK(s.remove_tuning(only) == 1);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{step, seq16});
  // Staleness is per key too: a sequence put removes no step row, not even one of another version.
  const auto old_step = record("H100;cc=9.0", 8, "t1", "0.0.9");
  s.put_tuning(old_step);
  s.put_tuning(seq16);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{old_step, seq16});
  // A put of a sequence entry of new templates replaces its own stale row.
  auto seq16_new = seq16;
  seq16_new.key.template_hash = "t2";
  s.put_tuning(seq16_new);
  CHECK(s.list_tuning() == std::vector<TuningRecord>{old_step, seq16_new});
  CHECK_FALSE(s.find_tuning(seq16.key, kVersion));
}

TEST_CASE("an export file gives back every record, binaries of every length byte for byte", "[cache]") {
  test::TempDir dir;
  Exchange out{"0.1.0", {record("gpu", 8), record("gpu", 16), record("gpu", 8)}, {}};
  out.tuning[1].key.problem.dtype = "bf16";
  out.tuning[2].key.problem.steps = 64;
  for (std::size_t size : {1, 2, 3, 4, 5, 4096}) out.binaries.push_back(binary(std::to_string(size) + "-byte", size));
  const std::string file = dir.file("export.json");
  write_exchange(file, out, dir.file());
  CHECK(names_in(dir) == std::vector<std::string>{"export.json"});  // no temporary file left
  const Exchange back = read_exchange(file);
  CHECK(back.engine_version == "0.1.0");
  CHECK(back.tuning == out.tuning);
  CHECK(back.binaries == out.binaries);
  CHECK(back.tuning[2].key.problem.steps == 64);
  const std::string text = read_file(file);
  CHECK_THAT(text, Catch::Contains("\"version\": 3"));
  // Every record says its steps, a step's 0 too.
  CHECK_THAT(text, Catch::Contains("\"steps\": 64"));
  CHECK_THAT(to_json(out.tuning[0]), Catch::Contains("\"steps\": 0"));
}

TEST_CASE("an export file of format version 1 is read, its records f32", "[cache]") {
  test::TempDir dir;
  const std::string file = dir.file("v1.json");
  write_file(file, R"({"format": "rnnjit-cache", "version": 1, "engine_version": "0.1.0", "binaries": [],
    "tuning": [{"gpu": "H100;cc=9.0", "shape": [8, 1024, 256, 128], "precision": "tf32", "template_hash": "t1",
                "engine_version": "0.1.0", "winner": "cfg-b", "winner_us": 3.5, "created_at": 1700000000,
                "candidates": [
                  {"config": "cfg-a", "time_us": 7.25, "disposition": "ok", "message": "", "binary_key": "k1,k2"},
                  {"config": "cfg-b", "time_us": 3.5, "disposition": "ok", "message": "", "binary_key": "k3"},
                  {"config": "cfg-c", "time_us": null, "disposition": "compile_failed",
                   "message": "NVRTC said no", "binary_key": ""}]}]})");
  const Exchange in = read_exchange(file);
  REQUIRE(in.tuning.size() == 1);
  CHECK(in.tuning[0] == record());
  CHECK(in.tuning[0].key.problem.dtype == "f32");
  CHECK(in.tuning[0].key.problem.steps == 0);
}

TEST_CASE("an export file of format version 2 is read, its records one step; version 3 needs steps", "[cache]") {
  test::TempDir dir;
  const std::string file = dir.file("v2.json");
  const std::string v2 = R"({"format": "rnnjit-cache", "version": 2, "engine_version": "0.1.0", "binaries": [],
    "tuning": [{"gpu": "H100;cc=9.0", "shape": [8, 1024, 256, 128], "dtype": "bf16", "precision": "tf32",
                "template_hash": "t1", "engine_version": "0.1.0", "winner": "cfg-b", "winner_us": 3.5,
                "created_at": 1700000000, "candidates": [
                  {"config": "cfg-a", "time_us": 7.25, "disposition": "ok", "message": "", "binary_key": "k1,k2"},
                  {"config": "cfg-b", "time_us": 3.5, "disposition": "ok", "message": "", "binary_key": "k3"},
                  {"config": "cfg-c", "time_us": null, "disposition": "compile_failed",
                   "message": "NVRTC said no", "binary_key": ""}]}]})";
  write_file(file, v2);
  auto expect = record();
  expect.key.problem.dtype = "bf16";
  const Exchange in = read_exchange(file);
  REQUIRE(in.tuning.size() == 1);
  CHECK(in.tuning[0] == expect);
  CHECK(in.tuning[0].key.problem.steps == 0);
  // The same record as version 3 lacks its steps.
  std::string v3 = v2;
  v3.replace(v3.find("\"version\": 2"), 12, "\"version\": 3");
  write_file(file, v3);
  CHECK_THROWS_WITH(read_exchange(file), Catch::Contains(file + ": tuning record 0: field 'steps' is missing"));
}

TEST_CASE("an export onto the cache itself is refused before anything is written", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  const std::string bytes = read_file(dir.file());
  const auto names = names_in(dir);
  const Exchange out{"0.1.0", {record()}, {}};
  for (const std::string& onto : {dir.file(), (dir.path / "." / "cache.sqlite").string()}) {
    INFO(onto);
    CHECK_THROWS_WITH(write_exchange(onto, out, dir.file()),
                      Catch::Contains("refusing to export onto " + onto) && Catch::Contains("it is the cache"));
  }
  CHECK(read_file(dir.file()) == bytes);
  CHECK(names_in(dir) == names);
}

TEST_CASE("a bad record is refused by the same rule on import and on reading an export, the cache untouched",
          "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  const std::string bytes = read_file(dir.file());
  std::string rule;
  TuningRecord bad = record("gpu", 500);
  SECTION("a winner that is not a candidate") {
    bad.winner = "cfg-z";
    rule = "tuning record 1 (gpu/500,1024,256,128/f32/tf32): winner 'cfg-z' is not among the candidates";
  }
  SECTION("a dtype that is not a storage type") {
    bad.key.problem.dtype = "fp32";
    rule = "tuning record 1 (gpu/500,1024,256,128/fp32/tf32): dtype 'fp32' is neither f32 nor bf16";
  }
  SECTION("negative steps") {
    bad.key.problem.steps = -1;
    rule = "tuning record 1 (gpu/500,1024,256,128/seq-1/f32/tf32): steps -1 is outside 0..16777216";
  }
  const std::vector<TuningRecord> tuning = {record("gpu", 400), bad};
  CHECK_THROWS_WITH(validate(tuning, {}), Catch::EndsWith(rule));
  {
    Store s(dir.file(), Mode::Strict);
    CHECK_THROWS_WITH(s.import_records(tuning, {binary("k9")}), Catch::EndsWith(rule));
  }
  CHECK(read_file(dir.file()) == bytes);
  // The writer does not judge; the reader does, with the same words.
  const std::string file = dir.file("bad.json");
  write_exchange(file, {"0.1.0", tuning, {}}, dir.file());
  CHECK_THROWS_WITH(read_exchange(file), Catch::Contains(file + ": " + rule));
}

TEST_CASE("records are refused for meaning by the engine's rules, on import, on reading and by verify", "[cache]") {
  const double inf = std::numeric_limits<double>::infinity();
  TuningRecord r = record("gpu", 500);
  BinaryRecord b = binary("k9");
  std::string rule;
  SECTION("an unknown precision") {
    r.key.problem.precision = "fp64";
    rule = "precision 'fp64' is none of fp32, tf32, bf16";
  }
  SECTION("a size of zero") {
    r.key.problem.i = 0;
    rule = "shape 500,0,256,128 has a size outside 1..1048576";
  }
  SECTION("a size past the engine's limit") {
    r.key.problem.h = kMaxDim + 1;
    rule = "shape 500,1024,1048577,128 has a size outside 1..1048576";
  }
  SECTION("negative steps") {
    r.key.problem.steps = std::numeric_limits<std::int64_t>::min();
    rule = "steps -9223372036854775808 is outside 0..16777216";
  }
  SECTION("steps past the engine's limit") {
    r.key.problem.steps = kMaxSteps + 1;
    rule = "steps 16777217 is outside 0..16777216";
  }
  SECTION("a negative time") {
    r.candidates[0].time_us = -1;
    rule = "candidate 0: time_us -1 is not a time";
  }
  SECTION("a NaN time (null in JSON: +inf, for a candidate that ran)") {
    r.candidates[0].time_us = std::nan("");
    CHECK_THROWS_WITH(validate({r}, {}), Catch::Contains("candidate 0: time_us nan is not a time"));
    rule = "candidate 0: time_us ";
  }
  SECTION("an infinite time for a candidate that ran") {
    r.candidates[0].time_us = inf;
    rule = "candidate 0: time_us inf is not a time";
  }
  SECTION("an infinite winner time") {
    r.winner_us = inf;
    rule = "winner_us inf is not a finite, non-negative time";
  }
  SECTION("a winner that did not run") {
    r.winner = "cfg-c";
    rule = "winner 'cfg-c' did not run (compile_failed)";
  }
  SECTION("an unknown disposition") {
    r.candidates[1].disposition = "meh";
    rule = "candidate 1: disposition 'meh' is none of ok";
  }
  SECTION("a negative created_at") {
    r.created_at = -1;
    rule = "created_at -1 is outside 0..253402300799";
  }
  SECTION("a created_at past the year 9999") {
    r.created_at = kMaxCreatedAt + 1;
    rule = "created_at 253402300800 is outside 0..253402300799";
  }
  SECTION("an escape sequence in the gpu name") {
    r.key.gpu = "gpu\x1b[2J";
    rule = "gpu 'gpu\\x1b[2J' holds a control character";
  }
  SECTION("a newline in a config name (a message may hold one)") {
    r.candidates[0].config = "cfg\na";
    rule = "candidate 0: config 'cfg\\x0aa' holds a control character";
  }
  SECTION("a NUL in a binary's kernel") {
    b.kernel = std::string("gemv\0.cu", 8);
    rule = "binary record 0 (k9): kernel 'gemv\\x00.cu' holds a control character";
  }
  SECTION("a binary's created_at past the year 9999") {
    b.created_at = std::numeric_limits<std::int64_t>::max();
    rule = "binary record 0 (k9): created_at 9223372036854775807 is outside";
  }
  INFO(rule);
  const std::vector<TuningRecord> tuning = {record("gpu", 400), r};
  CHECK_THROWS_WITH(validate(tuning, {b}), Catch::Contains(rule));
  test::TempDir dir;
  fill(dir.file());
  const std::string bytes = read_file(dir.file());
  {
    Store s(dir.file(), Mode::Strict);
    CHECK_THROWS_WITH(s.import_records(tuning, {b}), Catch::Contains(rule));
  }
  CHECK(read_file(dir.file()) == bytes);
  const std::string file = dir.file("bad.json");
  write_exchange(file, {"0.1.0", tuning, {b}}, dir.file());  // the writer does not judge
  CHECK_THROWS_WITH(read_exchange(file), Catch::Contains(file + ": ") && Catch::Contains(rule));
}

TEST_CASE("a control character, an unknown precision or bad steps written behind the cache's back is found by verify",
          "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  Raw(dir.file()).must("UPDATE tuning SET precision = 'fp64' WHERE b = 2; UPDATE tuning SET gpu = 'g' || char(27) || "
                       "'[31m' WHERE b = 3; UPDATE tuning SET created_at = -5 WHERE b = 4;"
                       "UPDATE tuning SET steps = -2 WHERE b = 5;");
  Store s(dir.file(), Mode::ReadOnlyStrict);
  const auto problems = s.verify();
  REQUIRE(problems.size() == 4);
  CHECK_THAT(problems[0], Catch::Contains("gpu/2,1024,256,128/f32/fp64") && Catch::Contains("precision 'fp64'"));
  CHECK_THAT(problems[1], Catch::Contains("(g\\x1b[31m/3,1024,256,128/f32/tf32): gpu 'g\\x1b[31m' holds a control"));
  CHECK_THAT(problems[2], Catch::Contains("created_at -5"));
  CHECK_THAT(problems[3], Catch::EndsWith("(gpu/5,1024,256,128/seq-2/f32/tf32): steps -2 is outside 0..16777216"));
}

TEST_CASE("one import file holds each entry and each binary once: a second is refused, naming both", "[cache]") {
  std::vector<TuningRecord> tuning = {record("gpu", 1), record("gpu", 2), record("gpu", 1)};
  CHECK_THROWS_WITH(validate(tuning, {}),
                    Catch::EndsWith("tuning records 0 and 2 are both gpu/1,1024,256,128/f32/tf32: an import holds each "
                                    "entry once"));
  // Another template hash is the same entry: the cache keeps one row of it.
  tuning[2] = record("gpu", 1, "t2");
  CHECK_THROWS_WITH(validate(tuning, {}), Catch::Contains("tuning records 0 and 2"));
  tuning.pop_back();
  CHECK_NOTHROW(validate(tuning, {}));
  CHECK_THROWS_WITH(validate(tuning, {binary("a"), binary("b"), binary("a", 100)}),
                    Catch::EndsWith("binary records 0 and 2 both have key a: an import holds each binary once"));
  test::TempDir dir;
  Store s(dir.file(), Mode::Strict);
  CHECK_THROWS(s.import_records({record("gpu", 1), record("gpu", 1)}, {}));
  CHECK(s.list_tuning().empty());
}

TEST_CASE("printable spells control characters and keeps the rest, UTF-8 included", "[cache]") {
  CHECK(printable("NVIDIA H100 µ") == "NVIDIA H100 µ");
  CHECK(printable("a\x1b[2Jb\x7f") == "a\\x1b[2Jb\\x7f");
  CHECK(printable(std::string("a\0b", 3)) == "a\\x00b");
  CHECK(printable("line\nnext\ttab\r", "\n\t") == "line\nnext\ttab\\x0d");
  CHECK(printable(std::string("\0", 1), "\n") == "\\x00");
}

// --- The system cache: a read-only layer under the engine's cache (Store's `system`). ---

namespace {

// Every file of `dir` with its bytes: what "nothing was written there" compares.
std::map<std::string, std::string> contents(const fs::path& dir) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    out[e.path().filename().string()] = e.is_directory() ? "<directory>" : read_file(e.path().string());
  return out;
}

// A system cache as rnnjit-tune --system leaves it: written, then closed.
void make_system(const std::string& path, const std::vector<TuningRecord>& tuning,
                 const std::vector<BinaryRecord>& binaries) {
  Store s(path, Mode::Strict);
  s.import_records(tuning, binaries);
}

// record() of batch `b` won by cfg-a instead of cfg-b: what tells the system's entry from the cache's.
TuningRecord won_by_a(std::int64_t b, const std::string& hash = "t1") {
  TuningRecord r = record("gpu", b, hash);
  r.winner = "cfg-a";
  r.winner_us = 7.25;
  return r;
}

}  // namespace

TEST_CASE("resolve_system_path follows the option, RNNJIT_SYSTEM_CACHE, then the install default", "[cache]") {
  const test::ScopedEnv none("RNNJIT_SYSTEM_CACHE", nullptr);
  CHECK(resolve_system_path(std::nullopt) == "/usr/local/share/rnnjit/system.sqlite");
  CHECK(resolve_system_path(std::string("off")) == "off");
  const test::ScopedEnv env("RNNJIT_SYSTEM_CACHE", "/opt/s.sqlite");
  CHECK(resolve_system_path(std::nullopt) == "/opt/s.sqlite");
  CHECK(resolve_system_path(std::string("/img/s.sqlite")) == "/img/s.sqlite");
}

TEST_CASE("the system cache answers where the cache misses, and an entry in both is the cache's", "[cache]") {
  test::TempDir dir;
  const std::string sys = dir.file("system.sqlite");
  // The system holds b=8 (won by cfg-a), b=16, b=64 of the current templates, and binaries k3
  // (other bytes than the cache's) and k9.
  make_system(sys, {won_by_a(8), won_by_a(16), won_by_a(64)}, {binary("k3", 100), binary("k9")});
  Store s(dir.file(), Mode::Resilient, sys);
  s.put_tuning(record("gpu", 8));
  s.put_tuning(record("gpu", 64, "t0"));  // the cache's b=64 is of other templates: stale
  s.put_binary(binary("k3"));
  WarningCounter warnings;
  CHECK(s.find_tuning(record("gpu", 8).key, kVersion) == record("gpu", 8));
  CHECK(s.find_tuning(won_by_a(16).key, kVersion) == won_by_a(16));
  CHECK(s.find_tuning(won_by_a(64).key, kVersion) == won_by_a(64));
  CHECK_FALSE(s.find_tuning(record("gpu", 32).key, kVersion));
  CHECK_FALSE(s.find_tuning(won_by_a(16).key, "0.0.9"));  // the system's rows are another version's there
  CHECK(s.find_binary("k3") == binary("k3"));
  CHECK(s.find_binary("k9") == binary("k9"));
  CHECK_FALSE(s.find_binary("k4"));
  // The tools' calls see the cache alone.
  CHECK(s.list_tuning().size() == 2);
  CHECK(s.stats().binaries == 1);
  CHECK(warnings.count() == 0);
}

TEST_CASE("the system cache is never written: its file and directory stay byte-identical", "[cache]") {
  test::TempDir dir, sys_dir;
  fs::permissions(dir.path, fs::perms::all);  // the cache's, written by whoever runs the child
  const std::string sys = (sys_dir.path / "system.sqlite").string();
  BinaryRecord bad = binary("bad");
  bad.cubin[7] ^= 1;  // damaged after hashing: a read refuses it, and a writable store would delete it
  make_system(sys, {won_by_a(16)}, {binary("k9")});
  Raw(sys).must("INSERT INTO binaries VALUES ('bad', 'x', 'sm_90a', '13.0', 's', zeroblob(8), '" + bad.hash + "', 1)");
  std::string kind;
  SECTION("in a directory this process may write") {
    kind = "writable";
    fs::permissions(sys, fs::perms::all);
    fs::permissions(sys_dir.path, fs::perms::all);
  }
  SECTION("in a read-only directory, itself read-only") {
    kind = "read-only";
    test::make_read_only(sys);
    test::make_read_only(sys_dir.path);
  }
  INFO(kind);
  const auto before = contents(sys_dir.path);
  const std::string findings = test::unprivileged([&] {
    test::Findings f;
    WarningCounter warnings;
    Store s(dir.file(), Mode::Resilient, sys);
    f.expect(s.find_tuning(won_by_a(16).key, kVersion) == won_by_a(16), "the system's entry is not found");
    f.expect(s.find_binary("k9") == binary("k9"), "the system's binary is not found");
    f.expect(!s.find_binary("bad"), "a damaged binary of the system is returned");
    f.expect(warnings.count() == 1, "no warning for the damaged binary");
    // Writes go to the cache; the same key then answers from it.
    s.put_tuning(record("gpu", 16));
    s.put_binary(binary("bad"));
    f.expect(s.find_tuning(record("gpu", 16).key, kVersion) == record("gpu", 16), "the cache's write is not found");
    f.expect(s.find_binary("bad") == binary("bad"), "the cache's binary is not found");
    f.expect(s.persistent() && s.path() == dir.file(), "the cache left its file");
    return f.text;
  });
  INFO(findings);
  CHECK(findings.empty());
  CHECK(contents(sys_dir.path) == before);  // no -wal, -shm or journal beside it either
  CHECK(Store(sys, Mode::System).find_binary("k9") == binary("k9"));
}

TEST_CASE("a missing system cache is no system cache, silently, and nothing is made there", "[cache]") {
  test::TempDir dir;
  const std::string sys = dir.file("absent/system.sqlite");
  WarningCounter warnings;
  Store s(dir.file(), Mode::Resilient, sys);
  CHECK_FALSE(s.find_tuning(record().key, kVersion));
  CHECK_FALSE(s.find_binary("k3"));
  check_usable(s);
  CHECK(warnings.count() == 0);
  CHECK_FALSE(fs::exists(dir.file("absent")));
}

TEST_CASE("the system cache is opened at the first miss of the cache, not before", "[cache]") {
  test::TempDir dir;
  const std::string sys = dir.file("system.sqlite");
  Store s(dir.file(), Mode::Resilient, sys);
  s.put_tuning(record("gpu", 8));
  CHECK(s.find_tuning(record("gpu", 8).key, kVersion));  // a hit: the system is not looked at
  make_system(sys, {won_by_a(16)}, {});                  // made after the store
  CHECK(s.find_tuning(won_by_a(16).key, kVersion) == won_by_a(16));
}

TEST_CASE("an unusable system cache is one warning and no system cache, and is left as it is", "[cache]") {
  test::TempDir dir;
  const std::string sys = dir.file("system.sqlite");
  std::string why;
  SECTION("garbage") {
    why = "not a SQLite database";
    write_file(sys, std::string(5000, 'z'));
  }
  SECTION("another application's database") {
    why = "not an rnnjit cache";
    Raw(sys).must("CREATE TABLE unrelated (x); INSERT INTO unrelated VALUES (42);");
  }
  SECTION("an older schema, which a read-only file cannot be migrated from") {
    why = "schema version 1 is older";
    Raw raw(sys);
    raw.must(kSchemaV1);
    raw.must("PRAGMA application_id = " + std::to_string(kApplicationId));
  }
  SECTION("a directory") {
    why = "is a directory";
    fs::create_directory(sys);
  }
  SECTION("damaged pages, found when a lookup reads them") {
    why = "corrupt";
    fill(sys);
    std::string bytes = read_file(sys);
    std::fill(bytes.begin() + 4096, bytes.end(), '\x5a');
    write_file(sys, bytes);
  }
  INFO(why);
  const auto before = contents(dir.path);
  WarningCounter warnings;
  {
    Store s(dir.file(), Mode::Resilient, sys);
    for (int i = 0; i < 3; ++i) {
      CHECK_FALSE(s.find_tuning(record("gpu", 3).key, kVersion));
      CHECK_FALSE(s.find_binary("k5"));
    }
    CHECK(warnings.count() == 1);
    check_usable(s);
    CHECK(s.persistent());
  }
  CHECK(warnings.count() == 1);
  auto after = contents(dir.path);
  for (const char* own : {"cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm"}) after.erase(own);
  CHECK(after == before);
  CHECK(corrupt_siblings(dir).empty());
}

TEST_CASE("a system cache in a directory this process may not search is one warning and no system cache",
          "[cache]") {
  test::TempDir dir, sys_dir;
  fs::permissions(dir.path, fs::perms::all);  // the cache's, written by whoever runs the child
  const std::string sys = (sys_dir.path / "system.sqlite").string();
  make_system(sys, {won_by_a(16)}, {});
  // No search permission: stat() of the file fails with EACCES, which the throwing
  // fs::exists turned into a std::filesystem_error out of a cold lookup.
  fs::permissions(sys_dir.path, fs::perms::none);
  const std::string findings = test::unprivileged([&] {
    test::Findings f;
    WarningCounter warnings;
    Store s(dir.file(), Mode::Resilient, sys);
    for (int i = 0; i < 3; ++i) {
      f.expect(!s.find_tuning(won_by_a(16).key, kVersion), "an entry came from an unreadable system cache");
      f.expect(!s.find_binary("k5"), "a binary came from an unreadable system cache");
    }
    f.expect(warnings.count() == 1, "warnings: " + std::to_string(warnings.count()) + ", not 1");
    s.put_tuning(record("gpu", 16));
    f.expect(s.find_tuning(record("gpu", 16).key, kVersion) == record("gpu", 16), "the cache's write is not found");
    f.expect(s.persistent() && s.path() == dir.file(), "the cache left its file");
    return f.text;
  });
  fs::permissions(sys_dir.path, fs::perms::owner_all);
  INFO(findings);
  CHECK(findings.empty());
}

TEST_CASE("a system store refuses writes", "[cache]") {
  test::TempDir dir;
  make_system(dir.file(), {won_by_a(16)}, {});
  Store s(dir.file(), Mode::System);
  CHECK(s.read_only());
  CHECK_THROWS_WITH(s.put_tuning(record()), Catch::Contains("a system cache is only ever read"));
  CHECK_THROWS_WITH(s.put_binary(binary("k")), Catch::Contains("a system cache is only ever read"));
  CHECK(s.list_tuning() == std::vector<TuningRecord>{won_by_a(16)});
}

TEST_CASE("the engine's store runs quick_check before its first write, not at open", "[cache]") {
  test::TempDir dir;
  fill(dir.file());
  // The last pages hold binaries' bytes, which no tuning lookup reads: damage there is found by
  // quick_check only.
  std::string bytes = read_file(dir.file());
  std::fill(bytes.end() - 2 * 4096, bytes.end(), '\x5a');
  write_file(dir.file(), bytes);
  CHECK_THROWS_WITH(Store(dir.file(), Mode::Strict), Catch::Contains("quick_check"));
  WarningCounter warnings;
  Store s(dir.file());
  CHECK(s.find_tuning(record("gpu", 3).key, kVersion) == record("gpu", 3));
  CHECK(warnings.count() == 0);
  CHECK(corrupt_siblings(dir).empty());
  s.put_tuning(record("gpu", 500));  // quick_check: the file is moved aside, the write goes to a fresh one
  CHECK(warnings.count() == 1);
  CHECK(corrupt_siblings(dir).size() == 1);
  CHECK(s.persistent());
  CHECK(s.list_tuning() == std::vector<TuningRecord>{record("gpu", 500)});
}
