#include "sqlite.hpp"

namespace rnnjit::cache::sql {

Connection::Connection(const std::string& path, int flags) {
  const int rc = sqlite3_open_v2(path.c_str(), &db_, flags | SQLITE_OPEN_EXRESCODE, nullptr);
  if (rc != SQLITE_OK) {
    const std::string msg = db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    sqlite3_close_v2(db_);
    db_ = nullptr;
    throw SqliteError(rc, "cannot open " + path + ": " + msg);
  }
  sqlite3_extended_result_codes(db_, 1);
}

Connection::~Connection() { sqlite3_close_v2(db_); }

void Connection::fail(int code, const std::string& what) const {
  throw SqliteError(code, what + ": " + sqlite3_errmsg(db_) + " (code " + std::to_string(code) + ")");
}

void Connection::exec(const std::string& sql) {
  char* err = nullptr;
  const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    const std::string msg = err ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    throw SqliteError(sqlite3_extended_errcode(db_), "'" + sql + "' failed: " + msg);
  }
}

std::int64_t Connection::query_int(const std::string& sql) {
  Statement s(*this, sql);
  if (!s.step()) fail(SQLITE_ERROR, "'" + sql + "' returned no row");
  return s.column_int(0);
}

Statement::Statement(Connection& db, const std::string& sql) : db_(db), sql_(sql) {
  check(sqlite3_prepare_v2(db_.get(), sql.c_str(), static_cast<int>(sql.size()), &stmt_, nullptr), "prepare");
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

void Statement::check(int rc, const char* what) {
  if (rc != SQLITE_OK) db_.fail(rc, std::string(what) + " '" + sql_ + "'");
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
  check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "bind");
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
  db_.fail(sqlite3_extended_errcode(db_.get()), "step '" + sql_ + "'");
}

void Statement::run() {
  while (step()) {
  }
}

void Statement::reset() {
  sqlite3_reset(stmt_);  // returns the last step's error, already reported
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

Transaction::Transaction(Connection& db) : db_(db) { db_.exec("BEGIN IMMEDIATE"); }

Transaction::~Transaction() {
  if (!done_) sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);  // never throws
}

void Transaction::commit() {
  db_.exec("COMMIT");
  done_ = true;
}

}  // namespace rnnjit::cache::sql
