"""rnnjit.Engine: one GPU's JIT engine over the C API (rnnjit_engine_create, rnnjit_step, ...)."""
import ctypes
import os
import sys
import weakref

from . import _cache, _lib, _tensors
from ._errors import InvalidArgument

_MAX_CHECKED = 1024  # shapes remembered per engine; past that the memo starts over


def _device_index(device):
    """0, 1, "cuda:1", torch.device("cuda", 1), a CuPy Device: the CUDA ordinal."""
    if device is None:
        return 0
    if isinstance(device, int):
        return device
    index = getattr(device, "index", None)  # torch.device
    kind = getattr(device, "type", "cuda")
    if index is None and hasattr(device, "id"):  # cupy.cuda.Device
        index = device.id
    if isinstance(device, str):
        kind, _, rest = device.partition(":")
        if kind.isdigit():
            return int(kind)
        index = int(rest) if rest else 0
    if kind != "cuda":
        raise InvalidArgument(f"device {device!r} is not a CUDA device")
    return 0 if index is None else int(index)


def _stream_handle(stream):
    """An int, a torch.cuda.Stream (.cuda_stream), a CuPy stream (.ptr) or a Numba stream (.handle)."""
    if stream is None or isinstance(stream, int):
        return stream or 0
    for attr in ("cuda_stream", "ptr"):
        value = getattr(stream, attr, None)
        if isinstance(value, int):
            return value
    handle = getattr(stream, "handle", None)
    if handle is not None:
        return int(getattr(handle, "value", handle) or 0)
    raise InvalidArgument(f"stream {stream!r} is not a CUDA stream handle or a stream object")


class _Checked:
    """A validated (shapes, dtype, precision): the C problem, passed by address."""
    __slots__ = ("problem", "addr", "batch", "hidden", "output", "h_shape", "y_shape")

    def __init__(self, batch, inp, hidden, output, precision, dtype):
        self.problem = _lib.Problem(batch, inp, hidden, output, precision, dtype)
        self.addr = ctypes.addressof(self.problem)
        self.batch, self.hidden, self.output = batch, hidden, output
        self.h_shape, self.y_shape = (batch, hidden), (batch, output)


class _Weights:
    """Weights checked once: weak references to the tensors, their version counters, their sizes,
    and the problems checked with them by (x.shape, h.shape, precision)."""
    __slots__ = ("refs", "versions", "dtype", "code", "input", "hidden", "output", "checked")

    def __init__(self, w1, b1, w2, b2, dtype, code, inp, hidden, output):
        tensors = (w1, b1, w2, b2)
        self.refs = tuple(weakref.ref(t) for t in tensors)
        self.versions = None if any(t.is_inference() for t in tensors) else tuple(t._version for t in tensors)
        self.dtype, self.code, self.input, self.hidden, self.output = dtype, code, inp, hidden, output
        self.checked = {}


def _sizes(shapes):
    """B, I, H, O from the inputs' shapes, or InvalidArgument naming the first that does not fit."""
    x, h, w1, b1, w2, b2 = shapes
    if len(x) != 2:
        raise InvalidArgument(f"x must be 2-D (batch, input), not of shape {tuple(x)}")
    if len(h) != 2:
        raise InvalidArgument(f"h must be 2-D (batch, hidden), not of shape {tuple(h)}")
    if len(w2) != 2:
        raise InvalidArgument(f"w2 must be 2-D (output, hidden), not of shape {tuple(w2)}")
    batch, inp = x
    hidden, output = h[1], w2[0]
    expected = {"h": (batch, hidden), "w1": (hidden, inp + hidden), "b1": (hidden,), "w2": (output, hidden),
                "b2": (output,)}
    for name, shape in zip(("h", "w1", "b1", "w2", "b2"), (h, w1, b1, w2, b2)):
        if tuple(shape) != expected[name]:
            raise InvalidArgument(f"{name} has shape {tuple(shape)} but x {tuple(x)} and h {tuple(h)} with w2 "
                                  f"{tuple(w2)} (batch {batch}, input {inp}, hidden {hidden}, output {output}) "
                                  f"need {expected[name]}")
    return batch, inp, hidden, output


