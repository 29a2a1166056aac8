#include "config.hpp"

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace rnnjit {
namespace {

// kernel_templates/gemm_wgmma.cu: STAGES slots of A's and W's slices, for fp32 with A's cross copy.
std::size_t wgmma_ring_bytes(const Tile& t, const Shape& s) {
  return std::size_t(t.stages) * (t.bm * (s.math == Math::Fp32 ? 2 : 1) + t.bn) * t.bk * sizeof(float);
}

bool tile_ok(const Tile& t, const Shape& s, const DeviceInfo& device, const char* which, std::string* why) {
  auto fail = [&](const std::string& msg) {
    if (why) *why = std::string(which) + " tile " + t.name() + ": " + msg;
    return false;
  };
  if (t.family == Family::Gemv) {
    if (t.rows <= 0 || t.warps <= 0 || t.unroll <= 0) return fail("non-positive field");
    if (s.b > 16) return fail("gemv serves batch ≤ 16, not " + std::to_string(s.b));
    if (t.rows * s.b > 64) return fail("ROWS×batch > 64 accumulators per lane");
  } else if (t.family == Family::Fused) {
    if (t.cluster <= 0 || t.split <= 0 || t.warps <= 0) return fail("non-positive field");
    if (device.cc_major < 9)
      return fail("thread-block clusters and dependent launches need compute capability 9.0 or newer, device has " +
                  std::to_string(device.cc_major) + "." + std::to_string(device.cc_minor));
    if (t.split > 16) return fail("a cluster holds at most 16 CTAs");
    if (t.cluster < t.split) return fail("fewer CTAs than one cluster");
    if (s.b > 16) return fail("fused serves batch ≤ 16, not " + std::to_string(s.b));
    // Every cluster resident at once, or the step runs in waves (no CTA waits for another
    // cluster, so waves are correct, only slow).
    const int rows = fused_rows(t, s.h), ctas = fused_clusters(t, s.h) * t.split;
    if (ctas > device.sm_count)
      return fail(std::to_string(ctas) + " CTAs, device has " + std::to_string(device.sm_count) + " SMs");
    // kernel_templates/fused_cluster.cu holds a phase's loads in registers (KSplit,
    // rnnjit_device.cuh): float4s a lane of each of its rows and of the batch, and its sums.
    auto regs = [&](int r, int k) {
      const int f = ((k + t.warps - 1) / t.warps + 3) / 4;  // float4 columns a warp
      const int lk = f >= 32 ? 32 : f > 8 ? 16 : f > 4 ? 8 : f > 2 ? 4 : f > 1 ? 2 : 1;
      const int rl = (r + 32 / lk - 1) / (32 / lk), u = (f + lk - 1) / lk;
      return 4 * u * (rl + s.b) + rl * s.b;
    };
    const int slice = ((s.i + s.h + t.split - 1) / t.split + 3) / 4 * 4, rows2 = (s.o + t.split - 1) / t.split;
    const int most = std::max(regs(rows, slice), regs(rows2, s.h));
    if (most > 160) return fail(std::to_string(most) + " registers of loads and sums a thread, at most 160");
    if ((rows * s.b + t.split - 1) / t.split > t.threads()) return fail("more h' sums a CTA than threads");
    const std::size_t smem = std::size_t(t.warps * std::max(rows, rows2) + rows) * s.b * sizeof(float);
    if (smem > 48 * 1024) return fail(std::to_string(smem) + " B of static shared memory, at most 48 KiB");
  } else if (t.family == Family::Grid) {
    if (t.cluster <= 0 || t.warps <= 0) return fail("non-positive field");
    if (s.b > 16) return fail("grid serves batch ≤ 16, not " + std::to_string(s.b));
    // kernel_templates/fused_grid.cu holds a phase's loads in registers at once: (batch + rows
    // a CTA) × float4s a lane of each.
    auto slots = [&](int k) { return (((k + t.warps - 1) / t.warps + 3) / 4 + 31) / 32; };
    const int rows1 = (s.h + t.cluster - 1) / t.cluster, rows2 = (s.o + t.cluster - 1) / t.cluster;
    const int regs = (s.b + rows1) * slots(s.i + s.h) * 4 + rows1 * s.b + rows2 * (slots(s.h) * 4 + s.b);
    if (regs > 160) return fail(std::to_string(regs) + " registers of loads and sums a thread, at most 160");
  } else if (t.family == Family::GridStream) {
    if (t.cluster <= 0 || t.warps <= 0 || t.rows <= 0 || t.unroll <= 0 || t.prefetch < 0) return fail("non-positive field");
    if (device.cc_major < 8)
      return fail("cp.async needs compute capability 8.0 or newer, device has " + std::to_string(device.cc_major) + "." +
                  std::to_string(device.cc_minor));
    if (s.b > 16) return fail("stream serves batch ≤ 16, not " + std::to_string(s.b));
    if (t.rows * s.b > 64) return fail("ROWS×batch > 64 accumulators per lane");
    if (t.prefetch % t.rows != 0) return fail("PREFETCH must be whole groups of ROWS rows");
  } else if (t.family == Family::GridMma) {
    if (t.cluster <= 0 || t.warps <= 0 || t.rows <= 0 || t.unroll <= 0 || t.prefetch < 0) return fail("non-positive field");
    if (device.cc_major < 8)
      return fail("TF32 mma.sync and cp.async need compute capability 8.0 or newer, device has " +
                  std::to_string(device.cc_major) + "." + std::to_string(device.cc_minor));
    if (s.b > 16) return fail("gridmma serves batch ≤ 16 (two n8 tiles), not " + std::to_string(s.b));
    // kernel_templates/grid_mma.cu holds a chunk's W (16 floats a lane, group and block) and A
    // (8 a group and n8 tile) in registers, and two sets of sums; ptxas adds ~30 (measured).
    const int tiles = (s.b + 7) / 8;
    const int regs = 16 * t.unroll * t.rows + 8 * t.unroll * tiles + 8 * t.rows * tiles;
    const int cap = std::min(255, 65536 / t.threads());
    if (regs + 32 > cap)
      return fail(std::to_string(regs) + " registers of loads and sums a thread, at most " + std::to_string(cap - 32));
  } else if (t.family == Family::Wgmma) {
    if (t.bm <= 0 || t.bn <= 0 || t.groups <= 0 || t.stages <= 0 || t.split <= 0) return fail("non-positive field");
    if (device.arch != "sm_90a")
      return fail("wgmma and TMA need sm_90a (compute capability 9.0), device is " + device.arch);
    if (t.bk != 32) return fail("K slices are 32 floats: one 128-byte swizzle row");
    // A's rows on the wgmma M side, or W's for fp32 (its W fragments are split in registers) and
    // for batch tiles narrower than m64 (the ring holds W): kWOnM in the kernel.
    const bool w_on_m = s.math == Math::Fp32 || t.bm < 64;
    if (!w_on_m) {
      if (t.bm % (64 * t.groups) != 0 || t.bm > 256) return fail("BM must be whole m64 blocks per warpgroup, at most 256");
      if (t.bn != 64 && t.bn != 128) return fail("BN must be 64 or 128 (wgmma n64, n128)");
    } else {
      if (t.bn % (64 * t.groups) != 0) return fail("BN must be whole m64 blocks per warpgroup (W's rows on the M side)");
      if (s.math == Math::Fp32 && t.bm != 16 && t.bm != 64 && t.bm != 128)
        return fail("fp32: BM must be 16, 64 or 128 (wgmma n16, n64, n128)");
      if (s.math == Math::Tf32 && t.bm != 16) return fail("tf32: BM below 64 must be 16 (wgmma n16)");
    }
    if (t.stages < 2) return fail("needs at least 2 stages");
    if (t.split > 8) return fail("SPLIT CTAs must fit a portable cluster (8)");
    // Accumulators a thread: m64 blocks a warpgroup × n / 2, twice for fp32's partial sums.
    const int m_rows = w_on_m ? t.bn : t.bm, n = w_on_m ? t.bm : t.bn;
    const int acc = m_rows / t.groups / 64 * n / 2 * (s.math == Math::Fp32 ? 2 : 1);
    if (acc > 128) return fail(std::to_string(acc) + " accumulator registers per thread, at most 128");
    if (std::size_t(t.bm) * (t.bn + 4) * sizeof(float) > wgmma_ring_bytes(t, s))
      return fail("the C tile does not fit the ring it reuses");
    if (s.i % 4 != 0 || s.h % 4 != 0) return fail("TMA needs rows of x, h and W in multiples of 16 bytes");
    // One grid dimension holds split × M tiles × N tiles (kernel_templates/gemm_wgmma.cu).
    const std::int64_t ctas = std::int64_t(t.split) * ((s.b + t.bm - 1) / t.bm) * ((std::max(s.h, s.o) + t.bn - 1) / t.bn);
    if (ctas > 0x7FFFFFFF) return fail(std::to_string(ctas) + " CTAs, more than one grid dimension holds");
  } else {
    if (t.warps_m <= 0 || t.warps_n <= 0 || t.bm <= 0 || t.bn <= 0 || t.bk <= 0) return fail("non-positive field");
    if (device.cc_major < 8)
      return fail("TF32 mma.sync needs compute capability 8.0 or newer, device has " + std::to_string(device.cc_major) +
                  "." + std::to_string(device.cc_minor));
    if (t.bm % (16 * t.warps_m) != 0) return fail("BM must split into 16-row fragments per warp");
    if (t.bn % (8 * t.warps_n) != 0) return fail("BN must split into 8-column fragments per warp");
    if (t.bk % 8 != 0) return fail("BK must be a multiple of 8");
    if (t.stages < 2) return fail("needs at least 2 stages");
    // The grid's y dimension counts M tiles and is limited to 65535.
    if ((s.b + t.bm - 1) / t.bm > 65535)
      return fail("batch " + std::to_string(s.b) + " needs more than 65535 M tiles");
  }
  // The grid barrier of the cooperative one-launch steps needs every CTA resident: at most one a SM.
  if (t.cooperative() && t.cluster > device.sm_count)
    return fail(std::to_string(t.cluster) + " CTAs, device has " + std::to_string(device.sm_count) + " SMs");
  if (t.threads() > 1024) return fail("more than 1024 threads");
  if (static_cast<std::int64_t>(t.smem_bytes(s)) > device.smem_per_block_optin)
    return fail(std::to_string(t.smem_bytes(s)) + " B of shared memory, device allows " +
                std::to_string(device.smem_per_block_optin));
  return true;
}

}  // namespace

std::size_t Tile::smem_bytes(const Shape& s) const {
  switch (family) {
    case Family::Mma: return static_cast<std::size_t>(stages) * (bm + bn) * (bk + 4) * sizeof(float);
    case Family::Gemv: return 0;
    case Family::Grid: return 0;  // its partial sums are static shared memory
    case Family::GridStream: {
      // kernel_templates/grid_stream.cu: h' when it fits kStreamStageFloats (rnnjit_device.cuh),
      // then the prefetched W2 rows.
      constexpr std::size_t kStreamStageFloats = 16384;
      const std::size_t hs = std::size_t(s.b) * s.h <= kStreamStageFloats ? (std::size_t(s.b) * s.h + 3) / 4 * 4 : 0;
      return (hs + std::size_t(prefetch) * s.h) * sizeof(float);
    }
    case Family::GridMma: {
      // kernel_templates/grid_mma.cu: PREFETCH chunks of UNROLL·ROWS·4 float4s a lane and warp,
      // then the warps' partial sums (128 floats a block, n8 tile and warp).
      const std::size_t tiles = (s.b + 7) / 8;
      return std::size_t(prefetch) * warps * unroll * rows * 4 * 32 * 16 + std::size_t(warps) * rows * tiles * 128 * 4;
    }
    case Family::Wgmma: return wgmma_ring_bytes(*this, s) + stages * 2 * sizeof(std::uint64_t) + 1024;
    case Family::Fused: return 0;  // its partial sums are static shared memory
  }
  return 0;
}

std::string Tile::name() const {
  char buf[64];
  if (family == Family::Fused)
    std::snprintf(buf, sizeof buf, "fused_c%dk%dw%d", cluster, split, warps);
  else if (family == Family::Grid)
    std::snprintf(buf, sizeof buf, "grid_c%dw%d", cluster, warps);
  else if (family == Family::GridStream)
    std::snprintf(buf, sizeof buf, "stream_c%dw%dr%du%dp%d", cluster, warps, rows, unroll, prefetch);
  else if (family == Family::GridMma)
    std::snprintf(buf, sizeof buf, "gridmma_c%dw%db%du%dp%d", cluster, warps, rows, unroll, prefetch);
  else if (family == Family::Gemv)
    std::snprintf(buf, sizeof buf, "gemv_r%dw%du%d", rows, warps, unroll);
  else if (family == Family::Wgmma)
    std::snprintf(buf, sizeof buf, "wgmma%dx%dg%ds%dk%d", bm, bn, groups, stages, split);
  else
    std::snprintf(buf, sizeof buf, "mma%dx%dx%dw%dx%ds%d", bm, bn, bk, warps_m, warps_n, stages);
  return buf;
}

std::optional<Tile> Tile::parse(const std::string& name) {
  Tile t;
  int used = 0;
  if (name.rfind("grid_", 0) == 0) {
    t.family = Family::Grid;
    if (std::sscanf(name.c_str(), "grid_c%dw%d%n", &t.cluster, &t.warps, &used) != 2)
      return std::nullopt;
  } else if (name.rfind("stream_", 0) == 0) {
    t.family = Family::GridStream;
    if (std::sscanf(name.c_str(), "stream_c%dw%dr%du%dp%d%n", &t.cluster, &t.warps, &t.rows, &t.unroll, &t.prefetch,
                    &used) != 5)
      return std::nullopt;
  } else if (name.rfind("gridmma_", 0) == 0) {
    t.family = Family::GridMma;
    if (std::sscanf(name.c_str(), "gridmma_c%dw%db%du%dp%d%n", &t.cluster, &t.warps, &t.rows, &t.unroll, &t.prefetch,
                    &used) != 5)
      return std::nullopt;
  } else if (name.rfind("fused_", 0) == 0) {
    t.family = Family::Fused;
    if (std::sscanf(name.c_str(), "fused_c%dk%dw%d%n", &t.cluster, &t.split, &t.warps, &used) != 3)
      return std::nullopt;
  } else if (name.rfind("wgmma", 0) == 0) {
    t = Tile::wgmma(0, 0, 0, 0, 0);
    if (std::sscanf(name.c_str(), "wgmma%dx%dg%ds%dk%d%n", &t.bm, &t.bn, &t.groups, &t.stages, &t.split, &used) != 5)
      return std::nullopt;
  } else if (name.rfind("gemv_", 0) == 0) {
    t.family = Family::Gemv;
    if (std::sscanf(name.c_str(), "gemv_r%dw%du%d%n", &t.rows, &t.warps, &t.unroll, &used) != 3) return std::nullopt;
  } else if (std::sscanf(name.c_str(), "mma%dx%dx%dw%dx%ds%d%n", &t.bm, &t.bn, &t.bk, &t.warps_m, &t.warps_n,
                         &t.stages, &used) != 6) {
    return std::nullopt;
  }
  // Only the canonical spelling: a name is a key.
  if (used != static_cast<int>(name.size()) || t.name() != name) return std::nullopt;
  return t;
}

int fused_rows(const Tile& t, int h) {
  const int clusters = std::max(1, t.cluster / std::max(1, t.split));
  return (h + clusters - 1) / clusters;
}
int fused_clusters(const Tile& t, int h) { return (h + fused_rows(t, h) - 1) / fused_rows(t, h); }

std::string Config::name() const { return is_fused() ? i2h.name() : "i2h_" + i2h.name() + ".h2o_" + h2o.name(); }

std::optional<Config> Config::parse(const std::string& name) {
  if (name.rfind("fused_", 0) == 0 || name.rfind("grid_", 0) == 0 || name.rfind("stream_", 0) == 0 ||
      name.rfind("gridmma_", 0) == 0) {
    const auto t = Tile::parse(name);
    if (!t) return std::nullopt;
    return Config::fused(*t);
  }
  const std::size_t dot = name.find(".h2o_");
  if (name.rfind("i2h_", 0) != 0 || dot == std::string::npos) return std::nullopt;
  const auto i2h = Tile::parse(name.substr(4, dot - 4));
  const auto h2o = Tile::parse(name.substr(dot + 5));
  if (!i2h || !h2o || i2h->whole_step() || h2o->whole_step()) return std::nullopt;
  return Config{*i2h, *h2o};
}

bool can_implement(const Config& config, const Shape& shape, const DeviceInfo& device, std::string* why) {
  if (config.is_fused() != config.h2o.whole_step() || (config.is_fused() && config.i2h != config.h2o)) {
    if (why) *why = "a fused config runs both stages with one tile";
    return false;
  }
  if (config.is_fused()) return tile_ok(config.i2h, shape, device, "fused", why);
  return tile_ok(config.i2h, shape, device, "i2h", why) && tile_ok(config.h2o, shape, device, "h2o", why);
}

}  // namespace rnnjit
