#include "gemv.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string GemvTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "gemv_r%dw%du%d", rows, warps, unroll);
  return buf;
}

std::optional<GemvTile> GemvTile::parse(std::string_view name) {
  GemvTile t;
  return scan_name(name, "gemv_r%dw%du%d%n", t, &t.rows, &t.warps, &t.unroll);
}

std::string GemvTile::rejects(const Shape& s, Stage stage, const DeviceInfo&) const {
  if (rows <= 0 || warps <= 0 || unroll <= 0) return "non-positive field";
  const int m = gemm_of(stage, s).m;
  if (m > 16) return "gemv serves at most 16 rows, not " + std::to_string(m);
  if (rows * m > 64) return "ROWS×rows > 64 accumulators per lane";
  return "";
}

// fp32 FFMA whatever the precision: tf32 and fp32 problems share these binaries.
std::vector<std::string> GemvTile::kernels(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  return {name_expression("gemv", {store_arg(s.dtype), g.m, g.n, g.k1, g.k2, g.ldw, rows, warps, unroll, g.epi})};
}

Geometry GemvTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  geo.grid_x = static_cast<unsigned>((g.n + rows * warps - 1) / (rows * warps));
  geo.threads = static_cast<unsigned>(warps * 32);
  return geo;
}

// The weights stream once; what varies is how many warps there are to keep loads in flight (16 a
// SM saturate) and how often A is re-read per weight (M/ROWS).
double GemvTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const double w = std::ceil(double(g.n) / rows);
  const double fill = std::min(1.0, w / (16.0 * d.sm_count));
  return double(g.n) * (g.k1 + g.k2) * (1.0 + double(g.m) / (8.0 * rows)) / fill;
}

std::span<const GemvTile> GemvTile::pool() {
  static const GemvTile tiles[] = {{1, 4, 4}, {2, 4, 4}, {4, 4, 2}, {1, 8, 2}};
  return tiles;
}

}  // namespace rnnjit
