"""functional/geometry.py: argument forms, output sizes, 'same' padding and the validators."""

import numpy as np
import pytest
from conftest import torch_or_skip

from npcnn.functional import geometry as G


def test_pair_and_as_tuple():
    assert G.pair(3) == (3, 3) and G.pair((2, 5)) == (2, 5) and G.pair([1, 2]) == (1, 2)
    assert G.pair(np.int64(4)) == (4, 4) and type(G.pair(np.int64(4))[0]) is int
    assert G.as_tuple(7, 1) == (7,) and G.as_tuple((7,), 1) == (7,)
    for bad in (2.5, "3", (1.0, 2), None, True):
        with pytest.raises(TypeError, match="RandomCrop: size must be an int or a tuple of 2 ints"):
            G.pair(bad, "RandomCrop")
    with pytest.raises(ValueError, match=r"RandomCrop: size must be an int or a tuple of 2 ints, got \(1, 2, 3\)"):
        G.pair((1, 2, 3), "RandomCrop")
    with pytest.raises(ValueError, match=r"Conv1d: stride must be an int, got \(1, 2\)"):
        G.as_tuple((1, 2), 1, "Conv1d", "stride")


def test_padding_pairs_and_resolve_padding():
    assert G.padding_pairs(1) == ((1, 1), (1, 1))
    assert G.padding_pairs((1, 2)) == ((1, 1), (2, 2))
    assert G.padding_pairs(((0, 1), (2, 3))) == ((0, 1), (2, 3))
    assert G.padding_pairs((3,), 1) == ((3, 3),)
    with pytest.raises(ValueError, match="Conv2d: padding must be >= 0"):
        G.padding_pairs((1, -1), 2, "Conv2d")
    with pytest.raises(ValueError, match="Conv2d: padding must be an int, 2 ints or 2"):
        G.padding_pairs((1, 2, 3), 2, "Conv2d")
    assert G.resolve_padding("valid", (3, 3), (1, 1), (1, 1)) == ((0, 0), (0, 0))
    # 'same': d (k - 1) in total, the odd one after (PyTorch)
    assert G.resolve_padding("same", (4, 3), (1, 1), (1, 2)) == ((1, 2), (2, 2))
    assert G.same_padding((2,), (3,)) == ((1, 2),)
    with pytest.raises(ValueError, match="Conv2d: padding='same' needs stride 1"):
        G.resolve_padding("same", (3, 3), (2, 1), (1, 1), "Conv2d")
    with pytest.raises(ValueError, match="Conv2d: padding must be an int, a tuple, 'same' or 'valid'"):
        G.resolve_padding("full", (3, 3), (1, 1), (1, 1), "Conv2d")


def test_output_sizes_hand_worked():
    assert G.conv_output_size(224, 7, 2, 3) == 112
    assert G.conv_output_size(10, 3, 1, (1, 0), 2) == 7          # (10 + 1 - 4 - 1) // 1 + 1
    assert G.conv_transpose_output_size(112, 7, 2, 3, 1) == 224
    assert G.pool_output_size(5, 2, 2, 0, 1, True) == 3           # ceil((5 - 2) / 2) + 1
    assert G.pool_output_size(4, 2, 2, 1, 1, True) == 3           # the 4th window would start in the padding
    assert G.read_extent(3, 3, 2, 2) == 9                         # 2 * 2 + 2 * 2 + 1


def test_conv_geometry_and_validators():
    g = G.conv_geometry((2, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 0), (0, 2)), (1, 2), 2, layer="x")
    assert (g.Ho, g.Wo, g.pads, g.groups) == (4, 8, ((1, 0), (0, 2)), 2)
    with pytest.raises(ValueError, match="Conv2d: kernel of .* larger than the padded input"):
        G.conv_geometry((1, 1, 3, 3), (1, 1, 5, 1), layer="Conv2d")
    with pytest.raises(ValueError, match="stride must be >= 1"):
        G.conv_geometry((1, 1, 3, 3), (1, 1, 1, 1), stride=0)
    with pytest.raises(ValueError, match=r"Conv2d: in_channels \(3\) and out_channels \(4\) must both be divisible"):
        G.check_channels("Conv2d", 3, 4, 2)
    with pytest.raises(ValueError, match="Conv2d: in_channels must be an int >= 1, got 0"):
        G.check_channels("Conv2d", 0, 4, 1)
    with pytest.raises(ValueError, match=r"MaxPool2d: padding \(2, 0\) must be at most half the kernel size \(3, 3\)"):
        G.check_pool_args("MaxPool2d", (3, 3), (1, 1), (2, 0), (1, 1))
    assert G.pool_geometry("MaxPool2d", (1, 1, 7, 6), (3, 2), (2, 2), (1, 0), (1, 1), True) == (4, 3)


def test_output_sizes_match_pytorch_shapes(rng):
    """Sizes against the shapes PyTorch's modules produce on random settings."""
    torch = torch_or_skip()
    for _ in range(60):
        n, k, s, p, d = (int(v) for v in (rng.integers(1, 12), rng.integers(1, 4), rng.integers(1, 4),
                                          rng.integers(0, 3), rng.integers(1, 3)))
        x = torch.zeros(1, 1, n)
        if d * (k - 1) + 1 <= n + 2 * p:
            assert torch.nn.functional.conv1d(x, torch.zeros(1, 1, k), None, s, p, d).shape[-1] == \
                G.conv_output_size(n, k, s, p, d)
        op = int(rng.integers(0, max(s, d)))
        size = G.conv_transpose_output_size(n, k, s, p, op, d)
        if size >= 1:
            assert torch.nn.functional.conv_transpose1d(x, torch.zeros(1, 1, k), None, s, p, op, 1, d).shape[-1] == size
        if p <= k // 2:
            for ceil in (False, True):
                out = G.pool_output_size(n, k, s, p, d, ceil)
                if out >= 1:
                    assert torch.nn.functional.max_pool1d(x, k, s, p, d, ceil).shape[-1] == out
