// rnnjit: the vanilla RNN step on NVIDIA GPUs, specialized per shape by NVRTC and tuned on
// first use.
//
//     h' = tanh([x, h] · W1ᵀ + b1)        y = h' · W2ᵀ + b2
//
// x: B×I, h and h': B×H, W1: H×(I+H), b1: H, W2: O×H, b2: O, y: B×O; row-major, in device
// memory of the engine's device (as torch.nn.Linear stores its weights), every tensor of the
// problem's storage type (DType).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "rnnjit/error.hpp"
#include "rnnjit/version.hpp"

/// The driver's and the runtime's stream handle (cudaStream_t and CUstream are both this).
struct CUstream_st;

namespace rnnjit {

/// A stream of the engine's device; nullptr is the legacy default stream.
using Stream = CUstream_st*;

/// The arithmetic of the products: what the caller accepts in exchange for speed. Sums, bias and
/// tanh are fp32 whatever it is.
enum class Precision {
  Default,  ///< the engine's default precision
  FP32,     ///< fp32-accurate (≤ 1e-5 relative error): split products on tensor cores, or FFMA
  TF32,     ///< tensor-core TF32 (≤ 2e-3 relative error)
  BF16,     ///< bf16 products (≤ 1e-2): what bf16 storage computes, and only with it
};

/// "fp32", "tf32", "bf16" ("default" for Default).
const char* precision_name(Precision p) noexcept;
/// Inverse of precision_name; throws InvalidArgument on anything else.
Precision parse_precision(const std::string& name);

/// The storage type of every tensor of a problem (x, h, h', y, W1, b1, W2, b2).
enum class DType {
  F32,   ///< float
  BF16,  ///< bfloat16 (2-byte aligned pointers): precision Default or BF16, steps only (sequences: Unsupported)
};

/// "f32", "bf16".
const char* dtype_name(DType t) noexcept;
/// Inverse of dtype_name; throws InvalidArgument on anything else.
DType parse_dtype(const std::string& name);
/// Bytes of one element.
std::size_t dtype_size(DType t) noexcept;

/// The sizes of one step. Every dimension is 1..kMaxDim.
struct Problem {
  std::int64_t batch = 0;   ///< B
  std::int64_t input = 0;   ///< I
  std::int64_t hidden = 0;  ///< H
  std::int64_t output = 0;  ///< O
  Precision precision = Precision::Default;
  DType dtype = DType::F32;  ///< of every tensor
  bool operator==(const Problem&) const = default;
};

/// Largest accepted dimension (index arithmetic is 64-bit where products can exceed 2³¹).
constexpr std::int64_t kMaxDim = 1 << 20;
/// The most steps one Engine::rnn_sequence call runs.
constexpr std::int64_t kMaxSteps = 1 << 24;

/// Device pointers to the parameters, of the problem's DType; W1 is H×(I+H), W2 is O×H, row-major.
struct Weights {
  const void* w1 = nullptr;
  const void* b1 = nullptr;
  const void* w2 = nullptr;
  const void* b2 = nullptr;
};

enum class LogLevel { Trace, Debug, Info, Warn, Error, Off };

/// What the first uncaptured call for a problem no cache knows does.
enum class TuningMode {
  /// Compiles the candidates and times them on the caller's stream, then runs the winner: the
  /// call takes about a second, every later call runs the tuned plan. The default.
  Blocking,
  /// Runs at once a generic plan built with the library (no NVRTC; inside graph capture, the
  /// heuristic's first candidate); a thread of the engine compiles the candidates and times them
  /// on a stream and scratch buffers of its own, beside the caller's work, then later calls run
  /// the winner (persisted as Blocking's is).
  Background,
};

/// How an Engine is made.
struct EngineOptions {
  int device = 0;                          ///< CUDA device ordinal
  std::optional<std::string> cache_path;   ///< overrides $RNNJIT_CACHE; "off" = memory only
  /// The read-only system cache consulted where the cache misses: overrides
  /// $RNNJIT_SYSTEM_CACHE, else /usr/local/share/rnnjit/system.sqlite; "off" = none.
  std::optional<std::string> system_cache_path;
  Precision default_precision = Precision::TF32;  ///< what Default runs with f32 tensors; Default here is TF32
  std::optional<LogLevel> log_level;       ///< overrides $RNNJIT_LOG_LEVEL (default warn)
  /// Overrides $RNNJIT_TUNING ("blocking" or "background"); default Blocking.
  std::optional<TuningMode> tuning;
  /// Ask the driver, on every call, that each pointer is device memory of this device with
  /// room for its operand (~0.2 µs a pointer, 8 a call). Off: null, alignment and overlap
  /// checks only, for latency-bound loops whose buffers are known good.
  bool check_pointers = true;
};

/// What the engine knows of its GPU; `key` is the tuning cache's GPU key.
struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int cc_major = 0, cc_minor = 0;
  int sm_count = 0;
  std::int64_t l2_bytes = 0;
  std::int64_t smem_per_block_optin = 0;
  std::string arch;  ///< NVRTC target: "sm_90a", "sm_89", ...
  std::string key;
};

