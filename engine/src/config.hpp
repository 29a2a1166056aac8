// Tile configs: plain descriptions with one procedural name, used as cache key and in logs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "rnnjit/rnnjit.hpp"

namespace rnnjit {

/// Values of the kernels' MATH template argument (kernel_templates/rnnjit_device.cuh).
enum class Math : int { Tf32 = 0, Split3xTf32 = 1 };

/// Kernel families, one kernel_templates/ file each.
enum class Family {
  Mma,   ///< gemm_mma.cu: tensor-core tiles, any batch
  Gemv,  ///< gemv.cu: fp32 weight streaming, batch ≤ 16
};

/// One launch of a family.
/// Mma: a BM×BN CTA tile over BK-wide K slices, WARPS_M×WARPS_N warps, a STAGES-deep
/// cp.async ring. Gemv: ROWS rows of W per warp, WARPS warps per CTA, UNROLL 16-byte loads
/// in flight per lane and row.
struct Tile {
  Family family = Family::Mma;
  int bm = 0, bn = 0, bk = 0, warps_m = 0, warps_n = 0, stages = 0;  // Mma
  int rows = 0, warps = 0, unroll = 0;                               // Gemv

  static Tile mma(int bm, int bn, int bk, int warps_m, int warps_n, int stages) {
    return {Family::Mma, bm, bn, bk, warps_m, warps_n, stages, 0, 0, 0};
  }
  static Tile gemv(int rows, int warps, int unroll) { return {Family::Gemv, 0, 0, 0, 0, 0, 0, rows, warps, unroll}; }

  int threads() const { return (family == Family::Mma ? warps_m * warps_n : warps) * 32; }
  /// Mma: STAGES slots of (BM+BN) rows of BK+4 floats; Gemv: none.
  std::size_t smem_bytes() const {
    return family == Family::Mma ? static_cast<std::size_t>(stages) * (bm + bn) * (bk + 4) * sizeof(float) : 0;
  }
  /// Output rows (M) and columns (N) one CTA covers.
  int cta_m(int batch) const { return family == Family::Mma ? bm : batch; }
  int cta_n() const { return family == Family::Mma ? bn : rows * warps; }
  /// "mma64x64x32w2x2s4" or "gemv_r2w4u4".
  std::string name() const;
  static std::optional<Tile> parse(const std::string& name);
  bool operator==(const Tile&) const = default;
};

/// What the tuner chooses between: the i2h (with tanh) and h2o launches.
struct Config {
  Tile i2h;
  Tile h2o;

  /// "i2h_mma64x64x32w2x2s4.h2o_gemv_r2w4u4": the cache key and the log name.
  std::string name() const;
  /// Inverse of name(); nullopt for anything else (a row written by another version).
  static std::optional<Config> parse(const std::string& name);
  bool operator==(const Config&) const = default;
};

/// Problem with precision resolved and sizes validated.
struct Shape {
  int b = 0, i = 0, h = 0, o = 0;
  Math math = Math::Tf32;
};

/// Whether `config` can run `shape` on `device`; if not, says why. Screens candidates
/// before NVRTC sees them.
bool can_implement(const Config& config, const Shape& shape, const DeviceInfo& device, std::string* why);

}  // namespace rnnjit
