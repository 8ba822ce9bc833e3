"""FFT convolution: loop reference, PyTorch, gradient checks, dtypes, edge cases and the cost model."""

import numpy as np
import pytest
from conftest import noncontiguous, torch_or_skip

from npcnn.functional.conv import conv2d_backward, conv2d_forward, im2col_cost
from npcnn.functional.conv_fft import conv2d_fft_backward, conv2d_fft_forward, fft_cost
from npcnn.gradcheck import check_function


def _correlate_naive(x, w, b, stride, padding, dilation, groups):
    """Loop reference: out[n, o, i, j] = b[o] + sum_{c,u,v} xpad[n, g*Cg+c, s*i+d*u, s*j+d*v] w[o, c, u, v]."""
    (sh, sw), ((top, bottom), (left, right)), (dh, dw) = stride, padding, dilation
    xpad = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    n_img, _, hp, wp = xpad.shape
    n_out, c_group, kh, kw = w.shape
    ho = (hp - dh * (kh - 1) - 1) // sh + 1
    wo = (wp - dw * (kw - 1) - 1) // sw + 1
    out = np.zeros((n_img, n_out, ho, wo), dtype=x.dtype)
    for n in range(n_img):
        for o in range(n_out):
            g = o // (n_out // groups)
            for i in range(ho):
                for j in range(wo):
                    total = 0.0 if b is None else float(b[o])
                    for c in range(c_group):
                        for u in range(kh):
                            for v in range(kw):
                                total += xpad[n, g * c_group + c, sh * i + dh * u, sw * j + dw * v] * w[o, c, u, v]
                    out[n, o, i, j] = total
    return out


# (x shape, w shape, stride, padding ((top, bottom), (left, right)), dilation, groups)
CONFIGS = {
    "odd_7x9_k3x5": ((2, 3, 7, 9), (4, 3, 3, 5), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "stride2_pad1": ((2, 2, 8, 7), (3, 2, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
    "stride3_asym_pad": ((2, 2, 9, 10), (3, 2, 3, 2), (3, 3), ((2, 0), (1, 3)), (1, 1), 1),
    "stride_2x3": ((1, 2, 9, 11), (2, 2, 3, 3), (2, 3), ((1, 0), (0, 2)), (1, 1), 1),
    "dilation2": ((2, 2, 9, 8), (3, 2, 3, 3), (1, 1), ((2, 2), (1, 2)), (2, 2), 1),
    "dilation_2x1_stride2": ((2, 2, 9, 8), (2, 2, 3, 2), (2, 1), ((1, 1), (0, 0)), (2, 1), 1),
    "groups2": ((2, 4, 7, 6), (6, 2, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 2),
    "depthwise": ((2, 3, 7, 7), (6, 1, 3, 3), (2, 2), ((1, 2), (2, 1)), (1, 1), 3),
    "batch1": ((1, 3, 6, 5), (2, 3, 2, 3), (1, 1), ((0, 1), (1, 0)), (1, 1), 1),
    "kernel_1x1": ((2, 3, 5, 6), (4, 3, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "kernel_1x1_stride2_pad": ((2, 3, 5, 6), (4, 3, 1, 1), (2, 2), ((1, 0), (0, 1)), (1, 1), 1),
    "kernel_is_input": ((2, 3, 5, 7), (4, 3, 5, 7), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "large_kernel_7x7": ((2, 2, 12, 11), (3, 2, 7, 7), (1, 1), ((3, 3), (3, 3)), (1, 1), 1),
}


def _arrays(rng, x_shape, w_shape, dtype=np.float64, bias=True):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype) if bias else None
    return x, w, b


def _rel(a, ref):
    """Largest difference relative to the reference's scale."""
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - ref)) / max(np.max(np.abs(ref)), 1e-300))


@pytest.mark.parametrize("name", CONFIGS)
@pytest.mark.parametrize("bias", [True, False])
def test_forward_matches_loop_reference(rng, name, bias):
    x_shape, w_shape, stride, padding, dilation, groups = CONFIGS[name]
    x, w, b = _arrays(rng, x_shape, w_shape, bias=bias)
    out, _ = conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)
    ref = _correlate_naive(x, w, b, stride, padding, dilation, groups)
    assert out.shape == ref.shape
    assert _rel(out, ref) < 1e-10


@pytest.mark.parametrize("name", CONFIGS)
def test_gradcheck(rng, name):
    x_shape, w_shape, stride, padding, dilation, groups = CONFIGS[name]
    x, w, b = _arrays(rng, x_shape, w_shape)

    def forward(x, w, b):
        return conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)

    check_function(forward, conv2d_fft_backward, [x, w, b], names=["x", "weight", "bias"],
                   max_entries=150).assert_ok()


def test_noncontiguous_input(rng):
    x_shape, w_shape, stride, padding, dilation, groups = CONFIGS["stride3_asym_pad"]
    x, w, b = _arrays(rng, x_shape, w_shape)
    view = noncontiguous(x)
    out, cache = conv2d_fft_forward(view, w, b, stride, padding, dilation, groups)
    assert _rel(out, _correlate_naive(x, w, b, stride, padding, dilation, groups)) < 1e-10

    def forward(x, w, b):
        return conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)

    check_function(forward, conv2d_fft_backward, [view, w, b], names=["x", "weight", "bias"]).assert_ok()


