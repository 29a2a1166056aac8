// A Plan: a loaded module and the launch geometry of its kernels for one problem. The
// step is two launches: i2h (with bias and tanh) writes h', then h2o reads it.
#pragma once

#include <cuda.h>

#include <memory>

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
  /// Wgmma: the kernel takes TMA maps of A1, A2 (M×K1, M×K2) and W (N rows of LDW floats),
  /// encoded per call for the caller's pointers, with boxes of 32 floats × BM or BN rows.
  bool tma = false;
  int m = 0, n = 0, k1 = 0, k2 = 0, ldw = 0, bm = 0, bn = 0;
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
  /// A zeroed counter no other launch in flight uses (the engine hands out one a call); for
  /// fused_grid's barrier, which leaves it zero again.
  unsigned* barrier = nullptr;
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
};

}  // namespace rnnjit
