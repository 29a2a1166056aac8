#include "gemm_tc.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

std::string TcTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "tc%dx%dx%dw%dx%ds%d", bm, bn, bk, warps_m, warps_n, stages);
  return buf;
}

std::optional<TcTile> TcTile::parse(std::string_view name) {
  TcTile t;
  return scan_name(name, "tc%dx%dx%dw%dx%ds%d%n", t, &t.bm, &t.bn, &t.bk, &t.warps_m, &t.warps_n, &t.stages);
}

std::string TcTile::rejects(const Shape& s, Stage stage, const DeviceInfo& d) const {
  if (warps_m <= 0 || warps_n <= 0 || bm <= 0 || bn <= 0 || bk <= 0 || stages <= 0) return "non-positive field";
  if (d.cc_major < 8)
    return "mma.sync TF32, ldmatrix and cp.async need compute capability 8.0 or newer, device has " +
           std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor);
  if (bm % warps_m != 0 || bm / warps_m % 16 != 0) return "BM must be WARPS_M warp tiles of whole 16-row fragments";
  if (bn % warps_n != 0 || bn / warps_n % 16 != 0) return "BN must be WARPS_N warp tiles of 16 columns";
  if (bk != 16 && bk != 32 && bk != 64 && bk != 128) return "BK must be 16, 32, 64 or 128";
  if (stages < 2) return "needs at least 2 stages";
  // A slice row is BK words: BK floats, 2·BK bf16 elements; a thread copies fixed columns of it.
  const int slice_k = bk * 4 / static_cast<int>(dtype_size(s.dtype));
  if (warps_m * warps_n * 32 % slice_k != 0)
    return "the CTA's threads must be a multiple of a slice's " + std::to_string(slice_k) + " columns";
  // The sums of a warp tile a thread holds, twice for fp32 (a slice's sums beside the running
  // ones): 64x64 of them spilled at 255 registers, 64x32 fit (docs/kernels.md, "tc").
  const int sums = bm / warps_m * (bn / warps_n) / 32 * (s.precision == Precision::FP32 ? 2 : 1);
  if (sums > 128) return std::to_string(sums) + " sums a thread, at most 128";
  // __launch_bounds__(threads, 1) gives each thread at most 65536 / threads registers.
  if (sums + 64 > 65536 / (warps_m * warps_n * 32)) return "more registers a thread than the CTA's share";
  // The grid's y dimension counts M tiles and is limited to 65535.
  const int m = gemm_of(stage, s).m;
  if ((m + bm - 1) / bm > 65535) return std::to_string(m) + " rows need more than 65535 M tiles";
  return "";
}

std::vector<std::string> TcTile::kernels(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  return {name_expression("gemm_tc", {store_arg(s.dtype), g.m, g.n, g.k1, g.k2, g.ldw, bm, bn, bk, warps_m, warps_n,
                                      stages, math_arg(s.precision), g.epi})};
}

Geometry TcTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  geo.grid_x = static_cast<unsigned>((g.n + bn - 1) / bn);
  geo.grid_y = static_cast<unsigned>((g.m + bm - 1) / bm);
  geo.threads = static_cast<unsigned>(warps_m * warps_n * 32);
  geo.smem = static_cast<std::size_t>(rnnjit_k::gemm_tc_smem_bytes(bm, bn, bk, stages));
  return geo;
}

// Waves of CTAs over the SMs; a CTA's time is the larger of its tensor work (MACs, twice for fp32's
// two passes, half for bf16's products at twice tf32's rate on every arch from sm_80) and its operand
// bytes from L2 ((BM + BN) rows a column of K), plus a latency penalty when few warps are resident.
double TcTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const Geometry geo = geometry(s, stage);
  const double ctas = std::ceil(double(g.m) / bm) * std::ceil(double(g.n) / bn);
  const double by_smem = std::floor(double(d.smem_per_block_optin) / double(geo.smem));
  const double occupancy = std::max(1.0, std::min({by_smem, 2048.0 / geo.threads, 32.0}));
  const double per_sm = std::ceil(ctas / d.sm_count);
  const double waves = std::ceil(per_sm / occupancy);
  const double resident_warps = std::min(per_sm, occupancy) * geo.threads / 32.0;
  const double k = double(g.k1 + g.k2);
  const double macs = k * bm * bn * (s.precision == Precision::FP32 ? 2.0 : s.dtype == DType::BF16 ? 0.5 : 1.0);
  const double bytes = k * (bm + bn) * double(dtype_size(s.dtype));
  return waves * std::min(per_sm, occupancy) * std::max(macs / 512.0, bytes / 32.0) *
         (1.0 + 4.0 / std::min(resident_warps, 16.0));
}

// Large M: 256×128 and 128×128 tiles of 64×64 (64×32 for fp32) warp tiles; M of 17 to 64: 64-row
// tiles; small N (mid's h2o, tall-skinny stages): 16- and 32-column tiles with deeper K slices.
std::span<const TcTile> TcTile::pool() {
  static const TcTile tiles[] = {
      {256, 128, 32, 4, 2, 3}, {128, 128, 32, 2, 4, 4}, {128, 128, 32, 2, 2, 3}, {128, 128, 32, 2, 4, 3},
      {64, 128, 32, 2, 2, 4},  {64, 64, 32, 2, 2, 4},   {128, 32, 32, 4, 1, 4},  {64, 32, 64, 2, 2, 4},
      {32, 32, 64, 2, 2, 4},   {64, 16, 64, 4, 1, 6},   {64, 16, 64, 4, 1, 4},
  };
  return tiles;
}

}  // namespace rnnjit