def _torch_reference(torch, x, w, b, stride, padding, dilation, groups, dout):
    """PyTorch's conv2d (asymmetric padding through F.pad) and its gradients, as NumPy arrays."""
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.tensor(b, requires_grad=True)
    (top, bottom), (left, right) = padding
    padded = torch.nn.functional.pad(tx, (left, right, top, bottom))
    out = torch.nn.functional.conv2d(padded, tw, tb, stride, 0, dilation, groups)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), tx.grad.numpy(), tw.grad.numpy(), tb.grad.numpy()


@pytest.mark.torch
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-5)])
@pytest.mark.parametrize("name", CONFIGS)
def test_matches_pytorch(rng, name, dtype, tol):
    torch = torch_or_skip()
    x_shape, w_shape, stride, padding, dilation, groups = CONFIGS[name]
    x, w, b = _arrays(rng, x_shape, w_shape, dtype)
    out, cache = conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = conv2d_fft_backward(dout, cache)
    refs = _torch_reference(torch, x, w, b, stride, padding, dilation, groups, dout)
    for mine, ref in zip((out,) + grads, refs):
        assert mine.shape == ref.shape and mine.dtype == dtype
        assert _rel(mine, ref.astype(np.float64)) < tol


@pytest.mark.torch
def test_matches_pytorch_larger_float32(rng):
    """A bigger case where float32 rounding in the transforms has room to accumulate."""
    torch = torch_or_skip()
    x, w, b = _arrays(rng, (4, 16, 32, 32), (24, 8, 11, 11), np.float32)
    stride, padding, dilation, groups = (1, 1), ((5, 5), (5, 5)), (1, 1), 2
    out, cache = conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    grads = conv2d_fft_backward(dout, cache)
    refs = _torch_reference(torch, x, w, b, stride, padding, dilation, groups, dout)
    for mine, ref in zip((out,) + grads, refs):
        assert _rel(mine, ref.astype(np.float64)) < 1e-5


