"""Saving and loading arrays: ``save(model_or_state_dict, path)`` and ``load(path) -> dict``.

The file format follows the suffix:

* ``.npz`` -- NumPy's zip of ``.npy`` files (one member ``<key>.npy`` per array), written and read
  here member by member, so any key round-trips (``"file"``, ``"allow_pickle"``, ``"a/b"``) and
  NumPy's own ``np.load`` reads the result;
* ``.safetensors`` -- the safetensors layout, written here with ``json`` and NumPy alone::

      8 bytes     N, the header length (unsigned 64-bit little-endian)
      N bytes     JSON: {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
                         "__metadata__": {"key": "value"}}   (padded with spaces to a multiple of 8)
      the rest    the tensors' raw little-endian C-order bytes; offsets count from here

Neither format can hold code, so loading a file never runs any: no pickle anywhere. A file that
is truncated, corrupt, of another kind (a ``torch.save`` file, a pickle, an ``.npy``) or that
holds object arrays is a :class:`FileFormatError` naming the file, the key or field, what is
wrong and what to do; every size a file claims is checked against the file's real size before
anything is allocated.

Writes are atomic: the bytes go to a temporary file ``.<name>.<pid>.<random>.tmp`` in the target's
directory, are flushed to disk (fsync), and only then renamed over the target (``os.replace``);
the file gets the permissions the umask gives (as ``open`` would), not the temporary file's 0600.
A crash mid-save leaves the previous file intact; a failed save removes its temporary file, and
one left by a killed process (its pid gone, older than a minute) is removed by the next save in
that folder.
"""

import contextlib
import json
import os
import re
import tempfile
import time
import zipfile
from collections import OrderedDict
from typing import IO, Any, Callable, Mapping, Optional, Union

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
PathLike = Union[str, "os.PathLike[str]"]
# deflate cannot compress better than about 1032:1, so a compressed member claiming more bytes
# than that ratio allows is lying about its size
_MAX_DEFLATE_RATIO = 1032
_STALE_SECONDS = 60        # a temp file whose writer is gone is removed once this old
_ABANDONED_SECONDS = 86400  # ... and any temp file of ours once this old (the pid may be reused)

TORCH_RECIPE = (
    "Convert it where PyTorch is installed: "
    "state = torch.load(path, map_location='cpu', weights_only=True); "
    "safetensors.torch.save_file({k: v.contiguous() for k, v in state.items()}, 'weights.safetensors') "
    "(README, 'Weight exchange with PyTorch'), then npcnn.load('weights.safetensors')"
)


class FileFormatError(ValueError):
    """A weights or checkpoint file that is truncated, corrupt, of another kind, or holds
    something npcnn never loads (pickled objects). The message names the file (and the key or
    field), says what is wrong and what to do."""


def save(obj: Any, path: PathLike, metadata: Optional[Mapping[str, str]] = None) -> None:
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


