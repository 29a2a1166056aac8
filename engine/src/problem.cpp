#include "problem.hpp"

namespace rnnjit {

const char* stage_name(Stage s) {
  switch (s) {
    case Stage::I2h: return "i2h";
    case Stage::H2o: return "h2o";
    case Stage::Step: return "step";
    case Stage::XProj: return "xproj";
    case Stage::Recur: return "recur";
  }
  return "?";
}

int sequence_chunk(std::int64_t steps) {
  int c = 1;
  while (c * 2 <= kMaxChunk && c * 2 <= steps) c *= 2;
  return c;
}

Gemm gemm_of(Stage s, const Shape& p) {
  // i2h: [x | h]·W1ᵀ, W1's rows I+H long; h2o: h'·W2ᵀ, one segment; xproj: x·W1ᵀ over W1's first
  // I columns. A sequence's projections take every row of its chunk.
  const int rows = p.b * (p.steps > 0 ? p.steps : 1);
  if (s == Stage::I2h) return {p.b, p.h, p.i, p.h, p.i + p.h, rnnjit_k::kEpiBiasTanh};
  if (s == Stage::XProj) return {rows, p.h, p.i, 0, p.i + p.h, rnnjit_k::kEpiBias};
  return {rows, p.o, p.h, 0, p.h, rnnjit_k::kEpiBias};
}

bool tma_layout(const Gemm& g) { return g.k1 % 4 == 0 && g.k2 % 4 == 0 && g.ldw % 4 == 0; }

Gemm packed(const Gemm& g) {
  const int k = (g.k1 + g.k2 + 3) / 4 * 4;
  return {g.m, g.n, k, 0, k, g.epi};
}

}  // namespace rnnjit
