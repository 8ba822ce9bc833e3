"""save/load for .npz and .safetensors: round trips, the byte layout, corrupt files, atomic writes."""

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import npcnn
from npcnn import nn, serialization


def _arrays():
    rng = np.random.default_rng(0)
    return {
        "features.0.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "features.0.bias": rng.standard_normal(4).astype(np.float32),
        "fc.weight": rng.standard_normal((2, 5)),                        # float64
        "bn.num_batches_tracked": np.array(7, dtype=np.int64),          # 0-d
        "half": rng.standard_normal(3).astype(np.float16),
        "mask": np.array([True, False, True]),
        "bytes": np.arange(5, dtype=np.uint8),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "strided": rng.standard_normal((4, 6)).astype(np.float32)[:, ::2],  # not contiguous
    }


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_round_trip_keeps_names_order_values_dtypes(tmp_path, suffix):
    arrays = _arrays()
    path = tmp_path / f"weights{suffix}"
    npcnn.save(arrays, path)
    loaded = npcnn.load(path)
    assert list(loaded) == list(arrays)
    for name, a in arrays.items():
        assert loaded[name].dtype == a.dtype and loaded[name].shape == a.shape, name
        np.testing.assert_array_equal(loaded[name], a)
    assert loaded["fc.weight"].flags.writeable


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_model_round_trip(tmp_path, suffix):
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    npcnn.save(model, tmp_path / f"m{suffix}")
    other = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    other.load_state_dict(npcnn.load(tmp_path / f"m{suffix}"))
    x = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(model(x), other(x))


def test_safetensors_byte_layout(tmp_path):
    path = tmp_path / "t.safetensors"
    a, b = np.array([[1.0, 2.0]], dtype=np.float32), np.array([3, 4, 5], dtype=np.int16)
    npcnn.save({"a": a, "b": b}, path, metadata={"framework": "npcnn"})
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0                       # data starts 8-byte aligned
    header = json.loads(raw[8:8 + n])
    assert header == {"__metadata__": {"framework": "npcnn"},
                      "a": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]},
                      "b": {"dtype": "I16", "shape": [3], "data_offsets": [8, 14]}}
    assert raw[8 + n:] == a.astype("<f4").tobytes() + b.astype("<i2").tobytes()
    _, metadata = serialization.read_safetensors(raw)
    assert metadata == {"framework": "npcnn"}


def test_safetensors_interoperates_with_the_reference_library(tmp_path):
    st = pytest.importorskip("safetensors.numpy", reason="the safetensors package is not installed")
    arrays = {k: v for k, v in _arrays().items() if k != "strided"}
    ours = tmp_path / "ours.safetensors"
    npcnn.save(arrays, ours)
    theirs_loaded = st.load_file(str(ours))
    for name, a in arrays.items():
        np.testing.assert_array_equal(theirs_loaded[name], a)
        assert theirs_loaded[name].dtype == a.dtype
    theirs = tmp_path / "theirs.safetensors"
    st.save_file(arrays, str(theirs))
    for name, a in npcnn.load(theirs).items():
        np.testing.assert_array_equal(a, arrays[name])


def test_corrupt_safetensors_files_are_clear_errors(tmp_path):
    path = tmp_path / "t.safetensors"
    npcnn.save({"a": np.arange(4, dtype=np.float32)}, path)
    raw = path.read_bytes()
    cases = {
        "truncated": raw[:-3],
        "too short": raw[:5],
        "header length": struct.pack("<Q", 10 ** 9) + raw[8:],
        "not valid JSON": raw[:8] + b"x" + raw[9:],
        "bytes after": raw + b"\0\0\0\0",
    }
    messages = {"truncated": "truncated|do not match", "too short": "too short", "header length": "header length",
                "not valid JSON": "not valid JSON", "bytes after": "bytes after"}
    for name, data in cases.items():
        bad = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        bad.write_bytes(data)
        with pytest.raises(ValueError, match=messages[name]):
            npcnn.load(bad)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown file type '.pt'"):
        npcnn.save({"a": np.zeros(1)}, tmp_path / "w.pt")
    with pytest.raises(TypeError, match="object array"):
        npcnn.save({"a": np.array([{"x": 1}], dtype=object)}, tmp_path / "w.npz")
    with pytest.raises(TypeError, match="cannot hold"):
        npcnn.save({"a": np.zeros(2, dtype=np.complex64)}, tmp_path / "w.safetensors")
    with pytest.raises(ValueError, match="metadata"):
        npcnn.save({"a": np.zeros(1)}, tmp_path / "w.npz", metadata={"k": "v"})


