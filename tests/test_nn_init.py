import math

import numpy as np
import pytest

import npcnn
from npcnn.nn import init
from conftest import torch_or_skip


def test_gains():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("sigmoid") == 1.0 and init.calculate_gain("linear") == 1.0
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    with pytest.raises(ValueError, match="unsupported nonlinearity"):
        init.calculate_gain("swish")


def test_fans_of_conv_weight():
    assert init.calculate_fan_in_and_fan_out(np.zeros((64, 3, 7, 7))) == (3 * 49, 64 * 49)
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.calculate_fan_in_and_fan_out(np.zeros(5))


@pytest.mark.parametrize("fn,expected_std", [
    (lambda w: init.xavier_uniform_(w), math.sqrt(2 / (400 + 300))),
    (lambda w: init.xavier_normal_(w), math.sqrt(2 / (400 + 300))),
    (lambda w: init.kaiming_uniform_(w, nonlinearity="relu"), math.sqrt(2 / 400)),
    (lambda w: init.kaiming_normal_(w, nonlinearity="relu"), math.sqrt(2 / 400)),
    (lambda w: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), math.sqrt(2 / 300)),
    (lambda w: init.normal_(w, 0, 0.01), 0.01),
    (lambda w: init.uniform_(w, -1, 1), 1 / math.sqrt(3)),
])
def test_statistics(fn, expected_std):
    w = np.empty((300, 400), dtype=np.float32)
    fn(w)
    assert w.dtype == np.float32
    assert w.std() == pytest.approx(expected_std, rel=0.02)
    assert abs(w.mean()) < 0.02 * expected_std * 10


def test_constants_and_parameters():
    p = npcnn.nn.Parameter(np.empty((2, 3), np.float32))
    assert init.ones_(p) is p and (p.data == 1).all()
    init.zeros_(p)
    assert (p.data == 0).all()
    init.constant_(p, 0.5)
    assert (p.data == 0.5).all()


def test_seeded_initialization_reproduces():
    npcnn.manual_seed(5)
    a = npcnn.nn.Linear(3, 3).weight.data.copy()
    npcnn.manual_seed(5)
    np.testing.assert_array_equal(npcnn.nn.Linear(3, 3).weight.data, a)


def test_kaiming_uniform_bound_matches_pytorch_formula():
    torch = torch_or_skip()
    w = torch.empty(50, 80)
    torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    ours = np.empty((50, 80), np.float32)
    init.kaiming_uniform_(ours, a=math.sqrt(5))
    # Different generators, same distribution: the same bound 1/sqrt(fan_in).
    assert abs(ours).max() <= 1 / math.sqrt(80) and float(w.abs().max()) <= 1 / math.sqrt(80)
    assert abs(ours).max() == pytest.approx(float(w.abs().max()), rel=0.05)
