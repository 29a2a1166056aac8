#include "rnnjit/cache/store.hpp"

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <limits>
#include <mutex>

#include "sqlite.hpp"
#include "support/hash.hpp"
#include "support/log.hpp"

namespace rnnjit::cache {
namespace {

namespace fs = std::filesystem;
using sql::Connection;
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
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion, "one migration per schema version");

bool memory_path(const std::string& p) { return p.empty() || p == "off" || p == ":memory:"; }

// RNNJIT_CACHE_BUSY_MS shortens the 5 s wait for a locked database (tests use it).
int busy_ms() {
  const char* env = std::getenv("RNNJIT_CACHE_BUSY_MS");
  return env && *env ? std::atoi(env) : 5000;
}

// The WHERE clause of list/remove: each filter is a bound parameter that matches all when NULL.
const char* const kFilterWhere =
    " WHERE (?1 IS NULL OR instr(gpu, ?1) > 0) AND (?2 IS NULL OR b = ?2) AND (?3 IS NULL OR i = ?3)"
    " AND (?4 IS NULL OR h = ?4) AND (?5 IS NULL OR o = ?5) AND (?6 IS NULL OR precision = ?6)";

void bind_filter(Statement& s, const Filter& f) {
  s.bind(1, f.gpu);
  for (int k = 0; k < 4; ++k) {
    std::optional<std::int64_t> v;
    if (f.shape) v = k == 0 ? f.shape->b : k == 1 ? f.shape->i : k == 2 ? f.shape->h : f.shape->o;
    s.bind(2 + k, v);
  }
  s.bind(6, f.precision);
}

const char* const kTuningColumns =
    "SELECT id, gpu, b, i, h, o, precision, template_hash, engine_version, winner, winner_us, created_at FROM tuning";

std::pair<std::int64_t, TuningRecord> read_tuning_row(const Statement& s) {
  TuningRecord r;
  r.key.gpu = s.column_text(1);
  r.key.problem = {s.column_int(2), s.column_int(3), s.column_int(4), s.column_int(5), s.column_text(6)};
  r.key.template_hash = s.column_text(7);
  r.engine_version = s.column_text(8);
  r.winner = s.column_text(9);
  r.winner_us = s.column_double(10);
  r.created_at = s.column_int(11);
  return {s.column_int(0), std::move(r)};
}

void read_candidates(Connection& db, std::int64_t id, TuningRecord& r) {
  Statement s(db, "SELECT config, time_us, disposition, message, binary_key FROM candidates WHERE tuning_id = ?1 ORDER BY rank");
  s.bind(1, id);
  while (s.step())
    r.candidates.push_back({s.column_text(0),
                            s.column_null(1) ? std::numeric_limits<double>::infinity() : s.column_double(1),
                            s.column_text(2), s.column_text(3), s.column_text(4)});
}

void write_tuning(Connection& db, const TuningRecord& r) {
  const auto& k = r.key;
  const auto& p = k.problem;
  {
    Statement stale(db,
                    "DELETE FROM tuning WHERE gpu = ?1 AND b = ?2 AND i = ?3 AND h = ?4 AND o = ?5 AND precision = ?6"
                    " AND (template_hash <> ?7 OR engine_version <> ?8)");
    stale.bind(1, k.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.precision);
    stale.bind(7, k.template_hash).bind(8, r.engine_version).run();
  }
  Statement up(db,
               "INSERT INTO tuning (gpu, b, i, h, o, precision, template_hash, engine_version, winner, winner_us, created_at)"
               " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
               " ON CONFLICT (gpu, b, i, h, o, precision, template_hash) DO UPDATE SET"
               " engine_version = excluded.engine_version, winner = excluded.winner,"
               " winner_us = excluded.winner_us, created_at = excluded.created_at RETURNING id");
  up.bind(1, k.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.precision);
  up.bind(7, k.template_hash).bind(8, r.engine_version).bind(9, r.winner).bind(10, r.winner_us).bind(11, r.created_at);
  if (!up.step()) db.fail(SQLITE_ERROR, "upsert of a tuning row returned no id");
  const std::int64_t id = up.column_int(0);
  up.run();
  Statement clear(db, "DELETE FROM candidates WHERE tuning_id = ?1");
  clear.bind(1, id).run();
  Statement add(db,
                "INSERT INTO candidates (tuning_id, rank, config, time_us, disposition, message, binary_key)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
  std::int64_t rank = 0;
  for (const auto& c : r.candidates) {
    add.bind(1, id).bind(2, rank++).bind(3, c.config);
    if (std::isfinite(c.time_us))
      add.bind(4, c.time_us);
    else
      add.bind_null(4);
    add.bind(5, c.disposition).bind(6, c.message).bind(7, c.binary_key).run();
    add.reset();
  }
}

void write_binary(Connection& db, const BinaryRecord& b) {
  Statement s(db,
              "INSERT INTO binaries (key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at)"
              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (key) DO UPDATE SET kernel = excluded.kernel,"
              " arch = excluded.arch, nvrtc_version = excluded.nvrtc_version, symbols = excluded.symbols,"
              " cubin = excluded.cubin, hash = excluded.hash, created_at = excluded.created_at");
  s.bind(1, b.key).bind(2, b.kernel).bind(3, b.arch).bind(4, b.nvrtc_version).bind(5, b.symbols);
  s.bind(6, b.cubin).bind(7, b.hash).bind(8, b.created_at).run();
}

// Why a record cannot be stored, or empty.
std::string invalid(const TuningRecord& r) {
  if (r.key.gpu.empty()) return "empty gpu";
  if (r.key.problem.b <= 0 || r.key.problem.i <= 0 || r.key.problem.h <= 0 || r.key.problem.o <= 0)
    return "non-positive size";
  if (r.key.problem.precision.empty()) return "empty precision";
  if (r.key.template_hash.empty()) return "empty template_hash";
  if (r.engine_version.empty()) return "empty engine_version";
  if (r.winner.empty()) return "empty winner";
  if (r.candidates.empty()) return "no candidates";
  for (const auto& c : r.candidates)
    if (c.config == r.winner) return {};
  return "winner '" + r.winner + "' is not among the candidates";
}

std::string invalid(const BinaryRecord& b) {
  if (b.key.empty()) return "empty key";
  if (b.cubin.empty()) return "empty cubin";
  if (support::hash_hex(b.cubin.data(), b.cubin.size()) != b.hash) return "hash does not match the cubin";
  return {};
}

}  // namespace

std::string resolve_path(const std::optional<std::string>& option) {
  if (option) return *option;
  if (const char* env = std::getenv("RNNJIT_CACHE"); env && *env) return env;
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return std::string(xdg) + "/rnnjit/cache.sqlite";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.cache/rnnjit/cache.sqlite";
  return "off";  // nowhere to put a file: memory only
}

struct Store::Impl {
  std::mutex mu;
  Mode mode;
  std::string path;  // as requested
  std::unique_ptr<Connection> db;
  bool persistent = false;
  bool warned = false;

