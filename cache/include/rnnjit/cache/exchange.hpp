// The export file: a cache's records as JSON, to ship tuned configs (and, optionally, their
// binaries) to another machine. One format, read and written here; rnnjit-cache only calls it.
#pragma once

#include <string>
#include <vector>

#include "rnnjit/cache/store.hpp"

namespace rnnjit::cache {

/// The "format" field of every export file.
inline constexpr const char* kExchangeFormat = "rnnjit-cache";

/// The export format version this build writes. Bump it when the layout changes, and keep
/// reading the older ones: 1 had no "dtype" (its records are f32), 2 has it, 3 has "steps" too
/// (older records are one step, steps 0).
constexpr int kExchangeVersion = 3;

/// The contents of one export file.
struct Exchange {
  std::string engine_version;  ///< of the build that wrote the file; informative only
  std::vector<TuningRecord> tuning;
  std::vector<BinaryRecord> binaries;
};

/// One tuning record in the export file's JSON form (indented by 2): what `rnnjit-cache show --json` prints.
std::string to_json(const TuningRecord& record);

/// A JSON list of tuning records in the export file's form: what `rnnjit-cache list --json` prints.
std::string to_json(const std::vector<TuningRecord>& records);

/// Reads an export file of any version this build knows. Every record is decoded and checked
/// (validate()) before the call returns, so that an import writes all of it or none; the
/// first bad record rejects the file with an Error(CacheError) naming the file, the record
/// and the field ("tuning record 2: field 'winner' is missing").
Exchange read_exchange(const std::string& file);

/// Writes `content` to `file` in the current format, atomically: into a fresh temporary file
/// beside it, flushed to disk, then renamed over it, so that a reader finds the old file or
/// the new one, whole. `cache_path` is the cache the records come from: a `file` that is that
/// cache (or its -wal or -shm) is refused with an Error(CacheError) before anything is written.
void write_exchange(const std::string& file, const Exchange& content, const std::string& cache_path);

}  // namespace rnnjit::cache
