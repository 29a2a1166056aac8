#include "problem.hpp"

namespace rnnjit {

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::I2h: return "i2h";
    case Stage::H2o: return "h2o";
    case Stage::Step: return "step";
  }
  return "?";
}

Gemm gemm_of(Stage s, const Shape& p) {
  // i2h: [x | h]·W1ᵀ, W1's rows I+H long; h2o: h'·W2ᵀ, one segment.
  if (s == Stage::I2h) return {p.b, p.h, p.i, p.h, p.i + p.h, rnnjit_k::kEpiBiasTanh};
  return {p.b, p.o, p.h, 0, p.h, rnnjit_k::kEpiBias};
}

}  // namespace rnnjit
