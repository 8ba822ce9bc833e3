"""save/load for .npz and .safetensors: round trips, the byte layout, corrupt files, atomic writes."""

import json
import os
import struct

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
    """An .npz holding a pickled object is refused, not executed."""
    path = tmp_path / "evil.npz"
    np.savez(path, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        npcnn.load(path)


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
