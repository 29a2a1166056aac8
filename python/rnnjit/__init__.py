"""rnnjit: a runtime-autotuning JIT engine for the vanilla RNN step on NVIDIA GPUs.

    import rnnjit
    engine = rnnjit.Engine()                         # device 0, cache from the environment
    h_next, y = engine.rnn_step(x, h, w1, b1, w2, b2)  # tensors of PyTorch, CuPy, JAX, Numba...

h' = tanh([x, h] W1ᵀ + b1), y = h' W2ᵀ + b2. PyTorch: `import rnnjit.torch` registers the custom op
torch.ops.rnnjit.rnn_step and provides rnnjit.torch.RNNCell.
"""
from ._cache import Candidate, TunedEntry, default_path as default_cache_path, entries as cache_entries
from ._engine import Engine, error_bound
from ._errors import (CacheError, CompileFailed, Error, Internal, InvalidArgument, LaunchFailed, LibraryError,
                      NoDevice, NoDriver, OutOfMemory, Unsupported)
from ._lib import library_path

try:
    from ._build import VERSION as __version__
except ImportError:  # a source tree (RNNJIT_LIBRARY): ask the library
    __version__ = None

__all__ = ["Engine", "Error", "InvalidArgument", "NoDriver", "NoDevice", "CompileFailed", "LaunchFailed",
           "CacheError", "OutOfMemory", "Unsupported", "Internal", "LibraryError", "TunedEntry", "Candidate",
           "cache_entries", "default_cache_path", "library_version", "library_path", "error_bound", "PRECISIONS"]

PRECISIONS = ("tf32", "fp32", "bf16", "default")


def library_version():
    """rnnjit_version() of the loaded librnnjit_c.so (equals __version__ for the bundled one)."""
    from . import _lib
    return _lib.version()


if __version__ is None:
    try:
        __version__ = library_version()
    except LibraryError:
        __version__ = "unknown"
