#include "rnnjit/cache/store.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <type_traits>

#include "sqlite.hpp"
#include "support/hash.hpp"
#include "support/log.hpp"

namespace rnnjit::cache {
namespace {

namespace fs = std::filesystem;
using sql::Connection;
using sql::ResetOnExit;
using sql::SqliteError;
using sql::Statement;
using sql::Transaction;

// kMigrations[v] takes a database from user_version v to v + 1. Append only: a released
// migration never changes, and kSchemaVersion (store.hpp) must equal the list's length.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE tuning (
  id INTEGER PRIMARY KEY,
  gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL, h INTEGER NOT NULL, o INTEGER NOT NULL,
  precision TEXT NOT NULL, template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
  winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (gpu, b, i, h, o, precision, template_hash));
CREATE TABLE candidates (
  tuning_id INTEGER NOT NULL REFERENCES tuning(id) ON DELETE CASCADE,
  rank INTEGER NOT NULL, config TEXT NOT NULL,
  time_us REAL,  -- NULL: the candidate failed (+infinity)
  disposition TEXT NOT NULL, message TEXT NOT NULL, binary_key TEXT NOT NULL,
  PRIMARY KEY (tuning_id, rank));
CREATE TABLE binaries (
  key TEXT PRIMARY KEY, kernel TEXT NOT NULL, arch TEXT NOT NULL, nvrtc_version TEXT NOT NULL,
  symbols TEXT NOT NULL, cubin BLOB NOT NULL, hash TEXT NOT NULL, created_at INTEGER NOT NULL);
)sql",
    // 2: the storage type joins the key. SQLite cannot change a UNIQUE constraint, so the table
    // is rebuilt with the same ids, which the candidates rows refer to (setup() keeps foreign
    // keys off meanwhile: with them on, the DROP would cascade to every candidate).
    R"sql(
CREATE TABLE tuning_v2 (
  id INTEGER PRIMARY KEY,
  gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL, h INTEGER NOT NULL, o INTEGER NOT NULL,
  dtype TEXT NOT NULL DEFAULT 'f32',
  precision TEXT NOT NULL, template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
  winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (gpu, b, i, h, o, dtype, precision, template_hash));
INSERT INTO tuning_v2 (id, gpu, b, i, h, o, precision, template_hash, engine_version, winner, winner_us, created_at)
  SELECT id, gpu, b, i, h, o, precision, template_hash, engine_version, winner, winner_us, created_at FROM tuning;
DROP TABLE tuning;
ALTER TABLE tuning_v2 RENAME TO tuning;
)sql",
    // 3: the steps a sequence entry is tuned for join the key (0: one step, what every row so far
    // is). Rebuilt with the same ids, as for 2.
    R"sql(
CREATE TABLE tuning_v3 (
  id INTEGER PRIMARY KEY,
  gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL, h INTEGER NOT NULL, o INTEGER NOT NULL,
  dtype TEXT NOT NULL DEFAULT 'f32',
  precision TEXT NOT NULL,
  steps INTEGER NOT NULL DEFAULT 0,
  template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
  winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
  UNIQUE (gpu, b, i, h, o, dtype, precision, steps, template_hash));
INSERT INTO tuning_v3 (id, gpu, b, i, h, o, dtype, precision, template_hash, engine_version, winner, winner_us,
                       created_at)
  SELECT id, gpu, b, i, h, o, dtype, precision, template_hash, engine_version, winner, winner_us, created_at
  FROM tuning;
DROP TABLE tuning;
ALTER TABLE tuning_v3 RENAME TO tuning;
)sql",
};
static_assert(std::size(kMigrations) == kSchemaVersion, "one migration per schema version");

constexpr int kDefaultBusyMs = 5000;

bool memory_path(const std::string& p) { return p.empty() || p == "off" || p == ":memory:"; }

// SQLite URIs are refused (check_path): one spelling of a cache, a path, for every command.
bool uri_path(const std::string& p) { return p.rfind("file:", 0) == 0; }

std::string directory_of(const std::string& path) {
  const std::string dir = fs::path(path).parent_path().string();
  return dir.empty() ? "." : dir;
}

// For this process's effective user, as SQLite's own open is (root, ACLs and a read-only mount
// included), not from the permission bits.
bool can_write(const std::string& path) { return ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) == 0; }