/// What became of a tuning candidate.
enum class Disposition {
  Ok,             ///< timed
  CompileFailed,  ///< NVRTC rejected it
  LaunchFailed,   ///< a driver call failed loading or running it
  NotSupported,   ///< it cannot take the call's pointers (TMA needs 16-byte alignment)
};

/// "ok", "compile_failed", "launch_failed", "not_supported": as the cache stores it.
const char* disposition_name(Disposition d) noexcept;
/// Inverse of disposition_name; throws InvalidArgument on anything else.
Disposition parse_disposition(const std::string& name);

/// One candidate as the tuner measured it.
struct CandidateReport {
  std::string config;
  double time_us = 0;  ///< +inf when it failed
  Disposition disposition = Disposition::Ok;
  std::string message;
};

/// How a problem's plan was obtained.
struct TuneReport {
  Problem problem;
  std::string winner;
  double winner_us = 0;
  std::vector<CandidateReport> candidates;  ///< in proposal order; [0] is the heuristic's pick
  bool from_cache = false;                  ///< true when no timing was done
  double seconds = 0;                       ///< wall time of the whole tuning
};

/// Counters for tests and tools.
struct EngineStats {
  std::int64_t nvrtc_compiles = 0;   ///< programs NVRTC compiled
  std::int64_t binary_cache_hits = 0;
  std::int64_t tunings = 0;          ///< problems timed
  std::int64_t tuning_cache_hits = 0;
  std::int64_t background_tunings = 0;  ///< problems handed to the background tuner
  std::int64_t background_pending = 0;  ///< of those, not finished yet
};

/// Where a problem's plan stands in an engine.
enum class PlanState {
  None,     ///< no call has needed the problem yet
  Untuned,  ///< the heuristic's first candidate, picked inside graph capture; the next uncaptured call tunes
  Tuning,   ///< TuningMode::Background: a first plan (the generic one) runs while the candidates are timed
  Tuned,    ///< the tuned winner, a cached one, or a pinned config
};

/// The plan an engine runs for a problem now.
struct PlanInfo {
  PlanState state = PlanState::None;
  std::string config;  ///< its config's name; empty for None
};

/// One per device. Thread-safe: any number of threads may call rnn_step concurrently.
/// The driver is loaded at construction: without one, throws Error(NoDriver/NoDevice).
class Engine {
 public:
  explicit Engine(const EngineOptions& options = {});
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// One step on `stream`. The first call for a problem compiles and times candidates
  /// (unless the cache knows it, or the stream is capturing a graph); later calls launch
  /// directly. h_out may alias h. Throws InvalidArgument, leaving outputs untouched, for
  /// null, host, foreign-device, too-small or misaligned (not 4-byte) pointers, sizes out
  /// of range, and y overlapping any other buffer.
  void rnn_step(const Problem& problem, const Weights& weights, const void* x, const void* h, void* h_out,
                void* y, Stream stream = nullptr);

  /// `steps` steps in one call, as an RNN layer runs a sequence: for t = 0..steps−1,
  /// h_{t+1} = tanh([x_t, h_t]·W1ᵀ + b1) and y_t = h_{t+1}·W2ᵀ + b2. x is steps×B×I (time-major,
  /// contiguous, as nn.RNN takes it), h0 B×H, y steps×B×O; h_n (B×H) gets the last state and may
  /// alias h0; h_all (steps×B×H, or nullptr) gets every state h_1..h_steps. The step's tuning
  /// serves every length. Each step runs the step's plan, enqueued in one call: no per-step
  /// checks, one launch counter set, capturable in a graph. Throws InvalidArgument, leaving the
  /// outputs untouched, as rnn_step does, and for steps outside 1..kMaxSteps or y, h_all or h_n
  /// overlapping another buffer (h_n may overlap h0).
  void rnn_sequence(const Problem& problem, std::int64_t steps, const Weights& weights, const void* x, const void* h0,
                    void* y, void* h_n, void* h_all = nullptr, Stream stream = nullptr);

