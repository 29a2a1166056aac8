#include "gemm_wgmma.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace rnnjit {

using rnnjit_k::kWgmmaSliceFloats;

// Shared memory of one sm_90 SM (228 KiB), 1 KiB of it reserved for each resident CTA.
constexpr std::size_t kSm90SmemPerSm = 233472;

namespace {

// How the kernel reads a stage's operands. TMA where every row is whole 16-byte units. Else, for
// tf32 and bf16, the producers' cp.async copies of A where they lie, and of W unless its rows and
// A1's width are whole 16-byte units (then TMA), where A's copies over all N tiles stay under
// kMaxCopiedA; otherwise (and for fp32, whose cross copy is made from a packed A, and bf16 rows of
// 2-byte units) a packed A, and W by TMA (its own rows or a packed copy) or copies. `pack` (the
// tile's twin) copies nothing 4 bytes at a time: such rows are packed, A's and W's alike.
struct Loads {
  int a_copy = 0, w_copy = 0;  // cp.async bytes a copy, 0 for TMA
  bool packed = false;         // A packed (problem.hpp, packed())
  bool operator==(const Loads&) const = default;
};

// Each N tile copies A again, a cp.async of 4 or 8 bytes at a time: B=257 I=17 H=4097 O=33's i2h
// copied 140 MB by 4 bytes in 187 µs against 159 with a packed A (H100), ~0.2 µs a MB more than TMA
// reads of a packed copy, whose launch and copy cost ~9 µs there. Below 32 MiB of 4-byte copies
// (64 of 8-byte) the copies win: 95·2768·20·264 bf16 went from 0.82× to 1.50× eager in a graph.
constexpr double kMaxCopiedA = 32.0 * (1 << 20);

Loads loads_of(Stage stage, const Shape& s, bool pack) {
  const Gemm g = gemm_of(stage, s);
  if (tma_layout(g)) return {};
  const int e = g.elem, a = copy_width({g.k1 * e, g.k2 * e}), w = copy_width({g.ldw * e, g.k1 * e});
  const int narrowest = pack ? 8 : 4;
  const double copied = double(g.m) * (g.k1 + g.k2) * e * std::ceil(g.n / 128.0) * 4.0 / std::max(a, 4);
  if (s.precision != Precision::FP32 && a >= narrowest && w >= narrowest && copied <= kMaxCopiedA)
    return {a == 16 ? 0 : a, w == 16 ? 0 : w, false};  // whole 16-byte rows go by TMA
  const int packed_w = copy_width({g.ldw * e});  // beside packed rows: K1 is whole 16-byte units
  return {0, packed_w == 16 || packed_w < narrowest ? 0 : packed_w, true};
}

// The product the kernel runs, read as `l` says: the stage's own, or over a packed A, with W's own
// rows when the kernel copies them and else a packed W's.
Gemm run_gemm(Stage stage, const Shape& s, const Loads& l) {
  const Gemm g = gemm_of(stage, s);
  return l.packed ? packed(g, l.w_copy > 0) : g;
}

// The N tiles a grid holds over `n` columns: whole multicast groups (the last pair's second may lie
// past N).
int n_tiles(const WgmmaTile& t, int n) { return (n + t.bn * t.mcast - 1) / (t.bn * t.mcast) * t.mcast; }

std::size_t ring_bytes(const WgmmaTile& t, const Shape& s) {
  return std::size_t(t.stages) * rnnjit_k::wgmma_slot_floats(t.bm, t.bn, math_arg(s.precision)) * sizeof(float);
}

}  // namespace

bool WgmmaTile::packs(const Shape& s, Stage stage) { return loads_of(stage, s, false).packed; }

std::string WgmmaTile::name() const {
  char buf[64];
  char o[16] = "", m[16] = "";
  if (occ != 1) std::snprintf(o, sizeof o, "o%d", occ);
  if (mcast != 1) std::snprintf(m, sizeof m, "m%d", mcast);
  std::snprintf(buf, sizeof buf, "wgmma%dx%dg%ds%dk%d%s%s%s", bm, bn, groups, stages, k_split, o, m, pack ? "p" : "");
  return buf;
}

