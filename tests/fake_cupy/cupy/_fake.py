"""The machinery of the fake CuPy: a device array that lives in host memory but behaves, at the
Python level, like ``cupy.ndarray``, and namespaces that offer exactly CuPy's API.

Why: this project's CI has no GPU, yet every layer must "run unchanged on CuPy". Most bugs of a
NumPy-to-CuPy port are Python-level, and this fake reproduces the ones CuPy itself raises:

* implicit conversion: ``np.asarray(device_array)`` raises ``TypeError`` (use ``.get()``);
* mixing: a ufunc or function given a device array and a NumPy array of rank >= 1 raises
  ``TypeError: Unsupported type <class 'numpy.ndarray'>``; so does a CuPy function given only
  host arrays;
* missing API: a name CuPy lacks (``cupy.random.Generator.normal``, ``ndarray.ctypes``) raises
  ``AttributeError``; a NumPy function CuPy does not implement raises ``TypeError`` through
  ``__array_function__``;
* signatures: a keyword CuPy's function does not take (``cupyx.scipy.fft.rfftn(workers=...)``)
  raises ``TypeError``.

"What CuPy has" is read from ``cupy_api.json``, written by ``dump_api.py`` from a real CuPy
install. The fake cannot find numerical differences between CuPy's kernels and NumPy's, or
anything about CUDA itself: that still needs a GPU (``python -m pytest -m gpu`` with the real CuPy).
"""

import inspect
import json
import pathlib

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin

API = json.loads((pathlib.Path(__file__).parents[1] / "cupy_api.json").read_text())
VERSION = API["cupy_version"]

# Functions that copy host data to the device, so a NumPy array is a legal argument.
HOST_TO_DEVICE = {"cupy.array", "cupy.asarray", "cupy.asanyarray"}


# Transfers between host and "device", counted so tests can bound them per training step: each
# device-to-host read (.get(), float(), bool(), .item(), ...) is a synchronization on a real GPU.
TRANSFERS = {"to_host": 0, "to_device": 0}
TRACE = []  # (direction, where) of each transfer while TRACE_ON[0]; for finding where they come from
TRACE_ON = [False]


def count_transfer(direction, where):
    TRANSFERS[direction] += 1
    if TRACE_ON[0]:
        import traceback

        TRACE.append((direction, where, "".join(traceback.format_stack(limit=8)[:-2])))


# ----------------------------------------------------------------------------- signatures


_SIGNATURES = {}  # id(params) -> Signature: the inventory's lists live as long as the process


def _signature(params):
    """An ``inspect.Signature`` from the inventory's [[name, kind, has_default], ...]."""
    if params is None:
        return None
    if id(params) not in _SIGNATURES:
        _SIGNATURES[id(params)] = (params, _build_signature(params))  # params kept: its id stays unique
    return _SIGNATURES[id(params)][1]


def _build_signature(params):
    built = [inspect.Parameter(name, getattr(inspect.Parameter, kind),
                               default=None if has_default else inspect.Parameter.empty)
             for name, kind, has_default in params]
    try:
        return inspect.Signature(built)
    except ValueError:  # an oddly documented signature: do not check
        return None


def check_call(qualname, params, args, kwargs):
    """Raise ``TypeError`` as CuPy would when ``args``/``kwargs`` do not fit its signature."""
    signature = _signature(params)
    if signature is None:
        return
    try:
        signature.bind(*args, **kwargs)
    except TypeError as err:
        raise TypeError(f"{qualname}(): {err} (CuPy {VERSION} signature: {signature})") from None


# ----------------------------------------------------------------------------- crossing the "bus"


def to_host(obj, strict, where):
    """``obj`` with each device array replaced by its host buffer (no copy).

    With ``strict``, a NumPy array of rank >= 1 among the arguments is the error CuPy raises
    (whether or not device arrays come with it).
    """
    if isinstance(obj, ndarray):
        return obj._a
    if isinstance(obj, np.ndarray):
        if strict and obj.ndim > 0:
            raise TypeError(f"{where}: Unsupported type {type(obj)} (a NumPy array where CuPy needs a "
                            "cupy.ndarray; move it with cupy.asarray)")
        return obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(o, strict, where) for o in obj)
    if isinstance(obj, dict):
        return {k: to_host(v, strict, where) for k, v in obj.items()}
    return obj


def has_device_array(obj):
    if isinstance(obj, ndarray):
        return True
    if isinstance(obj, (list, tuple)):
        return any(has_device_array(o) for o in obj)
    if isinstance(obj, dict):
        return any(has_device_array(o) for o in obj.values())
    return False