  /// Tunes `problem` now (the tools' prewarm): times the candidates on scratch buffers
  /// filled with random data, persists the winner. `force` retunes a cached problem.
  TuneReport tune(const Problem& problem, bool force = false);

  /// The same for sequences of `steps` steps: tunes the chunk size they run in (every length with
  /// that chunk shares it), so that a first rnn_sequence does not tune. Throws InvalidArgument for
  /// steps outside 1..kMaxSteps, Unsupported for bf16 tensors.
  TuneReport tune_sequence(const Problem& problem, std::int64_t steps, bool force = false);

  /// Runs `problem` with `config` (a name from candidates() or the cache) from now on in this
  /// engine, untimed and not persisted: how tests and tools run one kernel. A sequence config
  /// ("xproj_….recur_….h2o_…", from sequence_candidates()) runs the problem's rnn_sequence calls
  /// instead, every length. Throws InvalidArgument for a name that does not parse or cannot run
  /// the problem here.
  void pin(const Problem& problem, const std::string& config);

  /// The candidates the heuristic proposes for `problem` on this device, in order.
  std::vector<std::string> candidates(const Problem& problem) const;
  /// The same for rnn_sequence calls of `steps` steps (one tuning a chunk size serves them).
  std::vector<std::string> sequence_candidates(const Problem& problem, std::int64_t steps) const;

  /// The plan `problem` runs with now (pointers TMA cannot take aside, which run the best config
  /// without TMA): how a caller sees background tuning finish.
  PlanInfo plan_info(const Problem& problem) const;

  const DeviceInfo& device() const;
  /// The SQLite file in use, or ":memory:".
  std::string cache_path() const;
  EngineStats stats() const;
  /// `problem` with Default replaced by the engine's default precision.
  Problem resolve(const Problem& problem) const;

 private:
  friend class RnnCell;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// An RNN cell: weights plus a double-buffered hidden state on the device, advanced by
/// step() as a recurrent model's forward does with its `hidden` attribute.
class RnnCell {
 public:
  /// Allocates two B×H state buffers (zeroed). The weights stay owned by the caller.
  RnnCell(Engine& engine, const Problem& problem, const Weights& weights);
  ~RnnCell();
  RnnCell(const RnnCell&) = delete;
  RnnCell& operator=(const RnnCell&) = delete;

  /// Sets the state from B×H device memory h0, or zeros when h0 is nullptr.
  void reset(const void* h0 = nullptr, Stream stream = nullptr);
  /// h ← tanh([x, h]·W1ᵀ + b1); y ← h·W2ᵀ + b2 (y: B×O device memory).
  void step(const void* x, void* y, Stream stream = nullptr);
  /// `steps` steps from the current state (Engine::rnn_sequence): x steps×B×I, y steps×B×O,
  /// h_all steps×B×H or nullptr; the state becomes the last one.
  void sequence(std::int64_t steps, const void* x, void* y, void* h_all = nullptr, Stream stream = nullptr);
  /// The current state (B×H device memory, valid until the next step or reset).
  const void* hidden() const;
  const Problem& problem() const;

 private:
  Engine& engine_;
  Problem problem_;
  Weights weights_;
  void* state_[2] = {nullptr, nullptr};
  int current_ = 0;
};

/// The step in float64 on the CPU, from host arrays laid out as the device ones:
/// h_out (B×H) and y (B×O) are resized and filled. The tests' and tools' reference.
void reference_step(std::int64_t batch, std::int64_t input, std::int64_t hidden, std::int64_t output,
                    const float* w1, const float* b1, const float* w2, const float* b2,
                    const float* x, const float* h, std::vector<double>& h_out, std::vector<double>& y);

/// ‖out − ref‖₂ / ‖ref‖₂; +inf if any element of `out` is NaN or infinite.
double relative_error(const std::vector<float>& out, const std::vector<double>& ref);

/// The relative_error against float64 of the same inputs that every kernel of precision `p` stays
/// within: FP32 1e-5, TF32 2e-3, BF16 1e-2. Default has none of its own: throws InvalidArgument
/// (Engine::resolve says what a problem's Default runs).
double error_bound(Precision p);

}  // namespace rnnjit
