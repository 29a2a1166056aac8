// A Plan: a loaded module and the launch geometry of its kernels for one problem. The
// step is two launches: i2h (with bias and tanh) writes h', then h2o reads it.
#pragma once

#include <cuda.h>

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>

#include "config.hpp"
#include "jit.hpp"

namespace rnnjit {

/// One kernel and how to launch it.
struct Launch {
  CUfunction fn = nullptr;
  unsigned grid_x = 1, grid_y = 1;
  unsigned threads = 0;
  unsigned smem = 0;
  unsigned cluster = 0;  ///< CTAs per cluster along x; 0 for a plain launch
  bool cooperative = false;  ///< every CTA resident at once (fused_grid's grid barrier)
  /// Programmatic dependent launch: it may start while the kernel before it in the stream
  /// finishes (it waits for it before reading anything), and lets the next one do the same.
  bool dependent = false;
  /// Wgmma: the kernel takes TMA maps of A1, A2 (M×K1, M×K2) and W (N rows of LDW floats),
  /// encoded per call for the caller's pointers, with boxes of 32 floats × BM or BN rows.
  bool tma = false;
  int m = 0, n = 0, k1 = 0, k2 = 0, ldw = 0, bm = 0, bn = 0;
  /// Wgmma fp32: split_cross, launched first, writes A's cross copy (M rows of cross_cols 32-bit
  /// words) to scratch, which the product reads through a fourth map.
  CUfunction split_fn = nullptr;
  int cross_cols = 0;
};

/// Arguments of one step, all device pointers.
struct StepArgs {
  const float* x;
  const float* h;
  float* h_out;
  float* y;
  const float* w1;
  const float* b1;
  const float* w2;
  const float* b2;
  /// kCountersPerCall launch counters no other launch in flight uses (the engine hands out a set a
  /// call), for the one-launch steps: the grid barrier uses the first, the Fused step one a rank of
  /// its clusters. Zeroed once, they leave them ready for the next launch.
  unsigned* barrier = nullptr;
  static constexpr unsigned kCountersPerCall = 16;  // the largest cluster
};

/// Tensor maps already encoded, for the few buffers an RNN loop cycles through: encoding one costs
/// the host about as much as a launch. Thread-safe; the least recently used entry makes room.
class TensorMapCache {
 public:
  /// The map of a row-major rows×cols fp32 matrix at `base`, rows ld floats apart, read in boxes of
  /// 32 columns × box_rows rows, 128-byte swizzled (what gemm_wgmma.cu's descriptors expect).
  CUtensorMap get(const float* base, int cols, int rows, int ld, int box_rows);

 private:
  struct Entry {
    const float* base = nullptr;
    int cols = 0, rows = 0, ld = 0, box_rows = 0;
    std::uint64_t used = 0;  // 0: empty
    CUtensorMap map;
  };
  std::mutex mu_;
  std::array<Entry, 16> entries_{};
  std::uint64_t clock_ = 0;
};

class Plan {
 public:
  /// Loads the binaries of step_sources(config, ...), in that order, into the current
  /// context; throws LaunchFailed.
  Plan(const Config& config, const Shape& shape, const std::vector<const Binary*>& binaries);
  ~Plan();
  Plan(const Plan&) = delete;
  Plan& operator=(const Plan&) = delete;

  /// Enqueues the step on `stream`. Throws LaunchFailed.
  void run(const StepArgs& args, CUstream stream) const;

  /// Whether run() takes these pointers: TMA stages need 16-byte aligned x, h, h_out, W1, W2.
  bool accepts(const StepArgs& args) const;

  const Config& config() const { return config_; }

 private:
  void unload() noexcept;

  Config config_;
  CUmodule modules_[2] = {nullptr, nullptr};
  Launch i2h_, h2o_;  // a fused plan uses i2h_ alone
  mutable TensorMapCache maps_;
};

}  // namespace rnnjit
