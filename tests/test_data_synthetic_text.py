"""npcnn.data.marker_order: the order of two marker words decides the label, and every bag of
words occurs once with each label."""

import numpy as np
import pytest

from npcnn.data import marker_order


def _bags(x, vocab_size):
    return np.stack([np.bincount(row, minlength=vocab_size) for row in x])


def test_label_is_the_order_of_the_markers_within_the_gap():
    x, y = marker_order(400, length=20, vocab_size=30, max_gap=3, min_length=8, seed=3)
    assert x.shape == (400, 20) and x.dtype == np.int64 and y.dtype == np.int64
    for row, label in zip(x, y):
        a, b = np.flatnonzero(row == 1), np.flatnonzero(row == 2)
        assert len(a) == len(b) == 1
        assert label == int(b[0] < a[0]) and 1 <= abs(int(a[0]) - int(b[0])) <= 4
        real = np.flatnonzero(row != 0)
        assert real[-1] == len(real) - 1 and len(real) >= 8  # the padding sits at the end
    assert 0 < y.mean() < 1


def test_every_bag_of_words_occurs_once_with_each_label():
    """So a classifier of word counts scores exactly 50% on the set."""
    x, y = marker_order(300, vocab_size=12, seed=1)
    bags = _bags(x, 12)
    keys = {}
    for bag, label in zip(map(bytes, bags.astype(np.uint8)), y):
        keys.setdefault(bag, []).append(int(label))
    assert all(sorted(labels).count(0) == sorted(labels).count(1) for labels in keys.values())


def test_deterministic_and_seeded():
    a = marker_order(50, seed=5)
    b = marker_order(50, seed=5)
    c = marker_order(50, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])
    assert marker_order(51)[0].shape[0] == 50  # pairs: rounded down to even


@pytest.mark.parametrize("kwargs", [dict(vocab_size=3), dict(max_gap=-1), dict(length=5, max_gap=4),
                                    dict(min_length=30)])
def test_bad_arguments_name_the_function(kwargs):
    with pytest.raises(ValueError, match="marker_order"):
        marker_order(10, **kwargs)