// The URI of `path` opened with immutable=1: SQLite then takes no lock and wants no -shm or
// -wal, which a read-only directory could not hold. Only for a file nobody here may write.
std::string immutable_uri(const std::string& path) {
  std::string out = "file://";
  for (const unsigned char c : fs::absolute(path).string()) {
    if (std::isalnum(c) || std::strchr("/._-~", c)) {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out + "?immutable=1";
}

std::string hex32(std::int64_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", static_cast<unsigned>(static_cast<std::uint32_t>(v)));
  return buf;
}

// RNNJIT_CACHE_BUSY_MS overrides how long a locked cache is waited for (5000 ms), so that
// tests meet a held lock quickly; anything but a non-negative integer is ignored.
int busy_ms() {
  const char* env = std::getenv("RNNJIT_CACHE_BUSY_MS");
  if (!env || !*env) return kDefaultBusyMs;
  int ms = 0;
  const char* end = env + std::strlen(env);
  const auto [stop, ec] = std::from_chars(env, end, ms);
  if (ec != std::errc() || stop != end || ms < 0) {
    support::log().debug("ignoring RNNJIT_CACHE_BUSY_MS='{}'", env);
    return kDefaultBusyMs;
  }
  return ms;
}

bool damaged(const Error& e) {
  const auto* sq = dynamic_cast<const SqliteError*>(&e);
  return sq && (sq->primary() == SQLITE_CORRUPT || sq->primary() == SQLITE_NOTADB);
}

// What went wrong, in words a user can act on; SQLite's own message follows in parentheses.
std::string cause(const Error& e, int busy) {
  const std::string detail = e.message();
  const auto* sq = dynamic_cast<const SqliteError*>(&e);
  if (!sq) return detail;
  std::string what;
  switch (sq->primary()) {
    case SQLITE_NOTADB: what = "not a SQLite database"; break;
    case SQLITE_CORRUPT: what = "the database file is corrupt"; break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED: what = "database is locked (held by another connection for more than " + std::to_string(busy) + " ms)"; break;
    case SQLITE_READONLY: what = "the cache cannot be written (read-only file or directory)"; break;
    case SQLITE_CANTOPEN: what = "the file cannot be opened"; break;
    case SQLITE_PERM:
    case SQLITE_AUTH: what = "permission denied"; break;
    case SQLITE_FULL: what = "the disk is full"; break;
    case SQLITE_IOERR: what = "I/O error"; break;
    default: return detail;
  }
  return what + " (" + detail + ")";
}

// "name type" of each column of `table` in order; empty when there is no such table.
std::vector<std::string> table_columns(Connection& db, const std::string& table) {
  Statement s(db, "SELECT trim(name || ' ' || type) FROM pragma_table_info(?1) ORDER BY cid");
  s.bind(1, table);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_text(0));
  return out;
}

using Tables = std::map<std::string, std::vector<std::string>>;

// The tables the first `version` migrations make, and their columns: what a file of that schema
// version must hold. Read from a scratch database, so the migrations stay the only description
// of the schema.
const Tables& expected_tables(std::int64_t version = kSchemaVersion) {
  static const auto per_version = [] {
    std::vector<Tables> out(kSchemaVersion + 1);
    Connection db(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    for (int v = 1; v <= kSchemaVersion; ++v) {
      db.exec(kMigrations[v - 1]);
      for (const auto& name : db.query_texts("SELECT name FROM sqlite_master WHERE type = 'table'"))
        out[v][name] = table_columns(db, name);
    }
    return out;
  }();
  return per_version.at(static_cast<std::size_t>(version));
}

// The tables and views of a file, SQLite's own (sqlite_*) left out, by name.
std::vector<std::string> user_tables(Connection& db) {
  return db.query_texts(
      "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
      " ORDER BY name");
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The hot paths' statements, prepared once per connection (after the schema is in place).
struct Statements {
  explicit Statements(Connection& db)
      : find_tuning(db,
                    "SELECT id, gpu, b, i, h, o, dtype, precision, steps, template_hash, engine_version, winner,"
                    " winner_us, created_at FROM tuning WHERE gpu = ?1 AND b = ?2 AND i = ?3 AND h = ?4"
                    " AND o = ?5 AND dtype = ?6 AND precision = ?7 AND steps = ?8 AND template_hash = ?9"
                    " AND engine_version = ?10"),
        read_candidates(db,
                        "SELECT config, time_us, disposition, message, binary_key FROM candidates"
                        " WHERE tuning_id = ?1 ORDER BY rank"),
        delete_stale(db,
                     "DELETE FROM tuning WHERE gpu = ?1 AND b = ?2 AND i = ?3 AND h = ?4 AND o = ?5"
                     " AND dtype = ?6 AND precision = ?7 AND steps = ?8"
                     " AND (template_hash <> ?9 OR engine_version <> ?10)"),
        upsert_tuning(db,
                      "INSERT INTO tuning (gpu, b, i, h, o, dtype, precision, steps, template_hash, engine_version,"
                      " winner, winner_us, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
                      " ON CONFLICT (gpu, b, i, h, o, dtype, precision, steps, template_hash) DO UPDATE SET"
                      " engine_version = excluded.engine_version, winner = excluded.winner,"
                      " winner_us = excluded.winner_us, created_at = excluded.created_at RETURNING id"),
        clear_candidates(db, "DELETE FROM candidates WHERE tuning_id = ?1"),
        add_candidate(db,
                      "INSERT INTO candidates (tuning_id, rank, config, time_us, disposition, message, binary_key)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"),
        find_binary(db,
                    "SELECT key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at FROM binaries"
                    " WHERE key = ?1"),
        drop_binary(db, "DELETE FROM binaries WHERE key = ?1"),
        upsert_binary(db,
                      "INSERT INTO binaries (key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at)"
                      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (key) DO UPDATE SET"
                      " kernel = excluded.kernel, arch = excluded.arch, nvrtc_version = excluded.nvrtc_version,"
                      " symbols = excluded.symbols, cubin = excluded.cubin, hash = excluded.hash,"
                      " created_at = excluded.created_at") {}

  Statement find_tuning, read_candidates, delete_stale, upsert_tuning, clear_candidates, add_candidate, find_binary,
      drop_binary, upsert_binary;
};

// The WHERE clause of list/remove: each filter is a bound parameter that matches all when NULL.
const char* const kFilterWhere =
    " WHERE (?1 IS NULL OR instr(gpu, ?1) > 0) AND (?2 IS NULL OR b = ?2) AND (?3 IS NULL OR i = ?3)"
    " AND (?4 IS NULL OR h = ?4) AND (?5 IS NULL OR o = ?5) AND (?6 IS NULL OR precision = ?6)"
    " AND (?7 IS NULL OR dtype = ?7) AND (?8 IS NULL OR steps = ?8)";

void bind_filter(Statement& s, const Filter& f) {
  s.bind(1, f.gpu);
  const auto dim = [&](std::int64_t ProblemKey::*m) {
    return f.shape ? std::optional<std::int64_t>((*f.shape).*m) : std::nullopt;
  };
  s.bind(2, dim(&ProblemKey::b)).bind(3, dim(&ProblemKey::i)).bind(4, dim(&ProblemKey::h)).bind(5, dim(&ProblemKey::o));
  s.bind(6, f.precision).bind(7, f.dtype).bind(8, f.steps);
}

const char* const kTuningColumns =
    "SELECT id, gpu, b, i, h, o, dtype, precision, steps, template_hash, engine_version, winner, winner_us,"
    " created_at FROM tuning";

// A row of kTuningColumns (or of Statements::find_tuning): its id and the record without candidates.
std::pair<std::int64_t, TuningRecord> read_tuning_row(const Statement& s) {
  TuningRecord r;
  r.key.gpu = s.column_text(1);
  r.key.problem = {s.column_int(2), s.column_int(3), s.column_int(4), s.column_int(5),
                   s.column_text(7), s.column_text(6), s.column_int(8)};
  r.key.template_hash = s.column_text(9);
  r.engine_version = s.column_text(10);
  r.winner = s.column_text(11);
  r.winner_us = s.column_double(12);
  r.created_at = s.column_int(13);
  return {s.column_int(0), std::move(r)};
}

void read_candidates(Statements& q, std::int64_t id, TuningRecord& r) {
  Statement& s = q.read_candidates;
  const ResetOnExit done(s);
  s.bind(1, id);
  while (s.step())
    r.candidates.push_back({s.column_text(0),
                            s.column_null(1) ? std::numeric_limits<double>::infinity() : s.column_double(1),
                            s.column_text(2), s.column_text(3), s.column_text(4)});
}

BinaryRecord read_binary_row(const Statement& s) {
  return {s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3),
          s.column_text(4), s.column_blob(5), s.column_text(6), s.column_int(7)};
}

// Inside the caller's transaction.
void write_tuning(Connection& db, Statements& q, const TuningRecord& r) {
  const auto& k = r.key;
  const auto& p = k.problem;
  {
    Statement& s = q.delete_stale;
    const ResetOnExit done(s);
    s.bind(1, k.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.dtype).bind(7, p.precision);
    s.bind(8, p.steps).bind(9, k.template_hash).bind(10, r.engine_version).run();
  }
  std::int64_t id = 0;
  {
    Statement& s = q.upsert_tuning;
    const ResetOnExit done(s);
    s.bind(1, k.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.dtype).bind(7, p.precision);
    s.bind(8, p.steps).bind(9, k.template_hash).bind(10, r.engine_version).bind(11, r.winner);
    s.bind(12, r.winner_us).bind(13, r.created_at);
    if (!s.step()) db.fail(SQLITE_ERROR, "the upsert of a tuning row returned no id");
    id = s.column_int(0);
    s.run();
  }
  {
    Statement& s = q.clear_candidates;
    const ResetOnExit done(s);
    s.bind(1, id).run();
  }
  Statement& s = q.add_candidate;
  std::int64_t rank = 0;
  for (const auto& c : r.candidates) {
    const ResetOnExit done(s);
    s.bind(1, id).bind(2, rank++).bind(3, c.config);
    if (std::isfinite(c.time_us))
      s.bind(4, c.time_us);
    else
      s.bind_null(4);
    s.bind(5, c.disposition).bind(6, c.message).bind(7, c.binary_key).run();
  }
}

void write_binary(Statements& q, const BinaryRecord& b) {
  Statement& s = q.upsert_binary;
  const ResetOnExit done(s);
  s.bind(1, b.key).bind(2, b.kernel).bind(3, b.arch).bind(4, b.nvrtc_version).bind(5, b.symbols);
  s.bind(6, b.cubin).bind(7, b.hash).bind(8, b.created_at).run();
}

bool hash_matches(const std::vector<std::uint8_t>& cubin, const std::string& hash) {
  return support::hash_hex(cubin.data(), cubin.size()) == hash;
}

// What the engine writes and reads back (rnnjit.hpp's precision_name, dtype_name and
// disposition_name), spelled out here because this layer cannot include the engine.
const std::set<std::string> kPrecisions = {"fp32", "tf32", "bf16"};
const std::set<std::string> kDTypes = {"f32", "bf16"};
const std::set<std::string> kDispositions = {"ok", "compile_failed", "launch_failed", "not_supported"};

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Why text field `name` cannot be stored (a control character other than those in `keep`), or empty.
std::string bad_text(const char* name, const std::string& text, const char* keep = "") {
  for (const char c : text)
    if ((static_cast<unsigned char>(c) < 0x20 || c == 0x7f) && (c == '\0' || !std::strchr(keep, c)))
      return std::string(name) + " '" + printable(text, keep) + "' holds a control character";
  return {};
}

std::string bad_created_at(std::int64_t t) {
  if (t >= 0 && t <= kMaxCreatedAt) return {};
  return "created_at " + std::to_string(t) + " is outside 0.." + std::to_string(kMaxCreatedAt) + " (the years 1970 to 9999)";
}

// Why a record cannot be stored, or empty: the engine's own rules (see validate()).
std::string invalid(const TuningRecord& r) {
  const auto& p = r.key.problem;
  for (const auto& [name, text] : {std::pair{"gpu", &r.key.gpu}, std::pair{"template_hash", &r.key.template_hash},
                                   std::pair{"engine_version", &r.engine_version}, std::pair{"winner", &r.winner}}) {
    if (text->empty()) return std::string(name) + " is empty";
    if (std::string why = bad_text(name, *text); !why.empty()) return why;
  }
  for (const std::int64_t d : {p.b, p.i, p.h, p.o})
    if (d < 1 || d > kMaxDim)
      return "shape " + shape_text(p) + " has a size outside 1.." + std::to_string(kMaxDim);
  if (!kPrecisions.count(p.precision)) return "precision '" + printable(p.precision) + "' is none of fp32, tf32, bf16";
  if (!kDTypes.count(p.dtype)) return "dtype '" + printable(p.dtype) + "' is neither f32 nor bf16";
  if (p.steps < 0 || p.steps > kMaxSteps)
    return "steps " + std::to_string(p.steps) + " is outside 0.." + std::to_string(kMaxSteps);
  if (!std::isfinite(r.winner_us) || r.winner_us < 0)
    return "winner_us " + number(r.winner_us) + " is not a finite, non-negative time";
  if (std::string why = bad_created_at(r.created_at); !why.empty()) return why;
  if (r.candidates.empty()) return "there are no candidates";
  const CandidateResult* winner = nullptr;
  for (std::size_t i = 0; i < r.candidates.size(); ++i) {
    const CandidateResult& c = r.candidates[i];
    const std::string at = "candidate " + std::to_string(i) + ": ";
    if (c.config.empty()) return at + "config is empty";
    for (const auto& why : {bad_text("config", c.config), bad_text("disposition", c.disposition),
                            bad_text("message", c.message, "\n\t"), bad_text("binary_key", c.binary_key)})
      if (!why.empty()) return at + why;
    if (!kDispositions.count(c.disposition))
      return at + "disposition '" + c.disposition + "' is none of ok, compile_failed, launch_failed, not_supported";
    // A time is a median of runs: never negative, infinite only for a candidate that did not run.
    if (std::isnan(c.time_us) || c.time_us < 0 || (std::isinf(c.time_us) && c.disposition == "ok"))
      return at + "time_us " + number(c.time_us) + " is not a time (non-negative; +inf only when it failed)";
    if (c.config == r.winner && !winner) winner = &c;
  }
  if (!winner) return "winner '" + r.winner + "' is not among the candidates";
  if (winner->disposition != "ok") return "winner '" + r.winner + "' did not run (" + winner->disposition + ")";
  return {};
}

std::string invalid(const BinaryRecord& b) {
  if (b.key.empty()) return "key is empty";
  for (const auto& why : {bad_text("key", b.key), bad_text("kernel", b.kernel), bad_text("arch", b.arch),
                          bad_text("nvrtc_version", b.nvrtc_version), bad_text("symbols", b.symbols, "\n"),
                          bad_text("hash", b.hash), bad_created_at(b.created_at)})
    if (!why.empty()) return why;
  if (b.cubin.empty()) return "cubin is empty";
  if (!hash_matches(b.cubin, b.hash)) return "hash '" + b.hash + "' does not match the cubin";
  return {};
}

// A file's identity, to tell the file this Store opened from one that replaced it.
struct FileId {
  dev_t dev = 0;
  ino_t ino = 0;
  bool operator==(const FileId&) const = default;
};

std::optional<FileId> file_id(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return FileId{st.st_dev, st.st_ino};
}

}  // namespace

std::string shape_text(const ProblemKey& p) {
  return std::to_string(p.b) + "," + std::to_string(p.i) + "," + std::to_string(p.h) + "," + std::to_string(p.o);
}

std::string entry_name(const TuningKey& k) {
  const ProblemKey& p = k.problem;
  // Any steps but 0, so that verify names a row of bad steps by its value.
  const std::string sequence = p.steps != 0 ? "/seq" + std::to_string(p.steps) : "";
  return k.gpu + "/" + shape_text(p) + sequence + "/" + p.dtype + "/" + p.precision;
}

void validate(const std::vector<TuningRecord>& tuning, const std::vector<BinaryRecord>& binaries) {
  const auto fail = [](const std::string& message) { throw Error(ErrorCode::CacheError, message); };
  // An entry is one row whatever its template hash or engine version (a write replaces the
  // others), so two records of one entry in one file would silently leave only the last.
  std::map<std::string, std::size_t> entries;
  for (std::size_t i = 0; i < tuning.size(); ++i) {
    const std::string name = printable(entry_name(tuning[i].key));
    if (const std::string why = invalid(tuning[i]); !why.empty())
      fail("tuning record " + std::to_string(i) + " (" + name + "): " + why);
    if (const auto [it, fresh] = entries.emplace(entry_name(tuning[i].key), i); !fresh)
      fail("tuning records " + std::to_string(it->second) + " and " + std::to_string(i) + " are both " + name +
           ": an import holds each entry once");
  }
  std::map<std::string, std::size_t> keys;
  for (std::size_t i = 0; i < binaries.size(); ++i) {
    const std::string key = printable(binaries[i].key);
    if (const std::string why = invalid(binaries[i]); !why.empty())
      fail("binary record " + std::to_string(i) + " (" + key + "): " + why);
    if (const auto [it, fresh] = keys.emplace(binaries[i].key, i); !fresh)
      fail("binary records " + std::to_string(it->second) + " and " + std::to_string(i) + " both have key " + key +
           ": an import holds each binary once");
  }
}

void check_path(const std::string& path) {
  if (memory_path(path)) return;
  const auto fail = [&](const std::string& why) { throw Error(ErrorCode::CacheError, "cache " + path + ": " + why); };
  if (uri_path(path)) fail("SQLite URIs (file:...) are not accepted; give the file's path");
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return;  // missing (made later) or unreadable (the open says why)
  if (S_ISDIR(st.st_mode)) fail("is a directory, not a cache file");
  // Opening a FIFO would wait for a writer forever; a device or a socket is no database either.
  if (!S_ISREG(st.st_mode))
    fail(std::string("is not a regular file (") +
         (S_ISFIFO(st.st_mode) ? "a FIFO" : S_ISSOCK(st.st_mode) ? "a socket" : "a device or other special file") +
         "); a cache is a SQLite file");
}

std::string printable(const std::string& text, const char* keep) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    if ((static_cast<unsigned char>(c) >= 0x20 && c != 0x7f) || (c != '\0' && std::strchr(keep, c))) {
      out += c;
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", static_cast<unsigned char>(c));
      out += hex;
    }
  }
  return out;
}

