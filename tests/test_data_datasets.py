"""Real datasets: MNIST / Fashion-MNIST from /shared data, IDX validation, file search, CIFAR-10."""

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import tarfile
import tracemalloc

import numpy as np
import pytest

import npcnn
from npcnn.data import CorruptFileError, DatasetNotFoundError, cifar10, datasets, fashion_mnist, mnist
from npcnn.data.cifar import SafeUnpickler, load_pickle, read_bin_batch, write_bin_batch, write_py_batch
from npcnn.data.idx import read_idx, write_idx

SHARED = pathlib.Path(os.environ.get("NPCNN_DATA", "/nonexistent").split(os.pathsep)[0])
needs_mnist = pytest.mark.skipif(not (SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz").is_file(),
                                 reason="real MNIST files not found (set NPCNN_DATA or provide ../shared/data)")
needs_fashion = pytest.mark.skipif(not (SHARED / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz").is_file(),
                                   reason="real Fashion-MNIST files not found (set NPCNN_DATA)")

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def no_env(monkeypatch, tmp_path):
    """No NPCNN_DATA and an empty user cache: only ``root=`` is searched."""
    monkeypatch.delenv("NPCNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _fake_mnist(folder, n_train=12, n_test=7, seed=0):
    """Tiny IDX files with MNIST's names; returns the (images, labels) of the test split."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
        out[prefix] = images, labels
    return out


# ----------------------------------------------------------------------------- real MNIST / Fashion


@needs_mnist
def test_mnist_real_shapes_dtypes_and_label_counts():
    train, test = mnist(train=True), mnist(train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.images.dtype == np.uint8 and train.labels.dtype == np.int64
    assert np.bincount(train.labels).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(test.labels).tolist() == MNIST_TEST_COUNTS
    assert train.classes == [str(d) for d in range(10)] and len(train) == 60000
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.images.flags.writeable and train.images.flags.c_contiguous
    x, y = test[np.array([0, 5])]
    assert x.shape == (2, 1, 28, 28) and y.tolist() == test.labels[[0, 5]].tolist()
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known first test digits


@needs_mnist
def test_mnist_normalize_gives_default_float_in_unit_range():
    raw = mnist(train=False)
    f32 = mnist(train=False, normalize=True)
    assert f32.images.dtype == np.float32
    np.testing.assert_allclose(f32.images, raw.images / np.float32(255), rtol=1e-6)
    with npcnn.backend.default_dtype(np.float64):
        assert mnist(train=False, normalize=True).images.dtype == np.float64
    assert mnist(train=False, normalize=True, dtype=np.float64).images.max() == 1.0


@needs_mnist
@needs_fashion
@pytest.mark.parametrize("folder, table", [("mnist", datasets.MNIST_FILES),
                                           ("fashion-mnist", datasets.FASHION_MNIST_FILES)])
def test_shared_files_match_published_checksums(folder, table):
    for name, (sha256, md5) in table.items():
        data = (SHARED / folder / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == sha256, name
        assert hashlib.md5(data).hexdigest() == md5, name


@needs_fashion
def test_fashion_mnist_real_balanced_classes():
    train, test = fashion_mnist(train=True), fashion_mnist(train=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert np.bincount(train.labels).tolist() == [6000] * 10
    assert np.bincount(test.labels).tolist() == [1000] * 10
    assert train.classes[0] == "T-shirt/top" and train.classes[9] == "Ankle boot"
    assert not np.array_equal(test.images[:100], mnist(train=False).images[:100])


@needs_mnist
def test_mnist_load_holds_at_most_about_two_copies():
    """uint8: decompressed straight into the result (one copy); float: + one float array."""
    tracemalloc.start()
    try:
        raw = mnist(train=True)
        _, peak_raw = tracemalloc.get_traced_memory()
        del raw
        tracemalloc.reset_peak()
        tracemalloc.clear_traces()
        f = mnist(train=True, normalize=True)
        _, peak_float = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    n_bytes = 60000 * 28 * 28
    assert peak_raw < 1.2 * n_bytes, peak_raw
    assert peak_float < f.images.nbytes + 1.2 * n_bytes, peak_float


# ----------------------------------------------------------------------------- IDX validation


def test_idx_roundtrip_plain_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 5, dtype=np.uint8).reshape(2, 3, 5)
    write_idx(tmp_path / "a.gz", a)
    write_idx(tmp_path / "a.idx", a, compress=False)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.idx", expected_shape=(None, 3, 5)), a)


def _damaged_copies(src, tmp_path):
    data = src.read_bytes()
    raw = gzip.decompress(data)
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    return {
        "truncated.gz": data[: len(data) // 2],
        "flipped.gz": bytes(flipped),
        "short-payload.gz": gzip.compress(raw[:-10]),
        "trailing.gz": gzip.compress(raw + b"\x00" * 3),
        "bad-magic.gz": gzip.compress(b"\x00\x00\x0d\x03" + raw[4:]),
        "empty.gz": gzip.compress(b""),
    }


@pytest.mark.parametrize("kind", ["truncated.gz", "flipped.gz", "short-payload.gz", "trailing.gz", "bad-magic.gz",
                                  "empty.gz"])
def test_corrupt_idx_files_raise_clear_error_naming_the_file(tmp_path, kind):
    images = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "good.gz", images)
    path = tmp_path / kind
    path.write_bytes(_damaged_copies(tmp_path / "good.gz", tmp_path)[kind])
    with pytest.raises(CorruptFileError, match=kind.replace(".", r"\.")):
        read_idx(path, expected_shape=(50, 28, 28))


@needs_mnist
def test_truncated_real_mnist_file_is_reported(tmp_path, no_env):
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("t10k-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        data = (SHARED / "mnist" / name).read_bytes()
        (folder / name).write_bytes(data if "labels" in name else data[:-5000])
    with pytest.raises(CorruptFileError, match="t10k-images-idx3-ubyte.gz") as info:
        mnist(root=tmp_path, train=False, download=False)
    assert "truncated" in str(info.value)


def test_wrong_count_in_header_is_rejected(tmp_path, no_env):
    _fake_mnist(tmp_path)  # 7 test labels, but MNIST's test split has 10000
    with pytest.raises(CorruptFileError, match=r"dimensions \(7,\), expected \(10000,\)"):
        mnist(root=tmp_path, train=False, download=False)


# ----------------------------------------------------------------------------- where files are found


def _patch_sizes(monkeypatch):
    """Let the tiny fixtures pass the size checks (12 train / 7 test images)."""
    real = datasets.read_idx

    def read(path, expected_shape=None):
        return real(path, expected_shape=None)

    monkeypatch.setattr(datasets, "read_idx", read)


@pytest.mark.parametrize("layout", ["subfolder", "flat", "uncompressed"])
def test_root_layouts(tmp_path, no_env, monkeypatch, layout):
    _patch_sizes(monkeypatch)
    folder = tmp_path / "mnist" if layout == "subfolder" else tmp_path
    test_images, test_labels = _fake_mnist(folder)["t10k"]
    if layout == "uncompressed":
        for gz in folder.glob("*.gz"):
            gz.with_suffix("").write_bytes(gzip.decompress(gz.read_bytes()))
            gz.unlink()
    ds = mnist(root=tmp_path, train=False, download=False)
    np.testing.assert_array_equal(ds.images[:, 0], test_images)
    np.testing.assert_array_equal(ds.labels, test_labels)
    assert ds.labels.dtype == np.int64


def test_search_order_env_then_cache(tmp_path, monkeypatch):
    _patch_sizes(monkeypatch)
    env, cache = tmp_path / "env", tmp_path / "cache"
    from_cache = _fake_mnist(cache / "npcnn" / "mnist", seed=1)["t10k"][1]
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.setenv("NPCNN_DATA", str(tmp_path / "nothing-here") + os.pathsep + str(env))
    np.testing.assert_array_equal(mnist(train=False, download=False).labels, from_cache)
    from_env = _fake_mnist(env / "mnist", seed=2)["t10k"][1]
    np.testing.assert_array_equal(mnist(train=False, download=False).labels, from_env)


def test_missing_files_error_says_where_and_how(tmp_path, no_env):
    with pytest.raises(DatasetNotFoundError) as info:
        mnist(root=tmp_path / "nowhere", train=False, download=False)
    msg = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in msg and str(tmp_path / "nowhere" / "mnist") in msg
    assert "NPCNN_DATA" in msg and "download=True" in msg and "ossci-datasets" in msg


def test_offline_download_failure_is_a_clear_error(tmp_path, no_env, monkeypatch):
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [(tmp_path / "no-mirror").as_uri() + "/"])
    with pytest.raises(DatasetNotFoundError, match="every mirror failed") as info:
        mnist(root=tmp_path / "data", train=False)
    assert "no-mirror" in str(info.value) and "Looked in" in str(info.value)
    assert not list((tmp_path / "data").rglob("*.part"))


def test_download_from_mirror_verifies_and_caches(tmp_path, no_env, monkeypatch, capsys):
    _patch_sizes(monkeypatch)
    mirror = tmp_path / "mirror"
    test_images, _ = _fake_mnist(mirror)["t10k"]
    table = {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), hashlib.md5(p.read_bytes()).hexdigest())
             for p in mirror.iterdir()}
    monkeypatch.setattr(datasets, "MNIST_FILES", table)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", ["file:///definitely/not/here/", mirror.as_uri() + "/"])
    ds = mnist(train=False)  # no root: downloads into the user cache
    np.testing.assert_array_equal(ds.images[:, 0], test_images)
    cached = tmp_path / "cache" / "npcnn" / "mnist" / "t10k-images-idx3-ubyte.gz"
    assert cached.read_bytes() == (mirror / cached.name).read_bytes()
    assert "t10k-images-idx3-ubyte.gz" in capsys.readouterr().err  # the progress bar


# ----------------------------------------------------------------------------- CIFAR-10

LABEL_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _cifar_arrays(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8), rng.integers(0, 10, n)


def _write_cifar_py(folder, sizes=(3, 2, 4, 1, 2), n_test=5):
    """The exact CIFAR-10 python layout, written here with pickle (protocol 2, bytes keys)."""
    folder.mkdir(parents=True)
    batches = {}
    for i, n in enumerate(sizes, start=1):
        batches[f"data_batch_{i}"] = _cifar_arrays(n, i)
    batches["test_batch"] = _cifar_arrays(n_test, 99)
    for name, (images, labels) in batches.items():
        d = {b"batch_label": f"batch {name}".encode(), b"labels": [int(v) for v in labels],
             b"data": images.reshape(len(images), 3072), b"filenames": [b"x.png"] * len(images)}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    meta = {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in LABEL_NAMES], b"num_vis": 3072}
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return batches


def test_cifar10_python_batches(tmp_path, no_env):
    batches = _write_cifar_py(tmp_path / "cifar-10-batches-py")
    train, test = cifar10(root=tmp_path, download=False), cifar10(root=tmp_path, train=False, download=False)
    assert train.images.shape == (12, 3, 32, 32) and train.images.dtype == np.uint8
    assert test.images.shape == (5, 3, 32, 32) and test.labels.dtype == np.int64
    want = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    np.testing.assert_array_equal(train.images, want)
    np.testing.assert_array_equal(test.labels, batches["test_batch"][1])
    # channel-major planes: the first 1024 bytes of a record are the red plane
    flat = pickle.load(open(tmp_path / "cifar-10-batches-py" / "test_batch", "rb"), encoding="bytes")[b"data"]
    np.testing.assert_array_equal(test.images[:, 0].reshape(5, -1), flat[:, :1024])
    assert train.classes == LABEL_NAMES
    f = cifar10(root=tmp_path, train=False, normalize=True, download=False)
    assert f.images.dtype == np.float32 and 0 <= f.images.min() and f.images.max() <= 1


def test_cifar10_dataset_subfolder_and_binary_version(tmp_path, no_env):
    folder = tmp_path / "cifar10" / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    arrays = {name: _cifar_arrays(3, k) for k, name in enumerate([f"data_batch_{i}" for i in range(1, 6)]
                                                                  + ["test_batch"])}
    for name, (images, labels) in arrays.items():
        write_bin_batch(folder / f"{name}.bin", images, labels)
    (folder / "batches.meta.txt").write_text("\n".join(LABEL_NAMES) + "\n\n")
    test = cifar10(root=tmp_path, train=False, download=False)
    np.testing.assert_array_equal(test.images, arrays["test_batch"][0])
    np.testing.assert_array_equal(test.labels, arrays["test_batch"][1])
    assert len(cifar10(root=tmp_path, download=False)) == 15 and test.classes == LABEL_NAMES
    # the record layout: 1 label byte, then 3072 pixel bytes
    raw = np.fromfile(folder / "test_batch.bin", np.uint8).reshape(3, 3073)
    assert raw[:, 0].tolist() == arrays["test_batch"][1].tolist()
    (folder / "cut.bin").write_bytes((folder / "test_batch.bin").read_bytes()[:-1])
    with pytest.raises(CorruptFileError, match="cut.bin"):
        read_bin_batch(folder / "cut.bin")


def test_cifar10_archive_is_extracted_and_downloaded(tmp_path, no_env, monkeypatch):
    src = tmp_path / "src"
    batches = _write_cifar_py(src / "cifar-10-batches-py")
    archive = tmp_path / "mirror" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        evil = tarfile.TarInfo("../escaped")  # a path outside the folder must be ignored
        evil.size = 3
        tar.addfile(evil, io.BytesIO(b"bad"))
    monkeypatch.setattr(datasets, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(datasets, "CIFAR10_MD5", hashlib.md5(archive.read_bytes()).hexdigest())
    root = tmp_path / "root"
    test = cifar10(root=root, train=False)
    np.testing.assert_array_equal(test.images, batches["test_batch"][0])
    assert (root / "cifar-10" / "cifar-10-batches-py" / "test_batch").is_file()
    assert not (tmp_path / "escaped").exists() and not (root / "escaped").exists()
    monkeypatch.setattr(datasets, "CIFAR10_MD5", "0" * 32)  # a wrong checksum: refused, nothing kept
    with pytest.raises(DatasetNotFoundError, match="checksum mismatch"):
        cifar10(root=tmp_path / "other", train=False)
    assert not (tmp_path / "other" / "cifar-10" / "cifar-10-python.tar.gz").exists()


def test_cifar10_missing_is_a_clear_error(tmp_path, no_env):
    with pytest.raises(DatasetNotFoundError, match="cifar-10-python.tar.gz") as info:
        cifar10(root=tmp_path, download=False)
    assert "cs.toronto.edu" in str(info.value)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "numpy.load"])
def test_malicious_pickle_is_refused(tmp_path, no_env, payload):
    marker = tmp_path / "pwned"
    if payload == "os.system":
        obj = {b"data": _Evil(marker), b"labels": [0]}
    elif payload == "builtins.eval":
        obj = {b"data": type("E", (), {"__reduce__": lambda self: (eval, (f"open({str(marker)!r}, 'w')",))})()}
    else:
        obj = {b"data": type("L", (), {"__reduce__": lambda self: (np.load, (str(marker),))})()}
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump(obj, f, protocol=2)
    # protocol 2 writes Python 2 module names (posix.system, __builtin__.eval): match the function
    with pytest.raises(CorruptFileError, match=r"refusing to load global \S+\." + payload.split(".")[1]):
        cifar10(root=tmp_path, download=False)
    assert not marker.exists()


def test_safe_unpickler_accepts_arrays_and_rejects_bad_contents(tmp_path):
    arr = np.arange(6, dtype=np.float64).reshape(2, 3)
    out = SafeUnpickler(io.BytesIO(pickle.dumps({"a": arr, b"b": [1, 2]}, protocol=2)), encoding="bytes").load()
    np.testing.assert_array_equal(out["a"], arr)
    path = tmp_path / "batch"
    write_py_batch(path, np.zeros((2, 3, 32, 32), np.uint8), [1, 2])
    assert load_pickle(path)[b"labels"] == [1, 2]
    with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f, protocol=2)
    with pytest.raises(CorruptFileError, match=r"expected uint8 \(n, 3072\)"):
        datasets.cifar.read_py_batch(path)
    with open(path, "wb") as f:
        pickle.dump([1, 2, 3], f, protocol=2)
    with pytest.raises(CorruptFileError, match="expected a dict"):
        load_pickle(path)
    path.write_bytes(b"\x80\x02}q\x00")  # truncated pickle
    with pytest.raises(CorruptFileError, match="not a valid CIFAR-10 pickle"):
        load_pickle(path)