def test_loading_never_unpickles(tmp_path):
    """An .npz holding a pickled object is refused, not executed, and never told to allow pickles."""
    path = tmp_path / "evil.npz"
    np.savez(path, w=np.zeros(2), a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(serialization.FileFormatError) as info:
        npcnn.load(path)
    assert_clear(info.value, path, "key 'a'", "object array")


class _Boom(RuntimeError):
    pass


@pytest.mark.parametrize("suffix,writer", [(".npz", "_write_npz"), (".safetensors", "write_safetensors")])
def test_a_crash_during_save_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch, suffix, writer):
    path = tmp_path / f"weights{suffix}"
    old = {"w": np.arange(3, dtype=np.float32)}
    npcnn.save(old, path)
    before = path.read_bytes()
    real_writer = getattr(serialization, writer)

    def write_half_then_crash(f, arrays, *args):
        real_writer(f, arrays, *args)
        f.seek(f.tell() // 2)
        f.truncate()
        raise _Boom("disk full")

    monkeypatch.setattr(serialization, writer, write_half_then_crash)
    with pytest.raises(_Boom):
        npcnn.save({"w": np.zeros(1000, dtype=np.float32)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == [path.name]
    np.testing.assert_array_equal(npcnn.load(path)["w"], old["w"])


def test_atomic_write_replaces_the_file(tmp_path):
    path = tmp_path / "a.npz"
    npcnn.save({"w": np.zeros(2)}, path)
    npcnn.save({"w": np.ones(3)}, path)
    np.testing.assert_array_equal(npcnn.load(path)["w"], np.ones(3))
    assert os.listdir(tmp_path) == ["a.npz"]


# ----------------------------------------------------------------------------- corrupt, foreign, hostile files


def assert_clear(err, path, *words):
    """The error names the file and says what is wrong, and never suggests unpickling."""
    message = str(err)
    assert os.fspath(path) in message, message
    for word in words:
        assert word in message, (word, message)
    assert "allow_pickle" not in message and "unsafe" not in message, message


def _load_error(path):
    with pytest.raises(serialization.FileFormatError) as info:
        npcnn.load(path)
    return info.value


def test_truncated_npz_names_the_file(tmp_path):
    path = tmp_path / "w.npz"
    npcnn.save(_arrays(), path)
    raw = path.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 100):
        path.write_bytes(raw[:cut])
        assert_clear(_load_error(path), path, "truncated")


def test_a_file_that_is_not_an_npz(tmp_path):
    for name, data in [("text.npz", b"hello, this is not a zip file at all\\n"), ("empty.npz", b"")]:
        path = tmp_path / name
        path.write_bytes(data)
        assert_clear(_load_error(path), path, "not an .npz")
    npy = tmp_path / "one.npz"
    with open(npy, "wb") as f:
        np.save(f, np.zeros(3))
    assert_clear(_load_error(npy), npy, ".npy file", "npcnn.save")
    pickled = tmp_path / "p.npz"
    pickled.write_bytes(pickle.dumps({"w": [1.0, 2.0]}, protocol=2))
    assert_clear(_load_error(pickled), pickled, "pickle", "safetensors")


def _fake_torch_save(path):
    """The layout of a torch.save file: a zip whose members sit under '<name>/' with data.pkl."""
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("model/data.pkl", pickle.dumps({"weight": 1}))
        z.writestr("model/version", "3\\n")
        z.writestr("model/data/0", b"\\0" * 16)


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_a_torch_save_file_is_recognized_with_the_conversion_recipe(tmp_path, suffix):
    path = tmp_path / f"weights{suffix}"
    _fake_torch_save(path)
    assert_clear(_load_error(path), path, "torch.save", "safetensors.torch.save_file", "weights_only=True")


def test_a_real_torch_save_file_is_recognized(tmp_path):
    from conftest import torch_or_skip

    torch = torch_or_skip()
    path = tmp_path / "model.npz"
    torch.save(torch.nn.Linear(2, 3).state_dict(), path)
    assert_clear(_load_error(path), path, "torch.save", "safetensors.torch.save_file")


def _npz_with_member(path, name, header, data=b""):
    """An .npz whose member ``name`` has the .npy header ``header`` (a dict) and the bytes ``data``."""
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(member, header)
    member.write(data)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ok.npy", _npy_bytes(np.arange(3.0)))
        z.writestr(name, member.getvalue())


def _npy_bytes(array):
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


@pytest.mark.parametrize("shape", [(4 * 2 ** 30,), (2 ** 32, 2 ** 32)], ids=["16GiB", "2^64 elements"])
def test_npz_member_claiming_a_huge_array_is_checked_before_allocating(tmp_path, shape):
    path = tmp_path / "huge.npz"
    _npz_with_member(path, "big.npy", {"descr": "<f4", "fortran_order": False, "shape": shape}, b"\\0" * 64)
    err = _load_error(path)
    assert_clear(err, path, "key 'big'", "claims", f"{4 * np.prod(shape, dtype=object):,} bytes")


def test_npz_member_with_a_garbled_header(tmp_path):
    path = tmp_path / "g.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("w.npy", b"\\x93NUMPY\\x01\\x00\\x10\\x00{'descr': 'nonsense'   }\\n")
    assert_clear(_load_error(path), path, "key 'w'", "corrupt")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("notes.txt", b"hello")
    assert_clear(_load_error(path), path, "'notes.txt'", "not an .npy")


def test_npz_written_by_numpy_still_loads(tmp_path):
    path = tmp_path / "np.npz"
    a, b = np.arange(6.0).reshape(2, 3), np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3))
    np.savez(path, a=a, b=b, big=np.arange(4, dtype=">f4"))
    loaded = npcnn.load(path)
    np.testing.assert_array_equal(loaded["a"], a)
    np.testing.assert_array_equal(loaded["b"], b)
    np.testing.assert_array_equal(loaded["big"], np.arange(4))
    assert loaded["big"].dtype == np.float32 and loaded["big"].dtype.isnative
    np.savez_compressed(path, a=a)
    np.testing.assert_array_equal(npcnn.load(path)["a"], a)


