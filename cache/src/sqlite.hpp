// A thin RAII layer over SQLite: connection, statement, transaction. Every return code is
// checked; failures are rnnjit::Error(CacheError) carrying SQLite's extended code.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rnnjit/error.hpp"

namespace rnnjit::cache::sql {

/// A failed SQLite call; `sqlite_code()` is the extended result code.
class SqliteError : public Error {
 public:
  SqliteError(int code, const std::string& message) : Error(ErrorCode::CacheError, message), code_(code) {}
  int sqlite_code() const noexcept { return code_; }
  /// The primary code (SQLITE_BUSY, SQLITE_CORRUPT, ...).
  int primary() const noexcept { return code_ & 0xff; }

 private:
  int code_;
};

class Connection {
 public:
  /// sqlite3_open_v2 with `flags`; throws SqliteError.
  Connection(const std::string& path, int flags);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs SQL without results (several statements allowed).
  void exec(const std::string& sql);
  /// The first column of the first row of a one-value query.
  std::int64_t query_int(const std::string& sql);
  sqlite3* get() const { return db_; }
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  [[noreturn]] void fail(int code, const std::string& what) const;

 private:
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(Connection& db, const std::string& sql);
  ~Statement();
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  /// Parameters are 1-based, as in SQLite.
  Statement& bind(int index, std::int64_t v);
  Statement& bind(int index, double v);
  Statement& bind(int index, const std::string& v);
  Statement& bind(int index, const std::vector<std::uint8_t>& blob);
  Statement& bind_null(int index);
  /// Optional values bind NULL when empty.
  Statement& bind(int index, const std::optional<std::string>& v);
  Statement& bind(int index, const std::optional<std::int64_t>& v);

  /// True while a row is available; false when done.
  bool step();
  /// Steps to completion (statements without rows).
  void run();
  /// Ready for new bindings and a new run.
  void reset();

  std::int64_t column_int(int i) const { return sqlite3_column_int64(stmt_, i); }
  double column_double(int i) const { return sqlite3_column_double(stmt_, i); }
  bool column_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }
  std::string column_text(int i) const;
  std::vector<std::uint8_t> column_blob(int i) const;

 private:
  void check(int rc, const char* what);
  Connection& db_;
  sqlite3_stmt* stmt_ = nullptr;
  std::string sql_;
};

/// BEGIN IMMEDIATE (the write lock up front, so a busy database is met at the start, under
/// the busy timeout); rolls back in its destructor unless committed.
class Transaction {
 public:
  explicit Transaction(Connection& db);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  Connection& db_;
  bool done_ = false;
};

}  // namespace rnnjit::cache::sql
