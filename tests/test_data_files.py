"""Dataset files that lie: IDX headers announcing absurd sizes, truncated files, CIFAR pickles
written by NumPy 2 with protocol 5 (accepted) and hostile ones (refused)."""

import gzip
import os
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

from npcnn.data import CorruptFileError, cifar10
from npcnn.data.cifar import load_pickle, read_py_batch, write_py_meta
from npcnn.data.idx import read_idx, write_idx


def _idx_header(shape):
    return bytes([0, 0, 8, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


@pytest.mark.parametrize("shape, label", [((16, 1024, 1024, 1024), "16 GiB"), ((65535, 65535, 65535, 65535), "2^64"),
                                          ((4294967295,) * 4, "2^128")])
@pytest.mark.parametrize("compress", [False, True])
def test_idx_header_claiming_absurd_sizes_is_refused_before_allocating(tmp_path, shape, label, compress):
    path = tmp_path / ("huge.idx.gz" if compress else "huge.idx")
    payload = _idx_header(shape) + bytes(1000)
    path.write_bytes(gzip.compress(payload) if compress else payload)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFileError, match=r"huge\.idx.*size fields .* announce \d+ bytes") as info:
            read_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10 * 2**20, f"{label}: {peak} bytes allocated before refusing"
    assert ("gzip file can hold at most" in str(info.value)) == compress


def test_idx_plain_file_truncated_or_padded(tmp_path):
    a = np.arange(5 * 7, dtype=np.uint8).reshape(5, 7)
    write_idx(tmp_path / "a.idx", a, compress=False)
    data = (tmp_path / "a.idx").read_bytes()
    (tmp_path / "short.idx").write_bytes(data[:-3])
    with pytest.raises(CorruptFileError, match=r"short\.idx: .* announce 35 bytes .* 32 data bytes"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "header-only.idx").write_bytes(data[:6])
    with pytest.raises(CorruptFileError, match=r"header-only\.idx: truncated IDX header"):
        read_idx(tmp_path / "header-only.idx")
    (tmp_path / "long.idx").write_bytes(data + b"\x00")
    with pytest.raises(CorruptFileError, match=r"long\.idx: trailing data"):
        read_idx(tmp_path / "long.idx")
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx"), a)


def test_idx_gzip_truncated_inside_the_stream(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (20, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "a.gz", a)
    data = (tmp_path / "a.gz").read_bytes()
    for cut in (12, len(data) // 3, len(data) - 4):
        (tmp_path / "cut.gz").write_bytes(data[:cut])
        with pytest.raises(CorruptFileError, match=r"cut\.gz"):
            read_idx(tmp_path / "cut.gz")


def test_read_idx_bad_paths(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"read_idx: .*nothing\.idx: no such file"):
        read_idx(tmp_path / "nothing.idx")
    with pytest.raises(FileNotFoundError, match="not a regular file"):
        read_idx(tmp_path)
    with pytest.raises(TypeError, match="read_idx: path must be a str"):
        read_idx(42)


def _cifar_folder(tmp_path, protocol, n=4):
    """A cifar-10-batches-py folder with tiny batches pickled with ``protocol`` (str keys when
    re-saved by Python 3, as a user's own conversion would write them)."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": images, "labels": [(k + j) % 10 for j in range(n)]}, f, protocol=protocol)
    write_py_meta(folder / "batches.meta", [f"c{i}" for i in range(10)])
    return folder


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_cifar_batches_pickled_by_numpy2_with_any_protocol_are_accepted(tmp_path, monkeypatch, protocol):
    monkeypatch.delenv("NPCNN_DATA", raising=False)
    folder = _cifar_folder(tmp_path, protocol)
    test = cifar10(root=tmp_path, train=False, download=False)
    with open(folder / "test_batch", "rb") as f:
        expected = pickle.load(f)["data"].reshape(-1, 3, 32, 32)
    np.testing.assert_array_equal(test.images, expected)
    assert test.classes[3] == "c3" and len(cifar10(root=tmp_path, download=False)) == 20


class _Reduce:
    def __init__(self, func, args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _write(path, obj, protocol=5):
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=protocol)


def test_hostile_protocol5_pickles_are_still_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "batch"
    _write(path, {b"data": _Reduce(os.system, (f"touch {marker}",)), b"labels": [0]})
    with pytest.raises(CorruptFileError, match=r"batch: refusing to load global \S+\.system"):
        read_py_batch(path)
    assert not marker.exists()
    frombuffer = np._core.numeric._frombuffer
    _write(path, {b"data": _Reduce(frombuffer, (bytearray(16), np.dtype(object), (2,), "C"))})
    with pytest.raises(CorruptFileError, match="not a plain numeric buffer"):
        load_pickle(path)
    _write(path, {b"data": _Reduce(frombuffer, (bytearray(3), np.dtype(np.uint8), (2**40,), "C"))})
    with pytest.raises(CorruptFileError, match="does not fit its 3-byte buffer"):
        load_pickle(path)
    _write(path, {b"data": _Reduce(frombuffer, (bytearray(3), np.dtype(np.uint8), "abc", "C"))})
    with pytest.raises(CorruptFileError, match="refusing an array reconstruction with shape"):
        load_pickle(path)
    with open(path, "wb") as f:  # out-of-band buffers: the data is not in the file
        pickle.Pickler(f, protocol=5, buffer_callback=lambda b: False).dump({b"data": np.zeros(3072, np.uint8)})
    with pytest.raises(CorruptFileError, match=r"batch"):
        load_pickle(path)


def test_cifar_meta_and_label_contents_are_checked(tmp_path, monkeypatch):
    monkeypatch.delenv("NPCNN_DATA", raising=False)
    folder = _cifar_folder(tmp_path, 2)
    write_py_meta(folder / "batches.meta", ["a", "b", "c"])
    with pytest.raises(CorruptFileError, match=r"batches\.meta names 3 classes, expected the 10"):
        cifar10(root=tmp_path, train=False, download=False)
    path = tmp_path / "bools"
    _write(path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [True, 2]}, protocol=2)
    with pytest.raises(CorruptFileError, match="list of ints in 0..9"):
        read_py_batch(path)
    _write(path, {b"data": np.zeros((2, 3072), np.uint8), b"labels": np.array([3, 4])}, protocol=5)
    assert read_py_batch(path)[1].tolist() == [3, 4]
    from npcnn.data.cifar import read_bin_meta
    (tmp_path / "meta.txt").write_bytes(b"\xff\xfe")
    with pytest.raises(CorruptFileError, match=r"meta\.txt: not an ASCII list"):
        read_bin_meta(tmp_path / "meta.txt")
