// A thin RAII layer over SQLite: connection, statement, transaction. Every return code is
// checked; a failure is a SqliteError (an rnnjit::Error(CacheError)) that carries SQLite's
// message, the SQL and the extended result code, so that callers can tell a damaged file
// from a locked or read-only one.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "rnnjit/error.hpp"

namespace rnnjit::cache::sql {

/// A failed SQLite call.
class SqliteError : public Error {
 public:
  SqliteError(int code, const std::string& message) : Error(ErrorCode::CacheError, message), code_(code) {}
  /// The extended result code (SQLITE_BUSY_SNAPSHOT, SQLITE_CORRUPT_INDEX, ...).
  int sqlite_code() const noexcept { return code_; }
  /// The primary result code (SQLITE_BUSY, SQLITE_CORRUPT, ...).
  int primary() const noexcept { return code_ & 0xff; }

 private:
  int code_;
};

/// One sqlite3 connection, closed when destroyed.
class Connection {
 public:
  /// sqlite3_open_v2 with `flags` (SQLITE_OPEN_*); throws SqliteError.
  Connection(const std::string& path, int flags);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  /// Runs SQL that returns no rows; several statements are allowed.
  void exec(const std::string& sql);
  /// The first column of the first row of `sql`.
  std::int64_t query_int(const std::string& sql);
  /// The first column of every row of `sql`, as text.
  std::vector<std::string> query_texts(const std::string& sql);
  /// How long a locked database is waited for before SQLITE_BUSY.
  void busy_timeout(int ms);
  /// True when SQLite opened the main database read-only (flags, or a write-protected file).
  bool read_only() const;
  /// Copies every page of this database into `target`, replacing what it held (SQLite's
  /// backup API): how a read-only file's entries move into memory.
  void copy_into(Connection& target);
  /// Rows changed by the last INSERT/UPDATE/DELETE.
  std::int64_t changes() const { return sqlite3_changes64(db_); }
  /// The raw handle, for calls this layer does not wrap.
  sqlite3* get() const { return db_; }
  /// Throws SqliteError(code) for `what`, with the connection's current message.
  [[noreturn]] void fail(int code, const std::string& what) const;

 private:
  sqlite3* db_ = nullptr;
};

/// A prepared statement, finalized when destroyed. It must not outlive its connection.
class Statement {
 public:
  /// sqlite3_prepare_v2 of one statement; throws SqliteError.
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
  /// Binds NULL when empty.
  Statement& bind(int index, const std::optional<std::string>& v);
  /// Binds NULL when empty.
  Statement& bind(int index, const std::optional<std::int64_t>& v);

  /// True while a row is available, false when done.
  bool step();
  /// Steps to the end (statements whose rows are not wanted).
  void run();
  /// Ready for new bindings and a new run; releases the statement's read snapshot.
  void reset() noexcept;

  /// Columns of the current row, 0-based.
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

/// Resets a long-lived statement when the scope ends, however it ends: a statement left
/// mid-result would keep its read snapshot (and the WAL) pinned.
class ResetOnExit {
 public:
  /// Resets `s` when destroyed.
  explicit ResetOnExit(Statement& s) : s_(s) {}
  ~ResetOnExit() { s_.reset(); }
  ResetOnExit(const ResetOnExit&) = delete;
  ResetOnExit& operator=(const ResetOnExit&) = delete;

 private:
  Statement& s_;
};

/// A transaction, rolled back when destroyed unless committed.
class Transaction {
 public:
  enum class Kind {
    /// BEGIN IMMEDIATE, for writes: the write lock is taken up front, so a busy database is
    /// met here, under the busy timeout, rather than as a deadlock halfway through.
    Write,
    /// BEGIN (deferred), for reads that must see one consistent snapshot.
    Read,
  };
  explicit Transaction(Connection& db, Kind kind = Kind::Write);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  /// COMMIT; on failure the transaction stays open and is rolled back when destroyed.
  void commit();

 private:
  Connection& db_;
  bool done_ = false;
};

}  // namespace rnnjit::cache::sql
