"""Reader of IDX files (the format of MNIST and Fashion-MNIST), gzip-compressed or plain.

Layout: a big-endian header ``0x00 0x00 <type> <ndim>`` followed by ``ndim`` uint32 sizes, then
the values in row-major order. Only type 0x08 (uint8) is used by these datasets.

The file is decompressed straight into the one NumPy array that is returned (1 MiB at a time
into a preallocated buffer), so loading holds a single copy of the data in memory.
"""

import gzip
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


def read_idx(path, expected_shape=None):
    """The array stored in the IDX file ``path`` (uint8, writable, C-contiguous).

    ``expected_shape`` (a tuple, ``None`` entries meaning "any") is checked against the header.
    Any truncation, gzip/CRC damage, wrong magic number, size mismatch or trailing data raises
    :class:`CorruptFileError` naming the file.
    """
    try:
        with _open(path) as f:
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
