"""What the Python bench scripts of tools/bench/ share: loading rnnjit, and the error bounds they
check rnnjit's errors against (the library's)."""
import os
import sys


def import_rnnjit(lib):
    """The rnnjit package, over `lib` (a librnnjit_c.so) when given: the installed package, else
    the source tree's python/."""
    if lib:  # before the package loads its library
        os.environ["RNNJIT_LIBRARY"] = os.path.abspath(lib)
    try:
        import rnnjit
    except ImportError:  # not installed: the source tree's package
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "python"))
        import rnnjit
    return rnnjit


def error_bounds(rnnjit):
    """{precision: rnnjit.error_bound(precision)}, asked before any timing: a package without it
    fails at the start of a run, not at its end."""
    return {p: rnnjit.error_bound(p) for p in ("tf32", "fp32", "bf16")}
