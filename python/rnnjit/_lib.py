"""librnnjit_c.so: finding NVRTC, loading the library, and the C API's signatures (rnnjit.h).

The library links NVRTC (libnvrtc.so.<CUDA major>) and loads the CUDA driver itself at run time.
NVRTC is preloaded from the first place that has it, so that the library's DT_NEEDED is met by
the copy already in the process: $RNNJIT_NVRTC_LIBRARY, the loader's own search
(LD_LIBRARY_PATH, ldconfig), the CUDA wheels PyTorch brings (site-packages/nvidia/cu13/lib,
nvidia/cuda_nvrtc/lib), then $CUDA_HOME, $CUDA_PATH and /usr/local/cuda*.
$RNNJIT_LIBRARY names another librnnjit_c.so (a build tree's) instead of the bundled one.
"""
import ctypes
import glob
import os
import sys
import threading

from ._errors import LibraryError, from_status

try:  # written by CMake into the wheel (python/build_info.py.in); absent in a source tree
    from . import _build
except ImportError:  # pragma: no cover - source tree with RNNJIT_LIBRARY
    _build = None

LIBRARY_NAME = "librnnjit_c.so"
NVRTC_SONAME = getattr(_build, "NVRTC_SONAME", "libnvrtc.so.13")


class Problem(ctypes.Structure):
    """rnnjit_problem."""
    _fields_ = [("batch", ctypes.c_int64), ("input", ctypes.c_int64), ("hidden", ctypes.c_int64),
                ("output", ctypes.c_int64), ("precision", ctypes.c_int), ("dtype", ctypes.c_int)]


class Options(ctypes.Structure):
    """rnnjit_engine_options."""
    _fields_ = [("device", ctypes.c_int), ("cache_path", ctypes.c_char_p), ("default_precision", ctypes.c_int),
                ("log_level", ctypes.c_int), ("no_pointer_checks", ctypes.c_int),
                ("system_cache_path", ctypes.c_char_p), ("tuning", ctypes.c_int)]


PRECISIONS = {"default": 0, "fp32": 1, "tf32": 2, "bf16": 3}
DTYPES = {"f32": 0, "bf16": 1}
LOG_LEVELS = {"trace": 1, "debug": 2, "info": 3, "warn": 4, "error": 5, "off": 6}
TUNING = {"blocking": 1, "background": 2}  # rnnjit_tuning; 0 is $RNNJIT_TUNING's
PLAN_STATES = ("none", "untuned", "tuning", "tuned")  # rnnjit_plan_state, by value

_vp = ctypes.c_void_p
_SIGNATURES = {
    "rnnjit_version": (ctypes.c_char_p, []),
    "rnnjit_template_hash": (ctypes.c_char_p, []),
    "rnnjit_status_string": (ctypes.c_char_p, [ctypes.c_int]),
    "rnnjit_last_error": (ctypes.c_char_p, []),
    "rnnjit_engine_create": (ctypes.c_int, [ctypes.POINTER(Options), ctypes.POINTER(_vp)]),
    "rnnjit_engine_destroy": (None, [_vp]),
    # The problem goes as its address (an int), the hot path's cheapest argument.
    "rnnjit_step": (ctypes.c_int, [_vp] * 11),
    "rnnjit_sequence": (ctypes.c_int, [_vp, _vp, ctypes.c_int64] + [_vp] * 10),
    "rnnjit_tune": (ctypes.c_int, [_vp, _vp, ctypes.c_int]),
    "rnnjit_engine_plan": (ctypes.c_int, [_vp, _vp, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_char_p)]),
    "rnnjit_engine_cache_path": (ctypes.c_int, [_vp, ctypes.POINTER(ctypes.c_char_p)]),
    "rnnjit_engine_device": (ctypes.c_int, [_vp] + [ctypes.POINTER(ctypes.c_char_p)] * 3),
    "rnnjit_cache_resolve_path": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(ctypes.c_char_p)]),
    "rnnjit_error_bound": (ctypes.c_int, [ctypes.c_int, ctypes.POINTER(ctypes.c_double)]),
}

_lock = threading.Lock()
_lib = None
_nvrtc = None  # the preloaded handle, kept for the life of the process


def _nvrtc_candidates():
    """Where NVRTC may be, best first (see the module's docstring)."""
    env = os.environ.get("RNNJIT_NVRTC_LIBRARY")
    if env:
        yield env
    yield NVRTC_SONAME
    major = NVRTC_SONAME.rsplit(".", 1)[-1]
    for base in sys.path:
        for sub in (f"cu{major}", "cuda_nvrtc"):
            yield from sorted(glob.glob(os.path.join(base or ".", "nvidia", sub, "lib", NVRTC_SONAME + "*")))
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    roots += sorted(glob.glob(f"/usr/local/cuda-{major}*"), reverse=True)
    for root in filter(None, roots):
        for lib in ("lib64", "lib", "targets/x86_64-linux/lib"):
            path = os.path.join(root, lib, NVRTC_SONAME)
            if os.path.exists(path):
                yield path


def _preload_nvrtc():
    """Loads NVRTC from the first candidate that loads; returns the places tried when none did."""
    global _nvrtc
    tried = []
    for candidate in _nvrtc_candidates():
        try:
            _nvrtc = ctypes.CDLL(candidate)
            return []
        except OSError as e:
            tried.append(f"{candidate}: {e}")
    return tried


def library_path():
    """The librnnjit_c.so this process uses: $RNNJIT_LIBRARY, else the one beside this file."""
    return os.environ.get("RNNJIT_LIBRARY") or os.path.join(os.path.dirname(os.path.abspath(__file__)), LIBRARY_NAME)


def load():
    """The loaded library with its signatures declared; raises LibraryError with what was tried."""
    global _lib
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is not None:
            return _lib
        path = library_path()
        if not os.path.exists(path):
            raise LibraryError(f"rnnjit: {path} does not exist (set RNNJIT_LIBRARY to a built librnnjit_c.so, "
                               "or reinstall the package with `pip install .`)")
        tried = _preload_nvrtc()
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            hint = ""
            if tried and NVRTC_SONAME in str(e):
                hint = (f"; {NVRTC_SONAME} (NVRTC, CUDA Toolkit {NVRTC_SONAME.rsplit('.', 1)[-1]}) was not found: "
                        "install the CUDA Toolkit, or `pip install nvidia-cuda-nvrtc`, or set "
                        "RNNJIT_NVRTC_LIBRARY to its path. Tried: " + "; ".join(tried))
            raise LibraryError(f"rnnjit: cannot load {path}: {e}{hint}") from None
        for name, (restype, argtypes) in _SIGNATURES.items():
            fn = getattr(lib, name)
            fn.restype = restype
            fn.argtypes = argtypes
        _lib = lib
        return lib


def last_error(lib):
    return lib.rnnjit_last_error().decode(errors="replace")


def check(lib, status):
    """Raises the status's exception with the calling thread's rnnjit_last_error()."""
    if status:
        raise from_status(status, last_error(lib))


def version():
    """The C library's rnnjit_version()."""
    return load().rnnjit_version().decode()
