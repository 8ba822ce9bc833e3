"""The lectures' augmentations with torchvision's conventions: ColorJitter (brightness, contrast,
saturation, hue) against a per-pixel loop twin, HSV against colorsys, RandomAffine's shear against
an independently built inverse map, nearest interpolation, padding forms, and bad arguments."""

import colorsys
import math

import numpy as np
import pytest

import npcnn
from npcnn.data import transforms as T


def _gray_mean(img):
    if img.shape[0] == 1:
        return img.mean()
    return (0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]).mean()


def _jitter_twin(x, order, factors):
    """ColorJitter one image and one pixel at a time, from torchvision's formulas."""
    out = x.copy()
    for i in range(len(x)):
        img = out[i]
        for op in order[i]:
            f = factors[op]
            if f is None:
                continue
            f = f[i]
            if op == 0:
                img = np.clip(img * f, 0, 1)
            elif op == 1:
                img = np.clip(f * img + (1 - f) * _gray_mean(img), 0, 1)
            elif img.shape[0] == 3 and op == 2:
                gray = 0.2989 * img[0] + 0.587 * img[1] + 0.114 * img[2]
                img = np.clip(f * img + (1 - f) * gray, 0, 1)
            elif img.shape[0] == 3 and op == 3:
                img = img.copy()
                for r in range(img.shape[1]):
                    for c in range(img.shape[2]):
                        h, s, v = colorsys.rgb_to_hsv(*img[:, r, c])
                        img[:, r, c] = colorsys.hsv_to_rgb((h + f) % 1.0, s, v)
        out[i] = img
    return out


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("kwargs", [
    {"brightness": 0.5, "contrast": 0.5, "saturation": 0.5, "hue": 0.3},
    {"hue": 0.5},
    {"hue": (-0.2, 0.1), "contrast": (0.2, 1.8)},
    {"brightness": (0.5, 1.5), "saturation": 0.9},
])
def test_color_jitter_matches_the_per_pixel_twin(channels, kwargs):
    n = 12
    x = np.random.default_rng(0).random((n, channels, 4, 5))
    out = T.ColorJitter(**kwargs, rng=np.random.default_rng(7))(x)
    gen = np.random.default_rng(7)  # the same draws, in the transform's order
    order = np.argsort(gen.random((n, 4)), axis=1)
    names = ["brightness", "contrast", "saturation", "hue"]
    factors = []
    for k, name in enumerate(names):
        v = kwargs.get(name, 0)
        if v == 0:
            factors.append(None)
            continue
        lo, hi = (v if isinstance(v, tuple) else ((-v, v) if name == "hue" else (max(0, 1 - v), 1 + v)))
        factors.append(gen.uniform(lo, hi, n))
    np.testing.assert_allclose(out, _jitter_twin(x, order, factors), rtol=1e-10, atol=1e-12,
                               err_msg=f"ColorJitter({kwargs}) on {channels} channels")


def test_hue_rotates_the_colour_wheel_and_keeps_value_and_saturation():
    x = np.random.default_rng(1).random((5, 3, 6, 6))
    hsv = T.rgb_to_hsv(x)
    half = T.ColorJitter(hue=(0.5, 0.5))(x)
    np.testing.assert_allclose(T.rgb_to_hsv(half)[:, 1:], hsv[:, 1:], atol=1e-12)
    np.testing.assert_allclose(np.mod(T.rgb_to_hsv(half)[:, 0] - hsv[:, 0], 1.0) % 1.0,
                               np.where(hsv[:, 1] > 0, 0.5, 0.0), atol=1e-9)
    np.testing.assert_allclose(T.ColorJitter(hue=(0.5, 0.5))(half), x, atol=1e-12)  # twice round: back
    red = np.zeros((1, 3, 1, 1))
    red[0, 0] = 1.0
    green = T.ColorJitter(hue=(1 / 3, 1 / 3))(red)
    np.testing.assert_allclose(green[0, :, 0, 0], [0, 1, 0], atol=1e-12)


def test_rgb_hsv_round_trip_and_colorsys():
    x = np.random.default_rng(2).random((3, 3, 5, 4))
    x[0, :, 0, 0] = 0.5  # a grey pixel: hue and saturation 0
    hsv = T.rgb_to_hsv(x)
    for n, r, c in np.ndindex(3, 5, 4):
        np.testing.assert_allclose(hsv[n, :, r, c], colorsys.rgb_to_hsv(*x[n, :, r, c]), atol=1e-12)
    np.testing.assert_allclose(T.hsv_to_rgb(hsv), x, atol=1e-12)
    assert T.rgb_to_hsv(x.astype(np.float32)).dtype == np.float32


