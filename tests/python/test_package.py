"""The package without a GPU: install, version, exceptions, the tensor checks, the cache reader."""
import json
import math
import os
import re
import sqlite3
import sys

import pytest

import rnnjit
from rnnjit import _lib, _tensors

from conftest import run_python

STATUS_CLASSES = [rnnjit.InvalidArgument, rnnjit.NoDriver, rnnjit.NoDevice, rnnjit.CompileFailed,
                  rnnjit.LaunchFailed, rnnjit.CacheError, rnnjit.OutOfMemory, rnnjit.Unsupported, rnnjit.Internal]


def test_version_is_the_librarys():
    assert re.fullmatch(r"\d+\.\d+\.\d+", rnnjit.__version__)
    assert rnnjit.__version__ == rnnjit.library_version()
    if not os.environ.get("RNNJIT_LIBRARY"):
        from importlib.metadata import version
        assert version("rnnjit") == rnnjit.__version__


def test_the_library_is_bundled_and_exports_only_the_c_api():
    path = rnnjit.library_path()
    assert os.path.isfile(path)
    if not os.environ.get("RNNJIT_LIBRARY"):
        assert os.path.dirname(path) == os.path.dirname(rnnjit.__file__)
    lib = _lib.load()
    assert lib.rnnjit_template_hash().decode()
    with pytest.raises(AttributeError):
        lib._ZN6rnnjit7versionB5cxx11Ev  # rnnjit::version(): hidden by engine/src/c_api.map


def test_error_bounds_are_the_librarys_and_default_has_none():
    assert (rnnjit.error_bound("fp32"), rnnjit.error_bound("tf32"), rnnjit.error_bound("bf16")) == (1e-5, 2e-3, 1e-2)
    with pytest.raises(rnnjit.InvalidArgument, match="no error bound of its own"):
        rnnjit.error_bound("default")
    with pytest.raises(rnnjit.InvalidArgument, match="precision 'fp16' is not one of"):
        rnnjit.error_bound("fp16")


def test_one_exception_class_a_status_named_as_the_c_api_does():
    lib = _lib.load()
    assert sorted(c.status for c in STATUS_CLASSES) == list(range(1, 10))
    for cls in STATUS_CLASSES:
        assert issubclass(cls, rnnjit.Error) and issubclass(cls, RuntimeError)
        assert lib.rnnjit_status_string(cls.status).decode() == cls.status_name
        assert type(rnnjit._errors.from_status(cls.status, "why")) is cls
    assert issubclass(rnnjit.InvalidArgument, ValueError)
    assert isinstance(rnnjit._errors.from_status(42, "x"), rnnjit.Internal)


NO_DRIVER = {"RNNJIT_DRIVER_LIBRARY": "/nonexistent/libcuda.so.1"}


def test_without_a_driver_every_engine_entry_point_raises_no_driver():
    r = run_python("""
        import json, rnnjit
        out = {}
        for name, make in [("Engine()", lambda: rnnjit.Engine()), ("Engine(1, cache='off')", lambda: rnnjit.Engine(1, cache="off")),
                           ("Engine(cache=path)", lambda: rnnjit.Engine(cache="/tmp/x.sqlite", log_level="error"))]:
            try:
                make()
                out[name] = "no error"
            except rnnjit.Error as e:
                out[name] = [type(e).__name__, str(e), e.status, isinstance(e, rnnjit.NoDriver)]
        print(json.dumps(out))
    """, **NO_DRIVER)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for name, (cls, message, status, is_no_driver) in out.items():
        assert cls == "NoDriver" and status == 2 and is_no_driver, name
        assert "no CUDA driver" in message and "/nonexistent/libcuda.so.1" in message, message


