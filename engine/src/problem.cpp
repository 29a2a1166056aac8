#include "problem.hpp"

#include <algorithm>

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

int sequence_chunk(std::int64_t steps, int b, int h) {
  int c = 1;
  while (c * 2 <= kMaxChunk && c * 2 <= steps && (c * 2 <= kShortChunk || std::int64_t(c) * 2 * b * h <= kLongChunkElems)) c *= 2;
  return c;
}

Gemm gemm_of(Stage s, const Shape& p) {
  // i2h: [x | h]·W1ᵀ, W1's rows I+H long; h2o: h'·W2ᵀ, one segment; xproj: x·W1ᵀ over W1's first
  // I columns. A sequence's projections take every row of its chunk.
  const int rows = p.b * (p.steps > 0 ? p.steps : 1), e = static_cast<int>(dtype_size(p.dtype));
  if (s == Stage::I2h) return {p.b, p.h, p.i, p.h, p.i + p.h, rnnjit_k::kEpiBiasTanh, e};
  if (s == Stage::XProj) return {rows, p.h, p.i, 0, p.i + p.h, rnnjit_k::kEpiBias, e};
  return {rows, p.o, p.h, 0, p.h, rnnjit_k::kEpiBias, e};
}

bool tma_layout(const Gemm& g) {
  const int per16 = 16 / g.elem;
  return g.k1 % per16 == 0 && g.k2 % per16 == 0 && g.ldw % per16 == 0;
}

Gemm packed(const Gemm& g, bool own_w) {
  const int per16 = 16 / g.elem, k = (g.k1 + g.k2 + per16 - 1) / per16 * per16;
  return {g.m, g.n, k, 0, own_w ? g.ldw : k, g.epi, g.elem};
}

int copy_width(std::initializer_list<int> bytes) {
  for (int w : {16, 8, 4})
    if (std::ranges::all_of(bytes, [w](int b) { return b % w == 0; })) return w;
  return 0;
}

}  // namespace rnnjit
