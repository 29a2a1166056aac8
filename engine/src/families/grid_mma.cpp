#include "grid_mma.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string GridMmaTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "gridmma_c%dw%db%du%dp%d", ctas, warps, blocks, unroll, prefetch);
  return buf;
}

std::optional<GridMmaTile> GridMmaTile::parse(std::string_view name) {
  GridMmaTile t;
  return scan_name(name, "gridmma_c%dw%db%du%dp%d%n", t, &t.ctas, &t.warps, &t.blocks, &t.unroll, &t.prefetch);
}

std::string GridMmaTile::rejects(const Shape& s, Stage, const DeviceInfo& d) const {
  if (ctas <= 0 || warps <= 0 || blocks <= 0 || unroll <= 0 || prefetch < 0) return "non-positive field";
  if (d.cc_major < 8)
    return "TF32 mma.sync and cp.async need compute capability 8.0 or newer, device has " +
           std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor);
  if (s.b > 16) return "gridmma serves batch ≤ 16 (two n8 tiles), not " + std::to_string(s.b);
  // The kernel holds a chunk's W (16 floats a lane, group and block) and A (8 a group and n8
  // tile) in registers, and two sets of sums; ptxas adds ~30 on sm_90 and more before it
  // (c64w16b2u2p0 at batch 8: 96 + 32 fit sm_90a, and spilled 24 bytes on sm_80 and sm_86;
  // tests/families_test.cpp compiles every described GPU's proposals without spills).
  const int tiles = (s.b + 7) / 8;
  const int regs = 16 * unroll * blocks + 8 * unroll * tiles + 8 * blocks * tiles;
  const int cap = std::min(255, 65536 / (warps * 32)), overhead = d.cc_major >= 9 ? 32 : 40;
  if (regs + overhead > cap)
    return std::to_string(regs) + " registers of loads and sums a thread, at most " + std::to_string(cap - overhead);
  return "";
}

std::vector<std::string> GridMmaTile::kernels(const Shape& s, Stage) const {
  return {name_expression("grid_mma", {s.b, s.i, s.h, s.o, math_arg(s.precision), warps, blocks, unroll, prefetch})};
}

Geometry GridMmaTile::geometry(const Shape& s, Stage) const {
  Geometry geo;
  geo.grid_x = static_cast<unsigned>(ctas);
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.cooperative = true;
  // PREFETCH chunks of UNROLL·BLOCKS·4 float4s a lane and warp, then the warps' partial sums (128
  // floats a block, n8 tile and warp).
  const std::size_t tiles = (s.b + 7) / 8;
  geo.smem = std::size_t(prefetch) * warps * unroll * blocks * 4 * 32 * 16 + std::size_t(warps) * blocks * tiles * 128 * 4;
  return geo;
}

// As stream, the weights at HBM rate when enough are in flight; a CTA's rows come in 16-row
// blocks (the busiest CTA sets the time) and it reads the batch's A once every BLOCKS blocks.
double GridMmaTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  auto per_cta = [&](int n) { return std::ceil(std::ceil(n / 16.0) / ctas); };  // 16-row blocks a CTA
  const double weights = 4.0 * ctas * 16.0 * (per_cta(s.h) * (s.i + s.h) + per_cta(s.o) * s.h);
  const double in_flight = double(ctas) * warps * unroll * blocks * 2048;
  const double a_bytes =
      4.0 * s.b * (std::ceil(per_cta(s.h) / blocks) * (s.i + s.h) + std::ceil(per_cta(s.o) / blocks) * s.h);
  return streamed_seconds(ctas, weights, in_flight, a_bytes);
}

// For batches of 4 to 16: 8 to 16 KiB of W in flight a warp, 64 to 128 KiB a SM; two 16-row
// blocks a warp where registers allow (batch ≤ 8), else one. At 16 warps the staged W2 chunks
// measured no gain at batches 4 and 8 (docs/kernels.md, "gridmma"): none there.
std::span<const GridMmaTile> GridMmaTile::pool() {
  static const GridMmaTile tiles[] = {
      {128, 16, 2, 2, 0}, {128, 8, 2, 4, 1}, {128, 16, 1, 2, 2}, {128, 8, 2, 2, 1}, {64, 16, 2, 2, 0},
  };
  return tiles;
}

}  // namespace rnnjit