def test_without_a_driver_the_torch_entry_points_raise_no_driver():
    pytest.importorskip("torch")
    r = run_python("""
        import json, torch, rnnjit, rnnjit.torch
        out = {}
        def attempt(name, fn):
            try:
                fn()
                out[name] = "no error"
            except Exception as e:
                out[name] = [type(e).__name__, str(e)]
        attempt("rnnjit.torch.engine(0)", lambda: rnnjit.torch.engine(0))
        attempt("rnnjit.torch.engine('cuda:0')", lambda: rnnjit.torch.engine("cuda:0"))
        x, h = torch.zeros(2, 3), torch.zeros(2, 4)
        cell = rnnjit.torch.RNNCell(3, 4, 5)
        attempt("RNNCell on cpu", lambda: cell(x))
        attempt("op on cpu", lambda: torch.ops.rnnjit.rnn_step(x, h, cell.i2h.weight, cell.i2h.bias, cell.h2o.weight, cell.h2o.bias))
        attempt("engine('cpu')", lambda: rnnjit.torch.engine("cpu"))
        print(json.dumps(out))
    """, **NO_DRIVER)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    for name in ("rnnjit.torch.engine(0)", "rnnjit.torch.engine('cuda:0')"):
        assert out[name][0] == "NoDriver" and "no CUDA driver" in out[name][1], (name, out[name])
    for name in ("RNNCell on cpu", "op on cpu"):
        assert out[name][0] == "InvalidArgument" and "x is on cpu" in out[name][1], (name, out[name])
    assert out["engine('cpu')"][0] == "InvalidArgument" and "not on cpu" in out["engine('cpu')"][1]


def test_a_missing_library_is_a_clear_library_error():
    r = run_python("""
        import rnnjit
        try:
            rnnjit.Engine()
        except rnnjit.LibraryError as e:
            print("LibraryError:", e)
    """, RNNJIT_LIBRARY="/nonexistent/librnnjit_c.so")
    assert r.returncode == 0, r.stderr
    assert "LibraryError: rnnjit: /nonexistent/librnnjit_c.so does not exist" in r.stdout


def test_options_are_checked_before_the_driver():
    r = run_python("""
        import rnnjit
        for kw in ({"log_level": "loud"}, {"device": "cpu"}, {"tuning": "later"}):
            try:
                rnnjit.Engine(**kw)
            except rnnjit.InvalidArgument as e:
                print("InvalidArgument:", e)
    """, **NO_DRIVER)
    assert r.returncode == 0, r.stderr
    assert "log_level 'loud' is not one of trace" in r.stdout
    assert "device 'cpu' is not a CUDA device" in r.stdout
    assert "tuning 'later' is not one of 'blocking', 'background'" in r.stdout


def test_the_options_struct_is_the_c_apis():
    # The C library reads the fields the Python struct sets: a tuning code it does not know is refused
    # by name, before the driver; known ones and a system cache path get as far as the driver.
    r = run_python("""
        import ctypes, rnnjit
        from rnnjit import _lib
        lib = _lib.load()
        handle = ctypes.c_void_p()
        options = _lib.Options(tuning=7)
        print(lib.rnnjit_engine_create(ctypes.byref(options), ctypes.byref(handle)), _lib.last_error(lib))
        try:
            rnnjit.Engine(system_cache="/nonexistent/system.sqlite", tuning="background")
        except rnnjit.NoDriver as e:
            print("NoDriver:", e)
    """, **NO_DRIVER)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "1 invalid_argument: tuning 7 is not a rnnjit_tuning"
    assert lines[1].startswith("NoDriver: ")


# --- the step's argument handling, on a fake engine whose rnnjit_step records its call ---------

class Recorder:
    def __init__(self, status=0):
        self.calls, self.status = [], status

    def __call__(self, *args):
        self.calls.append(args)
        return self.status


class FakeEngine(rnnjit.Engine):
    def close(self):  # its handle is not an engine's
        self._handle = None

    def __repr__(self):
        return "FakeEngine()"


def fake_engine(device, status=0):
    e = object.__new__(FakeEngine)
    e._lib, e._handle, e._step, e.device = _lib.load(), 0xE, Recorder(status), device
    e._checked, e._weights, e._torch, e._torch_stream, e._tensor_type = {}, {}, None, None, None
    e._check_devices = True
    return e


@pytest.fixture
def torch_engine():
    torch = pytest.importorskip("torch")
    e = fake_engine(-1)  # CPU tensors report device -1: they stand in for one GPU's tensors here
    e._bind_torch(torch)
    e._torch_stream = lambda device: 0x5157
    return e


def torch_operands(B=3, I=5, H=4, O=2, dtype=None):
    import torch
    dtype = dtype or torch.float32
    return [torch.randn(*s, dtype=dtype) for s in ((B, I), (B, H), (H, I + H), (H,), (O, H), (O,))]


