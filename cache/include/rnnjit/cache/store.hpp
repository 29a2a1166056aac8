// The persistent tuning cache: tuned configs and compiled binaries in one SQLite file.
// Knows nothing of CUDA or kernels: keys and values are plain records.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace rnnjit::cache {

/// A problem as the cache sees it. dtype and then steps come last, with defaults, so that a key
/// written before they existed, {b, i, h, o, precision} or {b, i, h, o, precision, dtype}, still
/// means what it meant: f32, one step.
struct ProblemKey {
  std::int64_t b = 0, i = 0, h = 0, o = 0;
  std::string precision;      ///< the math: "fp32", "tf32", "bf16"
  std::string dtype = "f32";  ///< the storage type of the operands: "f32" or "bf16"
  /// 0: one step. > 0: a sequence, tuned for chunks of `steps` steps (the engine runs a sequence
  /// of any length in chunks of a few bucketed sizes).
  std::int64_t steps = 0;
  bool operator==(const ProblemKey&) const = default;
};

/// "B,I,H,O": the sizes alone, also of a sequence entry (entry_name tells those apart).
std::string shape_text(const ProblemKey& p);

/// What a tuned config is looked up by. A row whose template_hash or engine version
/// differs from the caller's is stale: never returned, replaced on the next write.
struct TuningKey {
  std::string gpu;  ///< GpuKey's procedural name
  ProblemKey problem;
  std::string template_hash;
  bool operator==(const TuningKey&) const = default;
};

/// How messages and rnnjit-cache name an entry: "GPU/B,I,H,O/DTYPE/PRECISION" for one step,
/// "GPU/B,I,H,O/seqN/DTYPE/PRECISION" for a sequence tuned for chunks of N steps. A step entry
/// keeps the spelling it had before sequences existed.
std::string entry_name(const TuningKey& k);

/// One timed candidate. A failed candidate is data: time_us is +infinity.
struct CandidateResult {
  std::string config;       ///< Config's procedural name
  double time_us = 0;       ///< median; +inf when it failed
  std::string disposition;  ///< "ok", "compile_failed", "launch_failed", "not_supported"
  std::string message;      ///< why it failed; empty when ok
  std::string binary_key;   ///< its BinaryRecord keys, comma-separated (one per stage); empty when none
  bool operator==(const CandidateResult&) const = default;
};

/// The tuner's verdict for one key.
struct TuningRecord {
  TuningKey key;
  std::string engine_version;
  std::string winner;  ///< config name
  double winner_us = 0;
  std::vector<CandidateResult> candidates;  ///< in the order they were proposed
  std::int64_t created_at = 0;              ///< unix seconds
  bool operator==(const TuningRecord&) const = default;
};

/// A compiled module. `key` hashes everything that shapes the bytes: specialized source,
/// NVRTC options, arch and NVRTC version. `hash` is the hash of `cubin`, checked on read.
struct BinaryRecord {
  std::string key;
  std::string kernel;         ///< human-readable: template file and config name
  std::string arch;           ///< "sm_90a"
  std::string nvrtc_version;  ///< "13.0"
  std::string symbols;        ///< name expressions and lowered names, encoded by the engine
  std::vector<std::uint8_t> cubin;
  std::string hash;  ///< support::hash_hex(cubin)
  std::int64_t created_at = 0;
  bool operator==(const BinaryRecord&) const = default;
};

/// Filters of `list`/`remove`; an empty field matches everything.
struct Filter {
  std::optional<std::string> gpu;  ///< substring of the gpu key
  std::optional<ProblemKey> shape; ///< b,i,h,o matched; its precision, dtype and steps ignored here
  std::optional<std::string> precision;
  std::optional<std::string> dtype;
  /// 0: the step entries only. Initialised so that a filter of the four fields before it,
  /// {gpu, shape, precision, dtype}, stays a complete initialisation.
  std::optional<std::int64_t> steps = std::nullopt;
};

struct Stats {
  struct PerGpu {
    std::string gpu;
    std::int64_t entries = 0;
  };
  std::int64_t entries = 0;
  std::int64_t binaries = 0;
  std::int64_t binary_bytes = 0;
  std::int64_t file_bytes = 0;  ///< 0 for memory
  std::vector<PerGpu> per_gpu;
};

struct PruneResult {
  std::int64_t stale_entries = 0;
  std::int64_t orphan_binaries = 0;
};

/// Open mode. Resilient (the engine's): an unusable file never fails a call; it logs one
/// warning and continues in memory, or moves a corrupt file aside and starts a fresh one; a
/// file it may not write (the file or its directory read-only) is read, and the first write
/// moves to memory with the file's entries. Strict (the tools'): every problem is an
/// rnnjit::Error(CacheError) with a clear message, a read-only file one of them.
/// ReadOnlyStrict (the tools' read commands): Strict, and the file is only ever read.
/// System (a system cache, the read-only layer under a Resilient store): the file is opened
/// immutable and only ever read, never migrated, moved or written; a missing file is an empty
/// cache, silently, and an unusable one (damaged, foreign, another schema) logs one warning and
/// is an empty cache from then on.
///
/// When corruption is found: the strict modes run PRAGMA quick_check at open. Resilient and
/// System do not, since it reads every page of the file and a warm start reads a few: SQLite
/// reports a damaged page when a lookup reads it (then Resilient moves the file aside), a binary's
/// bytes are checked against their hash on every read, and Resilient runs quick_check before its
/// first write to a file, so that nothing is written into a damaged one.
enum class Mode { Resilient, Strict, ReadOnlyStrict, System };

/// PRAGMA application_id of every cache this build creates ("rnnj"): how rnnjit tells its own
/// files from other SQLite databases. Caches made before it carry 0 and are recognised by their
/// tables (exactly rnnjit's); a writable open stamps them. Any other database is refused and
/// left as it is, never migrated nor moved aside.
constexpr std::int32_t kApplicationId = 0x726e6e6a;