std::string resolve_system_path(const std::optional<std::string>& option) {
  if (option) return *option;
  if (const char* env = std::getenv("RNNJIT_SYSTEM_CACHE"); env && *env) return env;
  return kDefaultSystemPath;
}

std::string resolve_path(const std::optional<std::string>& option) {
  if (option) return *option;
  if (const char* env = std::getenv("RNNJIT_CACHE"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/rnnjit/cache.sqlite";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/rnnjit/cache.sqlite";
  return "off";  // nowhere to put a file: memory only
}

// What a call does to the file: a Write on a read-only file (Resilient) first moves to memory.
enum class Access { Read, Write };

struct Store::Impl {
  std::mutex mu;
  const Mode mode;
  const std::string path;  // as requested
  const int busy = busy_ms();
  // Null when there is no database: Mode::System's missing or unusable file, or (any other mode)
  // not even a memory database could be made.
  std::unique_ptr<Connection> db;
  std::unique_ptr<Statements> q;   // declared after db: finalized before it closes
  bool persistent = false;
  bool read_only = false;  // db is the file, opened read-only
  bool checked = false;    // quick_check passed on db's file
  bool warned = false;
  std::optional<FileId> opened;  // the file behind db, when it is one
  const std::string system_path;   // the system cache under this store, as requested
  std::once_flag system_once;
  std::unique_ptr<Store> system;   // opened at the first miss; null when there is none

  Impl(std::string p, Mode m, std::string sys) : mode(m), path(std::move(p)), system_path(std::move(sys)) {}

  void close() {
    q.reset();
    db.reset();
    persistent = false;
    read_only = false;
    checked = false;
    opened.reset();
  }

  bool writes() const { return mode != Mode::ReadOnlyStrict && mode != Mode::System && !read_only; }
  bool strict() const { return mode == Mode::Strict || mode == Mode::ReadOnlyStrict; }

  [[noreturn]] static void foreign(const std::string& why) {
    throw Error(ErrorCode::CacheError, "not an rnnjit cache: " + why + "; it is left as it is, give another file");
  }

  // Refuses, before anything is written, a file that is not an rnnjit cache this build can use
  // or an empty database that may become one. A file is rnnjit's when its application_id says
  // so or, made before there was one, when its tables are exactly those of its schema version.
  void recognise(std::int64_t version, std::int64_t app) {
    if (app != 0 && app != kApplicationId)
      foreign("its application_id is " + hex32(app) + ", another application's (rnnjit's is " + hex32(kApplicationId) + ")");
    if (version < 0) foreign("its schema version " + std::to_string(version) + " is not one rnnjit writes");
    if (version > kSchemaVersion) {
      if (app != kApplicationId)
        foreign("schema version " + std::to_string(version) + " without rnnjit's application_id");
      throw Error(ErrorCode::CacheError, "schema version " + std::to_string(version) + " is newer than this build's " +
                                             std::to_string(kSchemaVersion) + "; use a newer rnnjit or another cache file");
    }
    if (version == 0) {
      if (db->query_int("SELECT count(*) FROM sqlite_master") == 0) return;  // empty: becomes a cache
      const auto tables = user_tables(*db);
      foreign("it holds " + (tables.empty() ? std::string("a schema") : "tables (" + joined(tables) + ")") +
              " but no rnnjit schema version");
    }
    if (app != kApplicationId) {
      std::vector<std::string> expected;
      for (const auto& [table, columns] : expected_tables(version)) expected.push_back(table);
      if (const auto tables = user_tables(*db); tables != expected)
        foreign("its tables (" + joined(tables) + ") are not rnnjit's (" + joined(expected) +
                ") and it has no rnnjit application_id");
    }
    check_columns(version);
  }

  void check_columns(std::int64_t version = kSchemaVersion) {
    for (const auto& [table, columns] : expected_tables(version)) {
      const auto actual = table_columns(*db, table);
      if (actual.empty()) throw Error(ErrorCode::CacheError, "table '" + table + "' is missing");
      if (actual != columns)
        throw Error(ErrorCode::CacheError, "table '" + table + "' has columns (" + joined(actual) + "), expected (" +
                                               joined(columns) + ")");
    }
  }

  // Reads every page: milliseconds for a cache of a few MB, more than the rest of a warm start.
  // Hence at open only in the tools' strict modes; Resilient runs it before its first write
  // (see Mode).
  void quick_check() {
    const auto lines = db->query_texts("PRAGMA quick_check");
    if (lines.size() != 1 || lines[0] != "ok")
      throw SqliteError(SQLITE_CORRUPT, "PRAGMA quick_check: " + (lines.empty() ? "no result" : lines[0]));
    checked = true;
  }

  // Switching to WAL needs the file to itself, and SQLite answers SQLITE_BUSY at once when
  // another connection is reading, without its busy handler: retry within the busy timeout.
  void enable_wal() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(busy);
    for (int pause_ms = 1;; pause_ms = std::min(2 * pause_ms, 50)) {
      try {
        const auto journal = db->query_texts("PRAGMA journal_mode = WAL");
        // Some file systems cannot share WAL memory; the rollback journal is slower but as safe.
        if (journal.empty() || journal[0] != "wal")
          support::log().debug("cache {}: journal mode stays {}", path, journal.empty() ? "?" : journal[0]);
        return;
      } catch (const SqliteError& e) {
        if (e.primary() != SQLITE_BUSY || std::chrono::steady_clock::now() >= deadline) throw;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(pause_ms));
    }
  }

  // Brings the database to the current schema and stamps rnnjit's application_id, in one
  // transaction.
  void migrate() {
    Transaction t(*db);
    // Re-read under the write lock: another process may have migrated meanwhile.
    const std::int64_t now = db->query_int("PRAGMA user_version");
    const std::int64_t app = db->query_int("PRAGMA application_id");
    recognise(now, app);
    for (std::int64_t v = now; v < kSchemaVersion; ++v) {
      db->exec(kMigrations[v]);
      // PRAGMA takes no bound parameters; the values are this build's own constants.
      db->exec("PRAGMA user_version = " + std::to_string(v + 1));
    }
    if (app != kApplicationId) db->exec("PRAGMA application_id = " + std::to_string(kApplicationId));
    // Foreign keys are off while migrating (see setup): what they would have enforced is
    // checked here, and a migration that broke it rolls back.
    if (!db->query_texts("PRAGMA foreign_key_check").empty())
      throw Error(ErrorCode::CacheError, "the migration to schema version " + std::to_string(kSchemaVersion) +
                                             " left rows whose foreign key has no parent; the file is unchanged");
    t.commit();
  }

  // Brings the new connection `db` to the current schema and prepares the statements.
  void setup(bool file) {
    db->busy_timeout(busy);  // first: the WAL switch and the migration may meet a lock
    // Off until the schema is current: a migration that rebuilds a table drops the old one,
    // which with foreign keys on cascades to the rows that refer to it. SQLite ignores this
    // pragma inside a transaction, so it cannot wait for migrate()'s.
    db->exec("PRAGMA foreign_keys = OFF");
    std::int64_t version = 0, app = 0;
    {
      // One snapshot: another process may be creating the schema meanwhile.
      Transaction snapshot(*db, Transaction::Kind::Read);
      // The first read of the file: one that is not a database fails here.
      version = db->query_int("PRAGMA user_version");
      app = db->query_int("PRAGMA application_id");
      if (file) {
        // Before quick_check: another application's file is refused as such, never taken for
        // a damaged cache and moved aside.
        recognise(version, app);
        if (strict()) quick_check();
      }
      snapshot.commit();
    }
    if (file && writes()) {
      if (db->read_only()) throw SqliteError(SQLITE_READONLY, "SQLite opened the file read-only");
      enable_wal();
      db->exec("PRAGMA synchronous = NORMAL");
    }
    if (version < kSchemaVersion && !writes())
      throw Error(ErrorCode::CacheError,
                  version == 0 ? std::string("an empty database, not yet a cache; import into it to make it one")
                               : "schema version " + std::to_string(version) + " is older than this build's " +
                                     std::to_string(kSchemaVersion) +
                                     "; open it once in a writable mode (e.g. rnnjit-cache prune) to migrate it");
    // A cache made before the application_id is stamped by the first open that may write.
    if (writes() && (version < kSchemaVersion || app != kApplicationId)) {
      migrate();
      if (file) check_columns();
    }
    db->exec("PRAGMA foreign_keys = ON");
    q = std::make_unique<Statements>(*db);
  }

  void open_memory() {
    close();
    db = std::make_unique<Connection>(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    setup(false);
  }

  void open_file() {
    close();
    check_path(path);
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    const std::string dir = directory_of(path);
    std::string name = path;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    if (mode == Mode::System) {
      // Immutable: no lock, no -shm or -wal, nothing written beside it, whoever may write there. A
      // system cache is made once (rnnjit-tune --system) and then only read; a -wal left by a
      // writer that died is not read, which at worst leaves out its last entries.
      read_only = true;
      flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
      name = immutable_uri(path);
    } else if (mode == Mode::ReadOnlyStrict || (exists && !(can_write(path) && can_write(dir)))) {
      if (mode == Mode::Strict)
        throw SqliteError(SQLITE_READONLY, "this process may not write " + path + (can_write(path) ? "'s directory" : ""));
      read_only = true;
      flags = SQLITE_OPEN_READONLY;
      // Nobody here can write it, nor make the -shm a WAL reader needs: immutable, which reads
      // the file alone. A -wal left behind holds committed pages, so then it is read as usual.
      if (!can_write(path) && !can_write(dir) && !fs::exists(path + "-wal", ec)) {
        name = immutable_uri(path);
        flags |= SQLITE_OPEN_URI;
      }
    } else if (!exists) {
      fs::create_directories(dir, ec);  // a failure shows up as SQLITE_CANTOPEN next
    }
    db = std::make_unique<Connection>(name, flags);
    opened = file_id(path);
    setup(true);
    persistent = true;
  }

  std::string describe(const Error& e) const { return "cache " + path + ": " + cause(e, busy); }

  void warn_once(const std::string& what) {
    if (!warned) support::log().warn("{}", what);
    warned = true;
  }

  // Renames the damaged file and its -wal/-shm to <path>.corrupt-<unix seconds>[-n]; returns
  // the new name. nullopt: it could not be moved. "": the file at `path` is not the one this
  // Store opened (another process has replaced it already), so there is nothing to move.
  std::optional<std::string> move_aside(const std::optional<FileId>& id) {
    if (id && file_id(path) != id) return std::string();
    const std::string base = path + ".corrupt-" + std::to_string(std::time(nullptr));
    std::string target = base;
    std::error_code ec;
    for (int n = 1; fs::exists(target, ec) && n < 100; ++n) target = base + "-" + std::to_string(n);
    fs::rename(path, target, ec);
    if (ec) return std::nullopt;
    for (const char* suffix : {"-wal", "-shm"}) {
      if (!fs::exists(path + suffix, ec)) continue;
      fs::rename(path + suffix, target + suffix, ec);
      // A WAL left behind would be replayed into the fresh file: rather lose it.
      if (ec) fs::remove(path + suffix, ec);
    }
    return target;
  }

  // System only: the file is left as it is and the store answers nothing from now on.
  void drop_system(const std::string& what) {
    close();
    warn_once(what + "; the system cache is not used");
  }

  // Resilient only: a damaged file is moved aside and replaced by a fresh one (unless it was
  // opened read-only); anything else (locked, read-only, not an rnnjit cache, a schema this
  // build does not know, a full disk) continues in memory. One warning per Store whatever
  // happens.
  void recover(const Error& e) {
    const std::optional<FileId> id = opened;
    const bool was_read_only = read_only;
    close();
    std::string note = "; continuing with an in-memory cache";
    // A file this process may not write is not its to move either.
    if (damaged(e) && was_read_only) note = "; it is read-only, so it stays where it is" + note;
    if (damaged(e) && !was_read_only && !memory_path(path)) {
      if (const auto aside = move_aside(id)) {
        try {
          open_file();
          warn_once(describe(e) + (aside->empty() ? "; another process replaced it with a fresh cache"
                                                  : "; moved it to " + *aside + " and started a fresh cache"));
          return;
        } catch (const Error& again) {
          close();
          note = "; a fresh cache cannot be made either (" + cause(again, busy) + ")" + note;
        }
      } else {
        note = "; it cannot be moved aside" + note;
      }
    }
    warn_once(describe(e) + note);
    try {
      open_memory();
    } catch (const Error& again) {
      close();  // every call now answers "nothing"
      support::log().error("cache: not even an in-memory cache can be made: {}", again.what());
    }
  }

  // Resilient only, at the first write to a file opened read-only: its entries are copied into
  // memory, where this write and the later ones go. One warning.
  void leave_read_only() {
    std::string what = "cache " + path + ": the file or its directory cannot be written by this process; ";
    try {
      auto memory = std::make_unique<Connection>(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
      db->copy_into(*memory);
      close();
      db = std::move(memory);
      setup(false);
      what += "its entries stay in use, new ones are kept in memory";
    } catch (const Error& e) {
      what += "copying its entries failed (" + std::string(e.message()) + "); continuing with an empty in-memory cache";
      try {
        open_memory();
      } catch (const Error& again) {
        close();
        support::log().error("cache: not even an in-memory cache can be made: {}", again.what());
      }
    }
    warn_once(what);
  }

  void open() {
    if (memory_path(path)) {
      if (mode != Mode::Resilient) return open_memory();
      try {
        open_memory();
      } catch (const Error& e) {
        recover(e);
      }
      return;
    }
    try {
      check_path(path);  // its message names the file already
    } catch (const Error& e) {
      if (strict()) throw;
      if (mode == Mode::System) return drop_system(e.message());
      warn_once(std::string(e.message()) + "; continuing with an in-memory cache");
      try {
        open_memory();
      } catch (const Error& again) {
        close();
        support::log().error("cache: not even an in-memory cache can be made: {}", again.what());
      }
      return;
    }
    // The non-throwing overload: a directory this process may not search (EACCES) must end
    // as an rnnjit::Error or "no system cache", never as a std::filesystem_error.
    std::error_code ec;
    const bool exists = fs::exists(path, ec);
    if (mode == Mode::ReadOnlyStrict && ec)
      throw Error(ErrorCode::CacheError, "cache " + path + ": cannot be looked at: " + ec.message());
    if (mode == Mode::ReadOnlyStrict && !exists) throw Error(ErrorCode::CacheError, "no cache at " + path);
    if (mode == Mode::System && ec) return drop_system("cache " + path + ": cannot be looked at: " + ec.message());
    if (mode == Mode::System && !exists) {
      support::log().debug("cache {}: no system cache there", path);
      return;
    }
    try {
      open_file();
    } catch (const Error& e) {
      if (strict()) {
        close();
        throw Error(ErrorCode::CacheError, describe(e));
      }
      if (mode == Mode::System) return drop_system(describe(e));
      recover(e);
    }
  }

  // Runs `f(connection, statements)` under the lock. Strict: a failure is an Error that
  // names the file and the cause. Resilient: a write to a read-only file moves to memory
  // first (see leave_read_only); a failure recovers (see recover) and `f` runs once more on
  // the new database, where a find simply misses; should that fail too, the call answers an
  // empty value. System: a failure drops the file (see drop_system) and the call answers an
  // empty value; a write is the caller's error.
  template <typename F>
  auto run(Access access, F&& f) -> std::invoke_result_t<F&, Connection&, Statements&> {
    using R = std::invoke_result_t<F&, Connection&, Statements&>;
    if (access == Access::Write && mode == Mode::System)
      throw Error(ErrorCode::CacheError, "cache " + path + ": a system cache is only ever read");
    std::lock_guard lock(mu);
    if (db && access == Access::Write && read_only && mode == Mode::Resilient) leave_read_only();
    if (db) {
      try {
        // Nothing is written into a damaged file (see Mode).
        if (access == Access::Write && persistent && !checked) quick_check();
        return f(*db, *q);
      } catch (const Error& e) {
        if (strict()) throw Error(ErrorCode::CacheError, describe(e));
        if (mode == Mode::System)
          drop_system(describe(e));
        else
          recover(e);
      }
    }
    if (db) {
      try {
        return f(*db, *q);
      } catch (const Error& e) {
        support::log().debug("cache: {} failed again after recovering: {}", path, e.what());
      }
    }
    if constexpr (!std::is_void_v<R>) return R{};
  }
};

Store::Store(std::string path, Mode mode, std::string system)
    : impl_(std::make_unique<Impl>(std::move(path), mode, std::move(system))) {
  impl_->open();
}

Store* Store::system_layer() {
  Impl& im = *impl_;
  std::call_once(im.system_once, [&] {
    if (im.mode != Mode::Resilient || memory_path(im.system_path)) return;
    std::error_code ec;
    if (fs::equivalent(im.path, im.system_path, ec)) {
      support::log().debug("cache {}: it is the system cache too; no system layer under it", im.path);
      return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    // The system layer is an optional extra: whatever goes wrong opening it means "no system
    // layer" (one warning), never an exception out of a cold call. Catching here also lets
    // call_once complete, so the attempt is not repeated on every call.
    try {
      im.system = std::make_unique<Store>(im.system_path, Mode::System);
    } catch (const std::exception& e) {
      im.system.reset();
      support::log().warn("cache {}: the system cache {} cannot be opened ({}); it is not used", im.path,
                          im.system_path, e.what());
      return;
    } catch (...) {
      im.system.reset();
      support::log().warn("cache {}: the system cache {} cannot be opened; it is not used", im.path, im.system_path);
      return;
    }
    support::log().debug("start-up: system cache {} opened in {:.2f} ms ({})", im.system_path,
                         std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count(),
                         im.system->persistent() ? "in use" : "none");
  });
  return im.system.get();
}

Store::~Store() = default;

std::string Store::path() const {
  std::lock_guard lock(impl_->mu);
  return impl_->persistent ? impl_->path : ":memory:";
}

bool Store::persistent() const {
  std::lock_guard lock(impl_->mu);
  return impl_->persistent;
}

bool Store::read_only() const {
  std::lock_guard lock(impl_->mu);
  return impl_->read_only;
}

std::optional<TuningRecord> Store::find_tuning(const TuningKey& key, const std::string& engine_version) {
  auto own = impl_->run(Access::Read, [&](Connection&, Statements& q) -> std::optional<TuningRecord> {
    Statement& s = q.find_tuning;
    const ResetOnExit done(s);
    const auto& p = key.problem;
    s.bind(1, key.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.dtype).bind(7, p.precision);
    s.bind(8, p.steps).bind(9, key.template_hash).bind(10, engine_version);
    if (!s.step()) return std::nullopt;
    auto [id, rec] = read_tuning_row(s);
    read_candidates(q, id, rec);
    return rec;
  });
  if (own) return own;
  Store* system = system_layer();
  return system ? system->find_tuning(key, engine_version) : std::nullopt;
}

void Store::put_tuning(const TuningRecord& record) {
  impl_->run(Access::Write, [&](Connection& db, Statements& q) {
    Transaction t(db);
    write_tuning(db, q, record);
    t.commit();
  });
}

std::optional<BinaryRecord> Store::find_binary(const std::string& key) {
  auto own = impl_->run(Access::Read, [&](Connection&, Statements& q) -> std::optional<BinaryRecord> {
    const bool may_write = impl_->writes();  // under the lock, like every use of impl_
    BinaryRecord b;
    {
      Statement& s = q.find_binary;
      const ResetOnExit done(s);
      s.bind(1, key);
      if (!s.step()) return std::nullopt;
      b = read_binary_row(s);
    }
    if (hash_matches(b.cubin, b.hash)) return b;
    support::log().warn("cached binary {} ({}) does not match its hash{}", b.key, b.kernel,
                        may_write ? "; removed it" : "");
    if (may_write) {
      Statement& drop = q.drop_binary;
      const ResetOnExit done(drop);
      drop.bind(1, key).run();
    }
    return std::nullopt;
  });
  if (own) return own;
  Store* system = system_layer();
  return system ? system->find_binary(key) : std::nullopt;
}

void Store::put_binary(const BinaryRecord& record) {
  impl_->run(Access::Write, [&](Connection& db, Statements& q) {
    Transaction t(db);
    write_binary(q, record);
    t.commit();
  });
}

std::vector<TuningRecord> Store::list_tuning(const Filter& filter) {
  return impl_->run(Access::Read, [&](Connection& db, Statements& q) {
    Statement s(db, std::string(kTuningColumns) + kFilterWhere +
                        " ORDER BY gpu, b, i, h, o, dtype, precision, steps, template_hash");
    bind_filter(s, filter);
    std::vector<TuningRecord> out;
    while (s.step()) {
      auto [id, rec] = read_tuning_row(s);
      read_candidates(q, id, rec);
      out.push_back(std::move(rec));
    }
    return out;
  });
}

std::vector<BinaryRecord> Store::list_binaries() {
  return impl_->run(Access::Read, [&](Connection& db, Statements&) {
    Statement s(db, "SELECT key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at FROM binaries ORDER BY key");
    std::vector<BinaryRecord> out;
    while (s.step()) out.push_back(read_binary_row(s));
    return out;
  });
}

std::int64_t Store::remove_tuning(const Filter& filter) {
  return impl_->run(Access::Write, [&](Connection& db, Statements&) {
    Transaction t(db);
    Statement s(db, std::string("DELETE FROM tuning") + kFilterWhere);
    bind_filter(s, filter);
    s.run();
    const std::int64_t n = db.changes();
    t.commit();
    return n;
  });
}

Stats Store::stats() {
  Impl& impl = *impl_;
  return impl.run(Access::Read, [&](Connection& db, Statements&) {
    Stats out;
    Transaction snapshot(db, Transaction::Kind::Read);  // counts of one moment
    out.entries = db.query_int("SELECT count(*) FROM tuning");
    out.binaries = db.query_int("SELECT count(*) FROM binaries");
    out.binary_bytes = db.query_int("SELECT coalesce(sum(length(cubin)), 0) FROM binaries");
    Statement s(db, "SELECT gpu, count(*) FROM tuning GROUP BY gpu ORDER BY gpu");
    while (s.step()) out.per_gpu.push_back({s.column_text(0), s.column_int(1)});
    snapshot.commit();
    if (impl.persistent) {
      for (const char* suffix : {"", "-wal"}) {
        std::error_code ec;
        const auto size = fs::file_size(impl.path + suffix, ec);
        if (!ec) out.file_bytes += static_cast<std::int64_t>(size);
      }
    }
    return out;
  });
}

PruneResult Store::prune(const std::string& template_hash, const std::string& engine_version) {
  return impl_->run(Access::Write, [&](Connection& db, Statements&) {
    PruneResult r;
    Transaction t(db);
    Statement stale(db, "DELETE FROM tuning WHERE template_hash <> ?1 OR engine_version <> ?2");
    stale.bind(1, template_hash).bind(2, engine_version).run();
    r.stale_entries = db.changes();
    // A candidate's binary_key lists its binaries, comma-separated.
    db.exec(
        "DELETE FROM binaries WHERE NOT EXISTS (SELECT 1 FROM candidates"
        " WHERE instr(',' || candidates.binary_key || ',', ',' || binaries.key || ',') > 0)");
    r.orphan_binaries = db.changes();
    t.commit();
    return r;
  });
}

std::vector<std::string> Store::verify() {
  return impl_->run(Access::Read, [&](Connection& db, Statements& q) {
    std::vector<std::string> problems;
    for (const auto& line : db.query_texts("PRAGMA integrity_check"))
      if (line != "ok") problems.push_back("integrity_check: " + line);
    Statement rows(db, std::string(kTuningColumns) + " ORDER BY id");
    while (rows.step()) {
      auto [id, rec] = read_tuning_row(rows);
      read_candidates(q, id, rec);
      if (const std::string why = invalid(rec); !why.empty())
        problems.push_back("tuning row " + std::to_string(id) + " (" + printable(entry_name(rec.key)) + "): " + why);
    }
    Statement bins(db, "SELECT key, cubin, hash FROM binaries ORDER BY key");
    while (bins.step())
      if (!hash_matches(bins.column_blob(1), bins.column_text(2)))
        problems.push_back("binary " + printable(bins.column_text(0)) + ": the cubin does not match its hash");
    return problems;
  });
}

void Store::vacuum() {
  impl_->run(Access::Write, [&](Connection& db, Statements&) { db.exec("VACUUM"); });
}

void Store::import_records(const std::vector<TuningRecord>& tuning, const std::vector<BinaryRecord>& binaries) {
  // A bad record is the caller's error, not the cache's: it throws in every mode.
  validate(tuning, binaries);
  impl_->run(Access::Write, [&](Connection& db, Statements& q) {
    Transaction t(db);
    for (const auto& r : tuning) write_tuning(db, q, r);
    for (const auto& b : binaries) write_binary(q, b);
    t.commit();
  });
}

}  // namespace rnnjit::cache