def test_torch_tensors_reach_rnnjit_step_in_the_c_apis_order(torch_engine):
    import torch
    x, h, w1, b1, w2, b2 = torch_operands()
    h_out, y = torch_engine.rnn_step(x, h, w1, b1, w2, b2, precision="fp32")
    assert h_out.shape == (3, 4) and y.shape == (3, 2) and y.dtype == x.dtype
    (handle, problem, *ptrs, stream), = torch_engine._step.calls
    assert handle == 0xE and stream == 0x5157
    assert ptrs == [t.data_ptr() for t in (w1, b1, w2, b2, x, h, h_out, y)]
    p = _lib.Problem.from_address(problem)
    assert (p.batch, p.input, p.hidden, p.output, p.precision, p.dtype) == (3, 5, 4, 2, 1, 0)
    # Outputs given (h_out aliasing h is allowed), an explicit stream, the plan reused.
    y2 = torch.empty(3, 2)
    assert torch_engine.rnn_step(x, h, w1, b1, w2, b2, h_out=h, y=y2, stream=7, precision="fp32") == (h, y2)
    assert torch_engine._step.calls[1][-3:] == (h.data_ptr(), y2.data_ptr(), 7)
    assert torch_engine._step.calls[1][1] == problem


@pytest.mark.parametrize("case, message", [
    ("x 1-D", "x must be 2-D (batch, input), not of shape (5,)"),
    ("w1 wrong", "x has shape (3, 5) but the weights (w1 (4, 8), w2 (2, 4)) and a batch of 3 need (3, 4)"),
    ("w2 wrong", "w2 has shape (2, 3) but w1 (4, 9) and w2 (2, 3) (hidden 4, output 2) need (2, 4)"),
    ("b2 wrong", "b2 has shape (3,)"),
    ("h batch", "h has shape (2, 4)"),
    ("float64", "w1 has dtype torch.float64; rnnjit takes torch.float32"),
    ("mixed dtype", "w2 has dtype torch.float64 but w1 has torch.float32"),
    ("x float64", "x has dtype torch.float64 but w1 has torch.float32"),
    ("x bfloat16", "x has dtype torch.bfloat16 but w1 has torch.float32"),
    ("h float32, the rest bfloat16", "h has dtype torch.float32 but w1 has torch.bfloat16"),
    ("y float32, the rest bfloat16", "y has dtype torch.float32 but w1 has torch.bfloat16"),
    ("not contiguous", "w1 is not contiguous (strides (1, 4)): pass w1.contiguous()"),
    ("bad precision", "precision 'fp16' is not one of 'default', 'fp32', 'tf32', 'bf16'"),
    ("y shape", "y has shape (3, 3), the step needs (3, 2)"),
    ("h_out dtype", "h_out has dtype torch.float64 but w1 has torch.float32"),
    ("y numpy", "y is a ndarray; with PyTorch inputs every tensor is a torch.Tensor"),
])
def test_torch_tensors_are_checked_before_the_call(torch_engine, case, message):
    import numpy as np
    import torch
    ops = torch_operands()
    kw = {}
    if case == "x 1-D":
        ops[0] = ops[0][0]
    elif case == "w1 wrong":
        ops[2] = torch.randn(4, 8)
    elif case == "w2 wrong":
        ops[4] = torch.randn(2, 3)
    elif case == "x float64":
        ops[0] = ops[0].double()
    elif case == "x bfloat16":
        ops[0] = ops[0].bfloat16()
    elif case == "h float32, the rest bfloat16":
        ops = [t if k == 1 else t.bfloat16() for k, t in enumerate(ops)]
    elif case == "y float32, the rest bfloat16":
        ops = [t.bfloat16() for t in ops]
        kw["y"] = torch.empty(3, 2)
    elif case == "b2 wrong":
        ops[5] = torch.randn(3)
    elif case == "h batch":
        ops[1] = torch.randn(2, 4)
    elif case == "float64":
        ops = [t.double() for t in ops]
    elif case == "mixed dtype":
        ops[4] = ops[4].double()
    elif case == "not contiguous":
        ops[2] = torch.randn(9, 4).t()
    elif case == "bad precision":
        kw["precision"] = "fp16"
    elif case == "y shape":
        kw["y"] = torch.empty(3, 3)
    elif case == "h_out dtype":
        kw["h_out"] = torch.empty(3, 4, dtype=torch.float64)
    elif case == "y numpy":
        kw["y"] = np.empty((3, 2), np.float32)
    with pytest.raises(rnnjit.InvalidArgument) as info:
        torch_engine.rnn_step(*ops, **kw)
    assert message in str(info.value)
    assert torch_engine._step.calls == []