/// The largest size a record may hold: the engine's kMaxDim (rnnjit.hpp), which this layer
/// cannot include; the tools, which see both, check that they agree.
constexpr std::int64_t kMaxDim = std::int64_t(1) << 20;

/// The most steps a sequence entry may be tuned for: the engine's kMaxSteps (rnnjit.hpp), the
/// most one sequence call runs; checked by the tools as kMaxDim is.
constexpr std::int64_t kMaxSteps = std::int64_t(1) << 24;

/// The latest created_at a record may hold: 9999-12-31T23:59:59Z.
constexpr std::int64_t kMaxCreatedAt = 253402300799;

/// Refuses, before anything opens it, what cannot be a cache file: a SQLite URI ("file:..."),
/// a directory, a FIFO or any other file that is not a regular one. Throws
/// Error(CacheError) "cache PATH: why"; a missing file and "off"/":memory:" pass.
void check_path(const std::string& path);

/// `text` with every control character but those in `keep` spelled \xNN: how messages and
/// rnnjit-cache print a record's text, so that a stored escape sequence never reaches a terminal.
std::string printable(const std::string& text, const char* keep = "");

/// Where the cache lives: `option` if given, else $RNNJIT_CACHE, else
/// $XDG_CACHE_HOME/rnnjit/cache.sqlite, else ~/.cache/rnnjit/cache.sqlite.
/// "off" (or ":memory:") means memory only.
std::string resolve_path(const std::optional<std::string>& option);

/// Where an install keeps its system cache: <prefix>/share/rnnjit/system.sqlite of the usual
/// prefix. A fixed path, not the build's install prefix, so that a wheel built in a scratch
/// directory and an install look in one place.
inline constexpr const char* kDefaultSystemPath = "/usr/local/share/rnnjit/system.sqlite";

/// Where the system cache lives: `option` if given, else $RNNJIT_SYSTEM_CACHE, else
/// kDefaultSystemPath. "off" (or ":memory:") means none.
std::string resolve_system_path(const std::optional<std::string>& option);

/// The schema version this build writes (PRAGMA user_version). 2: dtype in the tuning key;
/// 3: steps in the tuning key.
constexpr int kSchemaVersion = 3;

/// Checks records before any is stored, for form and meaning, by the rules the engine keeps:
/// sizes 1..kMaxDim, precision fp32/tf32/bf16, dtype f32/bf16, steps 0..kMaxSteps, times
/// non-negative (+inf only for a candidate that did not run), a finite winner time, created_at
/// in 0..kMaxCreatedAt, no control characters in text (but newlines and tabs in messages and
/// symbols), each entry and each binary once. The first bad one is an Error(CacheError) that
/// names it by its index in its list and says why ("tuning record 2
/// (GPU/B,I,H,O/DTYPE/PRECISION): winner 'x' is not among the candidates"). The one set of
/// rules for Store::import_records, read_exchange and Store::verify.
void validate(const std::vector<TuningRecord>& tuning, const std::vector<BinaryRecord>& binaries);

/// Thread-safe; one SQLite connection guarded by a mutex. Several processes may share a
/// file: WAL, a busy timeout, BEGIN IMMEDIATE for every write, each write one transaction.
class Store {
 public:
  /// `system`: a system cache under this one (as MIOpen ships a system database beside the
  /// user's), or "off" (":memory:") for none. find_tuning and find_binary consult it, in
  /// Mode::System, where this store has no entry, so that an entry in both is this store's; it
  /// is opened at the first such miss (a warm start never opens it) and never written. Every
  /// other call sees this store alone. Only a Resilient store takes one; a system path naming
  /// this store's own file is ignored.
  explicit Store(std::string path, Mode mode = Mode::Resilient, std::string system = "off");
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// The file in use, or ":memory:".
  std::string path() const;
  /// False when memory only, by choice or after a fallback.
  bool persistent() const;
  /// True while the file is open read-only (ReadOnlyStrict, or a file or directory this
  /// process may not write): lookups read it; in Resilient mode the first write copies its
  /// entries into memory and goes on there.
  bool read_only() const;

  /// This store's current record for `key`, else the system cache's.
  std::optional<TuningRecord> find_tuning(const TuningKey& key, const std::string& engine_version);
  /// UPSERT; also deletes stale rows (other template_hash or engine version) for the same
  /// gpu+problem, in the same transaction.
  void put_tuning(const TuningRecord& record);

  /// Returns the binary only if its bytes still hash to `hash`; a damaged row is deleted (never
  /// in a file opened read-only). This store's, else the system cache's.
  std::optional<BinaryRecord> find_binary(const std::string& key);
  void put_binary(const BinaryRecord& record);

  // --- for the tools ---
  std::vector<TuningRecord> list_tuning(const Filter& filter = {});
  std::vector<BinaryRecord> list_binaries();
  /// Removes matching tuning rows; returns how many.
  std::int64_t remove_tuning(const Filter& filter);
  Stats stats();
  /// Removes tuning rows whose template_hash or engine_version differ from the given
  /// ones, then binaries no candidate refers to.
  PruneResult prune(const std::string& template_hash, const std::string& engine_version);
  /// Empty when healthy; otherwise one line per problem (integrity_check, rows that do not
  /// decode, binaries whose hash does not match).
  std::vector<std::string> verify();
  void vacuum();
  /// Writes every record in one transaction: all or nothing.
  void import_records(const std::vector<TuningRecord>& tuning, const std::vector<BinaryRecord>& binaries);

 private:
  // The system cache, opened at the first call; null when there is none.
  Store* system_layer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace rnnjit::cache
