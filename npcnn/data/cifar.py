"""Readers of the two CIFAR-10 distributions: Python pickle batches and binary batches.

``cifar-10-batches-py/``: ``data_batch_1`` ... ``data_batch_5``, ``test_batch`` and ``batches.meta``,
each a pickled dict (protocol 2, written by Python 2). A data batch holds ``b"data"`` (uint8,
10000 x 3072: the R, G and B planes of a 32 x 32 image, row-major) and ``b"labels"`` (list of
ints); ``batches.meta`` holds ``b"label_names"``.

Unpickling can run arbitrary code, so these files are read with :class:`SafeUnpickler`, which
resolves only the handful of globals a pickled NumPy array needs and refuses every other one.

``cifar-10-batches-bin/``: ``data_batch_1.bin`` ... ``test_batch.bin``, each a sequence of
3073-byte records (1 label byte, then the 3072 pixel bytes in the same plane order), and
``batches.meta.txt`` with one class name per line.
"""

import io
import math
import pickle

import numpy as np

from .idx import CorruptFileError

try:  # NumPy >= 2 moved the implementation; old pickles still name numpy.core
    from numpy._core.multiarray import _reconstruct
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy.core.multiarray import _reconstruct  # type: ignore[no-redef]

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
IMAGE_BYTES = 3 * 32 * 32



def _frombuffer(buffer, dtype, shape, order):
    """NumPy's protocol-5 array reconstruction (``numpy._core.numeric._frombuffer``), checked:
    a plain bytes buffer of exactly the announced size, a non-object dtype, an int shape."""
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise pickle.UnpicklingError("refusing an array reconstruction that is not a plain numeric buffer")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape) or order not in "CF":
        raise pickle.UnpicklingError(f"refusing an array reconstruction with shape {shape!r}, order {order!r}")
    if math.prod(shape) * dtype.itemsize != len(buffer):
        raise pickle.UnpicklingError(f"array of shape {shape} {dtype} does not fit its {len(buffer)}-byte buffer")
    return np.frombuffer(buffer, dtype=dtype).reshape(shape, order=order)


# The only globals a CIFAR-10 pickle may name: rebuilding an ndarray (protocols 2-4 with
# ``_reconstruct``, protocol 5 with ``_frombuffer``, under NumPy 1's and NumPy 2's module names)
# and Python 3's protocol-2 spelling of a bytes object (``_codecs.encode(str, "latin1")``).
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): __import__("codecs").encode,
}


class SafeUnpickler(pickle.Unpickler):
    """An Unpickler that refuses every global except those needed to rebuild a NumPy array."""

    def find_class(self, module, name):
        """The allowed global ``module.name``; any other raises ``pickle.UnpicklingError``."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a CIFAR-10 batch holds only a dict of "
                f"arrays, lists, bytes and str"
            ) from None


def _key(d, name):
    """``d[b"name"]`` or ``d["name"]`` (Python 2 pickles have bytes keys, re-saved ones str)."""
    for key in (name.encode(), name):
        if key in d:
            return d[key]
    raise KeyError(name)


def load_pickle(path):
    """The dict stored in a CIFAR pickle file, loaded safely (see :class:`SafeUnpickler`)."""
    try:
        with open(path, "rb") as f:
            obj = SafeUnpickler(io.BufferedReader(f), encoding="bytes").load()
    except pickle.UnpicklingError as err:
        raise CorruptFileError(f"{path}: {err}") from None
    except (EOFError, ValueError, TypeError, IndexError, AttributeError) as err:
        raise CorruptFileError(f"{path}: not a valid CIFAR-10 pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, dict) or not all(isinstance(k, (bytes, str)) for k in obj):
        raise CorruptFileError(f"{path}: expected a dict with bytes/str keys, got {type(obj).__name__}")
    return obj


def read_py_batch(path):
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) from one python-version batch file."""
    d = load_pickle(path)
    try:
        data, labels = _key(d, "data"), _key(d, "labels")
    except KeyError as err:
        raise CorruptFileError(f"{path}: missing key {err} (expected b'data' and b'labels')") from None
    data = np.asarray(data)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise CorruptFileError(f"{path}: b'data' is {data.dtype} {data.shape}, expected uint8 (n, {IMAGE_BYTES})")
    if isinstance(labels, np.ndarray) and labels.ndim == 1 and labels.dtype.kind in "iu":
        labels = labels.tolist()  # a batch re-saved from NumPy
    if not isinstance(labels, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 10
                                               for v in labels):
        raise CorruptFileError(f"{path}: b'labels' must be a list of ints in 0..9")
    if len(labels) != len(data):
        raise CorruptFileError(f"{path}: {len(data)} images but {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), np.asarray(labels, dtype=np.int64)


def read_py_meta(path):
    """The class names in ``batches.meta`` (python version), as str."""
    d = load_pickle(path)
    try:
        names = _key(d, "label_names")
    except KeyError:
        raise CorruptFileError(f"{path}: missing key b'label_names'") from None
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise CorruptFileError(f"{path}: b'label_names' must be a list of strings")
    return [n.decode() if isinstance(n, bytes) else n for n in names]


def read_bin_batch(path):
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) from one binary-version batch file."""
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % (IMAGE_BYTES + 1):
        raise CorruptFileError(f"{path}: size {raw.size} bytes is not a multiple of the "
                               f"{IMAGE_BYTES + 1}-byte CIFAR-10 record (truncated?)")
    records = raw.reshape(-1, IMAGE_BYTES + 1)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise CorruptFileError(f"{path}: label byte {labels.max()} out of range 0..9")
    return records[:, 1:].reshape(-1, 3, 32, 32), labels


def read_bin_meta(path):
    """The class names in ``batches.meta.txt`` (binary version)."""
    try:
        with open(path, encoding="ascii") as f:
            return [line.strip() for line in f if line.strip()]
    except UnicodeDecodeError as err:
        raise CorruptFileError(f"{path}: not an ASCII list of class names ({err})") from None


def write_py_batch(path, images, labels, batch_label="fixture batch"):
    """Write images (n, 3, 32, 32) uint8 and labels as a CIFAR-10 python batch (pickle protocol 2,
    bytes keys, as the original files). For tests and small fixtures."""
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), IMAGE_BYTES)
    d = {b"batch_label": batch_label.encode(), b"labels": [int(v) for v in labels], b"data": images,
         b"filenames": [f"img_{i:05d}.png".encode() for i in range(len(images))]}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def write_py_meta(path, label_names):
    """Write a CIFAR-10 python ``batches.meta`` file."""
    d = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in label_names], b"num_vis": IMAGE_BYTES}
    with open(path, "wb") as f:
        pickle.dump(d, f, protocol=2)


def write_bin_batch(path, images, labels):
    """Write images (n, 3, 32, 32) uint8 and labels as a CIFAR-10 binary batch."""
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), IMAGE_BYTES)
    records = np.concatenate([np.asarray(labels, dtype=np.uint8)[:, None], images], axis=1)
    records.tofile(path)
