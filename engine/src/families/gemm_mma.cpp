#include "gemm_mma.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string MmaTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "mma%dx%dx%dw%dx%ds%d", bm, bn, bk, warps_m, warps_n, stages);
  return buf;
}

std::optional<MmaTile> MmaTile::parse(std::string_view name) {
  MmaTile t;
  return scan_name(name, "mma%dx%dx%dw%dx%ds%d%n", t, &t.bm, &t.bn, &t.bk, &t.warps_m, &t.warps_n, &t.stages);
}

std::string MmaTile::rejects(const Shape& s, Stage, const DeviceInfo& d) const {
  if (warps_m <= 0 || warps_n <= 0 || bm <= 0 || bn <= 0 || bk <= 0) return "non-positive field";
  if (d.cc_major < 8)
    return "TF32 mma.sync needs compute capability 8.0 or newer, device has " + std::to_string(d.cc_major) + "." +
           std::to_string(d.cc_minor);
  if (bm % (16 * warps_m) != 0) return "BM must split into 16-row fragments per warp";
  if (bn % (8 * warps_n) != 0) return "BN must split into 8-column fragments per warp";
  if (bk % 8 != 0) return "BK must be a multiple of 8";
  if (stages < 2) return "needs at least 2 stages";
  // The grid's y dimension counts M tiles and is limited to 65535.
  if ((s.b + bm - 1) / bm > 65535) return "batch " + std::to_string(s.b) + " needs more than 65535 M tiles";
  return "";
}

std::vector<std::string> MmaTile::kernels(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  return {name_expression("gemm_mma", {g.m, g.n, g.k1, g.k2, g.ldw, bm, bn, bk, warps_m, warps_n, stages,
                                       math_arg(s.precision), g.epi})};
}

Geometry MmaTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  geo.grid_x = static_cast<unsigned>((g.n + bn - 1) / bn);
  geo.grid_y = static_cast<unsigned>((g.m + bm - 1) / bm);
  geo.threads = static_cast<unsigned>(warps_m * warps_n * 32);
  // STAGES slots of (BM + BN) rows of BK + 4 floats (the +4 spreads a warp's fragment loads over the banks).
  geo.smem = static_cast<std::size_t>(stages) * (bm + bn) * (bk + 4) * sizeof(float);
  return geo;
}

// Waves of CTAs over the SMs, each CTA's work (MACs plus operand traffic, which dominates small
// tiles), and a penalty when too few warps are resident to hide latency.
double MmaTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const Geometry geo = geometry(s, stage);
  const double ctas = std::ceil(double(g.m) / bm) * std::ceil(double(g.n) / bn);
  const double by_smem = std::floor(double(d.smem_per_block_optin) / double(geo.smem));
  const double occupancy = std::max(1.0, std::min({by_smem, 2048.0 / geo.threads, 32.0}));
  const double per_sm = std::ceil(ctas / d.sm_count);
  const double waves = std::ceil(per_sm / occupancy);
  const double resident_warps = std::min(per_sm, occupancy) * geo.threads / 32.0;
  const double mac_weight = s.precision == Precision::FP32 ? 3.0 : 1.0;  // 3xTF32
  const double cta_cost = double(g.k1 + g.k2) * (bm * bn * mac_weight + 8.0 * (bm + bn));
  return waves * std::min(per_sm, occupancy) * cta_cost * (1.0 + 8.0 / std::min(resident_warps, 16.0));
}

std::span<const MmaTile> MmaTile::pool() {
  static const MmaTile tiles[] = {
      {16, 32, 32, 1, 2, 4},  {16, 64, 32, 1, 4, 4},  {32, 32, 32, 1, 2, 4},  {32, 64, 32, 2, 2, 4},
      {64, 64, 32, 2, 2, 4},  {64, 128, 32, 2, 4, 3}, {128, 64, 32, 4, 2, 3}, {128, 128, 32, 2, 4, 3},
  };
  return tiles;
}

}  // namespace rnnjit