std::optional<WgmmaTile> WgmmaTile::parse(std::string_view name) {
  WgmmaTile t{.pack = 1};
  if (auto packed = scan_name(name, "wgmma%dx%dg%ds%dk%dp%n", t, &t.bm, &t.bn, &t.groups, &t.stages, &t.k_split)) return packed;
  if (auto packed = scan_name(name, "wgmma%dx%dg%ds%dk%do%dp%n", t, &t.bm, &t.bn, &t.groups, &t.stages, &t.k_split, &t.occ))
    return packed;
  t.pack = 0;
  if (auto plain = scan_name(name, "wgmma%dx%dg%ds%dk%do%d%n", t, &t.bm, &t.bn, &t.groups, &t.stages, &t.k_split, &t.occ))
    return plain;
  t.occ = 1;
  if (auto mcast = scan_name(name, "wgmma%dx%dg%ds%dk%dm%d%n", t, &t.bm, &t.bn, &t.groups, &t.stages, &t.k_split, &t.mcast))
    return mcast;
  t.mcast = 1;
  return scan_name(name, "wgmma%dx%dg%ds%dk%d%n", t, &t.bm, &t.bn, &t.groups, &t.stages, &t.k_split);
}

std::string WgmmaTile::rejects(const Shape& s, Stage stage, const DeviceInfo& d) const {
  if (bm <= 0 || bn <= 0 || groups <= 0 || stages <= 0 || k_split <= 0 || occ <= 0) return "non-positive field";
  if (mcast != 1 && mcast != 2) return "mcast is 1 or 2";
  if (pack != 0 && pack != 1) return "pack is 0 or 1";
  if (d.arch != "sm_90a") return "wgmma and TMA need sm_90a (compute capability 9.0), device is " + d.arch;
  const bool fp32 = s.precision == Precision::FP32;
  // W's rows on the wgmma M side: fp32 always, tf32 and bf16 for a 16-row batch tile.
  const bool w_on_m = rnnjit_k::wgmma_w_on_m(math_arg(s.precision), bm);
  if (groups > 2) return "at most two consumer warpgroups (setmaxnreg gives each thread 232 registers)";
  if (!w_on_m) {
    if (bm % (64 * groups) != 0 || bm > 256) return "BM must be whole m64 blocks per warpgroup, at most 256";
    if (bn != 64 && bn != 128) return "BN must be 64 or 128 (wgmma n64, n128)";
  } else {
    if (bn % (64 * groups) != 0) return "BN must be whole m64 blocks per warpgroup (W's rows on the M side)";
    if (fp32 && bm != 16 && bm != 64 && bm != 128) return "fp32: BM must be 16, 64 or 128 (wgmma n16, n64, n128)";
    if (!fp32 && bm != 16) return "tf32 and bf16: BM below 64 must be 16 (wgmma n16)";
  }
  if (stages < 2) return "needs at least 2 stages";
  // A packed copy of W takes whole rows: not W1's first I columns.
  const Gemm own = gemm_of(stage, s);
  const Loads loads = loads_of(stage, s, pack);
  if (pack && loads == loads_of(stage, s, false)) return "nothing here takes 4-byte copies: the tile without p reads it alike";
  if (loads.packed && own.ldw != own.k1 + own.k2)
    return "TMA cannot read this stage in place, and a packed W copies whole rows";
  if (k_split > 8) return "K_SPLIT CTAs must fit a portable cluster (8)";
  if (mcast > 1) {
    if (k_split != 1 || occ != 1 || pack) return "multicast pairs take no K split, no second CTA a SM and no packed twin";
    if (w_on_m) return "multicast shares A's rows on the M side (tf32 and bf16, BM >= 64)";
    // The paths run on the GPU with multicast: copies of A or W, or a packed A, have not been.
    if (loads != Loads{}) return "multicast pairs read both operands in place by TMA (rows of whole 16-byte units)";
  }
  // Accumulators a thread: m64 blocks a warpgroup × n / 2, twice for fp32's partial sums.
  const int m_rows = w_on_m ? bn : bm, n = w_on_m ? bm : bn;
  const int acc = m_rows / groups / 64 * n / 2 * (fp32 ? 2 : 1);
  if (acc > 128) return std::to_string(acc) + " accumulator registers per thread, at most 128";
  // Several CTAs a SM share its 64K registers (no setmaxnreg then) and its 228 KiB of shared memory.
  // ptxas needs ~24 registers beside the accumulators: 128x128 g2 tf32 at 2 a SM (80) fails to compile.
  const int regs = 65536 / (occ * (groups + 1) * 128) / 8 * 8;
  if (occ > 1 && acc + 24 > regs) return std::to_string(occ) + " CTAs a SM leave " + std::to_string(regs) + " registers a thread";
  if (occ > 1 && occ * (geometry(s, stage).smem + 1024) > kSm90SmemPerSm) return "shared memory for " + std::to_string(occ) + " CTAs a SM";
  if (std::size_t(bm) * (bn + 4) * sizeof(float) > ring_bytes(*this, s)) return "the C tile does not fit the ring it reuses";
  // One grid dimension holds K_SPLIT × M tiles × N tiles.
  const std::int64_t ctas =
      std::int64_t(k_split) * ((own.m + bm - 1) / bm) * n_tiles(*this, std::max(s.h, s.o));
  if (ctas > 0x7FFFFFFF) return std::to_string(ctas) + " CTAs, more than one grid dimension holds";
  return "";
}

