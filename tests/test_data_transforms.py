"""Batch transforms: shapes, ranges, pairing with labels, exact geometry, determinism, Normalize math."""

import numpy as np
import pytest

import npcnn
from npcnn.data import transforms as T

RANDOM = {
    "hflip": lambda g: T.RandomHorizontalFlip(rng=g),
    "vflip": lambda g: T.RandomVerticalFlip(rng=g),
    "crop": lambda g: T.RandomCrop(6, padding=2, rng=g),
    "resized": lambda g: T.RandomResizedCrop(5, rng=g),
    "rotation": lambda g: T.RandomRotation(30, rng=g),
    "affine": lambda g: T.RandomAffine(15, translate=(0.2, 0.1), scale=(0.8, 1.2), rng=g),
    "jitter": lambda g: T.ColorJitter(0.4, 0.4, 0.4, rng=g),
    "erasing": lambda g: T.RandomErasing(p=0.7, rng=g),
    "hue": lambda g: T.ColorJitter(hue=0.3, rng=g),
    "jitter_all": lambda g: T.ColorJitter(0.3, (0.5, 1.5), 0.3, (-0.1, 0.2), rng=g),
    "shear": lambda g: T.RandomAffine(5, shear=(-10, 10, -5, 5), rng=g),
    "nearest": lambda g: T.RandomRotation(20, interpolation="nearest", rng=g),
    "crop_pad_if_needed": lambda g: T.RandomCrop(9, pad_if_needed=True, padding_mode="reflect", rng=g),
}
OUT_HW = {"crop": (6, 6), "resized": (5, 5), "crop_pad_if_needed": (9, 9)}


def _batch(dtype, n=6, c=3, h=7, w=8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.uint8:
        return rng.integers(0, 256, (n, c, h, w), dtype=np.uint8)
    return rng.random((n, c, h, w)).astype(dtype)


@pytest.mark.parametrize("name", list(RANDOM))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
def test_shape_dtype_range_and_no_in_place_change(name, dtype):
    x = _batch(dtype)
    before = x.copy()
    out = RANDOM[name](np.random.default_rng(1))(x)
    assert out.shape == (6, 3) + OUT_HW.get(name, (7, 8)) and out.dtype == dtype
    upper = 255 if dtype == np.uint8 else 1.0
    assert out.min() >= 0 and out.max() <= upper
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", list(RANDOM))
def test_seeded_determinism_and_manual_seed(name):
    x = _batch(np.float32)
    a = RANDOM[name](np.random.default_rng(5))(x)
    b = RANDOM[name](np.random.default_rng(5))(x)
    np.testing.assert_array_equal(a, b)
    npcnn.manual_seed(11)
    c = RANDOM[name](None)(x)
    npcnn.manual_seed(11)
    np.testing.assert_array_equal(c, RANDOM[name](None)(x))
    t = RANDOM[name](np.random.default_rng(5))
    assert not np.array_equal(t(x), t(x))  # the generator advances: a new draw per batch


@pytest.mark.parametrize("name", ["hflip", "vflip", "crop", "resized", "rotation", "affine"])
def test_geometric_transforms_keep_each_image_with_its_label(name):
    """Constant images (value = label): each output still shows its own label's value."""
    labels = np.arange(1, 9)
    x = np.broadcast_to(labels[:, None, None, None] / 10.0, (8, 1, 9, 9)).astype(np.float32)
    out = RANDOM[name](np.random.default_rng(2))(x)
    h, w = out.shape[2:]
    centre = out[:, 0, h // 2, w // 2]
    np.testing.assert_allclose(centre, labels / 10.0, rtol=1e-6)


def test_flips_exact_and_twice_is_identity():
    x = _batch(np.float32)
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=1.0)(x), x[..., ::-1])
    np.testing.assert_array_equal(T.RandomVerticalFlip(p=1.0)(x), x[:, :, ::-1])
    np.testing.assert_array_equal(T.RandomHorizontalFlip(p=0.0)(x), x)
    for cls in (T.RandomHorizontalFlip, T.RandomVerticalFlip):
        once = cls(p=0.5, rng=np.random.default_rng(3))(x)
        twice = cls(p=0.5, rng=np.random.default_rng(3))(once)  # same draws: the same images flip back
        np.testing.assert_array_equal(twice, x)
        flipped = [not np.array_equal(once[i], x[i]) for i in range(len(x))]
        assert 0 < sum(flipped) < len(x)