def test_bf16_goes_through_to_the_engine(torch_engine):
    import torch
    ops = torch_operands(dtype=torch.bfloat16)
    h_out, y = torch_engine.rnn_step(*ops, precision="bf16")
    assert h_out.dtype == y.dtype == torch.bfloat16 and h_out.shape == (3, 4) and y.shape == (3, 2)
    (_, problem, *ptrs, _), = torch_engine._step.calls
    assert ptrs == [t.data_ptr() for t in ops[2:] + ops[:2] + [h_out, y]]
    p = _lib.Problem.from_address(problem)
    assert (p.dtype, p.precision) == (1, 3)  # RNNJIT_DTYPE_BF16, RNNJIT_PRECISION_BF16
    # The precision is the engine's to check against the dtype: tf32 with bf16 goes through too.
    torch_engine.rnn_step(*ops, precision="tf32")
    assert _lib.Problem.from_address(torch_engine._step.calls[1][1]).precision == 2


def test_a_failed_status_raises_its_class_with_rnnjit_last_error(torch_engine):
    torch_engine._step.status = 8
    with pytest.raises(rnnjit.Unsupported):
        torch_engine.rnn_step(*torch_operands())


def test_a_tensor_on_another_device_is_rejected():
    torch = pytest.importorskip("torch")
    e = fake_engine(0)
    e._bind_torch(torch)
    with pytest.raises(rnnjit.InvalidArgument, match="w1 is on cpu but this engine runs on cuda:0"):
        e.rnn_step(*torch_operands())


def test_weights_are_checked_once_and_rechecked_when_they_change(torch_engine):
    import torch
    x, h, w1, b1, w2, b2 = torch_operands()
    torch_engine.rnn_step(x, h, w1, b1, w2, b2)
    torch_engine.rnn_step(x, h, w1, b1, w2, b2)
    assert len(torch_engine._weights) == 1
    w2.t_()  # in place: the same tensor, data pointer and storage, now (4, 2)
    with pytest.raises(rnnjit.InvalidArgument, match=r"w2 is not contiguous"):
        torch_engine.rnn_step(x, h, w1, b1, w2, b2)
    w2.t_()
    w1_new = torch.randn(4, 9)
    torch_engine.rnn_step(x, h, w1_new, b1, w2, b2)  # other weights: checked and remembered too
    assert torch_engine._step.calls[-1][2] == w1_new.data_ptr()
    with torch.no_grad():
        w1_new.data = torch.randn(4, 7)  # another storage: noticed by its data pointer
    with pytest.raises(rnnjit.InvalidArgument, match=r"x has shape \(3, 5\) but the weights \(w1 \(4, 7\)"):
        torch_engine.rnn_step(x, h, w1_new, b1, w2, b2)
    with torch.inference_mode():  # no version counter: checked on every call, never remembered
        wi = [t.clone() for t in (w1, b1, w2, b2)]
    before = len(torch_engine._weights)
    torch_engine.rnn_step(x, h, *wi)
    assert len(torch_engine._weights) == before


class CudaArray:
    """A stand-in for a CuPy/Numba array: __cuda_array_interface__ v3 only."""

    def __init__(self, shape, ptr, typestr="<f4", strides=None, stream=None, readonly=False):
        self.__cuda_array_interface__ = {"shape": shape, "typestr": typestr, "data": (ptr, readonly),
                                         "strides": strides, "version": 3, "stream": stream}


def cai_operands(B=3, I=5, H=4, O=2, stream=None):
    shapes = ((B, I), (B, H), (H, I + H), (H,), (O, H), (O,), (B, H), (B, O))
    return [CudaArray(s, 0x1000 * (k + 1), stream=stream) for k, s in enumerate(shapes)]


def test_cuda_array_interface_arrays_run_on_their_stream():
    e = fake_engine(0)
    ops = cai_operands(stream=0xAB)
    h_out, y = e.rnn_step(*ops[:6], h_out=ops[6], y=ops[7], precision="tf32")
    assert (h_out, y) == (ops[6], ops[7])
    (_, problem, *ptrs, stream), = e._step.calls
    assert ptrs == [0x3000, 0x4000, 0x5000, 0x6000, 0x1000, 0x2000, 0x7000, 0x8000] and stream == 0xAB
    e.rnn_step(*ops[:6], h_out=ops[6], y=ops[7], stream=0xCD)
    assert e._step.calls[1][-1] == 0xCD
    e.rnn_step(*cai_operands(stream=None)[:6], h_out=ops[6], y=ops[7])
    assert e._step.calls[2][-1] == 0  # nothing pending: the legacy default stream


