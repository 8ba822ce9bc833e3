"""Pooling kernels: output-size rule, loop twins, tie and padding rules, kernel gradient checks."""

import itertools

import numpy as np
import pytest

from conftest import torch_or_skip
from npcnn.functional import pooling as P
from npcnn.functional.geometry import pool_geometry, pool_output_size
from npcnn.gradcheck import check_function


def distinct(shape, rng, spacing=0.01):
    """Values without ties (a permutation spaced by ``spacing`` >> the gradcheck eps of 1e-6),
    so max pooling's arg-max is unique and the max is differentiable."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) - size / 2) * spacing


# ----------------------------------------------------------------------------- output size


@pytest.mark.parametrize("args, expected", [
    # (size, kernel, stride, padding, dilation, ceil_mode) -> out, worked by hand
    ((7, 3, 2, 0, 1, False), 3),   # floor((7 - 3) / 2) + 1
    ((7, 3, 2, 1, 1, False), 4),   # floor((7 + 2 - 3) / 2) + 1
    ((6, 3, 2, 0, 1, False), 2),   # floor(3 / 2) + 1
    ((6, 3, 2, 0, 1, True), 3),    # ceil(3 / 2) + 1; last window starts at 4 < 6
    ((5, 2, 2, 1, 1, True), 3),    # ceil(5 / 2) + 1 = 4, but window 3 starts at 3*2 = 6 >= 5 + 1: dropped
    ((4, 2, 2, 1, 1, True), 3),    # ceil(4 / 2) + 1 = 3; window 2 starts at 4 - 1 = 3: kept
    ((3, 2, 2, 1, 1, True), 2),    # ceil(3 / 2) + 1 = 3; window 2 starts at 4 >= 3 + 1: dropped
    ((10, 3, 1, 0, 2, False), 6),  # dilated kernel spans 5: 10 - 5 + 1
    ((10, 3, 3, 1, 2, True), 4),   # ceil((12 - 5) / 3) + 1 = 4; window 3 starts at 8 < 11
    ((112, 3, 2, 1, 1, False), 56),  # ResNet's stem max pool
    ((55, 3, 2, 0, 1, True), 27),  # AlexNet/GoogLeNet style ceil_mode
])
def test_output_size_hand_worked(args, expected):
    assert pool_output_size(*args) == expected


def test_output_size_matches_pytorch_formula_exhaustively():
    torch = torch_or_skip()
    F = torch.nn.functional
    for size, k, s, p, d, ceil in itertools.product(range(1, 9), range(1, 5), range(1, 4), range(0, 3),
                                                    range(1, 3), (False, True)):
        if p > k // 2:
            continue
        x = torch.zeros(1, 1, size, 1)
        try:
            expected = F.max_pool2d(x, (k, 1), (s, 1), (p, 0), (d, 1), ceil).shape[2]
        except RuntimeError:
            expected = 0  # PyTorch refuses: output too small
        got = pool_output_size(size, k, s, p, d, ceil)
        assert max(got, 0) == expected, (size, k, s, p, d, ceil)


def test_geometry_errors():
    with pytest.raises(ValueError, match="at most half the kernel"):
        pool_geometry("MaxPool2d", (1, 1, 8, 8), (3, 3), (1, 1), (2, 2), (1, 1), False)
    with pytest.raises(ValueError, match="smaller than the"):
        pool_geometry("MaxPool2d", (1, 1, 2, 8), (3, 3), (1, 1), (0, 0), (1, 1), False)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        pool_geometry("AvgPool2d", (1, 1, 8, 8), (2, 2), (0, 1), (0, 0), (1, 1), False)


# ----------------------------------------------------------------------------- loop twins

CONFIGS = [
    # kernel, stride, padding, dilation, ceil_mode, shape
    (2, 2, 0, 1, False, (2, 3, 8, 6)),    # tiling fast path
    (3, 2, 1, 1, False, (2, 3, 7, 9)),    # overlap + padding, odd sizes
    (3, 2, 0, 1, True, (1, 2, 8, 8)),     # ceil_mode overhang, batch 1
    ((3, 2), (1, 2), (1, 0), (2, 1), True, (2, 2, 9, 7)),  # rectangular, dilation
    (2, 3, 1, 1, True, (2, 2, 7, 5)),     # stride > kernel
    (1, 1, 0, 1, False, (1, 1, 3, 3)),
]


@pytest.mark.parametrize("k, s, p, d, ceil, shape", CONFIGS)
def test_max_pool_matches_loop_twin(k, s, p, d, ceil, shape, rng):
    x = distinct(shape, rng)
    out, cache = P.max_pool2d_forward(x, k, s, p, d, ceil)
    ref, ref_index = P.max_pool2d_naive(x, k, s, p, d, ceil)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(P.max_pool2d_indices(cache), ref_index)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(P.max_pool2d_backward(dout, cache),
                               P.max_pool2d_backward_naive(dout, ref_index, x.shape), rtol=0, atol=1e-12)


@pytest.mark.parametrize("k, s, p, d, ceil, shape", CONFIGS)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_matches_loop_twin(k, s, p, d, ceil, shape, count_include_pad, rng):
    x = rng.standard_normal(shape)
    out, _ = P.avg_pool2d_forward(x, k, s, p, ceil, count_include_pad)
    np.testing.assert_allclose(out, P.avg_pool2d_naive(x, k, s, p, ceil, count_include_pad), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("norm_type, k, s, ceil", [(2, 2, 2, False), (3, 3, 2, True), (1.5, (2, 3), 1, False)])
def test_lp_pool_matches_loop_twin(norm_type, k, s, ceil, rng):
    x = rng.uniform(0.5, 2.0, (2, 3, 7, 8))  # positive: x^p is real for fractional p
    out, _ = P.lp_pool2d_forward(x, norm_type, k, s, ceil)
    np.testing.assert_allclose(out, P.lp_pool2d_naive(x, norm_type, k, s, ceil), rtol=1e-12)


@pytest.mark.parametrize("shape, size", [((2, 3, 7, 9), (3, 4)), ((1, 2, 5, 5), (5, 5)), ((2, 1, 4, 6), (1, 1)),
                                         ((2, 2, 6, 5), (None, 2)), ((1, 1, 3, 3), (5, 4))])
def test_adaptive_avg_pool_matches_loop_twin(shape, size, rng):
    x = rng.standard_normal(shape)
    out, _ = P.adaptive_avg_pool2d_forward(x, size)
    np.testing.assert_allclose(out, P.adaptive_avg_pool2d_naive(x, size), rtol=1e-12, atol=1e-14)


def test_adaptive_bounds_are_pytorchs():
    # 10 -> 4: starts floor(i*10/4) = 0, 2, 5, 7; ends ceil((i+1)*10/4) = 3, 5, 8, 10 (windows overlap)
    assert P.adaptive_bounds(10, 4) == [(0, 3), (2, 5), (5, 8), (7, 10)]
    assert P.adaptive_bounds(3, 5) == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3)]


# ----------------------------------------------------------------------------- pitfalls


def test_max_pool_ties_pick_the_first_position_of_the_window():
    x = np.ones((1, 1, 2, 2))
    out, cache = P.max_pool2d_forward(x, 2)
    assert P.max_pool2d_indices(cache).item() == 0
    dx = P.max_pool2d_backward(np.ones_like(out), cache)
    np.testing.assert_array_equal(dx, [[[[1.0, 0.0], [0.0, 0.0]]]])  # one winner, not four
    x = np.ones((1, 1, 3, 3))
    out, cache = P.max_pool2d_forward(x, 2, 1)  # overlapping path
    np.testing.assert_array_equal(P.max_pool2d_indices(cache), [[[[0, 1], [3, 4]]]])


def test_max_pool_ties_match_pytorch():
    torch = torch_or_skip()
    x = np.round(np.random.default_rng(0).standard_normal((2, 3, 7, 7)))  # many ties
    for args in [(2, 2, 0, 1, False), (3, 2, 1, 1, True), (3, 1, 1, 2, False)]:
        out, cache = P.max_pool2d_forward(x, *args)
        t_out, t_index = torch.nn.functional.max_pool2d(torch.from_numpy(x), *args, return_indices=True)
        np.testing.assert_array_equal(out, t_out.numpy())
        np.testing.assert_array_equal(P.max_pool2d_indices(cache), t_index.numpy())


def test_max_pool_padding_is_minus_infinity():
    x = -np.arange(1.0, 17.0).reshape(1, 1, 4, 4)  # all negative: a zero padding would win
    out, _ = P.max_pool2d_forward(x, 3, 2, 1)
    assert (out < 0).all()
    np.testing.assert_array_equal(out, [[[[-1.0, -2.0], [-5.0, -6.0]]]])  # windows rows/cols [-1, 2), [1, 4)


def test_avg_pool_divisor_hand_worked():
    x = np.ones((1, 1, 3, 3))
    # kernel 2, stride 2, padding 1 -> windows [-1, 1), [1, 3) per axis; corner window has 1 real entry
    with_pad, _ = P.avg_pool2d_forward(x, 2, 2, 1, False, True)
    without, _ = P.avg_pool2d_forward(x, 2, 2, 1, False, False)
    np.testing.assert_allclose(with_pad, [[[[0.25, 0.5], [0.5, 1.0]]]])
    np.testing.assert_allclose(without, np.ones((1, 1, 2, 2)))
    # ceil_mode: kernel 2 stride 2 on 3 -> windows [0, 2), [2, 4): the overhang is not counted
    ceil, _ = P.avg_pool2d_forward(x, 2, 2, 0, True, True)
    np.testing.assert_allclose(ceil, np.ones((1, 1, 2, 2)))


def test_fast_path_equals_general_path(rng):
    x = distinct((2, 3, 6, 8), rng)
    fast, fast_cache = P.max_pool2d_forward(x, 2, 2)  # stride == kernel, 6 x 8 divisible: fast path
    assert fast_cache[0] == "tiles"
    # The same blocks plus one extra column that no window reaches: still disjoint blocks (floor
    # mode drops the column), so still the fast path; with padding 1 the general path.
    wide = np.concatenate([x, np.full((2, 3, 6, 1), 1e9)], axis=3)
    cropped, cropped_cache = P.max_pool2d_forward(wide, 2, 2)
    assert cropped_cache[0] == "tiles"
    np.testing.assert_array_equal(cropped, fast)
    dout = rng.standard_normal(fast.shape)
    dx_cropped = P.max_pool2d_backward(dout, cropped_cache)
    np.testing.assert_array_equal(dx_cropped[..., :8], P.max_pool2d_backward(dout, fast_cache))
    assert not dx_cropped[..., 8].any()
    assert P.max_pool2d_forward(x, 2, 2, 1)[1][0] == "windows"
    avg_fast, avg_cache = P.avg_pool2d_forward(x, 2, 2)
    avg_cropped, avg_cropped_cache = P.avg_pool2d_forward(wide, 2, 2)
    assert avg_cache[3] is None and avg_cropped_cache[3] is None
    np.testing.assert_allclose(avg_fast, avg_cropped, rtol=1e-14)
    np.testing.assert_allclose(P.avg_pool2d_backward(dout, avg_cache), np.repeat(np.repeat(dout, 2, 2), 2, 3) / 4)
    dx_avg = P.avg_pool2d_backward(dout, avg_cropped_cache)
    np.testing.assert_allclose(dx_avg[..., :8], np.repeat(np.repeat(dout, 2, 2), 2, 3) / 4)
    assert not dx_avg[..., 8].any()


@pytest.mark.parametrize("k, shape", [(2, (2, 3, 6, 8)), ((2, 3), (1, 2, 7, 10)), (3, (2, 1, 9, 5)), (1, (1, 2, 3, 3))])
@pytest.mark.parametrize("noncontig", [False, True])
def test_tiling_fast_path_matches_loop_twin_with_ties(rng, k, shape, noncontig):
    """Disjoint windows (stride == kernel, sizes not necessarily divisible) on integer inputs full of
    ties: output, indices and gradient equal the loop twin's (the first maximum of a window wins,
    as in PyTorch), and NaN wins its window as in the general path."""
    x = rng.integers(0, 3, shape).astype(np.float64)
    if noncontig:
        from conftest import noncontiguous

        x = noncontiguous(x)
    out, cache = P.max_pool2d_forward(x, k)
    assert cache[0] == "tiles"
    ref, index = P.max_pool2d_naive(x, k)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(P.max_pool2d_indices(cache), index)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_array_equal(P.max_pool2d_backward(dout, cache), P.max_pool2d_backward_naive(dout, index, x.shape))
    x = np.array(x)
    x[0, 0, 0, 0] = x[0, 0, -1, -1] = np.nan
    for padding in (0, 1):  # fast path and general path route a NaN window the same way
        if padding and min(k if isinstance(k, tuple) else (k,)) < 2:
            continue
        out, cache = P.max_pool2d_forward(x, k, None, padding)
        assert np.isnan(out[0, 0]).any()
        dx = P.max_pool2d_backward(np.ones_like(out), cache)
        assert dx[0, 0, 0, 0] == 1.0  # the first NaN of its window
    try:
        import torch
    except ImportError:
        return
    tx = torch.tensor(np.nan_to_num(x, nan=5.0), requires_grad=True)
    t_out, t_index = torch.nn.functional.max_pool2d(tx, k, return_indices=True)
    out, cache = P.max_pool2d_forward(np.nan_to_num(x, nan=5.0), k)
    np.testing.assert_array_equal(P.max_pool2d_indices(cache), t_index.numpy())
    t_out.backward(torch.tensor(dout))
    np.testing.assert_array_equal(P.max_pool2d_backward(dout, cache), tx.grad.numpy())


# ----------------------------------------------------------------------------- kernel gradients


@pytest.mark.parametrize("k, s, p, d, ceil, shape", CONFIGS)
def test_max_pool_kernel_gradcheck(k, s, p, d, ceil, shape, rng):
    x = distinct(shape, rng)
    check_function(lambda a: P.max_pool2d_forward(a, k, s, p, d, ceil),
                   lambda g, c: (P.max_pool2d_backward(g, c),), [x]).assert_ok()


@pytest.mark.parametrize("k, s, p, d, ceil, shape", CONFIGS)
def test_avg_pool_kernel_gradcheck(k, s, p, d, ceil, shape, rng):
    x = rng.standard_normal(shape)
    for count_include_pad in (True, False):
        check_function(lambda a: P.avg_pool2d_forward(a, k, s, p, ceil, count_include_pad),
                       lambda g, c: (P.avg_pool2d_backward(g, c),), [x]).assert_ok()


@pytest.mark.parametrize("k, shape", [(2, (2, 2, 7, 5)), ((3, 2), (1, 3, 8, 7))])
def test_tiling_fast_path_gradcheck_with_dropped_rows(k, shape, rng):
    x = distinct(shape, rng)
    assert P.max_pool2d_forward(x, k)[1][0] == "tiles"
    check_function(lambda a: P.max_pool2d_forward(a, k), lambda g, c: (P.max_pool2d_backward(g, c),), [x]).assert_ok()
    check_function(lambda a: P.avg_pool2d_forward(a, k), lambda g, c: (P.avg_pool2d_backward(g, c),), [x]).assert_ok()