def load(path: PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read a file written by :func:`save` into an ordered ``{name: numpy array}`` dict.

    ``model.load_state_dict(npcnn.load(path))`` restores a model (moving arrays to the active
    backend and the parameters' dtype). Raises :class:`FileFormatError` for a file that is not
    what its suffix says (truncated, corrupt, a ``torch.save`` file, object arrays).
    """
    if _suffix(path) == ".npz":
        return read_npz(path)
    return read_safetensors_file(path)[0]


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
        if array.dtype.hasobject:
            raise TypeError(f"save: '{name}' is an object array; only numeric arrays can be saved")
        arrays[name] = array
    return arrays


# ----------------------------------------------------------------------------- atomic writes

_TEMP_NAME = re.compile(r"^\.(?P<target>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def atomic_write(path: PathLike, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(file)`` on a temporary file beside ``path``, fsync it, then rename it to ``path``.

    If ``write`` raises, the temporary file is removed and ``path`` is left as it was. The file
    gets the permissions ``open`` would give it (0666 less the umask). Temporary files left in
    the folder by killed saves are removed first (see :func:`remove_stale_temp_files`).
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{path}: the folder {directory} does not exist; create it first "
                                "(os.makedirs(folder, exist_ok=True))")
    remove_stale_temp_files(directory)
    prefix = f".{os.path.basename(path)}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # a file system without permissions keeps its own
            os.chmod(tmp, 0o666 & ~_current_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise
    _fsync_directory(directory)  # make the rename itself durable


def remove_stale_temp_files(directory: PathLike, now: Optional[float] = None) -> list:
    """Remove the temporary files of :func:`atomic_write` in ``directory`` that a killed save left.

    Only names of its own pattern (``.<name>.<pid>.<random>.tmp``) are touched, and only when
    the writing process is gone and the file is over a minute old, or the file is over a day old
    (a pid can be reused). Returns the paths removed.
    """
    now = time.time() if now is None else now
    removed: list = []
    try:
        names = os.listdir(directory)
    except OSError:
        return removed
    for name in names:
        match = _TEMP_NAME.match(name)
        if match is None:
            continue
        tmp = os.path.join(directory, name)
        with contextlib.suppress(OSError):
            age = now - os.stat(tmp).st_mtime
            if age > _ABANDONED_SECONDS or (age > _STALE_SECONDS and not _pid_alive(int(match["pid"]))):
                os.remove(tmp)
                removed.append(tmp)
    return removed


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: rely on the age
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _current_umask():
    """The process's umask, read without changing it where the system allows (Linux)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    # elsewhere the only way to read it is to set it; another thread creating a file in between
    # would get the temporary 022
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_directory(directory):
    with contextlib.suppress(OSError):  # not every platform can open a directory
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- .npz


def _write_npz(f, arrays):
    """Write ``{key: array}`` as an .npz (a zip of ``<key>.npy`` members) to the open file ``f``.

    The members are written one by one rather than through ``np.savez(**arrays)``, whose own
    keyword arguments (``file``, ``allow_pickle``) would swallow keys of those names.
    """
    with zipfile.ZipFile(f, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, array in arrays.items():
            with archive.open(key + ".npy", mode="w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.asanyarray(array), allow_pickle=False)


def read_npz(path: PathLike) -> "OrderedDict[str, np.ndarray]":
    """Read an .npz file into an ordered ``{key: numpy array}`` dict, never unpickling anything.

    Every member's header is read and checked before its data: object arrays are refused, and
    the bytes the header claims must fit what the zip holds (and the zip what the file holds),
    so a corrupt or hostile file is a :class:`FileFormatError`, never a huge allocation.
    """
    source = os.fspath(path)
    with open(source, "rb") as f:
        _refuse_foreign(f.read(8), source, "an .npz file")
        try:
            archive = zipfile.ZipFile(f)
        except (zipfile.BadZipFile, EOFError, OSError) as err:
            raise FileFormatError(f"{source}: not a readable .npz file -- truncated or corrupt ({err}). "
                                  "Save it again (or restore it from a backup).") from None
        with archive:
            names = archive.namelist()
            if any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
                raise FileFormatError(f"{source}: this is a PyTorch torch.save file (a zip holding data.pkl, "
                                      f"pickled Python objects), which npcnn never loads. {TORCH_RECIPE}.")
            file_size = os.fstat(f.fileno()).st_size
            arrays = OrderedDict()
            for info in archive.infolist():
                key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                arrays[key] = _read_npz_member(archive, info, key, file_size, source)
    return arrays


def _read_npz_member(archive, info, key, file_size, source):
    where = f"{source}: key '{key}'"
    if not info.filename.endswith(".npy"):
        raise FileFormatError(f"{where}: the member {info.filename!r} is not an .npy array; "
                              "this zip is not an .npz of arrays")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise FileFormatError(f"{where}: compressed with zip method {info.compress_type}; npcnn reads stored "
                              "or deflated members (numpy.savez / savez_compressed)")
    limit = file_size if info.compress_type == zipfile.ZIP_STORED else _MAX_DEFLATE_RATIO * max(info.compress_size, 1)
    if info.file_size > limit or info.compress_size > file_size:
        raise FileFormatError(f"{where}: the zip entry claims {info.file_size:,} bytes but the file has only "
                              f"{file_size:,}: truncated or corrupt; save it again")
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version not in _NPY_HEADER_READERS:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, fortran, dtype = _NPY_HEADER_READERS[version](member)
            if dtype.hasobject:
                raise FileFormatError(f"{where}: holds an object array (dtype {dtype}, pickled Python objects), "
                                      "which npcnn never loads; save plain numeric arrays instead "
                                      "(e.g. convert each value with numpy.asarray(value, dtype=float))")
            count = 1
            for s in shape:
                count *= int(s)
            needed = count * dtype.itemsize
            if needed > info.file_size:
                raise FileFormatError(f"{where}: the header claims shape {list(shape)} of {dtype} "
                                      f"({needed:,} bytes) but the member holds {info.file_size:,} bytes: "
                                      "truncated or corrupt; save it again")
            array = np.empty(count, dtype=dtype)
            _read_into(member, array.view(np.uint8), where)
    except FileFormatError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, SyntaxError) as err:
        raise FileFormatError(f"{where}: unreadable -- truncated or corrupt ({err}); save it again") from None
    if not dtype.isnative:  # e.g. '>f4' written on a big-endian machine: native order, same values
        array = array.byteswap().view(dtype.newbyteorder("="))
    return array.reshape(shape, order="F" if fortran else "C")


_READ_CHUNK = 1 << 22


def _read_into(member, buffer, where):
    """Fill the uint8 array ``buffer`` from the open zip member, 4 MB at a time (a single
    ``read`` would hold the whole array twice: its bytes and the array)."""
    done = 0
    while done < buffer.size:
        chunk = member.read(min(_READ_CHUNK, buffer.size - done))
        if not chunk:
            raise FileFormatError(f"{where}: truncated: {done:,} of {buffer.size:,} bytes; save it again")
        buffer[done:done + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
        done += len(chunk)


_NPY_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _refuse_foreign(head, source, expected):
    """A clear error for a file of another kind than ``expected`` (judged by its first bytes)."""
    if head[:1] == b"\x80":
        raise FileFormatError(f"{source}: this is a Python pickle (e.g. torch.save's legacy format), not "
                              f"{expected}; npcnn never loads pickles. {TORCH_RECIPE}.")
    if head[:6] == b"\x93NUMPY":
        raise FileFormatError(f"{source}: this is a single-array .npy file, not {expected}; "
                              "save a {name: array} dict with npcnn.save (or numpy.savez)")
    if expected.startswith("a .safetensors") and head[:4] == b"PK\x03\x04":
        raise FileFormatError(f"{source}: this is a zip file (a torch.save file or an .npz), not {expected}; "
                              f"rename an .npz to .npz. If it is a torch.save file: {TORCH_RECIPE}.")
    if expected.startswith("an .npz") and head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):
        raise FileFormatError(f"{source}: not an .npz file (it does not start as a zip archive); "
                              "write it with npcnn.save(state, 'file.npz') or numpy.savez")


# ----------------------------------------------------------------------------- safetensors


def write_safetensors(f: IO[bytes], arrays: Mapping[str, np.ndarray],
                      metadata: Optional[Mapping[str, str]] = None) -> None:
    """Write ``{name: numpy array}`` to the open binary file ``f`` in the safetensors layout."""
    header: dict = {}
    offset = 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    codes = {}
    for name, array in arrays.items():
        if name == "__metadata__":
            raise ValueError("save: '__metadata__' is reserved in safetensors files")
        code = _ST_CODES.get((array.dtype.kind, array.dtype.itemsize))
        if code is None:
            raise TypeError(f"save: '{name}' has dtype {array.dtype}, which safetensors cannot hold")
        size = array.size * np.dtype(_ST_DTYPES[code]).itemsize
        header[name] = {"dtype": code, "shape": list(array.shape), "data_offsets": [offset, offset + size]}
        codes[name] = code
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # pad so the data starts 8-byte aligned
    f.write(len(text).to_bytes(8, "little"))
    f.write(text)
    for name, array in arrays.items():  # one array at a time: never a second copy of them all
        data = np.ascontiguousarray(array, dtype=_ST_DTYPES[codes[name]])
        f.write(data.reshape(-1).view(np.uint8).data)


def read_safetensors(buffer: bytes, source: str = "safetensors data") -> tuple:
    """Parse safetensors bytes into (ordered ``{name: numpy array}``, metadata dict).

    Every header entry and offset is checked: tensors must tile the data section exactly, with
    sizes that match their shapes and dtypes, so a truncated or corrupt file is a
    :class:`FileFormatError` naming the tensor and field, never garbage or a huge allocation.
    """
    n = _st_header_length(buffer[:8], len(buffer), source)
    entries, metadata, order = _st_layout(buffer[8:8 + n], len(buffer) - 8 - n, source)
    data = memoryview(buffer)[8 + n:]
    arrays = {name: np.frombuffer(data[begin:end], dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
              for name, (dtype, shape, begin, end) in entries}
    return OrderedDict((name, arrays[name]) for name in order), metadata


def read_safetensors_file(path: PathLike) -> tuple:
    """:func:`read_safetensors` of a file, reading each tensor straight into its array (the file's
    bytes are never held in memory beside the arrays)."""
    source = os.fspath(path)
    with open(source, "rb") as f:
        head = f.read(8)
        _refuse_foreign(head, source, "a .safetensors file")
        size = os.fstat(f.fileno()).st_size
        n = _st_header_length(head, size, source)
        entries, metadata, order = _st_layout(f.read(n), size - 8 - n, source)
        arrays = {}
        for name, (dtype, shape, begin, end) in entries:
            array = np.empty(end - begin, dtype=np.uint8)
            f.seek(8 + n + begin)
            if f.readinto(array.data) != array.size:
                raise FileFormatError(f"{source}: truncated while reading tensor '{name}'")
            arrays[name] = array.view(dtype).reshape(shape)
            if not dtype.isnative:
                arrays[name] = arrays[name].byteswap().view(dtype.newbyteorder("="))
    return OrderedDict((name, arrays[name]) for name in order), metadata


def _st_header_length(head, size, source):
    """The header length N from the first 8 bytes, checked against the file size."""
    if size < 8 or len(head) < 8:
        raise FileFormatError(f"{source}: too short to be a safetensors file ({size} bytes)")
    n = int.from_bytes(head[:8], "little")
    if n > min(_MAX_HEADER, size - 8):
        raise FileFormatError(f"{source}: header length {n} does not fit the file ({size} bytes): "
                              "truncated or not a safetensors file")
    return n


def _st_layout(header_bytes, data_size, source):
    """([(name, (dtype, shape, begin, end))] in data order, metadata, the file's key order) of a
    header, every entry checked and the tensors tiling the ``data_size`` bytes exactly."""
    try:
        header = json.loads(bytes(header_bytes).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise FileFormatError(f"{source}: the safetensors header is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise FileFormatError(f"{source}: the safetensors header must be a JSON object, "
                              f"got {type(header).__name__}")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise FileFormatError(f"{source}: '__metadata__' must be a JSON object of strings")
    entries = sorted(((name, _st_entry(name, info, source)) for name, info in header.items()),
                     key=lambda item: item[1][2])
    expected_begin = 0
    for name, (dtype, shape, begin, end) in entries:
        count = 1
        for s in shape:
            count *= s  # Python ints: no overflow however large the claim
        if begin != expected_begin or end - begin != count * dtype.itemsize:
            raise FileFormatError(f"{source}: tensor '{name}' has data_offsets {[begin, end]} that do not match "
                                  f"its shape {list(shape)} and dtype {dtype} or the previous tensor "
                                  "(corrupt header)")
        if end > data_size:
            raise FileFormatError(f"{source}: truncated: tensor '{name}' ends at byte {end:,} "
                                  f"of a {data_size:,}-byte data section")
        expected_begin = end
    if expected_begin != data_size:
        raise FileFormatError(f"{source}: {data_size - expected_begin} bytes after the last tensor "
                              "(corrupt or not written by a safetensors writer)")
    return entries, metadata, list(header)


def _st_entry(name, info, source):
    """(dtype, shape, begin, end) of one header entry, each field checked."""
    where = f"{source}: tensor '{name}'"
    if not isinstance(info, dict):
        raise FileFormatError(f"{where}: the header entry must be a JSON object with dtype, shape and "
                              f"data_offsets, got {type(info).__name__}")
    for field in ("dtype", "shape", "data_offsets"):
        if field not in info:
            raise FileFormatError(f"{where}: the header entry lacks '{field}'")
    if info["dtype"] not in _ST_DTYPES:
        raise FileFormatError(f"{where}: unsupported dtype {info['dtype']!r}; npcnn reads {sorted(_ST_DTYPES)}")
    shape, offsets = info["shape"], info["data_offsets"]
    if not isinstance(shape, list) or not all(_is_count(s) for s in shape):
        raise FileFormatError(f"{where}: 'shape' must be a list of non-negative integers, got {shape!r}")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(v) for v in offsets):
        raise FileFormatError(f"{where}: 'data_offsets' must be [begin, end], two non-negative integers, "
                              f"got {offsets!r}")
    return np.dtype(_ST_DTYPES[info["dtype"]]), tuple(shape), offsets[0], offsets[1]


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
