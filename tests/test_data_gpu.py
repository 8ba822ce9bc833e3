"""npcnn.data on the CuPy backend: every transform gives NumPy's result on device arrays (the same
host generator, so the same draws), and both kinds of dataset yield device batches.

Marker ``gpu``: real CuPy with ``python -m pytest -m gpu``, the fake CuPy in the default run."""

import numpy as np
import pytest

import npcnn
from npcnn import backend, data
from npcnn.data import transforms as T

pytestmark = pytest.mark.gpu


TRANSFORMS = {
    "hflip": lambda g: T.RandomHorizontalFlip(rng=g),
    "crop": lambda g: T.RandomCrop(6, padding=(1, 2), pad_if_needed=True, rng=g),
    "resized": lambda g: T.RandomResizedCrop(5, rng=g),
    "rotation": lambda g: T.RandomRotation(30, interpolation="nearest", rng=g),
    "affine": lambda g: T.RandomAffine(15, translate=(0.2, 0.1), scale=(0.8, 1.2), shear=(5, 10, -5, 5), rng=g),
    "jitter": lambda g: T.ColorJitter(0.4, 0.4, 0.4, 0.2, rng=g),
    "erasing": lambda g: T.RandomErasing(p=0.7, rng=g),
    "normalize": lambda g: T.Normalize([0.1, 0.2, 0.3], [0.5, 0.6, 0.7]),
    "resize": lambda g: T.Resize((5, 11)),
    "center": lambda g: T.CenterCrop((9, 4)),
    "pad": lambda g: T.Pad((1, 2), padding_mode="reflect"),
}


@pytest.mark.parametrize("name", list(TRANSFORMS))
@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
def test_transforms_on_device_arrays_match_numpy(cupy, name, dtype):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (5, 3, 7, 8)).astype(dtype) if dtype == np.uint8 else rng.random((5, 3, 7, 8), dtype)
    if name == "normalize" and dtype == np.uint8:
        pytest.skip("Normalize takes float images")
    out = TRANSFORMS[name](np.random.default_rng(3))(backend.asarray(x))
    assert backend.is_cupy_array(out) and out.dtype == dtype
    with npcnn.use_backend("numpy"):
        want = TRANSFORMS[name](np.random.default_rng(3))(x)
    np.testing.assert_allclose(backend.to_numpy(out), want, rtol=1e-5, atol=1e-5 if dtype == np.float32 else 1)


class _PerSample(data.Dataset):
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return np.full((1, 2, 2), i, np.float32), {"label": i}


def test_both_kinds_of_dataset_yield_device_batches(cupy):
    xb, yb = next(iter(data.DataLoader(data.TensorDataset(np.zeros((9, 1, 2, 2), np.uint8), np.arange(9)),
                                       batch_size=4, to_float=True)))
    assert backend.is_cupy_array(xb) and backend.is_cupy_array(yb) and xb.dtype == np.float32
    xb, extra = next(iter(data.DataLoader(_PerSample(), batch_size=4, shuffle=True, seed=1)))
    assert backend.is_cupy_array(xb) and backend.is_cupy_array(extra["label"])
    np.testing.assert_array_equal(backend.to_numpy(xb)[:, 0, 0, 0], backend.to_numpy(extra["label"]))
    parts = data.random_split(_PerSample(), [0.5, 0.5], generator=2)
    assert sorted(np.concatenate([p.indices for p in parts]).tolist()) == list(range(9))
