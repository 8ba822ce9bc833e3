"""Synthetic shapes and signals: deterministic, balanced, consistent masks, distinguishable classes."""

import numpy as np
import pytest

import npcnn
from npcnn.data import SHAPE_CLASSES, shapes, signals


def test_shapes_layout_and_determinism():
    x, y = shapes(50, size=24, seed=3)
    assert x.shape == (50, 1, 24, 24) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert np.bincount(y, minlength=4).tolist() == [13, 13, 12, 12]
    x2, y2 = shapes(50, size=24, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(x, shapes(50, size=24, seed=4)[0])
    with npcnn.backend.default_dtype(np.float64):
        assert shapes(2)[0].dtype == np.float64


def test_shapes_masks_match_the_drawn_pixels():
    x, y, m = shapes(60, size=32, classes=SHAPE_CLASSES, seed=1, noise=0.0, return_masks=True)
    assert m.shape == (60, 32, 32) and m.dtype == np.int64
    np.testing.assert_array_equal(x[:, 0] > 0, m > 0)  # without noise, ink exactly where the mask is
    for i in range(60):
        assert set(np.unique(m[i])) == {0, y[i] + 1}
    area = (m > 0).sum(axis=(1, 2)) / (32 * 32)
    assert area.min() > 0.01 and area.max() < 0.6
    # positions and rotations vary: no two masks of a class are identical
    for k in range(len(SHAPE_CLASSES)):
        masks = m[y == k].reshape(-1, 32 * 32)
        assert len(np.unique(masks, axis=0)) == len(masks)


def test_shapes_classes_are_distinguishable_by_their_geometry():
    """Squares fill their bounding box more than circles, triangles less: a classifier can learn it."""
    _, y, m = shapes(300, classes=("circle", "square", "triangle"), seed=0, noise=0.0, return_masks=True)
    rows, cols = (m > 0).any(axis=2), (m > 0).any(axis=1)
    box = rows.sum(1) * cols.sum(1)
    fill = (m > 0).sum(axis=(1, 2)) / box
    assert fill[y == 0].mean() > fill[y == 2].mean() + 0.1  # circle ~0.785 vs triangle ~0.5


def test_shapes_rejects_unknown_class():
    with pytest.raises(ValueError, match="unknown class 'hexagon'"):
        shapes(4, classes=("circle", "hexagon"))


def test_signals_layout_determinism_and_patterns():
    x, y = signals(100, length=64, seed=2)
    assert x.shape == (100, 1, 64) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [20] * 5
    np.testing.assert_array_equal(x, signals(100, length=64, seed=2)[0])
    clean, labels = signals(40, length=200, seed=0, noise=0.0, dtype=np.float64)
    for i in np.where(labels == 1)[0]:  # square wave: exactly two levels
        assert len(np.unique(np.round(clean[i, 0], 9))) == 2
    for i in np.where(labels == 0)[0]:  # sine: symmetric around its offset, smooth
        assert np.abs(np.diff(clean[i, 0])).max() < 0.25
    for i in np.where(labels == 4)[0]:  # beats: sharp positive spikes well above the median
        assert clean[i, 0].max() - np.median(clean[i, 0]) > 0.5
    with pytest.raises(ValueError, match="unknown class"):
        signals(3, classes=("sine", "noise"))
