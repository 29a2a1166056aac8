// rnnjit::Error: the one exception type of the C++ API.
#pragma once

#include <stdexcept>
#include <string>

namespace rnnjit {

/// What went wrong; the C API returns the same values as `rnnjit_status`.
enum class ErrorCode : int {
  Ok = 0,
  InvalidArgument = 1,  ///< a null or foreign pointer, a bad size, an overlap
  NoDriver = 2,         ///< libcuda.so.1 could not be loaded
  NoDevice = 3,         ///< the driver loaded but the requested device does not exist
  CompileFailed = 4,    ///< NVRTC rejected a kernel, or every tuning candidate failed
  LaunchFailed = 5,     ///< a driver call failed while loading or running a kernel
  CacheError = 6,       ///< the SQLite cache could not be read or written (strict mode only)
  OutOfMemory = 7,      ///< a device allocation failed
  Unsupported = 8,      ///< the problem or precision cannot be served on this device
  Internal = 9,         ///< a bug: please report it
};

/// Stable, lower-case name of a code ("invalid_argument", ...).
inline const char* error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::Ok: return "ok";
    case ErrorCode::InvalidArgument: return "invalid_argument";
    case ErrorCode::NoDriver: return "no_driver";
    case ErrorCode::NoDevice: return "no_device";
    case ErrorCode::CompileFailed: return "compile_failed";
    case ErrorCode::LaunchFailed: return "launch_failed";
    case ErrorCode::CacheError: return "cache_error";
    case ErrorCode::OutOfMemory: return "out_of_memory";
    case ErrorCode::Unsupported: return "unsupported";
    case ErrorCode::Internal: return "internal";
  }
  return "unknown";
}

/// Every failure the library reports carries a code and a message that names the
/// argument, the values and, for compile errors, NVRTC's log.
class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message)
      : std::runtime_error(std::string(error_code_name(code)) + ": " + message), code_(code) {}

  /// The category of the failure.
  ErrorCode code() const noexcept { return code_; }
  /// The message without the "code_name: " that what() puts first, for a reader who is
  /// told the code another way (a tool's own wording, an exit status).
  const char* message() const noexcept { return what() + std::char_traits<char>::length(error_code_name(code_)) + 2; }

 private:
  ErrorCode code_;
};

}  // namespace rnnjit