@pytest.mark.parametrize("change, message", [
    (lambda ops: ops.__setitem__(0, CudaArray((3, 5), 1, typestr="<f8")), "x has element type '<f8'"),
    (lambda ops: ops.__setitem__(2, CudaArray((4, 9), 1, strides=(4, 16))), "w1 is not contiguous"),
    (lambda ops: ops.__setitem__(7, CudaArray((3, 2), 1, readonly=True)), "y is read-only"),
    (lambda ops: ops.__setitem__(6, CudaArray((3, 5), 1)), "h_out has shape (3, 5), the step needs (3, 4)"),
    (lambda ops: ops.__setitem__(1, [[0.0] * 4] * 3), "h is a builtins.list, not a device array"),
    (lambda ops: ops.__setitem__(7, None), "h_out and y are required unless x is a torch.Tensor"),
])
def test_cuda_array_interface_arrays_are_checked(change, message):
    e = fake_engine(0)
    ops = cai_operands()
    change(ops)
    with pytest.raises(rnnjit.InvalidArgument) as info:
        e.rnn_step(*ops[:6], h_out=ops[6], y=ops[7])
    assert message in str(info.value)
    assert e._step.calls == []


def test_a_size_one_dimension_may_have_any_stride():
    assert _tensors.is_contiguous((1, 4), (999, 4), 4)
    assert not _tensors.is_contiguous((2, 4), (4, 8), 4)


def test_dlpack_arrays_on_the_host_are_rejected():
    np = pytest.importorskip("numpy")
    e = fake_engine(0)
    ops = [np.zeros(s, np.float32) for s in ((3, 5), (3, 4), (4, 9), (4,), (2, 4), (2,), (3, 4), (3, 2))]
    with pytest.raises(rnnjit.InvalidArgument, match="x is on cpu, not on a CUDA device"):
        e.rnn_step(*ops[:6], h_out=ops[6], y=ops[7])


def test_dlpack_capsules_are_read():
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype=np.float32).reshape(3, 4)

    class OnCuda:  # numpy's DLPack capsule, with the device said to be CUDA 0
        def __dlpack_device__(self):
            return (_tensors.KDL_CUDA, 0)

        def __dlpack__(self, stream=None):
            return a.__dlpack__()

    arr = _tensors.describe(OnCuda(), "x", None)
    assert (arr.ptr, arr.shape, arr.dtype, arr.device) == (a.ctypes.data, (3, 4), _tensors.F32, 0)
    b = a[:, 1:]

    class Strided(OnCuda):
        def __dlpack__(self, stream=None):
            return b.__dlpack__()

    with pytest.raises(rnnjit.InvalidArgument, match="x is not contiguous"):
        _tensors.describe(Strided(), "x", None)


# --- the cache reader --------------------------------------------------------------------------