  Impl(std::string p, Mode m) : mode(m), path(std::move(p)) {}

  void setup(bool file) {
    sqlite3_busy_timeout(db->get(), busy_ms());
    db->exec("PRAGMA foreign_keys = ON");
    if (file && mode != Mode::ReadOnlyStrict) {
      db->exec("PRAGMA journal_mode = WAL");
      db->exec("PRAGMA synchronous = NORMAL");
    }
    const std::int64_t version = db->query_int("PRAGMA user_version");
    if (version > kSchemaVersion)
      throw Error(ErrorCode::CacheError, "cache " + path + " has schema version " + std::to_string(version) +
                                             ", newer than this build's " + std::to_string(kSchemaVersion));
    if (version == kSchemaVersion) return;
    if (mode == Mode::ReadOnlyStrict)
      throw Error(ErrorCode::CacheError, "cache " + path + " has schema version " + std::to_string(version) +
                                             "; open it writable once to migrate it to " + std::to_string(kSchemaVersion));
    Transaction t(*db);
    // Re-read under the write lock: another process may have migrated meanwhile.
    for (std::int64_t v = db->query_int("PRAGMA user_version"); v < kSchemaVersion; ++v) {
      db->exec(kMigrations[v]);
      db->exec("PRAGMA user_version = " + std::to_string(v + 1));
    }
    t.commit();
  }

