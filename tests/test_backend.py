import subprocess
import sys

import numpy as np
import pytest

import npcnn
from npcnn import backend
from conftest import cupy_or_skip


def test_numpy_is_default_and_import_pulls_no_optional_modules():
    code = ("import sys, npcnn; npcnn.xp(); "
            "sys.exit(('cupy' in sys.modules) or ('matplotlib' in sys.modules) or ('torch' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], env={"PATH": ""}).returncode == 0
    assert npcnn.xp() is np
    assert backend.get_backend() == "numpy"


def test_env_variable_selects_backend_and_unknown_name_is_an_error():
    code = "import npcnn; npcnn.xp()"
    result = subprocess.run([sys.executable, "-c", code], env={"NPCNN_BACKEND": "tpu"},
                            capture_output=True, text=True)
    assert result.returncode != 0 and "unknown backend 'tpu'" in result.stderr


def test_cupy_requested_without_cupy_is_a_clear_error(monkeypatch):
    if "cupy" in sys.modules:
        pytest.skip("CuPy is importable here")
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(RuntimeError, match="CuPy is not installed"):
        npcnn.set_backend("cupy")
    assert backend.get_backend() == "numpy"


def test_use_backend_restores_previous_and_keeps_rng_stream():
    npcnn.manual_seed(3)
    a = backend.rng().random()
    npcnn.manual_seed(3)
    backend.rng().random()
    with npcnn.use_backend("numpy") as module:
        assert module is np
    b = backend.rng().random()
    npcnn.manual_seed(3)
    assert backend.rng().random() == a and b != a


def test_manual_seed_reproduces_and_rng_state_round_trips():
    npcnn.manual_seed(7)
    first = backend.rng().normal(size=5)
    state = backend.get_rng_state()
    second = backend.rng().normal(size=5)
    backend.set_rng_state(state)
    np.testing.assert_array_equal(backend.rng().normal(size=5), second)
    npcnn.manual_seed(7)
    np.testing.assert_array_equal(backend.rng().normal(size=5), first)


def test_default_dtype_switch():
    assert npcnn.get_default_dtype() == np.float32
    with backend.default_dtype(np.float64):
        assert npcnn.nn.Linear(2, 2).weight.dtype == np.float64
    assert npcnn.nn.Linear(2, 2).weight.dtype == np.float32
    with pytest.raises(ValueError, match="floating"):
        npcnn.set_default_dtype(np.int32)


def test_moving_data_and_array_module():
    a = [[1.0, 2.0]]
    assert isinstance(backend.asarray(a), np.ndarray)
    assert backend.asarray(a, dtype=np.float32).dtype == np.float32
    assert backend.get_array_module(np.zeros(1)) is np
    assert isinstance(backend.to_numpy(np.zeros(2)), np.ndarray)


def test_scatter_add_adds_repeated_indices():
    a = np.zeros(4)
    backend.scatter_add(a, np.array([1, 1, 3]), np.array([1.0, 2.0, 5.0]))
    np.testing.assert_array_equal(a, [0, 3, 0, 5])


def test_strided_windows_and_fft_module():
    x = np.arange(10.0)
    win = backend.sliding_window_view(x, 3)
    assert win.shape == (8, 3) and win[2, 0] == 2
    view = backend.as_strided(x, (4, 2), (2 * x.itemsize, x.itemsize))
    np.testing.assert_array_equal(view[1], [2, 3])
    import scipy.fft

    assert backend.fft_module(x) is scipy.fft
    assert backend.next_fast_len(97) == 100  # 2^2 * 5^2: real FFTs like 2, 3, 5 factors


@pytest.mark.gpu
def test_cupy_backend_round_trip():
    cupy = cupy_or_skip()
    with npcnn.use_backend("cupy"):
        layer = npcnn.nn.Linear(3, 2)
        assert isinstance(layer.weight.data, cupy.ndarray)
        x = backend.asarray(np.ones((4, 3), np.float32))
        out = layer(x)
        dx = layer.backward(cupy.ones_like(out))
        assert isinstance(dx, cupy.ndarray) and dx.dtype == cupy.float32
        np.testing.assert_allclose(backend.to_numpy(out), np.ones((4, 3)) @ backend.to_numpy(layer.weight.data).T
                                   + backend.to_numpy(layer.bias.data), rtol=1e-5)


def test_a_seed_state_from_cupy_restores_deterministically_on_numpy():
    """On CuPy the RNG state is {"seed": s} (its generators cannot report theirs); restoring such
    a checkpoint on NumPy continues from a generator seeded with s, the same run after run."""
    draws = []
    for _ in range(2):
        backend.manual_seed(3)
        backend.rng().random(5)
        backend.set_rng_state({"seed": 1234})
        draws.append(backend.rng().random(4))
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], np.random.default_rng(1234).random(4))


def test_get_rng_state_does_not_disturb_the_numpy_stream():
    backend.manual_seed(5)
    expected = backend.rng().random(6)
    backend.manual_seed(5)
    first = backend.rng().random(3)
    backend.get_rng_state()
    np.testing.assert_array_equal(np.concatenate([first, backend.rng().random(3)]), expected)
