#include "fused_grid.hpp"

namespace rnnjit {

std::string GridTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "grid_c%dw%d", ctas, warps);
  return buf;
}

std::optional<GridTile> GridTile::parse(std::string_view name) {
  GridTile t;
  return scan_name(name, "grid_c%dw%d%n", t, &t.ctas, &t.warps);
}

std::string GridTile::rejects(const Shape& s, Stage, const DeviceInfo&) const {
  if (ctas <= 0 || warps <= 0) return "non-positive field";
  if (s.b > 16) return "grid serves batch ≤ 16, not " + std::to_string(s.b);
  // The kernel holds a phase's loads in registers at once: (batch + rows a CTA) × float4s a lane.
  auto slots = [&](int k) { return (((k + warps - 1) / warps + 3) / 4 + 31) / 32; };
  const int rows1 = (s.h + ctas - 1) / ctas, rows2 = (s.o + ctas - 1) / ctas;
  const int regs = (s.b + rows1) * slots(s.i + s.h) * 4 + rows1 * s.b + rows2 * (slots(s.h) * 4 + s.b);
  if (regs > 160) return std::to_string(regs) + " registers of loads and sums a thread, at most 160";
  return "";
}

std::vector<std::string> GridTile::kernels(const Shape& s, Stage) const {
  return {name_expression("fused_grid", {s.b, s.i, s.h, s.o, ctas, warps})};
}

Geometry GridTile::geometry(const Shape&, Stage) const {
  Geometry geo;
  geo.grid_x = static_cast<unsigned>(ctas);
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.cooperative = true;
  return geo;  // its partial sums are static shared memory
}

// Latency-bound: one round of loads over the CTAs (docs/kernels.md, "grid").
double GridTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  return streamed_seconds(ctas, weight_bytes(s), weight_bytes(s), 0.0);
}

// One CTA a SM over (nearly) every SM; 64 for GPUs with fewer than 128. More warps: a shorter K
// slice a warp, fewer loads in its one round.
std::span<const GridTile> GridTile::pool() {
  static const GridTile tiles[] = {{128, 8}, {128, 16}, {64, 16}};
  return tiles;
}

}  // namespace rnnjit