def _safetensors_with_header(path, header, data=b""):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize("entry,words", [
    (5, ["must be a JSON object"]),
    ([1, 2], ["must be a JSON object"]),
    ({"dtype": "F32", "shape": [2]}, ["lacks 'data_offsets'"]),
    ({"shape": [2], "data_offsets": [0, 8]}, ["lacks 'dtype'"]),
    ({"dtype": "F32", "shape": [2], "data_offsets": [0, 4, 8]}, ["'data_offsets'", "two non-negative"]),
    ({"dtype": "F32", "shape": [2], "data_offsets": [-8, 0]}, ["'data_offsets'"]),
    ({"dtype": "F32", "shape": [2], "data_offsets": "0-8"}, ["'data_offsets'"]),
    ({"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}, ["'shape'", "non-negative"]),
    ({"dtype": "F32", "shape": [2.5], "data_offsets": [0, 8]}, ["'shape'"]),
    ({"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}, ["'shape'"]),
    ({"dtype": "F32", "shape": [2 ** 40, 2 ** 40], "data_offsets": [0, 8]}, ["do not match"]),
    ({"dtype": "F32", "shape": [2 ** 62], "data_offsets": [0, 2 ** 64]}, ["truncated"]),
    ({"dtype": "Q7", "shape": [2], "data_offsets": [0, 8]}, ["unsupported dtype"]),
], ids=lambda v: None)
def test_malformed_safetensors_entries_name_the_tensor_and_field(tmp_path, entry, words):
    path = tmp_path / "bad.safetensors"
    _safetensors_with_header(path, {"w": entry}, b"\\0" * 8)
    assert_clear(_load_error(path), path, "tensor 'w'", *words)


def test_safetensors_header_that_is_not_an_object(tmp_path):
    path = tmp_path / "bad.safetensors"
    _safetensors_with_header(path, [1, 2, 3])
    assert_clear(_load_error(path), path, "JSON object")
    _safetensors_with_header(path, {"__metadata__": [1]})
    assert_clear(_load_error(path), path, "__metadata__")


def test_corrupt_files_are_value_errors_for_old_callers(tmp_path):
    path = tmp_path / "t.npz"
    path.write_bytes(b"junk")
    with pytest.raises(ValueError):
        npcnn.load(path)


# ----------------------------------------------------------------------------- keys, permissions, temp files


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_any_key_round_trips(tmp_path, suffix):
    keys = ["allow_pickle", "file", "args", "kwds", "a/b/c", "x.npy", "", "é ü", "fix_imports", "mmap_mode"]
    arrays = {k: np.full(i + 1, i, dtype=np.float32) for i, k in enumerate(keys)}
    path = tmp_path / f"k{suffix}"
    npcnn.save(arrays, path)
    loaded = npcnn.load(path)
    assert list(loaded) == keys
    for k, a in arrays.items():
        np.testing.assert_array_equal(loaded[k], a)
    if suffix == ".npz":  # NumPy's reader sees the same keys
        with np.load(path, allow_pickle=False) as theirs:
            assert theirs.files == keys


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_saved_files_honour_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        npcnn.save({"w": np.zeros(2)}, tmp_path / "w.npz")
        npcnn.save({"w": np.zeros(2)}, tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    for name in ("w.npz", "w.safetensors"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_stray_temp_files_of_killed_saves_are_removed_by_the_next_save(tmp_path):
    dead, now = _dead_pid(), time.time()

    def touch(name, age):
        (tmp_path / name).write_bytes(b"partial")
        os.utime(tmp_path / name, (now - age, now - age))

    touch(f".last.npz.{dead}.k3j_x9.tmp", 120)         # writer gone, two minutes old: removed
    touch(f".best.npz.{dead}.ab12cd.tmp", 3 * 86400)   # any writer, days old: removed
    touch(f".last.npz.{dead}.zz11.tmp", 5)             # writer gone but just written (another host?): kept
    keep = [f".last.npz.{dead}.zz11.tmp",
            f".last.npz.{os.getpid()}.qq22.tmp",       # this process may still be writing it
            "notes.tmp", ".last.npz.tmp", "last.npz.123.abc.tmp"]  # not our pattern
    for name in keep[1:]:
        touch(name, 120)
    npcnn.save({"w": np.zeros(2)}, tmp_path / "other.npz")
    assert sorted(os.listdir(tmp_path)) == sorted(keep + ["other.npz"])


# ----------------------------------------------------------------------------- checkpoints


def _checkpoint(tmp_path):
    from npcnn import optim, train

    model = nn.Linear(3, 2)
    path = tmp_path / "last.npz"
    train.save_checkpoint(path, model, optim.Adam(model.parameters(), lr=0.1), epoch=3, extra={"ema": np.ones(2)})
    return path, model


def _rewrite_meta(path, meta_text):
    arrays = dict(npcnn.load(path))
    arrays["__meta__"] = np.array(meta_text)
    npcnn.save(arrays, path)


def test_truncated_or_foreign_checkpoint_names_the_file(tmp_path):
    from npcnn import train

    path, model = _checkpoint(tmp_path)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(serialization.FileFormatError) as info:
        train.load_checkpoint(path, model)
    assert_clear(info.value, path, "truncated")
    _fake_torch_save(path)
    with pytest.raises(serialization.FileFormatError) as info:
        train.load_checkpoint(path, model)
    assert_clear(info.value, path, "torch.save")
    npcnn.save(model, path)
    with pytest.raises(serialization.FileFormatError) as info:
        train.load_checkpoint(path, model)
    assert_clear(info.value, path, "not an npcnn checkpoint", "npcnn.load")


@pytest.mark.parametrize("meta,words", [
    ('{"format": "npcnn-checkpoint", "version": 1, "epo', ["'__meta__'", "not valid JSON"]),
    ("[1, 2]", ["'__meta__'", "JSON object"]),
    ('{"format": "npcnn-checkpoint", "version": 1}', ["'__meta__'", "epoch"]),
    ('{"format": "other", "version": 1}', ["unsupported checkpoint format 'other'"]),
])
def test_corrupt_checkpoint_meta_names_the_field(tmp_path, meta, words):
    from npcnn import train

    path, model = _checkpoint(tmp_path)
    _rewrite_meta(path, meta)
    with pytest.raises(serialization.FileFormatError) as info:
        train.load_checkpoint(path, model)
    assert_clear(info.value, path, *words)


def test_checkpoint_meta_pointing_at_a_missing_array(tmp_path):
    from npcnn import train

    path, model = _checkpoint(tmp_path)
    arrays = dict(npcnn.load(path))
    meta = json.loads(str(arrays["__meta__"]))
    victim = "extra/ema"
    del arrays[victim]
    arrays["__meta__"] = np.array(json.dumps(meta))
    npcnn.save(arrays, path)
    with pytest.raises(serialization.FileFormatError) as info:
        train.load_checkpoint(path, model)
    assert_clear(info.value, path, repr(victim), "lacks")
    assert train.load_checkpoint(_checkpoint(tmp_path)[0], model)["epoch"] == 3


def test_saving_into_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nowhere does not exist"):
        npcnn.save({"w": np.zeros(2)}, tmp_path / "nowhere" / "w.npz")


def _peak_memory(call):
    """(call(), the peak bytes traced while it ran)."""
    import tracemalloc

    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_loading_an_npz_holds_each_array_once(tmp_path):
    path = tmp_path / "big.npz"
    big = np.arange(8 * 2 ** 20, dtype=np.float64)  # 64 MiB
    npcnn.save({"big": big}, path)
    loaded, peak = _peak_memory(lambda: npcnn.load(path))
    np.testing.assert_array_equal(loaded["big"], big)
    assert peak < 1.3 * big.nbytes, peak  # the array and a 4 MiB chunk or two, not bytes + a copy


def test_loading_safetensors_holds_each_array_once(tmp_path):
    path = tmp_path / "big.safetensors"
    big = np.arange(8 * 2 ** 20, dtype=np.float64)  # 64 MiB
    npcnn.save({"big": big, "small": np.ones(3, np.float32)}, path)
    loaded, peak = _peak_memory(lambda: npcnn.load(path))
    np.testing.assert_array_equal(loaded["big"], big)
    assert loaded["big"].flags.writeable and list(loaded) == ["big", "small"]
    assert peak < 1.1 * big.nbytes, peak  # read into place: not the file's bytes and then a copy


def test_safetensors_bytes_and_file_readers_agree(tmp_path):
    path = tmp_path / "t.safetensors"
    npcnn.save(_arrays(), path, metadata={"k": "v"})
    from_file, meta_file = serialization.read_safetensors_file(path)
    from_bytes, meta_bytes = serialization.read_safetensors(path.read_bytes())
    assert list(from_file) == list(from_bytes) and meta_file == meta_bytes == {"k": "v"}
    for name in from_file:
        np.testing.assert_array_equal(from_file[name], from_bytes[name])
        assert from_file[name].dtype == from_bytes[name].dtype


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_saving_copies_no_array_whole(tmp_path, suffix):
    big = np.arange(8 * 2 ** 20, dtype=np.float64)  # 64 MiB, allocated before tracing starts
    _, peak = _peak_memory(lambda: npcnn.save({"big": big, "small": np.ones(3, np.float32)}, tmp_path / f"w{suffix}"))
    assert peak < 0.4 * big.nbytes, peak  # written from the array in chunks, not via a bytes copy
    np.testing.assert_array_equal(npcnn.load(tmp_path / f"w{suffix}")["big"], big)
