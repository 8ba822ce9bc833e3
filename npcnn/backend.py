"""The one switch between NumPy and CuPy.

Every kernel in npcnn asks this module for its array library instead of importing NumPy directly::

    xp = get_array_module(x)      # numpy for NumPy arrays, cupy for CuPy arrays
    out = xp.maximum(x, 0)

The few operations whose spelling differs between the two libraries (scatter-add, strided views,
the FFT module, random numbers) are wrapped here, so no layer ever branches on the library.

The active backend is NumPy unless the environment variable ``NPCNN_BACKEND=cupy`` is set or
``set_backend("cupy")`` is called. CuPy is imported only when it is asked for.

NumPy's BLAS thread count is set once here, at import, by ``npcnn.threads.apply_default``
(``NPCNN_NUM_THREADS``: a count, ``auto`` or ``keep``; see :mod:`npcnn.threads`).
"""

import contextlib
import math
import os
import threading
import weakref

import numpy as np

from . import threads as _threads

_threads.apply_default()

_BACKENDS = ("numpy", "cupy")

_state = {"name": None, "module": None, "dtype": np.dtype(np.float32), "rng": None, "seed": None}


# ----------------------------------------------------------------------------- the switch


def _import_cupy():
    """Import CuPy and check that a GPU is visible, with errors a user can act on."""
    try:
        import cupy
    except ImportError as err:
        raise RuntimeError(
            "npcnn backend 'cupy' was requested but CuPy is not installed. "
            "Install it with `pip install npcnn[gpu]` (or the cupy-cudaXXx wheel matching your "
            "CUDA), or use the NumPy backend: npcnn.set_backend('numpy')."
        ) from err
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as err:  # CUDA driver missing or broken
        raise RuntimeError(f"npcnn backend 'cupy': CuPy is installed but CUDA failed: {err}") from err
    if count == 0:
        raise RuntimeError("npcnn backend 'cupy': CuPy is installed but no GPU is visible.")
    return cupy


def set_backend(name):
    """Make ``name`` ("numpy" or "cupy") the array library for new arrays and parameters.

    Existing arrays stay where they are (move a model with ``model.to()``); the random generator
    is replaced by a fresh one of the new library (seeded by the last ``manual_seed``). Raises
    RuntimeError with what to do when CuPy is missing or sees no GPU.
    """
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {_BACKENDS}")
    if name == _state["name"]:
        return
    module = np if name == "numpy" else _import_cupy()
    _state["name"], _state["module"] = name, module
    _state["rng"] = None  # a generator belongs to one library; the next use makes a fresh one


def get_backend():
    """The active backend's name: "numpy" or "cupy"."""
    if _state["name"] is None:
        set_backend(os.environ.get("NPCNN_BACKEND", "numpy").strip().lower() or "numpy")
    return _state["name"]


def xp():
    """The active array module (``numpy`` or ``cupy``)."""
    get_backend()
    return _state["module"]


@contextlib.contextmanager
def use_backend(name):
    """Context manager: ``with use_backend("numpy"): ...`` runs the block on another backend."""
    previous = get_backend()
    set_backend(name)
    try:
        yield xp()
    finally:
        set_backend(previous)


def is_cupy_array(a):
    """True for a CuPy array, decided without importing CuPy."""
    return type(a).__module__.split(".")[0] == "cupy"


def get_array_module(*arrays):
    """The module (numpy or cupy) that owns ``arrays``; numpy for plain Python values."""
    for a in arrays:
        if is_cupy_array(a):
            import cupy

            return cupy
    return np


# ----------------------------------------------------------------------------- moving data


def to_numpy(a):
    """A NumPy array holding ``a`` (copied from the GPU when ``a`` lives there)."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def asarray(a, dtype=None):
    """``a`` as an array of the active backend (moved to the GPU under CuPy).

    Args:
        a (array-like): a NumPy or CuPy array, or anything ``numpy.asarray`` takes.
        dtype (default None): the result's dtype; None keeps ``a``'s. No copy is made when ``a``
            already is an array of the backend in that dtype (it is returned as it is).
    """
    module = xp()
    if module is np:
        return np.asarray(to_numpy(a), dtype=dtype)
    return module.asarray(a, dtype=dtype)


# ----------------------------------------------------------------------------- dtypes


def set_default_dtype(dtype):
    """Set the floating dtype of new parameters and loaded data (float32 unless changed)."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f":
        raise ValueError(f"default dtype must be a floating type, got {dtype}")
    _state["dtype"] = dtype