def test_random_crop_is_a_window_of_the_padded_image():
    x = _batch(np.float64, n=40, c=2, h=5, w=5)
    out = T.RandomCrop((4, 3), padding=1, rng=np.random.default_rng(0))(x)
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    offsets = set()
    for i in range(len(x)):
        hits = [(t, l) for t in range(4) for l in range(5) if np.array_equal(out[i], padded[i, :, t:t + 4, l:l + 3])]
        assert len(hits) >= 1
        offsets.add(hits[0])
    assert len(offsets) > 10  # positions vary
    np.testing.assert_array_equal(T.RandomCrop(5)(x), x)
    edge = T.RandomCrop(7, padding=1, padding_mode="edge")(x)
    np.testing.assert_array_equal(edge, np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge"))
    with pytest.raises(ValueError, match="larger than"):
        T.RandomCrop(9)(x)


def test_bilinear_sample_matches_scipy():
    ndimage = pytest.importorskip("scipy.ndimage")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 6, 7))
    sy, sx = rng.uniform(-2, 8, (2, 4, 5)), rng.uniform(-2, 9, (2, 4, 5))
    for mode, scipy_mode in (("constant", "grid-constant"), ("edge", "nearest")):
        out = T.bilinear_sample(x, sy, sx, fill=0.25, mode=mode)
        for n in range(2):
            for c in range(3):
                want = ndimage.map_coordinates(x[n, c], [sy[n], sx[n]], order=1, mode=scipy_mode, cval=0.25)
                np.testing.assert_allclose(out[n, c], want, rtol=1e-12, atol=1e-12)


def test_resized_crop_identity_and_bilinear_upsampling():
    x = _batch(np.float64, c=1, h=6, w=6)
    full = T.RandomResizedCrop(6, scale=(1.0, 1.0), ratio=(1.0, 1.0))
    np.testing.assert_allclose(full(x), x, atol=1e-12)
    ramp = np.broadcast_to(np.arange(4.0), (1, 1, 4, 4))
    up = T.RandomResizedCrop(8, scale=(1.0, 1.0), ratio=(1.0, 1.0))(ramp)
    src = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)  # pixel-centre aligned, clamped at the edges
    np.testing.assert_allclose(up[0, 0], np.broadcast_to(src, (8, 8)), atol=1e-12)


def test_rotation_by_90_degrees_is_rot90_counter_clockwise():
    x = _batch(np.float64, h=7, w=7)
    out = T.RandomRotation((90, 90))(x)
    np.testing.assert_allclose(out, np.rot90(x, k=1, axes=(2, 3)), atol=1e-12)
    np.testing.assert_allclose(T.RandomRotation(0)(x), x, atol=1e-12)


def test_affine_translation_is_an_integer_shift_with_fill():
    x = _batch(np.float64, n=30, c=1, h=5, w=8)
    out = T.RandomAffine(translate=(0.25, 0.0), fill=-1.0, rng=np.random.default_rng(0))(x)
    shifts = set()
    for i in range(len(x)):
        for k in range(-2, 3):
            want = np.full_like(x[i], -1.0)
            if k >= 0:
                want[..., k:] = x[i, ..., :8 - k]
            else:
                want[..., :k] = x[i, ..., -k:]
            if np.allclose(out[i], want, atol=1e-12):
                shifts.add(k)
                break
        else:
            pytest.fail(f"sample {i} is not a horizontal shift by -2..2 pixels")
    assert len(shifts) >= 3


