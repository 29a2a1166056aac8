"""The C API's statuses (rnnjit_status in rnnjit.h) as Python exceptions: one class a status."""

__all__ = ["Error", "InvalidArgument", "NoDriver", "NoDevice", "CompileFailed", "LaunchFailed",
           "CacheError", "OutOfMemory", "Unsupported", "Internal", "LibraryError"]


class Error(RuntimeError):
    """Base of every rnnjit error. `status` is the C API's rnnjit_status (None: raised before the
    library was reached), `status_name` its text ("invalid_argument", ...)."""

    status = None
    status_name = None

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class InvalidArgument(Error, ValueError):
    """A tensor, size, pointer, option or name the engine cannot take; nothing was written."""
    status, status_name = 1, "invalid_argument"


class NoDriver(Error):
    """No usable CUDA driver (libcuda.so.1 missing or too old)."""
    status, status_name = 2, "no_driver"


class NoDevice(Error):
    """The driver loaded but found no such CUDA device."""
    status, status_name = 3, "no_device"


class CompileFailed(Error):
    """NVRTC rejected a kernel; the message carries its log."""
    status, status_name = 4, "compile_failed"


class LaunchFailed(Error):
    """A driver call failed loading or running a kernel."""
    status, status_name = 5, "launch_failed"


class CacheError(Error):
    """The tuning cache cannot be read (the engine itself never fails a step on its cache)."""
    status, status_name = 6, "cache_error"


class OutOfMemory(Error):
    """Host or device memory ran out."""
    status, status_name = 7, "out_of_memory"


class Unsupported(Error):
    """Valid but not served here (bf16 products of f32 tensors, a GPU no family runs on), or a gradient
    asked of this inference-only step."""
    status, status_name = 8, "unsupported"


class Internal(Error):
    """A bug: please report it with the message."""
    status, status_name = 9, "internal"


class LibraryError(Error, ImportError):
    """librnnjit_c.so or the NVRTC it links could not be loaded."""


BY_STATUS = {cls.status: cls for cls in (InvalidArgument, NoDriver, NoDevice, CompileFailed, LaunchFailed,
                                         CacheError, OutOfMemory, Unsupported, Internal)}


def from_status(status, message):
    """The exception for a non-zero rnnjit_status; an unknown status is an Internal error."""
    cls = BY_STATUS.get(status)
    if cls is None:
        return Internal(f"unknown rnnjit_status {status}: {message}")
    return cls(message)


for _cls in (Error, *BY_STATUS.values(), LibraryError):
    _cls.__module__ = "rnnjit"  # tracebacks say rnnjit.NoDriver, as users spell it
del _cls