def get_default_dtype():
    """The floating dtype of new parameters (``numpy.float32`` by default)."""
    return _state["dtype"]


@contextlib.contextmanager
def default_dtype(dtype):
    """Context manager: build parameters in ``dtype`` (e.g. float64 for gradient checks)."""
    previous = get_default_dtype()
    set_default_dtype(dtype)
    try:
        yield
    finally:
        set_default_dtype(previous)


# ----------------------------------------------------------------------------- randomness


def manual_seed(seed):
    """Seed npcnn's random generator: initializers, dropout, shuffling and augmentation.

    With a fixed seed a whole run is deterministic on the NumPy backend. The same seed gives
    different numbers on NumPy and CuPy (their generators differ).

    Args:
        seed (int): any integer >= 0; the generator is ``xp.random.default_rng(seed)``.
    """
    seed = int(seed)
    _state["seed"] = seed
    _state["rng"] = xp().random.default_rng(seed)


def rng():
    """npcnn's random generator for the active backend (``numpy.random.Generator`` on NumPy)."""
    if _state["rng"] is None:
        _state["rng"] = xp().random.default_rng(_state["seed"])
    return _state["rng"]


def draw_seed():
    """A fresh seed in [0, 2**63 - 1) drawn from npcnn's generator, as a Python int."""
    return int(to_numpy(rng().integers(0, 2**63 - 1)))


def get_rng_state():
    """The generator's state as a JSON-friendly dict, for checkpoints.

    NumPy: the bit generator's exact state. CuPy's generators cannot report theirs, so the
    generator is re-seeded from its own stream (a fork point) and that seed is the state: the
    run that goes on and a run restored from this state draw the same numbers from here on.
    """
    generator = rng()
    if hasattr(generator, "bit_generator"):
        return generator.bit_generator.state
    seed = draw_seed()
    _state["rng"] = xp().random.default_rng(seed)
    return {"seed": seed}


def set_rng_state(state):
    """Restore a state returned by :func:`get_rng_state` (also one saved on the other backend:
    then the run goes on deterministically, but not with the same numbers)."""
    generator = rng()
    if "seed" in state:
        _state["rng"] = xp().random.default_rng(int(state["seed"]))
    elif hasattr(generator, "bit_generator"):
        generator.bit_generator.state = state
    else:  # a NumPy state restored under CuPy: continue from a seed that the state determines
        host = np.random.default_rng()
        host.bit_generator.state = state
        _state["rng"] = xp().random.default_rng(int(host.integers(0, 2**63 - 1)))


# ----------------------------------------------------------------------------- ops that differ


def scatter_add(a, indices, values):
    """In place ``a[indices] += values``, adding repeated indices (unbuffered).

    Plain ``a[indices] += values`` keeps only one of the values of a repeated index; this adds
    them all (``np.add.at`` / ``cupyx.scatter_add``), what a backward through a gather needs.

    Args:
        a (array): the array added into, modified in place.
        indices: anything ``a[indices]`` accepts (integer arrays, slices, a tuple of them).
        values (array or scalar): broadcast to the shape of ``a[indices]``.
    """
    if is_cupy_array(a):
        import cupyx

        cupyx.scatter_add(a, indices, values)
    else:
        np.add.at(a, indices, values)


def as_strided(x, shape, strides):
    """A strided view of ``x`` (read-only use: windows overlap, so never write through it).

    Args:
        x (array): the array viewed (no copy is made).
        shape (tuple of ints): the view's shape.
        strides (tuple of ints): the view's strides in bytes, one per axis of ``shape``
            (e.g. ``x.strides`` of the axes a window steps over).
    """
    module = get_array_module(x)
    return module.lib.stride_tricks.as_strided(x, shape=shape, strides=strides)