std::vector<std::string> WgmmaTile::kernels(const Shape& s, Stage stage) const {
  const Loads l = loads_of(stage, s, pack);
  const Gemm own = gemm_of(stage, s), g = run_gemm(stage, s, l);
  const int st = store_arg(s.dtype);
  std::vector<std::string> out = {name_expression("gemm_wgmma", {st, g.m, g.n, g.k1, g.k2, g.ldw, l.a_copy, l.w_copy, bm, bn,
                                                                 groups, stages, k_split, math_arg(s.precision), g.epi, occ, mcast})};
  if (operands(s) == Operands::TensorMapsCross) out.push_back(name_expression("split_cross", {g.m, g.k1, g.k2}));
  if (l.packed) {
    out.push_back(name_expression("pack_rows", {st, g.m, own.k1, own.k2, g.k1}));
    if (l.w_copy == 0) out.push_back(name_expression("pack_rows", {st, g.n, own.ldw, 0, g.k1}));
  }
  return out;
}

Geometry WgmmaTile::geometry(const Shape& s, Stage stage) const {
  const Loads l = loads_of(stage, s, pack);
  const Gemm g = run_gemm(stage, s, l);
  Geometry geo;
  // One dimension: the kernel orders split (or multicast peer), M tile, N tile itself.
  geo.grid_x = static_cast<unsigned>(n_tiles(*this, g.n) * ((g.m + bm - 1) / bm) * k_split);
  geo.cluster_ctas = k_split > 1 ? static_cast<unsigned>(k_split) : mcast > 1 ? static_cast<unsigned>(mcast) : 0;
  geo.threads = static_cast<unsigned>((groups + 1) * 128);
  // The ring, its mbarriers and 1 KiB of slack to align it for the 128-byte swizzle.
  geo.smem = ring_bytes(*this, s) + stages * 2 * sizeof(std::uint64_t) + 1024;
  geo.tma_box_a = static_cast<unsigned>(bm / mcast);  // each multicast peer lands its share
  geo.tma_box_w = static_cast<unsigned>(bn);
  // Each K segment in whole slices.
  geo.cross_words = ((g.k1 + kWgmmaSliceFloats - 1) / kWgmmaSliceFloats + (g.k2 + kWgmmaSliceFloats - 1) / kWgmmaSliceFloats) *
                    kWgmmaSliceFloats;
  if (l.packed) geo.pack_k = g.k1;
  geo.a_copy = l.a_copy;
  geo.w_copy = l.w_copy;
  return geo;
}

Operands WgmmaTile::operands(const Shape& s) const {
  return s.precision == Precision::FP32 ? Operands::TensorMapsCross : Operands::TensorMaps;
}

// One CTA a SM: waves of CTAs, each the larger of its tensor-core time (~1024 MACs a clock, twice
// for fp32's tf32 + bf16 passes, half for bf16 storage's bf16 products) and its A and W slices
// through L2 (~32 bytes a clock a SM when all stream; a multicast pair's CTA reads half of A's rows),
// plus the split's reduction through DSMEM. Clusters cannot span GPCs: on the H100 only
// 30 of 4 CTAs (not 33) and 15 of 8 are resident at once, so about 10% of SMs idle for K_SPLIT > 2.
double WgmmaTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  const int k = g.k1 + g.k2;
  const int cluster = k_split * mcast;
  const double ctas = std::ceil(double(g.m) / bm) * n_tiles(*this, g.n) * k_split;
  const double clusters = std::floor(double(d.sm_count) / cluster * (cluster > 2 ? 0.9 : 1.0));
  const double waves = std::ceil(ctas / (clusters * cluster));
  const double slice = 128.0 / g.elem;  // K elements a 128-byte slice
  const double k_cta = std::ceil(std::ceil(k / slice) / k_split) * slice;
  const double rate = s.precision == Precision::FP32 ? 0.5 : s.dtype == DType::BF16 ? 2.0 : 1.0;
  const double macs = double(bm) * bn * k_cta / rate;
  const double bytes = (double(bm) / mcast + bn) * k_cta * g.elem;
  return waves * (std::max(macs / 1024.0, bytes / 32.0) + k_split * bm * bn * 4.0 / 32.0);
}

