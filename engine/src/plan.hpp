// A Plan: a config's kernels loaded, and how to launch each for one problem. It runs its
// launches in order, each taking its operands from the call's Args by its stage (problem.hpp).
#pragma once

#include <cuda.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <vector>

#include "config.hpp"
#include "device.hpp"
#include "jit.hpp"

namespace rnnjit {

/// The buffers of one call, all device pointers.
struct Args {
  const void* x = nullptr;
  const void* h = nullptr;
  void* h_out = nullptr;
  void* y = nullptr;
  const void* w1 = nullptr;
  const void* b1 = nullptr;
  const void* w2 = nullptr;
  const void* b2 = nullptr;
  /// rnnjit_k::kCountersPerCall launch counters no other launch in flight uses (the engine hands out a
  /// set a call), for the whole-step launches: the grid barrier uses the first, the fused step one a
  /// rank of its clusters. Zeroed once, each launch leaves them ready for the next.
  unsigned* counters = nullptr;
  /// A sequence chunk (a Shape with steps = C): x and y hold its C steps' rows, h_out its C states
  /// (C·B×H), h the state before the first step the recurrence runs; `proj` C·B×H floats of
  /// scratch for the input projection. The recurrence runs the chunk's last `steps` steps (≤ C):
  /// the projections cover all C, and rows of earlier steps are rewritten with what they hold.
  void* proj = nullptr;
  int steps = 0;
};

/// Tensor maps already encoded, for the few buffers an RNN loop cycles through: encoding one costs
/// the host about as much as a launch. Thread-safe; the least recently used entry makes room.
class TensorMapCache {
 public:
  /// The map of a row-major rows×cols matrix of `elem`-byte elements (4: f32, 2: bf16) at `base`,
  /// rows ld elements apart, read in boxes of 128 bytes × box_rows rows, 128-byte swizzled (what
  /// gemm_wgmma.cu's descriptors expect).
  CUtensorMap get(const void* base, int cols, int rows, int ld, int box_rows, int elem);

 private:
  struct Entry {
    const void* base = nullptr;
    int cols = 0, rows = 0, ld = 0, box_rows = 0, elem = 0;
    std::uint64_t used = 0;  // 0: empty
    CUtensorMap map;
  };
  std::mutex mu_;
  std::array<Entry, 16> entries_{};
  std::uint64_t clock_ = 0;
};

class Plan {
 public:
  /// Loads `binaries` (one a config op, from sources_of(config, ...)) into the current context;
  /// throws LaunchFailed.
  Plan(const Config& config, const Shape& shape, const std::vector<const Binary*>& binaries);

  /// Enqueues the launches on `stream`, their scratch (cross copies, packed operands) lent by
  /// `arena`, or stream-ordered where it is null (the tuner's timing). Throws LaunchFailed.
  void run(const Args& args, CUstream stream, ScratchArena* arena = nullptr) const;

  /// Whether run() takes these pointers: TMA launches need their operands 16-byte aligned.
  bool accepts(const Args& args) const;

  const Config& config() const { return config_; }

 private:
  struct Launch {
    CUfunction fn = nullptr;
    CUfunction cross_fn = nullptr;  // TensorMapsCross: writes A's cross copy first
    CUfunction pack_a_fn = nullptr, pack_w_fn = nullptr;  // geo.pack_k > 0: pack A, then W where needed
    Stage stage = Stage::Step;
    Operands operands = Operands::Pointers;
    Geometry geo;
    Gemm gemm;  // as the kernel runs it: over the packed copies when geo.pack_k > 0 (W's own rows with geo.w_copy)
    bool w_in_place = false;  // packed: W's own rows are pack_k floats (K a multiple of 4)
  };
  // Scratch bytes a launch uses: A's cross copy, then the packed A and W.
  struct ScratchUse {
    std::size_t cross = 0, a = 0, w = 0;
    std::size_t total() const { return cross + a + w; }
  };
  static ScratchUse scratch_use(const Launch& l, const Args& args);
  void launch_stage(const Launch& l, const Args& args, char* scratch, CUstream stream) const;
  void launch_recurrence(const Launch& l, const Args& args, CUstream stream) const;

  Config config_;
  Shape shape_;
  std::vector<Module> modules_;
  std::vector<Launch> launches_;
  mutable TensorMapCache maps_;
};

/// The NVRTC programs of `config`'s ops for `shape` on `arch`, in launch order.
std::vector<KernelSource> sources_of(const Config& config, const Shape& shape, const std::string& arch);

}  // namespace rnnjit
