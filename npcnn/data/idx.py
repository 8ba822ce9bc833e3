"""Reader of IDX files (the format of MNIST and Fashion-MNIST), gzip-compressed or plain.

Layout: a big-endian header ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` uint32 sizes, then
the values in row-major order. Only type 0x08 (uint8) is used by these datasets.

The file is decompressed straight into the one NumPy array that is returned (1 MiB at a time
into a preallocated buffer), so loading holds a single copy of the data in memory.
"""

import gzip
import math
import os
import struct
import zlib

import numpy as np

_UINT8 = 0x08
_CHUNK = 1 << 20


class CorruptFileError(ValueError):
    """A dataset file is truncated, damaged or not in the expected format."""


def _open(path):
    with open(path, "rb") as f:
        compressed = f.read(2) == b"\x1f\x8b"  # gzip magic
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_exactly(f, buffer, path):
    """Fill ``buffer`` (a writable uint8 array) from ``f`` in chunks; error if ``f`` ends early."""
    view, pos, n = memoryview(buffer).cast("B"), 0, buffer.nbytes
    while pos < n:
        got = f.readinto(view[pos:min(pos + _CHUNK, n)])
        if not got:
            raise CorruptFileError(f"{path}: truncated: expected {n} data bytes after the header, got {pos}")
        pos += got


# Deflate cannot compress better than about 1032:1 (each 258-byte match costs at least 2 bits),
# so a gzip file of c bytes holds at most this many times c bytes.
_MAX_DEFLATE_RATIO = 1032


def _check_path(path):
    """``path`` as an existing regular file, or a clear error naming it."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"read_idx: path must be a str or os.PathLike, got {type(path).__name__}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_idx: {path}: no such file" if not os.path.exists(path)
                                else f"read_idx: {path}: not a regular file")
    return path


def _check_size(path, shape, header_bytes, compressed):
    """Refuse a header whose data cannot be in the file, before allocating anything."""
    need = math.prod(shape)  # a Python int: no overflow for 2**64 and more
    size = os.path.getsize(path)
    limit = size * _MAX_DEFLATE_RATIO if compressed else size - header_bytes
    if need > limit:
        what = f"a {size}-byte gzip file can hold at most {limit} bytes" if compressed else \
            f"the file has {max(limit, 0)} data bytes after the header"
        raise CorruptFileError(f"{path}: the IDX header's size fields {shape} announce {need} bytes of data, but "
                               f"{what} (corrupt header or truncated file)")


def read_idx(path, expected_shape=None):
    """The array stored in the IDX file ``path`` (uint8, writable, C-contiguous).

    Args:
        path: an IDX file, gzip-compressed (recognized by its magic bytes) or plain.
        expected_shape: ``None``, or a tuple checked against the header's sizes (``None``
            entries meaning "any").

    Any truncation, gzip/CRC damage, wrong magic number, size mismatch or trailing data raises
    :class:`CorruptFileError` naming the file; a header announcing more data than the file can
    hold (for gzip: more than deflate's maximum ratio of the compressed size) is refused before
    anything is allocated.
    """
    path = _check_path(path)
    try:
        with _open(path) as f:
            compressed = isinstance(f, gzip.GzipFile)
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\x00\x00" or magic[2] != _UINT8 or not 1 <= magic[3] <= 4:
                raise CorruptFileError(f"{path}: not a uint8 IDX file (magic bytes {magic.hex() or 'missing'}, "
                                       f"expected 000008 followed by the number of dimensions)")
            ndim = magic[3]
            header = f.read(4 * ndim)
            if len(header) < 4 * ndim:
                raise CorruptFileError(f"{path}: truncated IDX header")
            shape = struct.unpack(f">{ndim}I", header)
            if expected_shape is not None and (
                len(shape) != len(expected_shape)
                or any(e is not None and e != s for s, e in zip(shape, expected_shape))
            ):
                raise CorruptFileError(f"{path}: IDX dimensions {shape}, expected {expected_shape}")
            _check_size(path, shape, 4 + 4 * ndim, compressed)
            data = np.empty(shape, dtype=np.uint8)
            _read_exactly(f, data, path)
            if f.read(1):
                raise CorruptFileError(f"{path}: trailing data after the {data.nbytes} bytes its header announces")
    except (EOFError, gzip.BadGzipFile, zlib.error) as err:  # truncated or damaged gzip stream
        raise CorruptFileError(f"{path}: damaged or truncated gzip data ({err})") from None
    return data


def write_idx(path, array, compress=True):
    """Write a uint8 array as an IDX file (gzip-compressed when ``compress``); used by tests."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _UINT8, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with (gzip.open(path, "wb") if compress else open(path, "wb")) as f:
        f.write(header + array.tobytes())