def test_color_jitter_uint8_grey_and_channel_checks():
    x = np.random.default_rng(3).integers(0, 256, (6, 3, 5, 5), dtype=np.uint8)
    out = T.ColorJitter(0.3, 0.3, 0.3, 0.2, rng=0)(x)
    assert out.dtype == np.uint8 and out.shape == x.shape and not np.array_equal(out, x)
    grey = np.random.default_rng(4).random((6, 1, 5, 5))
    np.testing.assert_array_equal(T.ColorJitter(saturation=0.9, hue=0.4)(grey), grey)
    assert not np.allclose(T.ColorJitter(brightness=0.5, contrast=0.5)(grey), grey)
    with pytest.raises(ValueError, match="ColorJitter: contrast, saturation and hue need 1 .* or 3"):
        T.ColorJitter(hue=0.1)(np.zeros((2, 4, 3, 3)))
    T.ColorJitter(brightness=0.1)(np.zeros((2, 4, 3, 3)))  # brightness works on any channels
    assert "hue=0.1" in repr(T.ColorJitter(hue=0.1))


def _affine_oracle(img, angle, translate, scale, shear, fill):
    """torchvision's documented forward map dst = T + C + RSS (src - C), RSS = R(a) S(s) SHy SHx,
    with the tensor path's negated angle; inverted numerically and sampled with scipy."""
    ndimage = pytest.importorskip("scipy.ndimage")
    a, sx, sy = math.radians(-angle), math.radians(shear[0]), math.radians(shear[1])
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    shx = np.array([[1, -math.tan(sx)], [0, 1]])
    shy = np.array([[1, 0], [-math.tan(sy), 1]])
    inv = np.linalg.inv(rot @ (scale * np.eye(2)) @ shy @ shx)
    h, w = img.shape[1:]
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(float)
    d = np.stack([xs - cx - translate[0], ys - cy - translate[1]])
    src = np.einsum("ij,jhw->ihw", inv, d)
    coords = [src[1] + cy, src[0] + cx]
    return np.stack([ndimage.map_coordinates(ch, coords, order=1, mode="grid-constant", cval=fill) for ch in img])


@pytest.mark.parametrize("case", [
    dict(angle=0, translate=(0, 0), scale=1.0, shear=(20, 0)),
    dict(angle=0, translate=(0, 0), scale=1.0, shear=(0, -15)),
    dict(angle=30, translate=(2, -1), scale=0.8, shear=(10, 25)),
    dict(angle=-75, translate=(0, 3), scale=1.3, shear=(-30, 5)),
])
def test_affine_with_shear_matches_the_documented_map(case):
    x = np.random.default_rng(5).random((1, 2, 9, 11))
    shear = (case["shear"][0], case["shear"][0], case["shear"][1], case["shear"][1])
    t = T.RandomAffine(degrees=(case["angle"], case["angle"]), scale=(case["scale"], case["scale"]), shear=shear,
                       fill=0.25)
    sy, sx = T._affine_grid(x, np.array([case["angle"]]), np.array([case["scale"]]),
                            np.array([case["translate"][1]]), np.array([case["translate"][0]]),
                            np.array([case["shear"][0]]), np.array([case["shear"][1]]))
    got = T.bilinear_sample(x, sy, sx, fill=0.25)
    np.testing.assert_allclose(got[0], _affine_oracle(x[0], fill=0.25, **case), atol=1e-12, err_msg=str(case))
    if case["translate"] == (0, 0):
        np.testing.assert_allclose(t(x), got, atol=1e-12)


def test_shear_forms_and_ranges():
    x = np.random.default_rng(6).random((40, 1, 8, 8))
    assert T.RandomAffine(0, shear=10)._shear_x == (-10.0, 10.0)
    assert T.RandomAffine(0, shear=(1, 2, 3, 4))._shear_y == (3.0, 4.0)
    out = T.RandomAffine(0, shear=(5, 5), rng=1)(x)
    assert out.shape == x.shape and not np.allclose(out, x)
    with pytest.raises(ValueError, match="RandomAffine: shear must be"):
        T.RandomAffine(0, shear=(1, 2, 3))


def test_nearest_interpolation_keeps_pixel_values():
    x = np.random.default_rng(7).random((3, 2, 7, 7))
    np.testing.assert_array_equal(T.RandomRotation((90, 90), interpolation="nearest")(x), np.rot90(x, 1, axes=(2, 3)))
    out = T.RandomAffine(25, scale=(0.7, 1.3), interpolation="nearest", fill=-1.0, rng=0)(x)
    assert set(np.unique(out)) <= set(np.unique(x)) | {-1.0}