def to_device(obj):
    """Results wrapped as device arrays (sharing memory); NumPy scalars become 0-d arrays, as CuPy
    returns 0-d arrays where NumPy returns scalars."""
    if isinstance(obj, np.ndarray):
        return ndarray._of(obj)
    if isinstance(obj, np.generic):
        return ndarray._of(np.asarray(obj))
    if isinstance(obj, tuple):
        return tuple(to_device(o) for o in obj)
    if isinstance(obj, list):
        return [to_device(o) for o in obj]
    return obj


# ----------------------------------------------------------------------------- functions


def device_function(qualname, func, params):
    """``func`` (NumPy's or SciPy's) behaving as the CuPy function ``qualname``."""
    accepts_host = qualname in HOST_TO_DEVICE

    def call(*args, **kwargs):
        check_call(qualname, params, args, kwargs)
        if accepts_host and not has_device_array(args[:1]):
            count_transfer("to_device", qualname)
        args, kwargs = to_host((args, kwargs), strict=not accepts_host, where=qualname)
        return to_device(func(*args, **kwargs))

    call.__name__ = call.__qualname__ = qualname.rpartition(".")[2]
    return call


def check_ufunc_call(qualname, entry, method, args, kwargs):
    """A ufunc's keywords (``out``, ``casting``, ``dtype`` in CuPy: no ``where``) and methods."""
    if method == "__call__":
        keywords = entry.get("keywords")
        unknown = sorted(set(kwargs) - set(keywords)) if keywords is not None else []
        if unknown:
            raise TypeError(f"{qualname}() got unexpected keyword(s) {unknown}; CuPy {VERSION} takes {keywords}")
        return
    method_entry = API["classes"]["cupy.ufunc"].get(method)
    if method_entry is None:
        raise TypeError(f"{qualname}.{method} is not supported by CuPy {VERSION}")
    check_call(f"{qualname}.{method}", method_entry.get("params"), args, kwargs)


class DeviceUfunc:
    """A NumPy/SciPy ufunc behaving as the CuPy ufunc ``qualname`` (methods as ``cupy.ufunc``)."""

    def __init__(self, qualname, ufunc, entry):
        self.qualname, self.ufunc, self.entry = qualname, ufunc, entry
        self.__name__ = ufunc.__name__
        self.nin, self.nout = ufunc.nin, ufunc.nout

    def _apply(self, method, args, kwargs):
        where = f"{self.qualname}.{method}" if method != "__call__" else self.qualname
        check_ufunc_call(self.qualname, self.entry, method, args, kwargs)
        args, kwargs = to_host((args, kwargs), strict=True, where=where)
        return to_device(getattr(self.ufunc, method)(*args, **kwargs))

    def __call__(self, *args, **kwargs):
        return self._apply("__call__", args, kwargs)

    def __getattr__(self, method):
        if method not in API["classes"]["cupy.ufunc"] or not callable(getattr(self.ufunc, method, None)):
            raise AttributeError(f"'cupy.ufunc' object has no attribute {method!r} (CuPy {VERSION})")
        return lambda *args, **kwargs: self._apply(method, args, kwargs)


def lookup(namespace, name, source):
    """The attribute ``namespace.name`` of the fake: ``source``'s, if CuPy has it."""
    entry = API["namespaces"][namespace].get(name)
    if entry is None:
        raise AttributeError(f"module {namespace!r} has no attribute {name!r} (not in CuPy {VERSION})")
    qualname = f"{namespace}.{name}"
    if entry["kind"] == "value" and "value" in entry:
        return entry["value"]
    target = getattr(source, name, None)
    if target is None or entry["kind"] == "module":
        raise AttributeError(f"{qualname} exists in CuPy {VERSION} but the fake CuPy does not emulate it")
    if entry["kind"] == "ufunc" and isinstance(target, np.ufunc):
        return DeviceUfunc(qualname, target, entry)
    if entry["kind"] in ("function", "ufunc"):
        return device_function(qualname, target, entry.get("params"))
    return target  # dtypes, constants, classes such as finfo: CuPy re-exports NumPy's


# ----------------------------------------------------------------------------- the array


def _whole_array_copy(array, key, value):
    whole = key is Ellipsis or (isinstance(key, slice) and key == slice(None))
    return whole and value.shape == array.shape and value.dtype == array.dtype


class MemoryPointer:
    """``ndarray.data``: the buffer's address (``.ptr``), as NCCL calls take it."""

    def __init__(self, array):
        self._array = array  # keeps the buffer alive while the pointer is in use
        self.ptr = array.__array_interface__["data"][0]
        self.device_id = 0


