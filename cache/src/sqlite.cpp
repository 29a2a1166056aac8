#include "sqlite.hpp"

#include "support/log.hpp"

namespace rnnjit::cache::sql {
namespace {

// SQL as it reads in one line of a message: whitespace collapsed, long text cut.
std::string brief(const std::string& sql) {
  constexpr std::size_t kMax = 120;
  std::string out;
  for (const char c : sql) {
    const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
    if (space && (out.empty() || out.back() == ' ')) continue;
    out += space ? ' ' : c;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out.size() > kMax ? out.substr(0, kMax) + "..." : out;
}

std::string describe(int code, const std::string& message) {
  return message + " (SQLite code " + std::to_string(code) + ")";
}

}  // namespace

Connection::Connection(const std::string& path, int flags) {
  // EXRESCODE: extended codes from the open itself too (SQLITE_CANTOPEN_ISDIR, ...).
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);  // a handle comes back even on failure, and must be closed
    db_ = nullptr;
    throw SqliteError(rc, describe(rc, "cannot open " + path + ": " + msg));
  }
  const int ext = sqlite3_extended_result_codes(db_, 1);
  if (ext != SQLITE_OK) {
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SqliteError(ext, describe(ext, "cannot enable extended result codes for " + path));
  }
}

Connection::~Connection() {
  // close_v2 defers the close until every statement is finalized and cannot fail for a
  // valid handle; a destructor has nobody to report to anyway.
  if (sqlite3_close_v2(db_) != SQLITE_OK) support::log().debug("sqlite3_close_v2 failed");
}

void Connection::fail(int code, const std::string& what) const {
  throw SqliteError(code, describe(code, what + ": " + sqlite3_errmsg(db_)));
}

void Connection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(sqlite3_extended_errcode(db_),
                      describe(sqlite3_extended_errcode(db_), "'" + brief(sql) + "' failed: " + msg));
  }
}

std::int64_t Connection::query_int(const std::string& sql) {
  Statement s(*this, sql);
  if (!s.step()) throw SqliteError(SQLITE_ERROR, "'" + brief(sql) + "' returned no row");
  return s.column_int(0);
}

std::vector<std::string> Connection::query_texts(const std::string& sql) {
  Statement s(*this, sql);
  std::vector<std::string> out;
  while (s.step()) out.push_back(s.column_text(0));
  return out;
}

void Connection::busy_timeout(int ms) {
  if (const int rc = sqlite3_busy_timeout(db_, ms); rc != SQLITE_OK) fail(rc, "sqlite3_busy_timeout");
}

bool Connection::read_only() const {
  const int ro = sqlite3_db_readonly(db_, "main");
  if (ro < 0) fail(SQLITE_ERROR, "sqlite3_db_readonly: no main database");
  return ro == 1;
}

void Connection::copy_into(Connection& target) {
  sqlite3_backup* b = sqlite3_backup_init(target.db_, "main", db_, "main");
  if (!b) target.fail(sqlite3_extended_errcode(target.db_), "sqlite3_backup_init");
  const int step = sqlite3_backup_step(b, -1);
  // finish reports the step's error too; the first one is the one to tell.
  const int finish = sqlite3_backup_finish(b);
  if (step != SQLITE_DONE) target.fail(step, "copying the database (sqlite3_backup_step)");
  if (finish != SQLITE_OK) target.fail(finish, "copying the database (sqlite3_backup_finish)");
}

Statement::Statement(Connection& db, const std::string& sql) : db_(db), sql_(sql) {
  check(sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr), "prepare");
}

Statement::~Statement() {
  // finalize repeats the last step's error, which step() has already reported.
  sqlite3_finalize(stmt_);
}

void Statement::check(int rc, const char* what) {
  if (rc != SQLITE_OK) db_.fail(rc, std::string(what) + " '" + brief(sql_) + "'");
}

Statement& Statement::bind(int i, std::int64_t v) {
  check(sqlite3_bind_int64(stmt_, i, v), "bind");
  return *this;
}

Statement& Statement::bind(int i, double v) {
  check(sqlite3_bind_double(stmt_, i, v), "bind");
  return *this;
}

Statement& Statement::bind(int i, const std::string& v) {
  check(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), "bind");
  return *this;
}

Statement& Statement::bind(int i, const std::vector<std::uint8_t>& blob) {
  // An empty vector's data() may be null, which SQLite would store as NULL: bind zeroblob.
  check(blob.empty() ? sqlite3_bind_zeroblob(stmt_, i, 0)
                     : sqlite3_bind_blob64(stmt_, i, blob.data(), blob.size(), SQLITE_TRANSIENT),
        "bind");
  return *this;
}

Statement& Statement::bind_null(int i) {
  check(sqlite3_bind_null(stmt_, i), "bind");
  return *this;
}

Statement& Statement::bind(int i, const std::optional<std::string>& v) { return v ? bind(i, *v) : bind_null(i); }

Statement& Statement::bind(int i, const std::optional<std::int64_t>& v) { return v ? bind(i, *v) : bind_null(i); }

bool Statement::step() {
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  db_.fail(rc, "step '" + brief(sql_) + "'");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() noexcept {
  // reset returns the last step's error, already reported by step(); clear_bindings
  // always succeeds.
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::string Statement::column_text(int i) const {
  const auto* p = sqlite3_column_text(stmt_, i);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, i)))
           : std::string();
}

std::vector<std::uint8_t> Statement::column_blob(int i) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, i));
  return p ? std::vector<std::uint8_t>(p, p + sqlite3_column_bytes(stmt_, i)) : std::vector<std::uint8_t>();
}

Transaction::Transaction(Connection& db, Kind kind) : db_(db) { db_.exec(kind == Kind::Write ? "BEGIN IMMEDIATE" : "BEGIN"); }

Transaction::~Transaction() {
  // Some errors (SQLITE_FULL, SQLITE_IOERR, ...) end the transaction themselves: then
  // there is nothing left to roll back.
  if (done_ || sqlite3_get_autocommit(db_.get())) return;
  if (const int rc = sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr); rc != SQLITE_OK)
    support::log().debug("ROLLBACK failed: {}", sqlite3_errmsg(db_.get()));
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace rnnjit::cache::sql
