// The CUDA driver API, loaded with dlopen at run time: binaries that link rnnjit start on
// machines without a driver and get ErrorCode::NoDriver from the first call that needs one.
#pragma once

#include <cuda.h>

#include <string>

#include "rnnjit/error.hpp"

namespace rnnjit::driver {

// X(name): every driver entry point the library uses. cuda.h maps each name to its current
// versioned symbol (cuMemAlloc -> cuMemAlloc_v2); the loader looks up that symbol.
#define RNNJIT_DRIVER_FUNCTIONS(X)                                                       \
  X(cuInit) X(cuGetErrorName) X(cuGetErrorString)                                        \
  X(cuDeviceGet) X(cuDeviceGetCount) X(cuDeviceGetName) X(cuDeviceGetAttribute)          \
  X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)                               \
  X(cuCtxPushCurrent) X(cuCtxPopCurrent) X(cuCtxGetCurrent)                              \
  X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction)                           \
  X(cuFuncSetAttribute) X(cuLaunchKernel) X(cuLaunchKernelEx)                            \
  X(cuMemAlloc) X(cuMemFree) X(cuMemAllocAsync) X(cuMemFreeAsync) X(cuMemGetInfo)        \
  X(cuMemcpyDtoDAsync) X(cuMemsetD32Async) X(cuMemsetD8Async)                            \
  X(cuPointerGetAttributes) X(cuStreamIsCapturing) X(cuStreamSynchronize)                \
  X(cuStreamCreateWithPriority) X(cuCtxGetStreamPriorityRange)                           \
  X(cuStreamDestroy) X(cuEventCreate) X(cuEventDestroy)                                  \
  X(cuEventRecord) X(cuEventSynchronize) X(cuEventQuery) X(cuEventElapsedTime) X(cuLaunchHostFunc) \
  X(cuStreamWaitEvent)                                                                   \
  X(cuTensorMapEncodeTiled) X(cuThreadExchangeStreamCaptureMode)

/// Function pointers into libcuda.so.1, filled once.
struct Api {
#define RNNJIT_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  RNNJIT_DRIVER_FUNCTIONS(RNNJIT_DRIVER_MEMBER)
#undef RNNJIT_DRIVER_MEMBER
};

/// Loads the driver and calls cuInit once; throws Error(NoDriver) if either fails.
const Api& api();

/// The CUresult of this thread's last fail(): the cause an Error's code does not tell
/// (RNNJIT_CU maps nearly every result to LaunchFailed). CUDA_SUCCESS if none yet.
CUresult last_failure() noexcept;

/// Throws Error(code) naming the call, the driver's error name and its description.
[[noreturn]] void fail(CUresult result, const char* call, const char* file, int line,
                       ErrorCode code = ErrorCode::LaunchFailed);

}  // namespace rnnjit::driver

/// Calls a driver function through the loaded table and throws on failure.
#define RNNJIT_CU(call_expr)                                                               \
  do {                                                                                     \
    const CUresult rnnjit_cu_result_ = ::rnnjit::driver::api().call_expr;                  \
    if (rnnjit_cu_result_ != CUDA_SUCCESS)                                                 \
      ::rnnjit::driver::fail(rnnjit_cu_result_, #call_expr, __FILE__, __LINE__);           \
  } while (0)
