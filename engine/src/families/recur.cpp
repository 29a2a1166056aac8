#include "recur.hpp"

#include <algorithm>
#include <cmath>

namespace rnnjit {

using rnnjit_k::recur_row_floats;
using rnnjit_k::recur_rows;
using rnnjit_k::recur_staged;

namespace {

int kept_rows(const RecurTile& t, const Shape& s) {
  return rnnjit_k::recur_kept(s.b, s.h, t.ctas, t.staged, t.cluster, t.rows, t.smem_kb);
}

// Tiles a lane group takes a step (and batch chunk): the P elements a lane holds in registers.
int tiles_a_group(const RecurTile& t, const Shape& s) {
  const int tiles = (recur_rows(s.h, t.ctas) + t.rows - 1) / t.rows *
                    ((recur_staged(s.b, t.staged, t.cluster) + t.batch - 1) / t.batch);
  const int groups = t.warps * 32 / t.lanes;
  return (tiles + groups - 1) / groups;
}

}  // namespace

std::string RecurTile::name() const {
  char buf[80];
  std::snprintf(buf, sizeof buf, "rec_c%dw%dk%dt%dx%db%dl%ds%d", ctas, warps, lanes, rows, batch, staged, cluster, smem_kb);
  return buf;
}

std::optional<RecurTile> RecurTile::parse(std::string_view name) {
  RecurTile t;
  return scan_name(name, "rec_c%dw%dk%dt%dx%db%dl%ds%d%n", t, &t.ctas, &t.warps, &t.lanes, &t.rows, &t.batch, &t.staged,
                   &t.cluster, &t.smem_kb);
}

std::string RecurTile::rejects(const Shape& s, Stage stage, const DeviceInfo& d) const {
  if (stage != Stage::Recur || s.steps <= 0) return "recur runs a sequence's recurrence only";
  if (ctas <= 0 || warps <= 0 || lanes <= 0 || rows <= 0 || batch <= 0 || staged <= 0 || smem_kb < 0)
    return "non-positive field";
  if (cluster != 0 && cluster != 1) return "cluster is 0 or 1";
  if (lanes > 32 || (lanes & (lanes - 1)) != 0 || warps * 32 % lanes != 0)
    return "lanes a group: a power of two up to 32 that divides the CTA's threads";
  if (rows * batch > lanes) return "a group's lanes finish its tile's sums: rows×batch ≤ lanes";
  if (rows * batch > 16) return std::to_string(rows * batch) + " sums a lane, at most 16";
  // A grid's tiles are not unrolled; a cluster's are, with their P elements (8 tiles of 4 rows
  // unrolled spilled 400 bytes at 255 registers).
  if (const int tiles = tiles_a_group(*this, s); tiles > 8)
    return std::to_string(tiles) + " tiles a group a step, at most 8";
  if (cluster) {
    if (d.cc_major < 9)
      return "thread-block clusters need compute capability 9.0 or newer, device has " + std::to_string(d.cc_major) + "." +
             std::to_string(d.cc_minor);
    if (ctas > 16) return "a cluster holds at most 16 CTAs";
  }
  return "";
}

std::vector<std::string> RecurTile::kernels(const Shape& s, Stage) const {
  return {name_expression("recur", {store_arg(s.dtype), s.b, s.i, s.h, ctas, warps, lanes, rows, batch, staged, cluster, kept_rows(*this, s)})};
}

Geometry RecurTile::geometry(const Shape& s, Stage) const {
  Geometry geo;
  const int r = recur_rows(s.h, ctas);
  // A cluster launches all its CTAs (those past H hold zero rows); a grid only CTAs with rows.
  geo.grid_x = static_cast<unsigned>(cluster ? ctas : (s.h + r - 1) / r);
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.cluster_ctas = cluster ? static_cast<unsigned>(ctas) : 0;
  geo.cooperative = !cluster;
  geo.smem = static_cast<std::size_t>(rnnjit_k::recur_smem_floats(s.b, s.h, ctas, staged, cluster, rows, smem_kb)) *
             sizeof(float);
  return geo;
}

// Seconds a step: the FFMA work of a CTA (its lanes' products, 4 warp schedulers a SM, each batch
// float4 a shared-memory load and each row's too unless the rows sit in registers), staging h_t
// through L2 (grid), W_hh from HBM when streamed, and the hand-off (docs/kernels.md, "recur").
double RecurTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  constexpr double kClock = 1.6e9, kL2BytesPerClock = 64, kHbm = 2.8e12;
  const double lane_fmas = double(tiles_a_group(*this, s)) * std::ceil(double(s.b) / recur_staged(s.b, staged, cluster)) *
                           rows * batch * std::ceil(recur_row_floats(s.h) / 4.0 / lanes) * 4.0;
  const bool w_in_registers = rnnjit_k::recur_w_in_registers(cluster, kept_rows(*this, s), recur_rows(s.h, ctas),
                                                              tiles_a_group(*this, s), rows, s.h, lanes);
  // Shared-memory float4 loads per rows×batch float4 products: the batch rows', and the W rows'
  // unless they sit in registers.
  const double loads = 1.0 + double(w_in_registers ? batch : rows + batch) / (rows * batch);
  const double compute = lane_fmas * loads * warps / 4.0 / kClock;
  const double staging = cluster ? 0.0 : 4.0 * s.b * s.h / kL2BytesPerClock / kClock;
  const double launched = geometry(s, Stage::Recur).grid_x;
  const double streamed = launched * (recur_rows(s.h, ctas) - kept_rows(*this, s)) * s.h * 4.0 / kHbm;
  const double hand_off = cluster ? 0.6e-6 : 2.0e-6;
  return compute + staging + streamed + hand_off;
}

// Clusters of 16 and 8 CTAs for small H (W_hh and h_t on chip, h_t pushed over DSMEM; 16-lane groups
// of 2×4 and 4×2 tiles, whose rows fit registers at kb-seq's H = 256); grids of
// 128, 64, 48 and 32 CTAs (GPUs with fewer SMs) holding what of W_hh fits a budget sized for Hopper
// (200 KiB), the A100 (150) or sm_86/89 (90) and streaming the rest: groups of 8 lanes with 8-sum
// tiles for batches, whole warps with 4-row tiles for batch 1. Eight warps a CTA: with 16 the
// 128 registers a thread spilled 160-1092 bytes (batch-1 tiles at B = 1 and 64, sm_80 to sm_90).
std::span<const RecurTile> RecurTile::pool() {
  static const RecurTile tiles[] = {
      {16, 8, 8, 2, 2, 64, 1, 200},   {8, 8, 8, 2, 2, 64, 1, 200},    {16, 8, 16, 2, 4, 64, 1, 200},
      {16, 8, 16, 4, 2, 64, 1, 200},
      {128, 8, 8, 2, 4, 32, 0, 200},  {64, 8, 8, 4, 2, 32, 0, 200},   {128, 8, 8, 2, 4, 16, 0, 150},
      {64, 8, 8, 4, 2, 16, 0, 90},    {48, 8, 8, 4, 2, 16, 0, 90},    {48, 8, 8, 2, 4, 16, 0, 90},
      {32, 8, 8, 4, 2, 16, 0, 90},
      {128, 8, 32, 4, 1, 16, 0, 200}, {128, 8, 32, 2, 1, 16, 0, 200}, {128, 8, 32, 4, 1, 16, 0, 150},
      {64, 8, 32, 4, 1, 16, 0, 90},   {48, 8, 32, 4, 1, 16, 0, 90},   {32, 8, 32, 4, 1, 16, 0, 90},
  };
  return tiles;
}

}  // namespace rnnjit
