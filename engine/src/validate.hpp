// Argument validation at the API's edge, before anything is enqueued: sizes, precision and
// storage type, pointers, overlaps. Reusable by every call that takes the step's buffers.
#pragma once

#include <cstddef>

#include "device.hpp"
#include "problem.hpp"

namespace rnnjit {

/// The precision `p` runs in: its own, or for Default bf16 with bf16 tensors and
/// `default_precision` with f32 ones (not checked against the storage type: shape_of does that).
Precision resolved_precision(const Problem& p, Precision default_precision);

/// `p` as a Shape: sizes in 1..kMaxDim, the precision resolved (resolved_precision).
/// Throws InvalidArgument for a size out of range, Unsupported for what is not served yet.
Shape shape_of(const Problem& p, Precision default_precision);

/// How much a call checks its pointers.
enum class PointerChecks {
  Full,   ///< also ask the driver that each is device memory of this device with room for its operand
  Cheap,  ///< null and alignment only (EngineOptions::check_pointers = false)
};

/// Checks pointers against one device.
class PointerChecker {
 public:
  PointerChecker(int device_ordinal, PointerChecks checks) : ordinal_(device_ordinal), checks_(checks) {}
  /// Throws InvalidArgument naming `name` unless `p` is element-aligned memory of the device holding `bytes`.
  void check(const char* name, const void* p, std::size_t bytes, std::size_t alignment) const;

 private:
  int ordinal_;
  PointerChecks checks_;
};

/// How a step's output h_out relates to its inputs.
enum class HiddenAliasing {
  Apart,     ///< h_out overlaps no input: the plan writes it directly
  Overlaps,  ///< h_out overlaps x or h (h_out == h is the RNN loop's case): stage it, then copy
};

/// Validates a step's buffers for `s` (Weights and pointers as Engine::rnn_step takes them): each
/// pointer, y against every other buffer, h_out against the weights. Throws InvalidArgument,
/// before anything is written.
HiddenAliasing check_step_buffers(const Shape& s, const Weights& w, const void* x, const void* h, const void* h_out,
                                  const void* y, const PointerChecker& checker);

/// Throws InvalidArgument unless 1 ≤ steps ≤ kMaxSteps.
void check_steps(std::int64_t steps);

/// Validates a sequence's buffers for `steps` steps of `s` (as Engine::rnn_sequence takes them;
/// h_all may be null): each pointer, then y and h_all against every other buffer, h_n against
/// every buffer but h0. Throws InvalidArgument, before anything is written.
void check_sequence_buffers(const Shape& s, std::int64_t steps, const Weights& w, const void* x, const void* h0,
                            const void* y, const void* h_n, const void* h_all, const PointerChecker& checker);

}  // namespace rnnjit