def test_the_default_cache_path_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("RNNJIT_CACHE", str(tmp_path / "c.sqlite"))
    assert rnnjit.default_cache_path() == str(tmp_path / "c.sqlite")
    assert rnnjit.default_cache_path("off") == "off"
    monkeypatch.delenv("RNNJIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert rnnjit.default_cache_path() == str(tmp_path / "rnnjit" / "cache.sqlite")
    assert rnnjit.cache_entries() == []  # no file yet
    assert rnnjit.cache_entries("off") == []


def write_cache(path, version=3, engine_version=None, template_hash=None):
    """A cache file as cache/src/store.cpp's migrations leave it (schema version 3), with a tuned
    step problem, the same problem's sequence entry (64 steps a chunk) and a stale entry."""
    lib = _lib.load()
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE tuning (id INTEGER PRIMARY KEY, gpu TEXT NOT NULL, b INTEGER NOT NULL, i INTEGER NOT NULL,
          h INTEGER NOT NULL, o INTEGER NOT NULL, dtype TEXT NOT NULL DEFAULT 'f32', precision TEXT NOT NULL,
          steps INTEGER NOT NULL DEFAULT 0, template_hash TEXT NOT NULL, engine_version TEXT NOT NULL,
          winner TEXT NOT NULL, winner_us REAL NOT NULL, created_at INTEGER NOT NULL,
          UNIQUE (gpu, b, i, h, o, dtype, precision, steps, template_hash));
        CREATE TABLE candidates (tuning_id INTEGER NOT NULL REFERENCES tuning(id) ON DELETE CASCADE,
          rank INTEGER NOT NULL, config TEXT NOT NULL, time_us REAL, disposition TEXT NOT NULL,
          message TEXT NOT NULL, binary_key TEXT NOT NULL, PRIMARY KEY (tuning_id, rank));
    """)
    db.execute(f"PRAGMA user_version = {version}")
    ev = engine_version or lib.rnnjit_version().decode()
    th = template_hash or lib.rnnjit_template_hash().decode()
    db.execute("INSERT INTO tuning VALUES (1, 'GPU A', 8, 1024, 256, 128, 'f32', 'tf32', 0, ?, ?, 'grid_c128w8', 8.5,"
               " 100)", (th, ev))
    db.execute("INSERT INTO tuning VALUES (2, 'GPU B', 1, 64, 64, 64, 'f32', 'fp32', 0, 'old', ?, 'gemv_r1w4u4', 3.0,"
               " 200)", (ev,))
    db.execute("INSERT INTO tuning VALUES (3, 'GPU A', 8, 1024, 256, 128, 'f32', 'tf32', 64, ?, ?, 'grid_c128w8',"
               " 412.0, 150)", (th, ev))
    db.executemany("INSERT INTO candidates VALUES (?, ?, ?, ?, ?, ?, '')",
                   [(1, 0, "grid_c128w8", 8.5, "ok", ""), (1, 1, "mma64x64x32w2x2s3", None, "compile_failed", "log")])
    db.commit()
    db.close()


def test_cache_entries_reads_a_cache_file(tmp_path):
    path = tmp_path / "cache.sqlite"
    write_cache(path)
    newest, sequence, oldest = rnnjit.cache_entries(path)
    assert newest.gpu == "GPU B" and newest.stale and newest.steps == 0  # other kernel templates
    assert oldest.shape == (8, 1024, 256, 128) and (oldest.dtype, oldest.precision) == ("f32", "tf32")
    assert (oldest.steps, oldest.winner, oldest.winner_us, oldest.created_at, oldest.stale) == \
        (0, "grid_c128w8", 8.5, 100, False)
    assert oldest.candidates[0] == rnnjit.Candidate("grid_c128w8", 8.5, "ok", "")
    assert math.isinf(oldest.candidates[1].time_us) and oldest.candidates[1].disposition == "compile_failed"
    # The same problem's sequence entry: steps joins the key, so both rows stand side by side.
    assert sequence.shape == oldest.shape and (sequence.dtype, sequence.precision) == ("f32", "tf32")
    assert (sequence.steps, sequence.winner_us, sequence.created_at, sequence.stale) == (64, 412.0, 150, False)
    assert sequence.candidates == ()
    assert [(e.gpu, e.steps) for e in rnnjit.cache_entries(path, gpu="GPU A")] == [("GPU A", 64), ("GPU A", 0)]


def test_a_cache_of_another_schema_is_a_cache_error(tmp_path):
    path = tmp_path / "cache.sqlite"
    write_cache(path, version=7)
    with pytest.raises(rnnjit.CacheError, match="schema version 7; this rnnjit reads version 3"):
        rnnjit.cache_entries(path)
    write_cache(tmp_path / "v2.sqlite", version=2)  # before steps: the engine migrates it, this reader does not
    with pytest.raises(rnnjit.CacheError, match="schema version 2; this rnnjit reads version 3"):
        rnnjit.cache_entries(tmp_path / "v2.sqlite")
    (tmp_path / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(rnnjit.CacheError):
        rnnjit.cache_entries(tmp_path / "junk.sqlite")


def test_nvrtc_is_looked_for_where_cuda_and_pytorchs_wheels_put_it(monkeypatch, tmp_path):
    wheel_lib = tmp_path / "site" / "nvidia" / "cu13" / "lib"
    wheel_lib.mkdir(parents=True)
    (wheel_lib / _lib.NVRTC_SONAME).write_bytes(b"")
    monkeypatch.setattr(sys, "path", [str(tmp_path / "site")])
    monkeypatch.setenv("RNNJIT_NVRTC_LIBRARY", "/opt/nvrtc/libnvrtc.so.13")
    monkeypatch.setenv("CUDA_HOME", str(tmp_path / "nowhere"))
    candidates = list(_lib._nvrtc_candidates())
    assert candidates[:3] == ["/opt/nvrtc/libnvrtc.so.13", _lib.NVRTC_SONAME, str(wheel_lib / _lib.NVRTC_SONAME)]
    assert _lib.NVRTC_SONAME == "libnvrtc.so.13"  # what the bundled library links (python/CMakeLists.txt)
