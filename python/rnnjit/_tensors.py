"""Device arrays of any framework as (pointer, shape, dtype): __cuda_array_interface__ (CuPy,
Numba, PyTorch) or DLPack (JAX, CuPy, PyTorch, ...). PyTorch tensors take a faster path in
_engine.py; this module serves everything else and the error messages of both."""
import ctypes

from ._errors import InvalidArgument

# DLPack (dlpack.h): device types and dtype codes this module knows.
KDL_CPU, KDL_CUDA, KDL_CUDA_HOST, KDL_CUDA_MANAGED = 1, 2, 3, 13
KDL_FLOAT, KDL_BFLOAT = 2, 4
DEVICE_NAMES = {1: "cpu", 2: "cuda", 3: "cuda_host (pinned host memory)", 4: "opencl", 7: "vulkan", 8: "metal",
                9: "vpi", 10: "rocm", 11: "rocm_host", 13: "cuda_managed", 14: "oneapi"}

# rnnjit_dtype codes by element type.
F32, BF16 = 0, 1
DTYPE_NAMES = {F32: "float32", BF16: "bfloat16"}
_CAI_DTYPES = {"<f4": F32, "=f4": F32, "f4": F32}


class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


# DLManagedTensor starts with its DLTensor, so a pointer to one is a pointer to the other.
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


class Array:
    """What a step needs of one operand. `keep` holds whatever must outlive the call (a DLPack
    capsule); `stream` is the producer's stream from __cuda_array_interface__ (None: none given)."""
    __slots__ = ("ptr", "shape", "dtype", "device", "readonly", "stream", "keep")

    def __init__(self, ptr, shape, dtype, device, readonly=False, stream=None, keep=None):
        self.ptr, self.shape, self.dtype, self.device = ptr, shape, dtype, device
        self.readonly, self.stream, self.keep = readonly, stream, keep


def contiguous_strides(shape, itemsize):
    strides, step = [], itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= n
    return tuple(reversed(strides))


def is_contiguous(shape, strides, itemsize):
    """Row-major dense; a dimension of size 1 may have any stride (as PyTorch says)."""
    if strides is None:
        return True
    expected = contiguous_strides(shape, itemsize)
    return all(n == 1 or s == e for n, s, e in zip(shape, strides, expected))


def from_cuda_array_interface(obj, name):
    cai = obj.__cuda_array_interface__
    shape = tuple(cai["shape"])
    typestr = cai["typestr"]
    dtype = _CAI_DTYPES.get(typestr)
    if dtype is None:
        raise InvalidArgument(f"{name} has element type {typestr!r}; rnnjit takes float32 ('<f4') "
                              "(bfloat16 through DLPack or PyTorch)")
    if cai.get("mask") is not None:
        raise InvalidArgument(f"{name} is a masked array")
    if not is_contiguous(shape, cai.get("strides"), 4):
        raise InvalidArgument(f"{name} is not contiguous (strides {tuple(cai['strides'])} for shape {shape}): "
                              "pass a row-major contiguous copy")
    ptr, readonly = cai["data"]
    # The interface says nothing of the device: the engine's pointer checks reject a foreign one.
    return Array(ptr or 0, shape, dtype, None, bool(readonly), cai.get("stream"))


def from_dlpack(obj, name, stream):
    """`stream` is the consumer's (ours) as DLPack wants it: None or 1 legacy default, 2 per-thread
    default, else a handle; the producer makes it wait for its pending work."""
    dev_type, dev_id = obj.__dlpack_device__()
    if dev_type not in (KDL_CUDA, KDL_CUDA_MANAGED):
        where = DEVICE_NAMES.get(int(dev_type), f"DLPack device type {dev_type}")
        raise InvalidArgument(f"{name} is on {where}, not on a CUDA device")
    try:
        capsule = obj.__dlpack__(stream=stream)
    except TypeError:  # producers that take no stream argument
        capsule = obj.__dlpack__()
    t = DLTensor.from_address(_capsule_pointer(capsule, b"dltensor"))
    shape = tuple(t.shape[i] for i in range(t.ndim))
    code, bits, lanes = t.dtype.code, t.dtype.bits, t.dtype.lanes
    if (code, bits, lanes) == (KDL_FLOAT, 32, 1):
        dtype = F32
    elif (code, bits, lanes) == (KDL_BFLOAT, 16, 1):
        dtype = BF16
    else:
        raise InvalidArgument(f"{name} has DLPack dtype (code {code}, {bits} bits, {lanes} lanes); rnnjit takes "
                              "float32 or bfloat16")
    strides = tuple(t.strides[i] * (bits // 8) for i in range(t.ndim)) if t.strides else None
    if not is_contiguous(shape, strides, bits // 8):
        raise InvalidArgument(f"{name} is not contiguous: pass a row-major contiguous copy")
    ptr = (t.data or 0) + t.byte_offset
    return Array(ptr, shape, dtype, int(dev_id), False, None, capsule)


def describe(obj, name, dlpack_stream):
    """An Array for any device array; InvalidArgument for anything else."""
    if hasattr(obj, "__cuda_array_interface__"):
        return from_cuda_array_interface(obj, name)
    if hasattr(obj, "__dlpack__"):
        return from_dlpack(obj, name, dlpack_stream)
    raise InvalidArgument(f"{name} is a {type(obj).__module__}.{type(obj).__qualname__}, not a device array "
                          "(one with __cuda_array_interface__ or __dlpack__: PyTorch, CuPy, JAX, Numba)")
