// NVRTC: KernelSource -> Binary, through the binary cache so that a warm process never
// compiles.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "kernel_source.hpp"
#include "rnnjit/rnnjit.hpp"
#include "rnnjit/cache/store.hpp"

namespace rnnjit {

/// A loadable module (cubin, or PTX when NVRTC cannot target the device) and the lowered
/// names of its kernels, in name-expression order.
struct Binary {
  std::string key;
  std::vector<std::uint8_t> image;
  std::vector<std::string> lowered_names;
  std::string log;  ///< NVRTC's log of this compile (ptxas' lines under --ptxas-options=-v); empty from a cache
};

/// "13.0"
std::string nvrtc_version();

/// The NVRTC target for a device: sm_90a on Hopper (wgmma and friends), sm_XY where this
/// NVRTC supports it, else compute_XY (PTX) of the newest supported arch below it.
std::string target_arch(int cc_major, int cc_minor);

/// Compiles with NVRTC; throws Error(CompileFailed) carrying the log, options and source.
Binary compile(const KernelSource& source);

/// compile() behind the cache's binaries table.
class Jit {
 public:
  explicit Jit(cache::Store& store) : store_(store) {}

  /// The binary for `source`: from the cache if present and intact, else compiled and stored.
  Binary get(const KernelSource& source);

  std::int64_t compiles() const { return compiles_.load(); }
  std::int64_t cache_hits() const { return cache_hits_.load(); }

 private:
  cache::Store& store_;
  std::atomic<std::int64_t> compiles_{0};
  std::atomic<std::int64_t> cache_hits_{0};
};

}  // namespace rnnjit
