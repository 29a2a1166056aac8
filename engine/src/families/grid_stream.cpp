#include "grid_stream.hpp"

#include <cmath>

namespace rnnjit {

std::string StreamTile::name() const {
  char buf[64];
  std::snprintf(buf, sizeof buf, "stream_c%dw%dr%du%dp%d", ctas, warps, rows, unroll, prefetch);
  return buf;
}

std::optional<StreamTile> StreamTile::parse(std::string_view name) {
  StreamTile t;
  return scan_name(name, "stream_c%dw%dr%du%dp%d%n", t, &t.ctas, &t.warps, &t.rows, &t.unroll, &t.prefetch);
}

std::string StreamTile::rejects(const Shape& s, Stage, const DeviceInfo& d) const {
  if (ctas <= 0 || warps <= 0 || rows <= 0 || unroll <= 0 || prefetch < 0) return "non-positive field";
  if (d.cc_major < 8)
    return "cp.async needs compute capability 8.0 or newer, device has " + std::to_string(d.cc_major) + "." +
           std::to_string(d.cc_minor);
  if (s.b > 16) return "stream serves batch ≤ 16, not " + std::to_string(s.b);
  if (rows * s.b > 64) return "ROWS×batch > 64 accumulators per lane";
  // 16 warps leave 128 registers a thread: UNROLL·16 bytes of W for each of ROWS rows beside the
  // batch's sums and A spilled at UNROLL × batch 64 (u8 at batch 8: 8-26 bytes on sm_80, sm_86 and
  // sm_90a; tests/families_test.cpp compiles every described GPU's proposals without spills).
  if (warps * 32 * 128 >= 65536 && unroll * rows * s.b > 32)
    return "UNROLL×ROWS×batch > 32 with 128 registers a thread";
  if (prefetch % rows != 0) return "PREFETCH must be whole groups of ROWS rows";
  return "";
}

std::vector<std::string> StreamTile::kernels(const Shape& s, Stage) const {
  return {name_expression("grid_stream", {store_arg(s.dtype), s.b, s.i, s.h, s.o, warps, rows, unroll, prefetch})};
}

Geometry StreamTile::geometry(const Shape& s, Stage) const {
  Geometry geo;
  geo.grid_x = static_cast<unsigned>(ctas);
  geo.threads = static_cast<unsigned>(warps * 32);
  geo.cooperative = true;
  // h' when the kernel stages it (in whole 16-byte units), then the prefetched W2 rows.
  const std::size_t e = dtype_size(s.dtype), per16 = 16 / e;
  const std::size_t staged = rnnjit_k::stream_stages_h(s.b, s.h) ? (std::size_t(s.b) * s.h + per16 - 1) / per16 * per16 : 0;
  geo.smem = (staged + std::size_t(prefetch) * s.h) * e;
  return geo;
}

// Every ROWS rows re-read A through L1 (docs/kernels.md, "stream": at batch 8, ROWS 2 78 µs, 4 83, 1 86).
double StreamTile::estimate(const Shape& s, Stage, const DeviceInfo&) const {
  const double in_flight = double(ctas) * warps * 32 * 16 * unroll * rows;
  const double a_bytes = double(dtype_size(s.dtype)) * s.b *
                         (std::ceil(double(s.h) / ctas / rows) * (s.i + s.h) +
                          std::ceil(double(s.o) / ctas / rows) * s.h);
  return streamed_seconds(ctas, weight_bytes(s), in_flight, a_bytes);
}

// 16 or 8 W2 rows a CTA (128 KiB of bf16 or f32 at H = 4096; f32's 16 do not fit there) staged
// across the grid barrier; more rows a warp for larger batches (A is re-read once per ROWS rows); 64
// CTAs for GPUs with fewer than 128 SMs.
std::span<const StreamTile> StreamTile::pool() {
  static const StreamTile tiles[] = {
      {128, 16, 1, 8, 16}, {128, 16, 1, 8, 8}, {128, 16, 1, 4, 8},
      {128, 8, 2, 4, 8},   {128, 8, 4, 2, 8},  {64, 16, 1, 8, 4},
  };
  return tiles;
}

}  // namespace rnnjit