def test_random_crop_padding_forms_and_pad_if_needed():
    x = np.random.default_rng(8).random((2, 1, 4, 5))
    full = T.RandomCrop((4 + 3 + 4, 5 + 1 + 2), padding=(1, 3, 2, 4), fill=0.5)(x)  # left, top, right, bottom
    np.testing.assert_array_equal(full, np.pad(x, ((0, 0), (0, 0), (3, 4), (1, 2)), constant_values=0.5))
    pair = T.RandomCrop((4 + 4, 5 + 2), padding=(1, 2), padding_mode="reflect")(x)  # left/right, top/bottom
    np.testing.assert_array_equal(pair, np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)), mode="reflect"))
    grown = T.RandomCrop(6, pad_if_needed=True, rng=0)(x)  # torchvision pads both sides by the shortfall
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)))
    assert grown.shape == (2, 1, 6, 6)
    for i in range(2):
        assert any(np.array_equal(grown[i], padded[i, :, t:t + 6, l:l + 6]) for t in range(3) for l in range(2))
    with pytest.raises(ValueError, match="pad_if_needed=True"):
        T.RandomCrop(6)(x)


def test_rng_seed_and_npcnn_generator():
    x = np.random.default_rng(9).random((6, 3, 8, 8))
    a = T.ColorJitter(0.4, 0.4, 0.4, 0.1, rng=3)(x)
    np.testing.assert_array_equal(a, T.ColorJitter(0.4, 0.4, 0.4, 0.1, rng=np.random.default_rng(3))(x))
    npcnn.manual_seed(4)
    b = T.RandomAffine(20, translate=(0.1, 0.1), shear=5)(x)
    npcnn.manual_seed(4)
    np.testing.assert_array_equal(b, T.RandomAffine(20, translate=(0.1, 0.1), shear=5)(x))


@pytest.mark.parametrize("make, error, match", [
    (lambda: T.RandomHorizontalFlip(p=2), ValueError, r"RandomHorizontalFlip: p must be in \[0, 1\]"),
    (lambda: T.RandomVerticalFlip(p="a"), ValueError, "RandomVerticalFlip: p must be a finite number"),
    (lambda: T.RandomCrop(0), ValueError, "RandomCrop: size must be a positive int"),
    (lambda: T.RandomCrop(2.5), ValueError, "RandomCrop: size must be a positive int"),
    (lambda: T.RandomCrop((2, 3, 4)), ValueError, "RandomCrop: size must be"),
    (lambda: T.RandomCrop(8, padding=-1), ValueError, "RandomCrop: padding must be an int >= 0"),
    (lambda: T.RandomCrop(8, padding=(1, 2, 3)), ValueError, "RandomCrop: padding must be"),
    (lambda: T.RandomCrop(8, padding_mode="wrapx"), ValueError, "RandomCrop: padding_mode must be"),
    (lambda: T.RandomCrop(8, fill="black"), ValueError, "RandomCrop: fill must be a finite number"),
    (lambda: T.RandomResizedCrop(0), ValueError, "RandomResizedCrop: size must be"),
    (lambda: T.RandomResizedCrop(8, scale=(1.0, 0.5)), ValueError, "RandomResizedCrop: scale must be .* min <= max"),
    (lambda: T.RandomResizedCrop(8, scale=(-1, 0.5)), ValueError, r"RandomResizedCrop: scale\[0\] must be in \(0"),
    (lambda: T.RandomResizedCrop(8, ratio=(0, 1)), ValueError, r"RandomResizedCrop: ratio\[0\] must be in \(0"),
    (lambda: T.RandomAffine(-10), ValueError, r"RandomAffine: degrees must be in \[0, inf\)"),
    (lambda: T.RandomAffine(float("nan")), ValueError, "RandomAffine: degrees must be a finite number"),
    (lambda: T.RandomAffine(0, translate=(2, 0)), ValueError, r"RandomAffine: translate\[0\] must be in \[0, 1\]"),
    (lambda: T.RandomAffine(0, translate=0.1), ValueError, "RandomAffine: translate must be a pair"),
    (lambda: T.RandomAffine(0, scale=(0, 1)), ValueError, r"RandomAffine: scale\[0\] must be in \(0"),
    (lambda: T.RandomAffine(0, interpolation="cubic"), ValueError, "RandomAffine: interpolation must be"),
    (lambda: T.RandomRotation("a"), ValueError, "RandomRotation: degrees must be a pair"),
    (lambda: T.RandomRotation(10, fill=None), ValueError, "RandomRotation: fill must be a finite number"),
    (lambda: T.ColorJitter(brightness=-1), ValueError, r"ColorJitter: brightness must be in \[0, inf\)"),
    (lambda: T.ColorJitter(contrast="a"), ValueError, "ColorJitter: contrast must be a pair"),
    (lambda: T.ColorJitter(saturation=(-1, 2)), ValueError, r"ColorJitter: saturation\[0\] must be in \[0, inf"),
    (lambda: T.ColorJitter(hue=0.6), ValueError, "ColorJitter: hue must be at most 0.5"),
    (lambda: T.ColorJitter(hue=(-0.7, 0)), ValueError, r"ColorJitter: hue\[0\] must be in \[-0.5, 0.5\]"),
    (lambda: T.RandomErasing(p=5), ValueError, r"RandomErasing: p must be in \[0, 1\]"),
    (lambda: T.RandomErasing(scale=(0.5, 0.1)), ValueError, "RandomErasing: scale must be"),
    (lambda: T.RandomErasing(value="random"), ValueError, "RandomErasing: value must be a finite number"),
    (lambda: T.Normalize([float("nan")], [1]), ValueError, "Normalize: mean must be finite numbers"),
    (lambda: T.Normalize([[0.5]], [1]), ValueError, "Normalize: mean must be finite numbers, one per channel"),
    (lambda: T.Normalize("a", [1]), TypeError, "Normalize: mean must be a number or a list"),
    (lambda: T.Compose(T.ToFloat()), TypeError, "Compose: expected a list of transforms"),
    (lambda: T.Compose([5]), TypeError, "Compose: transform 0 .* is not callable"),
    (lambda: T.ToFloat(dtype=np.int32), TypeError, "ToFloat: dtype must be a float dtype"),
    (lambda: T.RandomCrop(4, rng="seed"), TypeError, "RandomCrop: rng must be None, an int seed"),
])
def test_bad_transform_arguments_name_the_class_and_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("x, error, match", [
    ([[1.0]], TypeError, "RandomRotation: expected a batch of images .* as an array, got list"),
    (np.zeros((2, 1, 4, 4), dtype=bool), TypeError, "RandomRotation: expected float or integer images, got dtype bool"),
    (np.zeros((1, 4, 4)), ValueError, r"RandomRotation: expected a batch of images \(N, C, H, W\)"),
])
def test_bad_batches_name_the_transform(x, error, match):
    with pytest.raises(error, match=match):
        T.RandomRotation(10)(x)


