#include "outer.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string OuterTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "outer_m%dn%d", bm, bn);
  return buf;
}

std::optional<OuterTile> OuterTile::parse(std::string_view name) {
  OuterTile t;
  return scan_name(name, "outer_m%dn%d%n", t, &t.bm, &t.bn);
}

std::string OuterTile::rejects(const Shape& s, Stage stage, const DeviceInfo&) const {
  if (bm <= 0 || bn <= 0 || bm % 64 != 0 || bn % 64 != 0) return "tile sides must be positive multiples of 64";
  // 128×128 holds 64 sums a thread; a larger block would spill.
  if (bm * bn > 128 * 128) return "more than 64 sums a thread";
  const Gemm g = gemm_of(stage, s);
  if (g.k1 + g.k2 > rnnjit_k::kOuterMaxK)
    return "outer keeps K ≤ " + std::to_string(rnnjit_k::kOuterMaxK) + " on chip, not " + std::to_string(g.k1 + g.k2);
  return "";
}

std::vector<std::string> OuterTile::kernels(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  return {name_expression("outer", {store_arg(s.dtype), g.m, g.n, g.k1, g.k2, g.ldw, bm, bn, math_arg(s.precision), g.epi})};
}

Geometry OuterTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  const long long tiles = 1ll * ((g.m + bm - 1) / bm) * ((g.n + bn - 1) / bn);
  geo.grid_x = static_cast<unsigned>(std::min<long long>(tiles, 0x7fffffff));
  geo.threads = rnnjit_k::kOuterThreads;
  geo.smem = std::size_t(rnnjit_k::outer_smem_floats(g.k1 + g.k2, bm, bn, math_arg(s.precision))) * sizeof(float);
  return geo;
}

// A resident CTA's clocks: its products at 128 FFMA a clock (fp32) or ~512 tf32 MACs (mma.sync), C's
// bytes at ~13 a clock (3 TB/s over 132 SMs at 1.7 GHz) and its copies of A and W through L2 at
// ~32; CTAs resident together share the SM, so a wave costs the sum of theirs and what remains is
// the last wave's fill.
double OuterTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const int k = g.k1 + g.k2, tm = bm / 16, tn = bn / 16;
  const double macs_a_clock = s.precision == Precision::FP32 ? 128.0 : 512.0;
  const double per_cta = double(bm) * bn * k / macs_a_clock + double(bm) * bn * g.elem / 13.0 + double(bm + bn) * k * 4 / 32.0;
  const int regs = (tm * tn + tm + tn + 24 + 7) / 8 * 8;
  const double by_regs = std::floor(65536.0 / (regs * rnnjit_k::kOuterThreads));
  const double by_smem = std::floor(228.0 * 1024 / double(geometry(s, stage).smem + 1024));
  const double resident = std::max(1.0, std::min({by_regs, by_smem, 8.0}));
  const double ctas = std::ceil(double(g.m) / bm) * std::ceil(double(g.n) / bn);
  return std::ceil(ctas / (resident * d.sm_count)) * resident * per_cta;
}

std::span<const OuterTile> OuterTile::pool() {
  static const OuterTile tiles[] = {{64, 128}, {128, 128}, {64, 64}, {128, 64}};
  return tiles;
}

}  // namespace rnnjit
