#include "driver.hpp"

#include <dlfcn.h>

#include <cstdlib>

#include "support/log.hpp"

namespace rnnjit::driver {
namespace {

#define RNNJIT_STR(x) #x
#define RNNJIT_XSTR(x) RNNJIT_STR(x)

struct Loaded {
  Api api;
  std::string error;  // empty when the driver is usable
  ErrorCode code = ErrorCode::Ok;
};

Loaded load() {
  Loaded out;
  // RNNJIT_DRIVER_LIBRARY names another driver library: a test sets it to a missing file
  // to see the no-driver path on a machine that has one.
  const char* env = std::getenv("RNNJIT_DRIVER_LIBRARY");
  const std::string path = env && *env ? env : "libcuda.so.1";
  void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    out.error = "no CUDA driver: dlopen(" + path + ") failed: " + dlerror();
    out.code = ErrorCode::NoDriver;
    return out;
  }
  // RNNJIT_XSTR expands cuda.h's version macros first, so we bind the current ABI.
#define RNNJIT_DRIVER_LOAD(name)                                                          \
  out.api.name = reinterpret_cast<decltype(&::name)>(dlsym(lib, RNNJIT_XSTR(name)));      \
  if (!out.api.name) {                                                                    \
    out.error = "no CUDA driver: " + path + " lacks " RNNJIT_XSTR(name) " (driver too old?)"; \
    out.code = ErrorCode::NoDriver;                                                       \
    return out;                                                                           \
  }
  RNNJIT_DRIVER_FUNCTIONS(RNNJIT_DRIVER_LOAD)
#undef RNNJIT_DRIVER_LOAD
  const CUresult init = out.api.cuInit(0);
  if (init != CUDA_SUCCESS) {
    const char* name = nullptr;
    out.api.cuGetErrorName(init, &name);
    if (init == CUDA_ERROR_NO_DEVICE) {
      out.error = "no CUDA device: the driver loaded but cuInit found no device";
      out.code = ErrorCode::NoDevice;
    } else {
      out.error = std::string("no CUDA driver: cuInit failed with ") + (name ? name : "?");
      out.code = ErrorCode::NoDriver;
    }
  }
  // The handle stays open for the life of the process: the function pointers live in it.
  return out;
}

const Loaded& loaded() {
  static const Loaded instance = load();
  return instance;
}

}  // namespace

const Api& api() {
  const Loaded& l = loaded();
  if (!l.error.empty()) throw Error(l.code, l.error);
  return l.api;
}

namespace {
thread_local CUresult last = CUDA_SUCCESS;  // see last_failure
}  // namespace

CUresult last_failure() noexcept { return last; }

void fail(CUresult result, const char* call, const char* file, int line, ErrorCode code) {
  last = result;
  const char* name = nullptr;
  const char* text = nullptr;
  const Api& a = loaded().api;
  if (a.cuGetErrorName) a.cuGetErrorName(result, &name);
  if (a.cuGetErrorString) a.cuGetErrorString(result, &text);
  if (result == CUDA_ERROR_OUT_OF_MEMORY) code = ErrorCode::OutOfMemory;
  throw Error(code, std::string(call) + " failed: " + (name ? name : "?") + " (" + (text ? text : "?") +
                        ") at " + file + ":" + std::to_string(line));
}

}  // namespace rnnjit::driver
