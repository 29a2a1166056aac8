// A problem as the engine's internals see it: validated sizes, resolved precision and storage
// type, and what each launch of a step computes.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>

#include "rnnjit/rnnjit.hpp"
#include "rnnjit_shared.h"

namespace rnnjit {

/// A Problem with its sizes validated (1..kMaxDim, so int) and its precision resolved (never
/// Default).
struct Shape {
  int b = 0, i = 0, h = 0, o = 0;
  Precision precision = Precision::TF32;
  DType dtype = DType::F32;
  /// 0: one step. > 0: a sequence run in chunks of this many steps (sequence_chunk()), whose
  /// projections take the chunk's steps·b rows at once.
  int steps = 0;
  bool operator==(const Shape&) const = default;
};

/// `s` as one step (steps 0): the problem a sequence's chunks belong to.
inline Shape one_step(Shape s) {
  s.steps = 0;
  return s;
}

/// The most steps a sequence chunk holds: one chunk's projections are GEMMs of up to this many
/// times B rows, its recurrence one persistent launch.
constexpr int kMaxChunk = 1024;

/// Chunks of up to kShortChunk steps whatever the size; longer ones only while a chunk's
/// projection, C·B·H elements, stays within kLongChunkElems (16 MiB of f32: the scratch holds it
/// and, without h_all, two regions of states as large). Each chunk costs three launches and two
/// GEMMs' ramps, which a small problem's recurrence does not hide (docs/kernels.md, "Sequences").
constexpr int kShortChunk = 64;
constexpr std::int64_t kLongChunkElems = std::int64_t(1) << 22;

/// The chunk a sequence of `steps` (≥ 1) steps of batch `b` and hidden size `h` runs in: the
/// largest power of two up to `steps`, kMaxChunk and the scratch limit above, so that a few
/// chunk sizes (tunings) serve every length.
int sequence_chunk(std::int64_t steps, int b, int h);

/// The kernels' ST template argument (rnnjit_shared.h) for a storage type.
inline int store_arg(DType t) { return t == DType::BF16 ? rnnjit_k::kStoreBf16 : rnnjit_k::kStoreF32; }

/// The kernels' MATH template argument for a resolved precision.
inline int math_arg(Precision p) { return p == Precision::FP32 ? rnnjit_k::kMathFp32 : rnnjit_k::kMathTf32; }

/// What one launch computes. A plan is a sequence of them (engine/src/plan.hpp).
enum class Stage {
  I2h,    ///< h' = tanh([x | h]·W1ᵀ + b1): a GEMM stage
  H2o,    ///< y = h'·W2ᵀ + b2: a GEMM stage (for a sequence, over the chunk's states)
  Step,   ///< both, in one launch
  XProj,  ///< a sequence's input projection P = x·W1[:, :I]ᵀ + b1 over the chunk's rows: a GEMM stage
  Recur,  ///< a sequence's recurrence h_{t+1} = tanh(h_t·W1[:, I:]ᵀ + P_t) over the chunk's steps
};

/// "i2h", "h2o", "step", "xproj", "recur": the stage's prefix in a config name.
const char* stage_name(Stage s);

/// The matrix product of a GEMM stage: C[m, n] = epi(A·Wᵀ + bias), A = [A1 (k1 columns) | A2
/// (k2)] as two K segments (x and h need no concatenation), W's rows ldw elements apart, each
/// element `elem` bytes (the storage type's).
struct Gemm {
  int m = 0, n = 0, k1 = 0, k2 = 0, ldw = 0;
  int epi = rnnjit_k::kEpiBias;
  int elem = 4;
};

/// The product stage `s` (I2h, H2o or XProj) of `shape` computes.
Gemm gemm_of(Stage s, const Shape& shape);

/// Whether TMA can read the stage's operands where they lie: every row of A1, A2 and W a whole
/// number of 16-byte units (pointers aside).
bool tma_layout(const Gemm& g);

/// The same product over packed copies: A = [A1 | A2] as one segment and W, each row padded with
/// zeros to whole 16 bytes. W's rows are K long (ldw == k1 + k2), so where K is a whole number of
/// 16-byte units W's packed layout is its own and it is copied only for a misaligned pointer.
/// `own_w`: W is read where it lies instead (its own ldw), beside the packed A.
Gemm packed(const Gemm& g, bool own_w = false);

/// The widest copy, 16, 8 or 4 bytes, that divides each of `bytes` (row lengths, column offsets);
/// 0 where none does (bf16 rows of an odd length: 2-byte units, below cp.async's 4).
int copy_width(std::initializer_list<int> bytes);

}  // namespace rnnjit