// Measured (H100, `rnnjit-bench`, step µs, h2o pinned behind the tuned i2h): B=2945 I=1 H=39 O=3383
// tf32 47.17 tuned (128x128 s6) against 41.57 (64x64 o3), 41.63 (o4), 42.91 (64x128 o2), 43.97 (128x64
// g2 o2); B=1952 I=8 H=52 O=7920 bf16 41.70 (256x128) against 37.18, 37.41, 43.49, 38.78. Not fp32
// (2945: 57.38 against 60.22 for 64x64 o2), whose tiles put W's rows on the M side.
const WgmmaTile WgmmaTile::kShortK{64, 64, 1, 2, 1, 0, 3};

bool WgmmaTile::stores_bound(const Shape& s, Stage stage) {
  if (s.precision == Precision::FP32) return false;
  const Gemm g = gemm_of(stage, s);
  const int slice = 128 / g.elem;  // K elements a ring slice
  const int slices = (g.k1 + slice - 1) / slice + (g.k2 + slice - 1) / slice;
  return slices <= kShortK.stages && double(g.m) * g.n >= double(1 << 22);
}

// Batch 256 (kb-large): one M tile over the whole batch streams W once, 128 N tiles fill 132 SMs,
// or half as many with K split in two. Batch ≤ 64 (mid): n64 tiles with K split 2 to 8 ways, since
// A is re-read from L2 once per N tile. The shallower rings fit fp32's cross copy of A in every
// slot (a 128x128 fp32 tile takes 4 stages at most). Batch ≤ 16: W's rows on the M side and a
// 16-row batch tile (n16), so that the ring holds ~180 KiB of W in flight a SM (tf32; fp32's slots
// also hold A's cross copy: 144 KiB in 18); 128 CTAs at 4096 columns. The same tiles with K split 8
// for few output columns over a long K: B=211 I=3978 H=1 O=1 tf32 15.8 µs in the loop against 23.0
// for 64x64 k8 (H100). 256x128 k3 and 128x128 k2 for 128-256 rows over a long K whose N tiles
// alone leave SMs idle: B=155 I=4 H=4568 O=8's i2h went from 72 CTAs (k2) to 108 (tf32 78.1 ->
// 67.0 µs, H100). 256x128 and 128x128 as multicast pairs (m2) where both stages stream A from L2:
// B=755 I=1108 H=7156 O=5420's step went from 807.8 to 638.1 µs in tf32 (H100); bf16's 401.6 to 325.6
// was on a packed A with W copied, a path pairs no longer take (rejects).
std::span<const WgmmaTile> WgmmaTile::pool() {
  static const WgmmaTile tiles[] = {
      {256, 128, 2, 4, 1}, {256, 128, 2, 4, 2}, {256, 128, 2, 4, 3}, {128, 128, 2, 6, 1}, {128, 128, 2, 4, 1}, {128, 128, 2, 3, 1}, {128, 128, 2, 4, 2},
      {256, 64, 2, 2, 1},  {64, 128, 1, 6, 4},  {64, 64, 1, 8, 2},    {64, 64, 1, 8, 3},    {64, 64, 1, 8, 4},
      {64, 64, 1, 8, 6},   {64, 64, 1, 8, 8},   {64, 64, 1, 4, 3},    {64, 64, 1, 4, 4},    {64, 64, 1, 4, 6},
      {16, 64, 1, 22, 2},  {16, 128, 1, 12, 4}, {16, 64, 1, 18, 2},   {16, 64, 1, 22, 8},   {16, 64, 1, 18, 8},
      {256, 128, 2, 4, 1, 0, 1, 2}, {128, 128, 2, 6, 1, 0, 1, 2},
  };
  return tiles;
}

}  // namespace rnnjit
