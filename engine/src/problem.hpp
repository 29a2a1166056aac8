// A problem as the engine's internals see it: validated sizes, resolved precision and storage
// type, and what each launch of a step computes.
#pragma once

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
  bool operator==(const Shape&) const = default;
};

/// The kernels' MATH template argument for a resolved precision.
inline int math_arg(Precision p) { return p == Precision::FP32 ? rnnjit_k::kMathFp32 : rnnjit_k::kMathTf32; }

/// What one launch computes. A plan is a sequence of them (engine/src/plan.hpp).
enum class Stage {
  I2h,   ///< h' = tanh([x | h]·W1ᵀ + b1): a GEMM stage
  H2o,   ///< y = h'·W2ᵀ + b2: a GEMM stage
  Step,  ///< both, in one launch
};

/// "i2h", "h2o", "step": the stage's prefix in a config name.
const char* stage_name(Stage s);

/// The matrix product of a GEMM stage: C[m, n] = epi(A·Wᵀ + bias), A = [A1 (k1 columns) | A2
/// (k2)] as two K segments (x and h need no concatenation), W's rows ldw floats apart.
struct Gemm {
  int m = 0, n = 0, k1 = 0, k2 = 0, ldw = 0;
  int epi = rnnjit_k::kEpiBias;
};

/// The product stage `s` (I2h or H2o) of `shape` computes.
Gemm gemm_of(Stage s, const Shape& shape);

/// Whether TMA can read the stage's operands where they lie: every row of A1, A2 and W a whole
/// number of 16-byte units (pointers aside).
bool tma_layout(const Gemm& g);

/// The same product over packed copies: A = [A1 | A2] as one segment and W, each row padded with
/// zeros to a multiple of 4 floats (16 bytes). W's rows are K long (ldw == k1 + k2), so where K is
/// a multiple of 4 W's packed layout is its own and it is copied only for a misaligned pointer.
Gemm packed(const Gemm& g);

}  // namespace rnnjit