  void open_memory() {
    db.reset();
    db = std::make_unique<Connection>(":memory:", SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    setup(false);
    persistent = false;
  }

  void open_file() {
    db.reset();
    // URIs too ("file:/path?mode=ro" opens a cache read-only whatever the permissions).
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI;
    if (mode == Mode::ReadOnlyStrict) {
      if (!fs::exists(path)) throw Error(ErrorCode::CacheError, "no cache at " + path);
      flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
    } else if (const fs::path parent = fs::path(path).parent_path(); !parent.empty()) {
      std::error_code ec;
      fs::create_directories(parent, ec);  // a failure shows up as SQLITE_CANTOPEN next
    }
    db = std::make_unique<Connection>(path, flags);
    setup(true);
    persistent = true;
  }

  void warn_once(const std::string& what) {
    if (!warned) support::log().warn("{}", what);
    warned = true;
  }

  // Renames a damaged file (and its WAL files) to <path>.corrupt-<unix time>.
  void move_aside() {
    db.reset();
    const std::string target = path + ".corrupt-" + std::to_string(std::time(nullptr));
    std::error_code ec;
    fs::rename(path, target, ec);
    for (const char* suffix : {"-wal", "-shm"}) fs::rename(path + suffix, target + suffix, ec);
  }

  // Resilient recovery from `e`: a damaged file is replaced by a fresh one, anything else
  // (locked, read-only, foreign schema) continues in memory. One warning per Store.
  void recover(const Error& e) {
    const auto* sq = dynamic_cast<const SqliteError*>(&e);
    const bool damaged = sq && (sq->primary() == SQLITE_CORRUPT || sq->primary() == SQLITE_NOTADB);
    if (damaged && !memory_path(path)) {
      move_aside();
      try {
        open_file();
        warn_once("cache " + path + " was damaged (" + e.what() + "); moved it aside and started a fresh one");
        return;
      } catch (const Error&) {  // fall through to memory
      }
    }
    warn_once("cache " + path + " is unusable (" + e.what() + "); continuing with an in-memory cache");
    open_memory();
  }

  void open() {
    if (memory_path(path)) return open_memory();
    try {
      open_file();
    } catch (const Error& e) {
      if (mode != Mode::Resilient) throw strict(e);
      recover(e);
    }
  }

  Error strict(const Error& e) const {
    const std::string what = e.what();
    return Error(ErrorCode::CacheError, what.find(path) == std::string::npos ? "cache " + path + ": " + what : what);
  }

  // Runs `f` on the database under the lock. Resilient: a failure recovers (see recover)
  // and `f` runs once more on the new database, where a find simply misses.
  template <typename F>
  auto run(F&& f) -> decltype(f(*db)) {
    std::lock_guard lock(mu);
    try {
      return f(*db);
    } catch (const Error& e) {
      if (mode != Mode::Resilient) throw strict(e);
      recover(e);
      return f(*db);
    }
  }
};

Store::Store(std::string path, Mode mode) : impl_(std::make_unique<Impl>(std::move(path), mode)) { impl_->open(); }

Store::~Store() = default;

std::string Store::path() const {
  std::lock_guard lock(impl_->mu);
  return impl_->persistent ? impl_->path : ":memory:";
}

bool Store::persistent() const {
  std::lock_guard lock(impl_->mu);
  return impl_->persistent;
}

std::optional<TuningRecord> Store::find_tuning(const TuningKey& key, const std::string& engine_version) {
  return impl_->run([&](Connection& db) -> std::optional<TuningRecord> {
    Statement s(db, std::string(kTuningColumns) +
                        " WHERE gpu = ?1 AND b = ?2 AND i = ?3 AND h = ?4 AND o = ?5 AND precision = ?6"
                        " AND template_hash = ?7 AND engine_version = ?8");
    const auto& p = key.problem;
    s.bind(1, key.gpu).bind(2, p.b).bind(3, p.i).bind(4, p.h).bind(5, p.o).bind(6, p.precision);
    s.bind(7, key.template_hash).bind(8, engine_version);
    if (!s.step()) return std::nullopt;
    auto [id, rec] = read_tuning_row(s);
    read_candidates(db, id, rec);
    return rec;
  });
}

void Store::put_tuning(const TuningRecord& record) {
  impl_->run([&](Connection& db) {
    Transaction t(db);
    write_tuning(db, record);
    t.commit();
  });
}

std::optional<BinaryRecord> Store::find_binary(const std::string& key) {
  return impl_->run([&](Connection& db) -> std::optional<BinaryRecord> {
    Statement s(db, "SELECT key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at FROM binaries WHERE key = ?1");
    s.bind(1, key);
    if (!s.step()) return std::nullopt;
    BinaryRecord b{s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3), s.column_text(4),
                   s.column_blob(5), s.column_text(6), s.column_int(7)};
    if (support::hash_hex(b.cubin.data(), b.cubin.size()) == b.hash) return b;
    support::log().warn("cached binary {} ({}) does not match its hash; dropped", b.key, b.kernel);
    Statement drop(db, "DELETE FROM binaries WHERE key = ?1");
    drop.bind(1, key).run();
    return std::nullopt;
  });
}

void Store::put_binary(const BinaryRecord& record) {
  impl_->run([&](Connection& db) {
    Transaction t(db);
    write_binary(db, record);
    t.commit();
  });
}

std::vector<TuningRecord> Store::list_tuning(const Filter& filter) {
  return impl_->run([&](Connection& db) {
    Statement s(db, std::string(kTuningColumns) + kFilterWhere + " ORDER BY gpu, b, i, h, o, precision");
    bind_filter(s, filter);
    std::vector<std::pair<std::int64_t, TuningRecord>> rows;
    while (s.step()) rows.push_back(read_tuning_row(s));
    std::vector<TuningRecord> out;
    for (auto& [id, rec] : rows) {
      read_candidates(db, id, rec);
      out.push_back(std::move(rec));
    }
    return out;
  });
}

std::vector<BinaryRecord> Store::list_binaries() {
  return impl_->run([&](Connection& db) {
    Statement s(db, "SELECT key, kernel, arch, nvrtc_version, symbols, cubin, hash, created_at FROM binaries ORDER BY key");
    std::vector<BinaryRecord> out;
    while (s.step())
      out.push_back({s.column_text(0), s.column_text(1), s.column_text(2), s.column_text(3), s.column_text(4),
                     s.column_blob(5), s.column_text(6), s.column_int(7)});
    return out;
  });
}

std::int64_t Store::remove_tuning(const Filter& filter) {
  return impl_->run([&](Connection& db) {
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
  Stats st = impl_->run([&](Connection& db) {
    Stats out;
    out.entries = db.query_int("SELECT count(*) FROM tuning");
    out.binaries = db.query_int("SELECT count(*) FROM binaries");
    out.binary_bytes = db.query_int("SELECT coalesce(sum(length(cubin)), 0) FROM binaries");
    Statement s(db, "SELECT gpu, count(*) FROM tuning GROUP BY gpu ORDER BY gpu");
    while (s.step()) out.per_gpu.push_back({s.column_text(0), s.column_int(1)});
    return out;
  });
  if (persistent()) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal"}) {
      const auto size = fs::file_size(impl_->path + suffix, ec);
      if (!ec) st.file_bytes += static_cast<std::int64_t>(size);
    }
  }
  return st;
}

PruneResult Store::prune(const std::string& template_hash, const std::string& engine_version) {
  return impl_->run([&](Connection& db) {
    PruneResult r;
    Transaction t(db);
    Statement stale(db, "DELETE FROM tuning WHERE template_hash <> ?1 OR engine_version <> ?2");
    stale.bind(1, template_hash).bind(2, engine_version).run();
    r.stale_entries = db.changes();
    // binary_key lists a candidate's binaries, comma-separated.
    db.exec(
        "DELETE FROM binaries WHERE NOT EXISTS (SELECT 1 FROM candidates"
        " WHERE instr(',' || candidates.binary_key || ',', ',' || binaries.key || ',') > 0)");
    r.orphan_binaries = db.changes();
    t.commit();
    return r;
  });
}

std::vector<std::string> Store::verify() {
  return impl_->run([&](Connection& db) {
    std::vector<std::string> problems;
    {
      Statement s(db, "PRAGMA integrity_check");
      while (s.step())
        if (const std::string line = s.column_text(0); line != "ok") problems.push_back("integrity_check: " + line);
    }
    Statement rows(db, std::string(kTuningColumns) + " ORDER BY id");
    std::vector<std::pair<std::int64_t, TuningRecord>> tuning;
    while (rows.step()) tuning.push_back(read_tuning_row(rows));
    for (auto& [id, rec] : tuning) {
      read_candidates(db, id, rec);
      if (const std::string why = invalid(rec); !why.empty())
        problems.push_back("tuning row " + std::to_string(id) + " (" + rec.key.gpu + " " +
                           std::to_string(rec.key.problem.b) + "," + std::to_string(rec.key.problem.i) + "," +
                           std::to_string(rec.key.problem.h) + "," + std::to_string(rec.key.problem.o) + " " +
                           rec.key.problem.precision + "): " + why);
    }
    Statement bins(db, "SELECT key, cubin, hash FROM binaries ORDER BY key");
    while (bins.step()) {
      const auto cubin = bins.column_blob(1);
      if (support::hash_hex(cubin.data(), cubin.size()) != bins.column_text(2))
        problems.push_back("binary " + bins.column_text(0) + ": cubin does not match its hash");
    }
    return problems;
  });
}

void Store::vacuum() {
  impl_->run([&](Connection& db) { db.exec("VACUUM"); });
}

void Store::import_records(const std::vector<TuningRecord>& tuning, const std::vector<BinaryRecord>& binaries) {
  for (std::size_t i = 0; i < tuning.size(); ++i)
    if (const std::string why = invalid(tuning[i]); !why.empty())
      throw Error(ErrorCode::CacheError, "tuning record " + std::to_string(i) + ": " + why);
  for (std::size_t i = 0; i < binaries.size(); ++i)
    if (const std::string why = invalid(binaries[i]); !why.empty())
      throw Error(ErrorCode::CacheError, "binary record " + std::to_string(i) + ": " + why);
  impl_->run([&](Connection& db) {
    Transaction t(db);
    for (const auto& r : tuning) write_tuning(db, r);
    for (const auto& b : binaries) write_binary(db, b);
    t.commit();
  });
}

}  // namespace rnnjit::cache