class ndarray(NDArrayOperatorsMixin):
    """A fake ``cupy.ndarray``: host memory, CuPy's Python-level behavior."""

    __slots__ = ("_a",)
    __hash__ = None

    def __init__(self, shape, dtype=float, memptr=None, strides=None, order="C"):
        self._a = np.empty(shape, dtype=dtype, order=order)

    @classmethod
    def _of(cls, host):
        array = cls.__new__(cls)
        array._a = host
        return array

    # -- what CuPy forbids
    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        entry = API["namespaces"]["cupy"].get(ufunc.__name__)
        if entry is None or (method != "__call__" and method not in API["classes"]["cupy.ufunc"]):
            return NotImplemented
        where = f"cupy.{ufunc.__name__}" + (f".{method}" if method != "__call__" else "")
        check_ufunc_call(f"cupy.{ufunc.__name__}", entry, method, inputs, kwargs)
        out = kwargs.get("out")
        host_inputs, host_kwargs = to_host((inputs, kwargs), strict=True, where=where)
        result = getattr(ufunc, method)(*host_inputs, **host_kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return to_device(result)

    def __array_function__(self, func, types, args, kwargs):
        namespace = "cupy" + func.__module__[len("numpy"):] if func.__module__.startswith("numpy") else None
        if namespace not in API["namespaces"] or func.__name__ not in API["namespaces"][namespace]:
            return NotImplemented  # NumPy then raises TypeError, as with CuPy
        where = f"{namespace}.{func.__name__}"
        check_call(where, API["namespaces"][namespace][func.__name__].get("params"), args, kwargs)
        host_args, host_kwargs = to_host((args, kwargs), strict=True, where=where)
        return to_device(func(*host_args, **host_kwargs))

    # -- attributes and methods: those of cupy.ndarray only
    def __getattr__(self, name):
        entry = API["classes"]["cupy.ndarray"].get(name)
        if entry is None or name.startswith("_"):
            raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r} (CuPy {VERSION})")
        if name == "data":
            return MemoryPointer(self._a)
        if name == "device":
            from cupy.cuda import Device

            return Device(0)
        if entry["kind"] != "function":
            return to_device(getattr(self._a, name))
        method = getattr(self._a, name, None)
        if method is None:
            raise AttributeError(f"cupy.ndarray.{name} exists in CuPy {VERSION} but the fake does not emulate it")
        qualname = f"cupy.ndarray.{name}"

        def call(*args, **kwargs):
            check_call(qualname, entry["params"], args, kwargs)
            if name in ("item", "tolist", "tobytes"):
                count_transfer("to_host", name)
            args, kwargs = to_host((args, kwargs), strict=False, where=qualname)
            return to_device(method(*args, **kwargs))

        return call

    def get(self, stream=None, order="C", out=None, blocking=True):
        """Copy to a NumPy array (the explicit device-to-host transfer)."""
        count_transfer("to_host", "get")
        if out is not None:
            out[...] = self._a
            return out
        return np.array(self._a, order=order, copy=True)

    def set(self, arr, stream=None):
        """Copy the NumPy array ``arr`` into this array."""
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        count_transfer("to_device", "set")
        self._a[...] = arr

    # -- indexing and Python protocols
    def __getitem__(self, key):
        return to_device(self._a[to_host(key, strict=False, where="cupy.ndarray.__getitem__")])

    def __setitem__(self, key, value):
        if isinstance(value, np.ndarray) and value.ndim > 0 and not _whole_array_copy(self._a, key, value):
            # CuPy copies a NumPy array only into the whole array, same shape and dtype (cupy#2079);
            # otherwise it tries ndarray.fill(value), which refuses non-scalar NumPy arrays.
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill (CuPy accepts a NumPy array "
                             "only in a[...] = host or a[:] = host of the same shape and dtype)")
        if isinstance(value, np.ndarray) and value.ndim > 0:
            count_transfer("to_device", "__setitem__")
        key = to_host(key, strict=False, where="cupy.ndarray.__setitem__")
        self._a[key] = to_host(value, strict=False, where="cupy.ndarray.__setitem__")

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    def __bool__(self):
        count_transfer("to_host", "__bool__")
        return bool(self._a)

    def __float__(self):
        count_transfer("to_host", "__float__")
        return float(self._a)

    def __int__(self):
        count_transfer("to_host", "__int__")
        return int(self._a)

    def __complex__(self):
        count_transfer("to_host", "__complex__")
        return complex(self._a)

    def __repr__(self):
        return repr(self._a)

    def __str__(self):
        return str(self._a)

    def __copy__(self):
        return ndarray._of(self._a.copy())

    def __deepcopy__(self, memo):
        return ndarray._of(self._a.copy())

    def __reduce__(self):
        return (ndarray._of, (self._a.copy(),))


ndarray.__module__ = "cupy"
