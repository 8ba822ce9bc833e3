"""npcnn.data.synthetic_digits: MNIST's layout, seeded, balanced, centred, each distortion doing
something, learnable, bad arguments refused, a clear error without matplotlib."""

import builtins

import numpy as np
import pytest

pytest.importorskip("matplotlib", reason="synthetic digits are rendered with matplotlib's fonts")

from npcnn.data import synthetic_digits  # noqa: E402
from npcnn.data.synthetic_digits import available_fonts  # noqa: E402


def test_layout_like_mnist_balanced_and_seeded():
    x, y = synthetic_digits(100, seed=3)
    assert x.shape == (100, 28, 28) and x.dtype == np.uint8
    assert y.shape == (100,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y, minlength=10), np.full(10, 10))
    x2, y2 = synthetic_digits(100, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = synthetic_digits(100, seed=4)
    assert not np.array_equal(x, x3)
    assert x.max() == 255 and x.min() == 0


def test_fonts_are_matplotlibs_and_have_every_digit():
    fonts = available_fonts()
    assert len(fonts) >= 10
    assert any("DejaVuSans.ttf" in f for f in fonts)
    assert not any("LastResort" in f or "cmex10" in f for f in fonts)


def test_digits_are_centred_by_mass_and_fit_the_image():
    x, _ = synthetic_digits(200, seed=0)
    ink = x.astype(np.float64)
    mass = ink.sum(axis=(1, 2))
    rows = (ink.sum(axis=2) * np.arange(28)).sum(axis=1) / mass
    cols = (ink.sum(axis=1) * np.arange(28)).sum(axis=1) / mass
    assert np.abs(rows - 13.5).max() < 3.5 and np.abs(cols - 13.5).max() < 3.5
    border = np.concatenate([x[:, 0], x[:, -1], x[:, :, 0], x[:, :, -1]], axis=1)
    assert (border > 0).mean() < 0.02                       # the digit rarely touches the border


def test_without_distortion_a_font_gives_one_image_per_digit():
    font = [f for f in available_fonts() if f.endswith("DejaVuSans.ttf")]
    kw = dict(rotation=0, shear=0, scale=(1, 1), shift=0, elastic_alpha=0, thickness=(0,), fonts=font)
    x, y = synthetic_digits(30, seed=0, **kw)
    for d in range(10):
        same = x[y == d].astype(int)
        assert np.array_equal(same[0], same[1]) and np.array_equal(same[0], same[2])
    means = np.stack([x[y == d][0].astype(float) for d in range(10)])
    assert np.min([np.abs(means[i] - means[j]).sum() for i in range(10) for j in range(i)]) > 1000


@pytest.mark.parametrize("change", [{"rotation": 30}, {"shear": 0.4}, {"scale": (0.7, 0.9)}, {"shift": 2},
                                    {"elastic_alpha": 3}, {"thickness": (2,)}])
def test_each_distortion_changes_the_images(change):
    font = [f for f in available_fonts() if f.endswith("DejaVuSerif.ttf")]
    kw = dict(rotation=0, shear=0, scale=(1, 1), shift=0, elastic_alpha=0, thickness=(0,), fonts=font)
    plain, _ = synthetic_digits(20, seed=1, **kw)
    bent, _ = synthetic_digits(20, seed=1, **{**kw, **change})
    assert np.abs(plain.astype(int) - bent.astype(int)).mean() > 2, change


def test_a_nearest_centroid_classifier_learns_them():
    x, y = synthetic_digits(600, seed=0)
    xt, yt = synthetic_digits(300, seed=1)
    flat, flat_t = x.reshape(600, -1) / 255.0, xt.reshape(300, -1) / 255.0
    centroids = np.stack([flat[y == d].mean(0) for d in range(10)])
    pred = ((flat_t[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == yt).mean() > 0.5                        # chance is 0.1


@pytest.mark.parametrize("kwargs, match", [({"n": -1}, "n must be"), ({"n": 2.5}, "n must be"),
                                           ({"rotation": -1}, "rotation"), ({"shear": float("nan")}, "shear"),
                                           ({"scale": (1.2, 0.8)}, "scale"), ({"elastic_sigma": 0}, "elastic_sigma"),
                                           ({"thickness": ()}, "thickness"), ({"thickness": (9,)}, "thickness"),
                                           ({"fonts": []}, "no fonts")])
def test_bad_arguments_are_refused(kwargs, match):
    kwargs = {"n": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        synthetic_digits(**kwargs)


def test_clear_import_error_without_matplotlib(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with pytest.raises(ImportError, match=r"install matplotlib"):
        synthetic_digits(10)
