import numpy as np
import pytest

from npcnn import nn
from npcnn.functional.linear import linear_backward, linear_forward
from npcnn.gradcheck import check_function, check_module


class BrokenLinear(nn.Linear):
    """A deliberately wrong backward: the weight gradient is 1% too large."""

    def backward(self, dout):
        dx = super().backward(dout)
        self.weight.grad = self.weight.grad * 1.01
        return dx


class InPlaceReLU(nn.ReLU):
    """A backward that zeroes dout in place: the pitfall that corrupts residual forks."""

    def backward(self, dout):
        mask = self.pop_saved()
        dout[~mask] = 0
        return dout


def test_correct_module_passes_with_tiny_error(float64, rng):
    report = check_module(nn.Linear(4, 3), rng.normal(size=(2, 4)))
    assert report.ok and report.max_rel_error < 1e-8
    assert "PASS" in str(report) and "weight" in str(report)


def test_broken_backward_is_caught(float64, rng):
    report = check_module(BrokenLinear(4, 3), rng.normal(size=(2, 4)))
    assert not report.ok
    assert report.max_rel_error > 1e-3
    with pytest.raises(AssertionError, match="FAIL"):
        report.assert_ok()


def test_in_place_dout_modification_is_caught(rng):
    with pytest.raises(AssertionError, match="modified dout in place"):
        check_module(InPlaceReLU(), rng.normal(size=(3, 4)))


def test_broken_kernel_is_caught(rng):
    def bad_backward(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        return dx, dw, db * 2

    arrays = [rng.normal(size=(3, 4)), rng.normal(size=(2, 4)), rng.normal(size=2)]
    assert check_function(linear_forward, linear_backward, arrays).ok
    assert not check_function(linear_forward, bad_backward, arrays).ok


def test_subset_checking_and_module_left_untouched(rng):
    layer = nn.Linear(30, 20)
    before = layer.weight.data.copy()
    report = check_module(layer, rng.normal(size=(2, 30)), max_entries=25)
    assert report.ok and all(t.checked <= 25 for t in report.tensors)
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, before)