@pytest.mark.parametrize("shape, size", [((2, 3, 7, 9), (4, 5)), ((1, 1, 5, 5), (12, 8)), ((2, 2, 6, 10), 3),
                                         ((1, 3, 10, 6), 15), ((1, 1, 4, 4), (4, 4))])
def test_resize_matches_torch_interpolate(shape, size):
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: the oracle comparison is skipped")
    x = np.random.default_rng(10).random(shape)
    out = T.Resize(size)(x)
    h, w = shape[2:]
    if isinstance(size, int):  # torchvision's rule: the shorter side becomes size
        want_hw = (size, int(size * w / h)) if h <= w else (int(size * h / w), size)
    else:
        want_hw = size
    assert out.shape == shape[:2] + tuple(want_hw)
    want = torch.nn.functional.interpolate(torch.tensor(x), size=want_hw, mode="bilinear", align_corners=False,
                                           antialias=False).numpy()
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    assert T.Resize(size)(x.astype(np.float32)).dtype == np.float32
    assert T.Resize(size)((x * 255).astype(np.uint8)).dtype == np.uint8


@pytest.mark.parametrize("hw, size", [((7, 9), (3, 4)), ((6, 6), 4), ((5, 4), (5, 4)), ((3, 4), (6, 7)),
                                      ((4, 5), (2, 6))])
def test_center_crop_is_torchvisions_window(hw, size):
    x = np.random.default_rng(11).random((2, 1) + hw)
    out = T.CenterCrop(size)(x)
    th, tw = (size, size) if isinstance(size, int) else size
    ph, pw = max(th - hw[0], 0), max(tw - hw[1], 0)
    padded = np.pad(x, ((0, 0), (0, 0), (ph // 2, (ph + 1) // 2), (pw // 2, (pw + 1) // 2)))
    top, left = int(round((padded.shape[2] - th) / 2)), int(round((padded.shape[3] - tw) / 2))
    np.testing.assert_array_equal(out, padded[:, :, top:top + th, left:left + tw])


def test_pad_forms_and_modes():
    x = np.random.default_rng(12).random((2, 1, 3, 4))
    np.testing.assert_array_equal(T.Pad(1)(x), np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))))
    np.testing.assert_array_equal(T.Pad((1, 2), padding_mode="edge")(x),
                                  np.pad(x, ((0, 0), (0, 0), (2, 2), (1, 1)), mode="edge"))
    np.testing.assert_array_equal(T.Pad((1, 2, 3, 0), fill=0.5)(x),
                                  np.pad(x, ((0, 0), (0, 0), (2, 0), (1, 3)), constant_values=0.5))
    with pytest.raises(ValueError, match="Pad: padding must be"):
        T.Pad(-1)
    with pytest.raises(ValueError, match="Pad: padding_mode must be"):
        T.Pad(1, padding_mode="wrap")
    with pytest.raises(ValueError, match="Resize: size must be"):
        T.Resize(0)
    with pytest.raises(ValueError, match="CenterCrop: size must be"):
        T.CenterCrop((2, -1))
