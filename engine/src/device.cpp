#include "device.hpp"

#include <utility>

#include "support/log.hpp"

namespace rnnjit {

Module::Module(const Binary& binary) : names_(binary.lowered_names) {
  RNNJIT_CU(cuModuleLoadData(&module_, binary.image.data()));
}

Module::~Module() {
  // Errors are ignored: this runs in a destructor, and a dead context unloads anyway.
  if (module_) driver::api().cuModuleUnload(module_);
}

RelaxedCapture::~RelaxedCapture() {
  const CUresult r = driver::api().cuThreadExchangeStreamCaptureMode(&previous_);
  if (r != CUDA_SUCCESS) support::log().warn("cannot restore this thread's stream capture mode (CUresult {})", static_cast<int>(r));
}

ScratchArena::~ScratchArena() {
  // Each buffer is freed once its last lease's work has run: an engine may go while its calls do.
  // Errors are ignored: this runs in a destructor, and a dead context frees everything.
  for (const auto& b : buffers_) {
    driver::api().cuEventSynchronize(b->done);
    driver::api().cuMemFree(b->ptr);
    driver::api().cuEventDestroy(b->done);
  }
}

ScratchArena::Buffer* ScratchArena::take(std::size_t bytes, CUstream stream) {
  if (bytes > kMaxBufferBytes) return nullptr;
  for (const auto& b : buffers_) {
    if (b->lent || b->bytes < bytes) continue;
    const CUresult done = driver::api().cuEventQuery(b->done);
    if (done == CUDA_ERROR_NOT_READY && b->last != stream) continue;
    if (done == CUDA_ERROR_NOT_READY) {
      // Stream order already puts this call after the last lease's work; the wait keeps that true
      // where the handle is a new stream's, made after the last one's was destroyed.
      RNNJIT_CU(cuStreamWaitEvent(stream, b->done, 0));
    } else if (done != CUDA_SUCCESS) {
      driver::fail(done, "cuEventQuery(scratch)", __FILE__, __LINE__);
    }
    b->lent = true;
    return b.get();
  }
  if (buffers_.size() == kMaxBuffers) return nullptr;
  auto b = std::make_unique<Buffer>();
  RNNJIT_CU(cuEventCreate(&b->done, CU_EVENT_DISABLE_TIMING));
  if (const CUresult r = driver::api().cuMemAlloc(&b->ptr, bytes); r != CUDA_SUCCESS) {
    driver::api().cuEventDestroy(b->done);
    driver::fail(r, "cuMemAlloc(scratch)", __FILE__, __LINE__);
  }
  b->bytes = bytes;
  b->lent = true;
  buffers_.push_back(std::move(b));
  return buffers_.back().get();
}

ScratchArena::Lease::Lease(ScratchArena* arena, std::size_t bytes, CUstream stream) : stream_(stream), arena_(arena) {
  if (bytes == 0) return;
  if (arena) {
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    RNNJIT_CU(cuStreamIsCapturing(stream, &capture));
    if (capture == CU_STREAM_CAPTURE_STATUS_NONE) {
      // take() touches only the arena's buffers and events and this stream, which is not captured.
      const RelaxedCapture relaxed;
      const std::lock_guard lock(arena->mu_);
      buffer_ = arena->take(bytes, stream);
    }
  }
  if (buffer_) {
    ptr_ = buffer_->ptr;
    return;
  }
  RNNJIT_CU(cuMemAllocAsync(&ptr_, bytes, stream));
}

void ScratchArena::Lease::release() {
  if (!ptr_) return;
  const CUdeviceptr ptr = std::exchange(ptr_, 0);
  if (!buffer_) {
    RNNJIT_CU(cuMemFreeAsync(ptr, stream_));
    return;
  }
  Buffer* const b = std::exchange(buffer_, nullptr);
  // Without its event the buffer's last work is unknown: it stays lent until the arena ends.
  RNNJIT_CU(cuEventRecord(b->done, stream_));
  const std::lock_guard lock(arena_->mu_);
  b->last = stream_;
  b->lent = false;
}

ScratchArena::Lease::~Lease() {
  try {
    release();
  } catch (...) {  // the error that unwinds the caller is the one to report
  }
}

CUfunction Module::function(std::size_t i) const {
  if (i >= names_.size()) throw Error(ErrorCode::Internal, "module has no kernel " + std::to_string(i));
  CUfunction fn = nullptr;
  RNNJIT_CU(cuModuleGetFunction(&fn, module_, names_[i].c_str()));
  return fn;
}

DeviceInfo query_device(int ordinal) {
  int count = 0;
  RNNJIT_CU(cuDeviceGetCount(&count));
  if (count == 0) throw Error(ErrorCode::NoDevice, "no CUDA device: the driver reports none");
  if (ordinal < 0 || ordinal >= count)
    throw Error(ErrorCode::NoDevice, "no CUDA device " + std::to_string(ordinal) + ": the driver reports " +
                                         std::to_string(count) + " device(s)");
  CUdevice dev = 0;
  RNNJIT_CU(cuDeviceGet(&dev, ordinal));
  DeviceInfo d;
  d.ordinal = ordinal;
  char name[256] = {};
  RNNJIT_CU(cuDeviceGetName(name, sizeof name, dev));
  d.name = name;
  auto attr = [&](CUdevice_attribute a) {
    int v = 0;
    RNNJIT_CU(cuDeviceGetAttribute(&v, a, dev));
    return v;
  };
  d.cc_major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
  d.cc_minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
  d.sm_count = attr(CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
  d.l2_bytes = attr(CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
  d.smem_per_block_optin = attr(CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
  d.arch = target_arch(d.cc_major, d.cc_minor);
  d.key = gpu_key(d);
  return d;
}

std::string gpu_key(const DeviceInfo& d) {
  // What changes the best kernel. Name and compute capability fix the chip; SM count, L2 and
  // shared memory tell apart cut-down parts and MIG slices of one name.
  return d.name + ";cc=" + std::to_string(d.cc_major) + "." + std::to_string(d.cc_minor) +
         ";sms=" + std::to_string(d.sm_count) + ";l2=" + std::to_string(d.l2_bytes) +
         ";smem=" + std::to_string(d.smem_per_block_optin);
}

}  // namespace rnnjit
