"""Saving and loading arrays: ``save(model_or_state_dict, path)`` and ``load(path) -> dict``.

The file format follows the suffix:

* ``.npz`` -- NumPy's zip of ``.npy`` files, read back with ``allow_pickle=False``;
* ``.safetensors`` -- the safetensors layout, written here with ``json`` and NumPy alone::

      8 bytes     N, the header length (unsigned 64-bit little-endian)
      N bytes     JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
                         "__metadata__": {"key": "value"}}   (padded with spaces to a multiple of 8)
      the rest    the tensors' raw little-endian C-order bytes; offsets count from here

Neither format can hold code, so loading a file never runs any: no pickle anywhere.

Writes are atomic: the bytes go to a temporary file in the target's directory, are flushed to
disk (fsync), and only then renamed over the target (``os.replace``). A crash mid-save leaves
the previous file intact and at most a stray ``.tmp`` file, which the failed save removes.
"""

import contextlib
import json
import os
import tempfile
from collections import OrderedDict

import numpy as np

from . import backend

# safetensors dtype codes <-> NumPy dtypes (BF16 and FP8 have no NumPy type)
_ST_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2",
    "I64": "<i8", "I32": "<i4", "I16": "<i2", "I8": "i1",
    "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1", "BOOL": "?",
}
_ST_CODES = {(np.dtype(v).kind, np.dtype(v).itemsize): k for k, v in _ST_DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def save(obj, path, metadata=None):
    """Save a Module's ``state_dict()`` or a ``{name: array}`` dict to ``path`` (.npz or .safetensors).

    ``metadata`` (str -> str) goes into the safetensors header; .npz files do not take it.
    """
    arrays = _to_numpy_dict(obj.state_dict() if hasattr(obj, "state_dict") else obj)
    suffix = _suffix(path)
    if suffix == ".npz":
        if metadata:
            raise ValueError("save: metadata is only stored in .safetensors files")
        atomic_write(path, lambda f: _write_npz(f, arrays))
    else:
        atomic_write(path, lambda f: write_safetensors(f, arrays, metadata))


def load(path):
    """Read a file written by :func:`save` into an ordered ``{name: numpy array}`` dict.

    ``model.load_state_dict(npcnn.load(path))`` restores a model (moving arrays to the active
    backend and the parameters' dtype).
    """
    if _suffix(path) == ".npz":
        with np.load(path, allow_pickle=False) as archive:
            return OrderedDict((name, archive[name]) for name in archive.files)
    with open(path, "rb") as f:
        return read_safetensors(f.read(), source=str(path))[0]


def _suffix(path):
    suffix = os.path.splitext(os.fspath(path))[1].lower()
    if suffix not in (".npz", ".safetensors"):
        raise ValueError(f"{os.fspath(path)!r}: unknown file type {suffix!r}; use .npz or .safetensors")
    return suffix


def _to_numpy_dict(state):
    if not isinstance(state, dict):
        raise TypeError(f"save: expected a Module or a dict of arrays, got {type(state).__name__}")
    arrays = OrderedDict()
    for name, value in state.items():
        if not isinstance(name, str):
            raise TypeError(f"save: keys must be strings, got {name!r}")
        array = backend.to_numpy(value)
        if array.dtype == object:
            raise TypeError(f"save: '{name}' is an object array; only numeric arrays can be saved")
        arrays[name] = array
    return arrays


# ----------------------------------------------------------------------------- atomic writes


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)  # make the rename itself durable


def _fsync_directory(directory):
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_npz(f, arrays):
    np.savez(f, **arrays)


# ----------------------------------------------------------------------------- safetensors


def write_safetensors(f, arrays, metadata=None):
    """Write ``{name: numpy array}`` to the open binary file ``f`` in the safetensors layout."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    for name, array in arrays.items():
        if name == "__metadata__":
            raise ValueError("save: '__metadata__' is reserved in safetensors files")
        code = _ST_CODES.get((array.dtype.kind, array.dtype.itemsize))
        if code is None:
            raise TypeError(f"save: '{name}' has dtype {array.dtype}, which safetensors cannot hold")
        data = np.ascontiguousarray(array, dtype=_ST_DTYPES[code]).tobytes()
        header[name] = {"dtype": code, "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the data starts 8-byte aligned
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for data in blobs:
        f.write(data)


def read_safetensors(buffer, source="safetensors data"):
    """Parse safetensors bytes into (ordered ``{name: numpy array}``, metadata dict).

    Every offset is checked: tensors must tile the data section exactly, with sizes that match
    their shapes and dtypes, so a truncated or corrupt file is an error, never garbage.
    """
    if len(buffer) < 8:
        raise ValueError(f"{source}: too short to be a safetensors file")
    n = int.from_bytes(buffer[:8], "little")
    if n > min(_MAX_HEADER, len(buffer) - 8):
        raise ValueError(f"{source}: header length {n} does not fit the file ({len(buffer)} bytes)")
    try:
        header = json.loads(bytes(buffer[8:8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{source}: the safetensors header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise ValueError(f"{source}: the safetensors header must be a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    data = memoryview(buffer)[8 + n:]
    entries = sorted(header.items(), key=lambda item: item[1]["data_offsets"][0])
    arrays, expected_begin = OrderedDict(), 0
    for name, info in entries:
        if info.get("dtype") not in _ST_DTYPES:
            raise ValueError(f"{source}: tensor '{name}' has unsupported dtype {info.get('dtype')!r}")
        dtype = np.dtype(_ST_DTYPES[info["dtype"]])
        shape = tuple(int(s) for s in info["shape"])
        begin, end = (int(v) for v in info["data_offsets"])
        if begin != expected_begin or end - begin != int(np.prod(shape, dtype=np.int64)) * dtype.itemsize:
            raise ValueError(f"{source}: tensor '{name}' has data_offsets {[begin, end]} that do not match "
                             f"its shape {list(shape)} and dtype {info['dtype']} or the previous tensor")
        if end > len(data):
            raise ValueError(f"{source}: truncated: tensor '{name}' ends at byte {end} "
                             f"of a {len(data)}-byte data section")
        arrays[name] = np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        expected_begin = end
    if expected_begin != len(data):
        raise ValueError(f"{source}: {len(data) - expected_begin} bytes after the last tensor")
    ordered = OrderedDict((name, arrays[name]) for name in header)  # the file's key order
    return ordered, metadata
