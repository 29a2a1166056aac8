#include "generic.hpp"

namespace rnnjit {

std::optional<GenericTile> GenericTile::parse(std::string_view name) {
  if (name == "generic") return GenericTile{};
  return std::nullopt;
}

std::string GenericTile::rejects(const Shape& s, Stage stage, const DeviceInfo& d) const {
  if (d.cc_major < 8) return "built for compute capability 8.0 and newer, device has " + std::to_string(d.cc_major) + "." +
                             std::to_string(d.cc_minor);
  // The tiled grid's y dimension counts M tiles and is limited to 65535.
  const int m = gemm_of(stage, s).m;
  if ((m + rnnjit_k::kGenericTile - 1) / rnnjit_k::kGenericTile > 65535)
    return std::to_string(m) + " rows need more than 65535 M tiles";
  return "";
}

Geometry GenericTile::geometry(const Shape& s, Stage stage) const {
  const Gemm g = gemm_of(stage, s);
  Geometry geo;
  geo.threads = rnnjit_k::kGenericThreads;
  if (g.m <= rnnjit_k::kGenericRowsMaxM) {
    constexpr int cols = rnnjit_k::kGenericThreads / 32;  // a warp a column
    geo.grid_x = static_cast<unsigned>((g.n + cols - 1) / cols);
  } else {
    geo.grid_x = static_cast<unsigned>((g.n + rnnjit_k::kGenericTile - 1) / rnnjit_k::kGenericTile);
    geo.grid_y = static_cast<unsigned>((g.m + rnnjit_k::kGenericTile - 1) / rnnjit_k::kGenericTile);
  }
  return geo;
}

// Not ranked against other families (the tuner proposes it only where nothing else serves): its
// FFMA work at a fraction of the chip's rate, for logs and tests.
double GenericTile::estimate(const Shape& s, Stage stage, const DeviceInfo& d) const {
  const Gemm g = gemm_of(stage, s);
  return double(g.m) * g.n * (g.k1 + g.k2) / d.sm_count;
}

std::span<const GenericTile> GenericTile::pool() {
  static const GenericTile tiles[] = {{}};
  return tiles;
}

}  // namespace rnnjit