def test_float32_stays_float32(rng):
    x, w, b = _arrays(rng, (2, 4, 7, 9), (6, 2, 3, 5), np.float32)
    out, cache = conv2d_fft_forward(x, w, b, (2, 1), ((1, 0), (2, 1)), (2, 1), 2)
    dx, dw, db = conv2d_fft_backward(rng.standard_normal(out.shape).astype(np.float32), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == np.float32
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert all(a.flags["C_CONTIGUOUS"] for a in (out, dx, dw))


def test_dout_is_not_modified(rng):
    x, w, b = _arrays(rng, (2, 2, 7, 7), (3, 2, 3, 3))
    out, cache = conv2d_fft_forward(x, w, b, (2, 2), ((1, 1), (1, 1)), (1, 1), 1)
    dout = rng.standard_normal(out.shape)
    before = dout.copy()
    conv2d_fft_backward(dout, cache)
    np.testing.assert_array_equal(dout, before)


def test_skipped_gradients_are_none(rng):
    x, w, _ = _arrays(rng, (2, 2, 6, 6), (3, 2, 3, 3), bias=False)
    out, cache = conv2d_fft_forward(x, w)
    dout = rng.standard_normal(out.shape)
    full = conv2d_fft_backward(dout, cache)
    assert full[2] is None
    dx, dw, _ = conv2d_fft_backward(dout, cache, need_dw=False)
    assert dw is None and np.array_equal(dx, full[0])
    dx, dw, _ = conv2d_fft_backward(dout, cache, need_dx=False)
    assert dx is None and np.array_equal(dw, full[1])
    assert conv2d_fft_backward(dout, cache, need_dx=False, need_dw=False) == (None, None, None)


@pytest.mark.parametrize("x_shape, w_shape, kwargs, message", [
    ((2, 3, 6), (4, 3, 3, 3), {}, "expected input"),
    ((2, 3, 6, 6), (4, 2, 3, 3), {}, "weight expects 2 input channels"),
    ((2, 4, 6, 6), (3, 2, 3, 3), {"groups": 2}, "divisible"),
    ((2, 3, 4, 4), (4, 3, 5, 3), {}, "larger than"),
    ((2, 3, 4, 4), (4, 3, 3, 3), {"dilation": (2, 2)}, "larger than"),
    ((2, 3, 6, 6), (4, 3, 3, 3), {"stride": (0, 1)}, "stride must be >= 1"),
])
def test_bad_input_is_a_clear_error(rng, x_shape, w_shape, kwargs, message):
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    with pytest.raises(ValueError, match=message) as info:
        conv2d_fft_forward(x, w, **kwargs)
    assert "conv2d_fft" in str(info.value)


def test_bad_bias_shape(rng):
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d_fft: expected bias of shape \(3,\)"):
        conv2d_fft_forward(x, w, np.zeros(4))


def test_im2col_cost_counts_the_gemm():
    # Ho = (10 + 1 + 2 - 2*(3-1) - 1)//2 + 1 = 5, Wo = (9 - 4 - 1)//1 + 1 = 5; Cg = 2.
    flops = im2col_cost((3, 4, 10, 9), (6, 2, 3, 4), (2, 1), ((1, 2), (0, 0)), (2, 1), 2)
    assert flops == 2 * 3 * 6 * 5 * 6 * 2 * 3 * 4


def test_fft_cost_model():
    x_shape, w_shape, padding = (8, 16, 32, 32), (16, 16, 11, 11), ((5, 5), (5, 5))
    # Padded 42 -> fast real length 45 (3*3*5): 45*45 points, 45 * 23 frequencies.
    p = 45 * 45
    transforms = (8 * 16 + 16 * 16 + 8 * 16) * 2.5 * p * np.log2(p)
    assert fft_cost(x_shape, w_shape, (1, 1), padding, (1, 1), 1) == pytest.approx(
        transforms + 8 * 8 * 16 * 16 * 45 * 23)
    # The FFT computes every stride-1 output anyway: stride enters only through the read extent
    # (2*(16-1) + 11 = 41 of the 42 padded rows: next fast length 45 again), im2col's GEMM shrinks 4x.
    assert fft_cost(x_shape, w_shape, (2, 2), padding, (1, 1), 1) == fft_cost(x_shape, w_shape, (1, 1), padding,
                                                                               (1, 1), 1)
    # A stride that skips most rows shrinks the transform: extent 8*(4-1) + 11 = 35 -> 36.
    p36 = 36 * 36
    assert fft_cost(x_shape, w_shape, (8, 8), padding) == pytest.approx(
        (8 * 16 + 16 * 16 + 8 * 16) * 2.5 * p36 * np.log2(p36) + 8 * 8 * 16 * 16 * 36 * 19)
    # Groups: G products of (N x Cg) by (Cg x O/G) per frequency.
    grouped = fft_cost(x_shape, (16, 4, 11, 11), (1, 1), padding, (1, 1), 4)
    assert grouped == pytest.approx((8 * 16 + 16 * 4 + 8 * 16) * 2.5 * p * np.log2(p) + 8 * 8 * 4 * 16 * 45 * 23)
    assert fft_cost(x_shape, w_shape, (1, 1), padding, (1, 1), 1) < im2col_cost(x_shape, w_shape, (1, 1), padding,
                                                                                 (1, 1), 1)
    # A 1x1 kernel is a plain GEMM: the FFT can only lose.
    small = (16, 16, 1, 1)
    assert fft_cost(x_shape, small) > im2col_cost(x_shape, small)


# ----------------------------------------------------------------------------- regressions (issue 14)

# The three configurations of issue 14 where windows read only padding: the exact answer (output,
# dx or dW) is exactly zero, and the FFT used to fill it with its rounding (5e-5 .. 2e-3 relative
# to nothing). Unread positions are now left out of the transforms.
STRUCTURAL_ZEROS = {
    "1x1_stride3_pad01": ((1, 5, 3, 1), (4, 5, 1, 1), (3, 3), ((0, 0), (1, 1)), (1, 1), 1),
    "4x2_pad2_dil3": ((3, 3, 13, 1), (6, 3, 4, 2), (1, 1), ((2, 2), (2, 2)), (3, 3), 1),
    "2x2_stride4_pad21_groups3": ((1, 3, 1, 7), (3, 1, 2, 2), (4, 4), ((2, 2), (1, 1)), (1, 1), 3),
}


@pytest.mark.parametrize("name", STRUCTURAL_ZEROS)
def test_windows_reading_only_padding_are_exact(rng, name):
    x_shape, w_shape, stride, padding, dilation, groups = STRUCTURAL_ZEROS[name]
    x, w, b = _arrays(rng, x_shape, w_shape)
    ref_out, ref_cache = conv2d_forward(x, w, b, stride, padding, dilation, groups)
    out, cache = conv2d_fft_forward(x, w, b, stride, padding, dilation, groups)
    dout = rng.standard_normal(out.shape)
    ref = (ref_out,) + conv2d_backward(dout, ref_cache)
    for mine, expected in zip((out,) + conv2d_fft_backward(dout, cache), ref):
        np.testing.assert_allclose(mine, expected, rtol=1e-10, atol=1e-300)
    assert not np.any(ref[1]) or not np.any(ref[2]) or not np.any(ref[0] - b.reshape(1, -1, 1, 1))


def test_stride_larger_than_kernel_skips_the_unread_columns(rng):
    """Stride 3 with a 1x1 kernel reads every third column: the others get exactly zero gradient."""
    x, w, b = _arrays(rng, (2, 2, 4, 7), (3, 2, 1, 1))
    out, cache = conv2d_fft_forward(x, w, b, (1, 3), ((0, 0), (0, 0)), (1, 1), 1)
    dx, dw, _ = conv2d_fft_backward(rng.standard_normal(out.shape), cache)
    assert np.all(dx[..., [1, 2, 4, 5]] == 0) and np.all(dx[..., [0, 3, 6]] != 0)


def test_non_finite_input_documented_behaviour(rng):
    """algo="fft": an inf that a window reads makes its whole sample NaN (the transforms mix all
    positions); an inf that no window reads changes nothing; other samples are untouched."""
    x, w, b = _arrays(rng, (2, 2, 9, 9), (3, 2, 3, 3))
    x[0, 1, 4, 4] = np.inf
    with np.errstate(invalid="ignore"):
        out, _ = conv2d_fft_forward(x, w, b)
    assert np.all(np.isnan(out[0])) and np.all(np.isfinite(out[1]))
    x[0, 1, 4, 4] = 0.0
    x[0, 1, 8, 8] = np.inf  # stride 4 with a 3x3 kernel on 9 rows reads rows 0-2 and 4-6 only
    out, _ = conv2d_fft_forward(x, w, b, (4, 4))
    ref, _ = conv2d_forward(x, w, b, (4, 4))
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-12)
