"""Shared helpers of the Python tests. GPU tests skip, with the reason, where there is no CUDA GPU;
the no-driver tests run in a child process with RNNJIT_DRIVER_LIBRARY=/nonexistent (the driver is
loaded once a process), so they run on every machine."""
import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, **env):
    """Runs `code` in a fresh interpreter with `env` added; returns the CompletedProcess."""
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full, capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def load_example():
    """examples/kernelbench_model_new.py as a module (KernelBench's Model and ModelNew)."""
    spec = importlib.util.spec_from_file_location("kernelbench_model_new",
                                                  os.path.join(REPO, "examples", "kernelbench_model_new.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def gpu_skip_reason():
    """None when a CUDA GPU is usable from PyTorch and rnnjit, else why not."""
    try:
        import torch
    except ImportError:
        return "PyTorch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU (torch.cuda.is_available() is False)"
    import rnnjit
    try:
        rnnjit.Engine(cache="off").close()
    except rnnjit.Error as e:
        return f"rnnjit cannot make an engine: {type(e).__name__}: {e}"
    return None


@pytest.fixture(scope="session")
def repo():
    return REPO