def test_color_jitter_formulas():
    rng = np.random.default_rng(0)
    x = rng.uniform(0.3, 0.6, (20, 3, 5, 5))
    b = T.ColorJitter(brightness=0.4, rng=np.random.default_rng(1))(x)
    ratio = b / x
    assert np.allclose(ratio, ratio[:, :1, :1, :1]) and 0.6 <= ratio.min() and ratio.max() <= 1.4
    c = T.ColorJitter(contrast=0.4, rng=np.random.default_rng(1))(x)
    def gray(a):
        return 0.2989 * a[:, 0] + 0.587 * a[:, 1] + 0.114 * a[:, 2]  # torchvision's weights
    # torchvision's weights sum to 0.9999, so the mean luma moves by up to 1e-4 of itself (exact
    # formulas: the loop twin in test_data_augmentation.py)
    np.testing.assert_allclose(gray(c).mean(axis=(1, 2)), gray(x).mean(axis=(1, 2)), rtol=1e-4)
    assert not np.allclose(c, x)
    s = T.ColorJitter(saturation=0.4, rng=np.random.default_rng(1))(x)
    np.testing.assert_allclose(gray(s), gray(x), rtol=1e-4)  # luma kept (to torchvision's 0.9999), colours move
    assert not np.allclose(s, x)
    mono = x[:, :1]
    np.testing.assert_allclose(T.ColorJitter(saturation=0.9)(mono), mono)


def test_random_erasing_rectangle():
    x = np.random.default_rng(0).uniform(0.5, 1.0, (30, 2, 16, 16))
    out = T.RandomErasing(p=1.0, value=0.0, rng=np.random.default_rng(0))(x)
    for i in range(len(x)):
        erased = out[i, 0] == 0
        assert (out[i, 1] == 0).tolist() == erased.tolist()  # same box in every channel
        rows, cols = np.where(erased)
        assert erased.sum() == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
        assert 0.02 * 256 * 0.5 <= erased.sum() <= 0.33 * 256 * 1.5
        np.testing.assert_array_equal(out[i][:, ~erased], x[i][:, ~erased])
    np.testing.assert_array_equal(T.RandomErasing(p=0.0)(x), x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_normalize_math(dtype):
    x = _batch(dtype, c=3)
    mean, std = [0.1, 0.5, 0.9], [0.2, 0.25, 4.0]
    out = T.Normalize(mean, std)(x)
    assert out.dtype == dtype
    for c in range(3):
        np.testing.assert_allclose(out[:, c], (x[:, c].astype(np.float64) - mean[c]) / std[c],
                                   rtol=1e-14, atol=1e-6 if dtype == np.float32 else 1e-14)
    one = T.Normalize(0.5, 0.5)(x)
    np.testing.assert_allclose(one, (x - dtype(0.5)) / dtype(0.5))
    with pytest.raises(TypeError, match="ToFloat"):
        T.Normalize(0.5, 0.5)(_batch(np.uint8))
    with pytest.raises(ValueError, match="3 channels"):
        T.Normalize([0.5, 0.5], [1, 1])(x)
    with pytest.raises(ValueError, match="positive"):
        T.Normalize(0, 0)


def test_to_float_and_compose():
    x = _batch(np.uint8)
    f = T.ToFloat()(x)
    assert f.dtype == np.float32
    np.testing.assert_allclose(f, x / 255.0, rtol=1e-6)
    assert T.ToFloat(np.float64)(x).dtype == np.float64
    pipeline = T.Compose([T.ToFloat(), T.RandomHorizontalFlip(p=1.0), T.Normalize(0.5, 0.5)])
    np.testing.assert_allclose(pipeline(x), (x[..., ::-1] / 255.0 - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    assert "RandomHorizontalFlip" in repr(pipeline)


def test_bad_input_names_the_transform():
    with pytest.raises(ValueError, match=r"RandomCrop: expected a batch of images \(N, C, H, W\)"):
        T.RandomCrop(2)(np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="RandomRotation"):
        T.RandomRotation(10)(np.zeros((4, 4)))


def test_augmentation_grid_example_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed; the example is skipped")
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "augmentation_grid.py"
    spec = importlib.util.spec_from_file_location("augmentation_grid", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "grid.png"
    module.main(["--dataset", "shapes", "--n", "2", "--out", str(out)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
