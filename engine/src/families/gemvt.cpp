#include "gemvt.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string GemvtTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "gemvt_r%dw%du%d", rows, warps, unroll);
  return buf;
}

std::optional<GemvtTile> GemvtTile::parse(std::string_view name) {
  GemvtTile t;
  return scan_name(name, "gemvt_r%dw%du%d%n", t, &t.rows, &t.warps, &t.unroll);
}

std::string GemvtTile::rejects(const Shape& s, Stage stage, const DeviceInfo&) const {
  if (rows <= 0 || warps <= 0 || unroll <= 0) return "non-positive field";
  const int n = gemm_of(stage, s).n;
  if (n > rnnjit_k::kGemvtMaxN) return "gemvt serves at most " + std::to_string(rnnjit_k::kGemvtMaxN) + " outputs, not " + std::to_string(n);
  // 4 rows of 7 outputs spilled 8 bytes at sm_86/89 (K = 5: every load width instantiated).
  if (rows * n > 32) return "ROWS×outputs > 32 sums per lane";
  return "";
}

// fp32 FFMA whatever the precision: tf32 and fp32 problems share these binaries.
std::vector<std::string> GemvtTile::kernels(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  return {name_expression("gemvt", {store_arg(s.dtype), g.m, g.n, g.k1, g.k2, g.ldw, rows, warps, unroll, g.epi})};
}

Geometry GemvtTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  geo.grid_x = static_cast<unsigned>((g.m + rows * warps - 1) / (rows * warps));
  geo.threads = static_cast<unsigned>(warps * 32);
  return geo;
}

// A streams once, in waves of UNROLL·16 bytes a lane and row from every warp; what varies is how
// many bytes the chip has in flight (about 3 MB keep HBM busy) and how often W's rows are re-read
// from L1 per row of A (N/ROWS loads a step per row).
double GemvtTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const double warps_total = std::ceil(double(g.m) / rows);
  const double in_flight = std::min(warps_total, 64.0 * d.sm_count) * 32.0 * 16.0 * unroll * rows;
  const double fill = std::min(1.0, in_flight / 3.0e6);
  return double(g.m) * (g.k1 + g.k2) * (1.0 + double(g.n) / (8.0 * rows)) / fill;
}

std::span<const GemvtTile> GemvtTile::pool() {
  static const GemvtTile tiles[] = {{1, 4, 8}, {2, 4, 4}, {1, 8, 4}};
  return tiles;
}

}  // namespace rnnjit
