// Device-side RAII: the current context for a scope, a device allocation, a loaded module; and
// the device's facts.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "driver.hpp"
#include "jit.hpp"
#include "rnnjit/rnnjit.hpp"

namespace rnnjit {

/// Makes `ctx` current for the scope (and only pushes when it is not already current,
/// which keeps the hot path to one cuCtxGetCurrent).
class ContextScope {
 public:
  explicit ContextScope(CUcontext ctx) {
    CUcontext current = nullptr;
    RNNJIT_CU(cuCtxGetCurrent(&current));
    if (current != ctx) {
      RNNJIT_CU(cuCtxPushCurrent(ctx));
      pushed_ = true;
    }
  }
  ~ContextScope() {
    CUcontext popped = nullptr;
    if (pushed_) driver::api().cuCtxPopCurrent(&popped);
  }
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  bool pushed_ = false;
};

/// Sets this thread's stream capture mode to relaxed for its life, then restores it. A capture in
/// global mode (CUDA's default) on any thread forbids "unsafe" calls such as cuMemAlloc,
/// cuEventQuery and cuModuleLoadData on every thread of the process: they would fail and
/// invalidate that capture. Relaxed mode exempts this thread's calls; use it only around calls
/// that touch no captured stream (the background job's, the scratch arena's).
class RelaxedCapture {
 public:
  RelaxedCapture() { RNNJIT_CU(cuThreadExchangeStreamCaptureMode(&previous_)); }
  ~RelaxedCapture();
  RelaxedCapture(const RelaxedCapture&) = delete;
  RelaxedCapture& operator=(const RelaxedCapture&) = delete;

 private:
  CUstreamCaptureMode previous_ = CU_STREAM_CAPTURE_MODE_RELAXED;  // in: the mode to set; out: the old one
};

/// cuMemAlloc'd floats in the current context, freed on destruction.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) : count_(count) {
    if (count) RNNJIT_CU(cuMemAlloc(&ptr_, count * sizeof(float)));
  }
  ~DeviceBuffer() {
    if (ptr_) driver::api().cuMemFree(ptr_);
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = 0, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  float* get() const { return reinterpret_cast<float*>(ptr_); }
  std::size_t size() const { return count_; }

 private:
  CUdeviceptr ptr_ = 0;
  std::size_t count_ = 0;
};

/// Device scratch lent to one call at a time: cuMemAlloc'd buffers kept for the arena's life, each
/// free again once the work enqueued with it has run (an event recorded after it). Why not
/// stream-ordered memory: a process's first cuMemAllocAsync costs 7-10 ms (the pool is made), a
/// warm engine's whole first step on an H100; cuMemAlloc is warm in any process that has made a
/// tensor. Where kMaxBuffers are out and none is free and large enough, above kMaxBufferBytes, and
/// under stream capture (a graph must own its memory), a lease takes stream-ordered memory instead.
/// Thread-safe; its destruction waits for the work of its leases.
class ScratchArena {
  struct Buffer;

 public:
  static constexpr std::size_t kMaxBuffers = 4;
  /// Larger leases take stream-ordered memory, which the pool gives back: the arena keeps at most
  /// kMaxBuffers × this (kb-large fp32's cross copy is 32 MiB).
  static constexpr std::size_t kMaxBufferBytes = std::size_t(64) << 20;

  ScratchArena() = default;
  ~ScratchArena();
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;

  /// `bytes` of device memory (none when 0) for the work enqueued on `stream` while the lease
  /// lives, from `arena`, or stream-ordered where `arena` is null. release() ends it; the
  /// destructor ends one that an exception left, ignoring errors.
  class Lease {
   public:
    Lease(ScratchArena* arena, std::size_t bytes, CUstream stream);
    ~Lease();
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    char* get() const { return reinterpret_cast<char*>(ptr_); }
    /// Ends the lease after the work enqueued so far. Throws LaunchFailed.
    void release();

   private:
    Buffer* buffer_ = nullptr;  // from the arena, or null: ptr_ is stream-ordered
    CUdeviceptr ptr_ = 0;
    CUstream stream_ = nullptr;
    ScratchArena* arena_ = nullptr;
  };

 private:
  struct Buffer {
    CUdeviceptr ptr = 0;
    std::size_t bytes = 0;
    CUevent done = nullptr;     // recorded after the last lease's work
    CUstream last = nullptr;    // that lease's stream
    bool lent = false;
  };
  // A free buffer of at least `bytes` for `stream`, or null; the mutex is held.
  Buffer* take(std::size_t bytes, CUstream stream);

  std::mutex mu_;
  std::vector<std::unique_ptr<Buffer>> buffers_;
};

/// A binary loaded into the current context, unloaded on destruction.
class Module {
 public:
  /// Loads `binary`; throws LaunchFailed.
  explicit Module(const Binary& binary);
  ~Module();
  Module(Module&& o) noexcept : module_(o.module_), names_(std::move(o.names_)) { o.module_ = nullptr; }
  Module& operator=(Module&&) = delete;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  /// The i-th kernel of the binary, in name-expression order.
  CUfunction function(std::size_t i) const;

 private:
  CUmodule module_ = nullptr;
  std::vector<std::string> names_;
};

/// Reads the facts the tuner and the cache key depend on. Throws NoDevice.
DeviceInfo query_device(int ordinal);

/// The tuning cache's GPU key of a device (DeviceInfo::key).
std::string gpu_key(const DeviceInfo& d);

}  // namespace rnnjit
