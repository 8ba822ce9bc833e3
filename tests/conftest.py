"""Shared test set-up: the offline datasets, float64 helpers and optional oracles."""

import os
import pathlib

import numpy as np
import pytest

import npcnn

_ROOT = pathlib.Path(__file__).resolve().parents[1]
_SHARED_DATA = _ROOT.parent / "shared" / "data"
if "NPCNN_DATA" not in os.environ and _SHARED_DATA.is_dir():
    os.environ["NPCNN_DATA"] = str(_SHARED_DATA)


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts on NumPy, float32 default, seeded, with gradients enabled, and with the
    kernels' load detector (npcnn.threads) fresh: a fallback to one thread that an earlier
    test's timing set off would otherwise leave a test of the threads running on one."""
    npcnn.set_backend("numpy")
    npcnn.set_default_dtype(np.float32)
    npcnn.manual_seed(0)
    npcnn.threads.reset_load_state()
    yield
    npcnn.set_backend("numpy")
    npcnn.set_default_dtype(np.float32)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def float64():
    """Build parameters in float64 inside the test (gradient checks)."""
    with npcnn.backend.default_dtype(np.float64):
        yield


def torch_or_skip():
    """Import torch for an oracle comparison, or skip the test with the reason."""
    return pytest.importorskip("torch", reason="PyTorch is not installed; the PyTorch comparison is skipped")


def cupy_or_skip():
    """Import CuPy with a visible GPU, or skip the test with the reason."""
    cupy = pytest.importorskip("cupy", reason="CuPy is not installed; GPU tests are skipped")
    try:
        if cupy.cuda.runtime.getDeviceCount() == 0:
            pytest.skip("CuPy is installed but no GPU is visible")
    except Exception as err:  # no driver
        pytest.skip(f"CuPy is installed but CUDA is unusable: {err}")
    return cupy


@pytest.fixture
def cupy():
    """The CuPy module, with npcnn's backend switched to it for the test (skipped without a GPU)."""
    module = cupy_or_skip()
    with npcnn.use_backend("cupy"):
        yield module


def noncontiguous(a):
    """The same values as ``a`` in a non-contiguous float64 view (every other element of a
    twice-as-wide buffer along the last axis)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=np.float64)
    view = wide[..., ::2]
    view[...] = a
    assert not view.flags["C_CONTIGUOUS"]
    return view


def fake_cupy_pythonpath():
    """PYTHONPATH of a subprocess whose ``import cupy`` finds tests/fake_cupy (then the checkout)."""
    return os.pathsep.join([str(_ROOT / "tests" / "fake_cupy"), str(_ROOT)])
