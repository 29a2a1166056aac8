#include "fused_cluster.hpp"

#include <algorithm>

namespace rnnjit {

using rnnjit_k::fused_clusters;
using rnnjit_k::fused_rows;

std::string FusedTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "fused_c%dk%dw%d", ctas, k_split, warps);
  return buf;
}

std::optional<FusedTile> FusedTile::parse(std::string_view name) {
  FusedTile t;
  return scan_name(name, "fused_c%dk%dw%d%n", t, &t.ctas, &t.k_split, &t.warps);
}

std::string FusedTile::rejects(const Shape& s, Stage, const DeviceInfo& d) const {
  if (ctas <= 0 || k_split <= 0 || warps <= 0) return "non-positive field";
  if (d.cc_major < 9)
    return "thread-block clusters and dependent launches need compute capability 9.0 or newer, device has " +
           std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor);
  if (k_split > 16) return "a cluster holds at most 16 CTAs";
  if (ctas < k_split) return "fewer CTAs than one cluster";
  if (s.b > 16) return "fused serves batch ≤ 16, not " + std::to_string(s.b);
  // Every cluster resident at once, or the step runs in waves (no CTA waits for another cluster,
  // so waves are correct, only slow).
  const int rows = fused_rows(s.h, ctas, k_split), launched = fused_clusters(s.h, ctas, k_split) * k_split;
  if (launched > d.sm_count)
    return std::to_string(launched) + " CTAs, device has " + std::to_string(d.sm_count) + " SMs";
  // The kernel holds a phase's loads in registers (KSplit, rnnjit_device.cuh): float4s a lane of
  // each of its rows and of the batch, and its sums.
  auto regs = [&](int r, int k) {
    const int f = ((k + warps - 1) / warps + 3) / 4;  // float4 columns a warp
    const int lk = rnnjit_k::ksplit_lanes(f);
    const int rl = (r + 32 / lk - 1) / (32 / lk), u = (f + lk - 1) / lk;
    return 4 * u * (rl + s.b) + rl * s.b;
  };
  const int slice = ((s.i + s.h + k_split - 1) / k_split + 3) / 4 * 4, rows2 = (s.o + k_split - 1) / k_split;
  const int most = std::max(regs(rows, slice), regs(rows2, s.h));
  if (most > 160) return std::to_string(most) + " registers of loads and sums a thread, at most 160";
  if ((rows * s.b + k_split - 1) / k_split > warps * 32) return "more h' sums a CTA than threads";
  const std::size_t smem = std::size_t(warps * std::max(rows, rows2) + rows) * s.b * sizeof(float);
  if (smem > 48 * 1024) return std::to_string(smem) + " B of static shared memory, at most 48 KiB";
  return "";
}

std::vector<std::string> FusedTile::kernels(const Shape& s, Stage) const {
  return {name_expression("fused_cluster", {s.b, s.i, s.h, s.o, ctas, k_split, warps})};
}

Geometry FusedTile::geometry(const Shape& s, Stage) const {
  Geometry geo;
  geo.cluster_ctas = static_cast<unsigned>(k_split);
  geo.grid_x = static_cast<unsigned>(fused_clusters(s.h, ctas, k_split) * k_split);
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.dependent = true;  // no CTA waits for another cluster: the next step's CTAs may become resident early
  return geo;            // its partial sums are static shared memory
}

// Latency-bound: one round of loads over the CTAs (docs/kernels.md, "fused").
double FusedTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  return streamed_seconds(ctas, weight_bytes(s), weight_bytes(s), 0.0);
}

// ~128 CTAs in clusters of 8 (or 16, or 4) splitting K; 64 for GPUs with fewer SMs.
std::span<const FusedTile> FusedTile::pool() {
  static const FusedTile tiles[] = {{128, 8, 8}, {128, 16, 8}, {128, 4, 8}, {64, 8, 8}};
  return tiles;
}

}  // namespace rnnjit
