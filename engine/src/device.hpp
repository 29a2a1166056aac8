// Device-side RAII: the current context for a scope, a device allocation, a loaded module; and
// the device's facts.
#pragma once

#include <cstddef>
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