def error_bound(precision):
    """The relative error (‖out − ref‖₂ / ‖ref‖₂ against float64 of the same inputs) that every
    kernel of `precision` ("fp32", "tf32", "bf16") stays within: rnnjit_error_bound. "default" has
    none of its own (it depends on the engine and the tensors): InvalidArgument."""
    lib = _lib.load()
    bound = ctypes.c_double()
    _lib.check(lib, lib.rnnjit_error_bound(_precision_code(precision), ctypes.byref(bound)))
    return bound.value


def _precision_code(precision):
    code = _lib.PRECISIONS.get(precision)
    if code is None:
        raise InvalidArgument(f"precision {precision!r} is not one of {', '.join(map(repr, _lib.PRECISIONS))}")
    return code


class Engine:
    """The JIT engine of one CUDA device (thread-safe; one per device is enough).

    cache: None for $RNNJIT_CACHE or ~/.cache/rnnjit/cache.sqlite, "off" for memory only, or a
    path. system_cache: the read-only cache consulted where `cache` misses; None for
    $RNNJIT_SYSTEM_CACHE or /usr/local/share/rnnjit/system.sqlite, "off" for none, or a path.
    tuning: what the first call for an untuned problem does; None ($RNNJIT_TUNING, default
    "blocking": compile and time the candidates, then run the winner) or "background" (run a generic
    plan built with the library at once; the engine times the candidates on a thread and stream of
    its own, then swaps in the winner; see plan()). log_level: None ($RNNJIT_LOG_LEVEL, default warn)
    or "trace".."off". check_pointers=False skips the driver's per-pointer checks (~0.2 µs each)
    for loops whose buffers are known good.
    Raises NoDriver / NoDevice where there is no CUDA driver or no such device."""

    def __init__(self, device=0, cache=None, *, system_cache=None, tuning=None, log_level=None, check_pointers=True):
        self._handle = None
        lib = _lib.load()
        self._lib = lib
        self._step = lib.rnnjit_step
        self.device = _device_index(device)
        options = _lib.Options()
        options.device = self.device
        if cache is not None:
            options.cache_path = os.fsencode(cache)
        if system_cache is not None:
            options.system_cache_path = os.fsencode(system_cache)
        if tuning is not None:
            if tuning not in _lib.TUNING:
                raise InvalidArgument(f"tuning {tuning!r} is not one of {', '.join(map(repr, _lib.TUNING))}")
            options.tuning = _lib.TUNING[tuning]
        if log_level is not None:
            if log_level not in _lib.LOG_LEVELS:
                raise InvalidArgument(f"log_level {log_level!r} is not one of {', '.join(_lib.LOG_LEVELS)}")
            options.log_level = _lib.LOG_LEVELS[log_level]
        options.no_pointer_checks = 0 if check_pointers else 1
        handle = ctypes.c_void_p()
        _lib.check(lib, lib.rnnjit_engine_create(ctypes.byref(options), ctypes.byref(handle)))
        self._handle = handle.value
        self._checked = {}  # non-torch arrays: (sizes, dtype, precision) -> _Checked
        self._weights = {}  # torch: weights' data pointers -> _Weights
        self._torch = None  # the torch module once a torch tensor was seen
        self._tensor_type = None  # torch.Tensor then
        self._torch_stream = None
        # With the engine's pointer checks on, it rejects a tensor of another device (or the
        # host) itself, before anything runs; without them these checks are Python's.
        self._check_devices = not check_pointers

    # --- lifetime -------------------------------------------------------------------------
    def close(self):
        """Destroys the engine now (also done when it is garbage collected)."""
        handle, self._handle = self._handle, None
        if handle:
            self._lib.rnnjit_engine_destroy(handle)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._handle:
            raise InvalidArgument("this rnnjit.Engine was closed")
        return self._handle

    def __repr__(self):
        return f"rnnjit.Engine(device={self.device}, cache={self.cache_path!r})" if self._handle else \
            "rnnjit.Engine(closed)"

    # --- the step -------------------------------------------------------------------------
    def rnn_step(self, x, h, w1, b1, w2, b2, *, h_out=None, y=None, precision="default", stream=None):
        """h' = tanh([x, h] W1ᵀ + b1), y = h' W2ᵀ + b2; returns (h', y).

        x: B×I, h: B×H, w1: H×(I+H), b1: H, w2: O×H, b2: O, contiguous, all float32 or all bfloat16,
        on this engine's device, from PyTorch or any framework with DLPack / __cuda_array_interface__.
        h_out (may be h itself) and y are allocated like x when not given (PyTorch only; required
        otherwise). precision: with float32 tensors "tf32" (tensor cores, ≲ 2e-3) or "fp32" (≲ 1e-5);
        with bfloat16 tensors "bf16" (bf16 products, fp32 sums, ≲ 1e-2); "default" is tf32 for
        float32, bf16 for bfloat16. Another pairing raises Unsupported.
        stream: a handle or stream object; default the producer's current stream (PyTorch's
        torch.cuda.current_stream(), __cuda_array_interface__'s "stream", else the legacy default).
        """
        if type(x) is self._tensor_type:
            return self._step_torch(x, h, w1, b1, w2, b2, h_out, y, precision, stream)
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(x, torch.Tensor):
            if self._torch is None:
                self._bind_torch(torch)
            return self._step_torch(x, h, w1, b1, w2, b2, h_out, y, precision, stream)
        return self._step_any(x, h, w1, b1, w2, b2, h_out, y, precision, stream)

    def rnn_sequence(self, x, h0, w1, b1, w2, b2, *, y=None, h_n=None, h_all=None, precision="default", stream=None):
        """T steps in one call, as nn.RNN runs a sequence: for each t, h_{t+1} = tanh([x_t, h_t] W1ᵀ
        + b1) and y_t = h_{t+1} W2ᵀ + b2. Returns (y, h_n), or (y, h_n, h_all) when h_all is given.

        PyTorch tensors: x T×B×I (time-major, contiguous), h0 B×H, the weights as rnn_step takes
        them. y (T×B×O) and h_n (B×H, may be h0) are allocated when not given; h_all=True
        allocates T×B×H for every state, a tensor is written in place. precision, stream: as
        rnn_step's. bfloat16 tensors: each state is rounded to bfloat16 as it is stored and read
        so by the next step and y_t, as in T calls of rnn_step; x_t·W_ihᵀ + b1 is projected for the
        whole chunk beforehand and stored in bfloat16 too (one rounding more than a step's).
        """
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(x, torch.Tensor):
            raise InvalidArgument("rnn_sequence takes PyTorch tensors")
        if self._torch is None:
            self._bind_torch(torch)
        ptrs = (w1.data_ptr(), b1.data_ptr(), w2.data_ptr(), b2.data_ptr())
        known = self._check_weights(w1, b1, w2, b2, ptrs)
        if x.dim() != 3 or x.shape[2] != known.input:
            raise InvalidArgument(f"x has shape {tuple(x.shape)}; a sequence's x is (steps, batch, {known.input})")
        steps, batch = x.shape[0], x.shape[1]
        dtype = known.dtype
        self._reject_torch(x, "x", (steps, batch, known.input), dtype)
        self._reject_torch(h0, "h0", (batch, known.hidden), dtype)
        outs = {"y": (y, (steps, batch, known.output)), "h_n": (h_n, (batch, known.hidden)),
                "h_all": (None if h_all is True else h_all, (steps, batch, known.hidden))}
        made = {}
        for name, (t, shape) in outs.items():
            if t is None and (name != "h_all" or h_all is True):
                t = x.new_empty(shape)
            elif t is not None:
                self._reject_torch(t, name, shape, dtype)
            made[name] = t
        checked = _Checked(batch, known.input, known.hidden, known.output, _precision_code(precision), known.code)
        status = self._lib.rnnjit_sequence(
            self._live(), checked.addr, steps, ptrs[0], ptrs[1], ptrs[2], ptrs[3], x.data_ptr(), h0.data_ptr(),
            made["y"].data_ptr(), made["h_n"].data_ptr(), made["h_all"].data_ptr() if made["h_all"] is not None else None,
            self._torch_stream(self.device) if stream is None else _stream_handle(stream))
        _lib.check(self._lib, status)
        if made["h_all"] is None:
            return made["y"], made["h_n"]
        return made["y"], made["h_n"], made["h_all"]

    def _bind_torch(self, torch):
        raw = getattr(torch._C, "_cuda_getCurrentRawStream", None)  # what Inductor's generated code calls
        self._torch_stream = raw if raw is not None else (lambda d: torch.cuda.current_stream(d).cuda_stream)
        self._torch = torch
        self._tensor_type = torch.Tensor

    def _step_torch(self, x, h, w1, b1, w2, b2, h_out, y, precision, stream):
        # The hot path. Per call: x, h (and given outputs) are checked (shape, dtype, device,
        # contiguity); the weights are checked once and then recognised by identity, data
        # pointer and version counter (every in-place change of a tensor's data or metadata
        # bumps it; the one change it misses is rebinding `.data` to another view of the same
        # storage). No DLPack capsules: data_ptr() only.
        ptrs = (w1.data_ptr(), b1.data_ptr(), w2.data_ptr(), b2.data_ptr())
        known = self._weights.get(ptrs)
        if known is None or known.refs[0]() is not w1 or known.refs[1]() is not b1 or known.refs[2]() is not w2 \
                or known.refs[3]() is not b2 or known.versions != (w1._version, b1._version, w2._version, b2._version):
            known = self._check_weights(w1, b1, w2, b2, ptrs)
        checked = known.checked.get((x.shape, h.shape, precision))
        if checked is None:
            checked = self._check_torch(known, x, h, precision)
        dtype, dev = known.dtype, self.device
        if x.dtype is not dtype or h.dtype is not dtype or not x.is_contiguous() or not h.is_contiguous() or \
                (self._check_devices and (x.get_device() != dev or h.get_device() != dev)):
            self._reject_torch(x, "x", x.shape, dtype)
            self._reject_torch(h, "h", h.shape, dtype)
        if h_out is None:
            h_out = x.new_empty(checked.h_shape)
        elif h_out is not h and (h_out.shape != checked.h_shape or h_out.dtype is not dtype or not h_out.is_contiguous()
                                 or (self._check_devices and h_out.get_device() != dev)):
            self._reject_torch(h_out, "h_out", checked.h_shape, dtype)
        if y is None:
            y = x.new_empty(checked.y_shape)
        elif y.shape != checked.y_shape or y.dtype is not dtype or not y.is_contiguous() or \
                (self._check_devices and y.get_device() != dev):
            self._reject_torch(y, "y", checked.y_shape, dtype)
        status = self._step(self._handle, checked.addr, ptrs[0], ptrs[1], ptrs[2], ptrs[3], x.data_ptr(), h.data_ptr(),
                            h_out.data_ptr(), y.data_ptr(), self._torch_stream(dev) if stream is None else
                            _stream_handle(stream))
        if status:
            _lib.check(self._lib, status)
        return h_out, y

    def _check_weights(self, w1, b1, w2, b2, ptrs):
        """Validates the weights (2-D w1, w2; 1-D b1, b2 that fit them; one dtype; this device;
        contiguous) and remembers them unless they are inference tensors (no version counter)."""
        self._live()
        torch = self._torch
        dtype = w1.dtype
        if dtype == torch.float32:
            code = _tensors.F32
        elif dtype == torch.bfloat16:
            code = _tensors.BF16
        else:
            raise InvalidArgument(f"w1 has dtype {dtype}; rnnjit takes torch.float32 or torch.bfloat16")
        for t, name in ((w1, "w1"), (b1, "b1"), (w2, "w2"), (b2, "b2")):
            self._reject_torch(t, name, t.shape, dtype)
        if w1.dim() != 2 or w2.dim() != 2:
            raise InvalidArgument(f"w1 and w2 must be 2-D, not of shapes {tuple(w1.shape)} and {tuple(w2.shape)}")
        hidden, output = w1.shape[0], w2.shape[0]
        if w1.shape[1] <= hidden:
            raise InvalidArgument(f"w1 has shape {tuple(w1.shape)}: it must be (hidden, input + hidden) with input >= 1")
        for t, name, shape in ((b1, "b1", (hidden,)), (w2, "w2", (output, hidden)), (b2, "b2", (output,))):
            if t.shape != shape:
                raise InvalidArgument(f"{name} has shape {tuple(t.shape)} but w1 {tuple(w1.shape)} and w2 "
                                      f"{tuple(w2.shape)} (hidden {hidden}, output {output}) need {shape}")
        known = _Weights(w1, b1, w2, b2, dtype, code, w1.shape[1] - hidden, hidden, output)
        if not any(t.is_inference() for t in (w1, b1, w2, b2)):
            if len(self._weights) >= _MAX_CHECKED:
                self._weights.clear()
            self._weights[ptrs] = known
        return known

    def _check_torch(self, known, x, h, precision):
        if x.dim() != 2:
            raise InvalidArgument(f"x must be 2-D (batch, input), not of shape {tuple(x.shape)}")
        batch = x.shape[0]
        for t, name, shape in ((x, "x", (batch, known.input)), (h, "h", (batch, known.hidden))):
            if t.shape != shape:
                raise InvalidArgument(f"{name} has shape {tuple(t.shape)} but the weights (w1 "
                                      f"{(known.hidden, known.input + known.hidden)}, w2 {(known.output, known.hidden)}) "
                                      f"and a batch of {batch} need {shape}")
        checked = _Checked(batch, known.input, known.hidden, known.output, _precision_code(precision), known.code)
        if len(known.checked) >= _MAX_CHECKED:
            known.checked.clear()
        known.checked[(x.shape, h.shape, precision)] = checked
        return checked

    def _reject_torch(self, t, name, shape, dtype):
        """Raises InvalidArgument for the first thing wrong with `t`; returns if nothing is."""
        torch = self._torch
        if not isinstance(t, torch.Tensor):
            raise InvalidArgument(f"{name} is a {type(t).__name__}; with PyTorch inputs every tensor is a torch.Tensor")
        if tuple(t.shape) != tuple(shape):
            raise InvalidArgument(f"{name} has shape {tuple(t.shape)}, the step needs {tuple(shape)}")
        if t.dtype != dtype:
            raise InvalidArgument(f"{name} has dtype {t.dtype} but w1 has {dtype}: every tensor of a step has one dtype")
        if self._check_devices and t.get_device() != self.device:
            raise InvalidArgument(f"{name} is on {t.device} but this engine runs on cuda:{self.device}")
        if not t.is_contiguous():
            raise InvalidArgument(f"{name} is not contiguous (strides {t.stride()}): pass {name}.contiguous()")

    def _remember(self, key, sizes, precision, dtype_code):
        checked = _Checked(*sizes, _precision_code(precision), dtype_code)
        if len(self._checked) >= _MAX_CHECKED:
            self._checked.clear()
        self._checked[key] = checked
        return checked

    def _step_any(self, x, h, w1, b1, w2, b2, h_out, y, precision, stream):
        handle = self._live()
        if h_out is None or y is None:
            raise InvalidArgument("h_out and y are required unless x is a torch.Tensor: pass output arrays of "
                                  "shapes (batch, hidden) and (batch, output) from x's framework")
        explicit = None if stream is None else _stream_handle(stream)
        names = ("x", "h", "w1", "b1", "w2", "b2", "h_out", "y")
        # DLPack producers order their pending work before our stream (None: the legacy default).
        arrays = [_tensors.describe(obj, name, explicit or None) for obj, name in
                  zip((x, h, w1, b1, w2, b2, h_out, y), names)]
        dtype = arrays[0].dtype
        for a, name in zip(arrays, names):
            if a.dtype != dtype:
                raise InvalidArgument(f"{name} is {_tensors.DTYPE_NAMES[a.dtype]} but x is "
                                      f"{_tensors.DTYPE_NAMES[dtype]}: every tensor of a step has one dtype")
            if a.device is not None and a.device != self.device:
                raise InvalidArgument(f"{name} is on cuda:{a.device} but this engine runs on cuda:{self.device}")
        for a, name in zip(arrays[6:], names[6:]):
            if a.readonly:
                raise InvalidArgument(f"{name} is read-only")
        batch, inp, hidden, output = _sizes([a.shape for a in arrays[:6]])
        for a, name, shape in ((arrays[6], "h_out", (batch, hidden)), (arrays[7], "y", (batch, output))):
            if a.shape != shape:
                raise InvalidArgument(f"{name} has shape {a.shape}, the step needs {shape}")
        key = ("any", batch, inp, hidden, output, dtype, precision)
        checked = self._checked.get(key) or self._remember(key, (batch, inp, hidden, output), precision, dtype)
        if explicit is not None:
            s = explicit
        else:
            # __cuda_array_interface__ v3: the stream the producer's work is on (1, 2: the default
            # streams, which are also the driver's handles for them); None: nothing pending.
            s = arrays[0].stream or 0
        p = [a.ptr for a in arrays]
        status = self._step(handle, checked.addr, p[2], p[3], p[4], p[5], p[0], p[1], p[6], p[7], s)
        del arrays  # DLPack capsules go after the call
        _lib.check(self._lib, status)
        return h_out, y

    # --- tuning and the cache ---------------------------------------------------------------
    def tune(self, batch, input, hidden, output, precision=None, force=False, dtype="f32"):
        """Compiles and times the candidates for this problem now on scratch data (as rnnjit-tune
        does) and persists the winner; force=True retunes a cached problem. precision None: what
        rnn_step's "default" resolves to, tf32 for f32, bf16 for bf16. Returns its TunedEntry when
        the cache is a file, else None."""
        handle = self._live()
        if dtype not in _lib.DTYPES:
            raise InvalidArgument(f"dtype {dtype!r} is not one of {', '.join(map(repr, _lib.DTYPES))}")
        if precision is None:
            precision = "bf16" if dtype == "bf16" else "tf32"
        problem = _lib.Problem(batch, input, hidden, output, _precision_code(precision), _lib.DTYPES[dtype])
        _lib.check(self._lib, self._lib.rnnjit_tune(handle, ctypes.addressof(problem), 1 if force else 0))
        if precision == "default":
            return None
        for entry in self.entries():
            if (entry.batch, entry.input, entry.hidden, entry.output, entry.precision, entry.dtype, entry.steps) == \
                    (batch, input, hidden, output, precision, dtype, 0) and not entry.stale:
                return entry
        return None

    def plan(self, batch, input, hidden, output, precision="default", dtype="f32"):
        """(state, config) of the plan this problem runs now: state "none" (not called yet),
        "untuned" (picked inside graph capture), "tuning" (tuning="background": a first plan,
        the generic one, runs while the candidates are timed) or "tuned"; config its name ("" for none)."""
        handle = self._live()
        if dtype not in _lib.DTYPES:
            raise InvalidArgument(f"dtype {dtype!r} is not one of {', '.join(map(repr, _lib.DTYPES))}")
        problem = _lib.Problem(batch, input, hidden, output, _precision_code(precision), _lib.DTYPES[dtype])
        state, config = ctypes.c_int(), ctypes.c_char_p()
        _lib.check(self._lib, self._lib.rnnjit_engine_plan(handle, ctypes.addressof(problem), ctypes.byref(state),
                                                           ctypes.byref(config)))
        return _lib.PLAN_STATES[state.value], config.value.decode()

    @property
    def cache_path(self):
        """The SQLite file this engine's cache uses, or ":memory:"."""
        out = ctypes.c_char_p()
        _lib.check(self._lib, self._lib.rnnjit_engine_cache_path(self._live(), ctypes.byref(out)))
        return os.fsdecode(out.value)

    @property
    def device_name(self):
        """The GPU's name, as the driver says it."""
        return self._device_strings()[0]

    @property
    def arch(self):
        """The NVRTC target of this GPU ("sm_90a", ...)."""
        return self._device_strings()[1]

    @property
    def gpu_key(self):
        """The tuning cache's key of this GPU (name, compute capability, SMs, L2, shared memory)."""
        return self._device_strings()[2]

    def _device_strings(self):
        out = [ctypes.c_char_p() for _ in range(3)]
        _lib.check(self._lib, self._lib.rnnjit_engine_device(self._live(), *map(ctypes.byref, out)))
        return tuple(o.value.decode() for o in out)

    def entries(self, all_gpus=False):
        """The tuned problems in this engine's cache file (this GPU's unless all_gpus), newest
        first, as TunedEntry records; [] for a memory cache."""
        path = self.cache_path
        if path == ":memory:":
            return []
        return _cache.entries(path, gpu=None if all_gpus else self.gpu_key)