def sliding_window_view(x, window_shape, axis=None):
    """Read-only view of all windows of ``window_shape`` over ``axis`` (NumPy's semantics).

    Args:
        x (array): the array viewed (no copy is made).
        window_shape (int or tuple of ints): the window size along each axis of ``axis``.
        axis (int or tuple of ints, default None): the axes the windows slide over; None: all.

    Returns:
        A view of shape ``x.shape`` with each windowed axis shortened to ``n - w + 1``, followed
        by ``window_shape`` (stride 1: subsample the result for a strided window).
    """
    if is_cupy_array(x):
        import cupy

        return cupy.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)
    return np.lib.stride_tricks.sliding_window_view(x, window_shape, axis=axis)


def fft_module(x=None):
    """The FFT module for ``x``'s library: ``scipy.fft`` or ``cupyx.scipy.fft``.

    ``x`` None: the active backend's. scipy.fft (not numpy.fft) keeps float32 in float32 and
    takes ``workers=``; cupyx's lacks ``workers``, so a kernel passes it only on NumPy.
    """
    if (x is not None and is_cupy_array(x)) or (x is None and get_backend() == "cupy"):
        import cupyx.scipy.fft

        return cupyx.scipy.fft
    import scipy.fft

    return scipy.fft


def next_fast_len(n):
    """Smallest length >= n that a real FFT handles quickly (a product of 2, 3 and 5), for
    zero-padding an FFT convolution; the same on both backends."""
    import scipy.fft

    return scipy.fft.next_fast_len(int(n), real=True)


def special_module(x=None):
    """Special functions (erf, ...) for ``x``'s library: ``scipy.special`` or ``cupyx.scipy.special``."""
    if (x is not None and is_cupy_array(x)) or (x is None and get_backend() == "cupy"):
        import cupyx.scipy.special

        return cupyx.scipy.special
    import scipy.special

    return scipy.special


# ----------------------------------------------------------------------------- scratch memory

class _ScratchArrays:
    """One thread's kept work arrays: ``.arrays`` = {name: flat uint8 NumPy buffer}."""

    def __init__(self):
        self.arrays = {}


_scratch = threading.local()  # .kept: this thread's _ScratchArrays
_scratch_sets: "weakref.WeakSet[_ScratchArrays]" = weakref.WeakSet()  # every live thread's, for release_scratch

# Scratch buffers up to this size are kept per thread and name between calls (larger ones are
# allocated afresh each time, so a one-off huge layer does not pin its memory).
SCRATCH_KEEP_BYTES = 64 * 2 ** 20


def scratch(xp, name, shape, dtype):
    """An uninitialized work array of ``shape`` and ``dtype`` that only the calling kernel uses.

    On NumPy the memory is kept per thread and ``name`` and handed out again at the next call:
    a fresh large array is new memory from the operating system, page-faulted in on first touch
    (which costs about as much as the copy that fills it), and each of the kernels' threads
    would fault in its own. The contents are whatever the last user left; a kernel must never
    return a scratch array, nor ask for one ``name`` twice while it still uses the first. On
    CuPy (whose memory pool already reuses blocks) this is ``cupy.empty``.
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(int(s) for s in shape) * dtype.itemsize
    if xp is not np or nbytes > SCRATCH_KEEP_BYTES:
        return xp.empty(shape, dtype=dtype)
    kept = getattr(_scratch, "kept", None)
    if kept is None:
        kept = _scratch.kept = _ScratchArrays()
        _scratch_sets.add(kept)
    arrays = kept.arrays
    buffer = arrays.get(name)
    if buffer is None or buffer.nbytes < nbytes:
        buffer = arrays[name] = np.empty(max(nbytes, 1), dtype=np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def release_scratch():
    """Let go of every thread's kept :func:`scratch` memory (it is allocated again when next
    needed); returns the bytes released. Arrays a kernel is using stay valid."""
    released = 0
    for kept in list(_scratch_sets):
        released += sum(buffer.nbytes for buffer in kept.arrays.values())
        kept.arrays = {}
    return released
