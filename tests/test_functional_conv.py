"""Convolution kernels: im2col/GEMM against the loop twins, gradient checks, chunking, errors."""

import tracemalloc

import numpy as np
import pytest
from conftest import noncontiguous, torch_or_skip

from npcnn import backend, threads
from npcnn.functional import conv as F
from npcnn.functional.geometry import conv_output_size, conv_transpose_output_size
from npcnn.functional.padding import pad_backward, pad_backward_naive, pad_forward
from npcnn.gradcheck import check_function

# (N, C, H, W, O, kh, kw, stride, padding, dilation, groups)
CONFIGS = [
    (2, 3, 7, 6, 4, 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    (1, 4, 9, 8, 6, 3, 2, (2, 1), ((1, 0), (2, 1)), (2, 1), 2),   # batch 1, asymmetric everything
    (3, 4, 6, 7, 4, 3, 3, (2, 2), ((1, 1), (1, 1)), (1, 1), 4),   # depthwise, odd sizes
    (2, 3, 5, 5, 6, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), 3),   # 1x1 fast path, groups
    (2, 4, 5, 6, 2, 1, 1, (1, 1), ((0, 0), (0, 0)), (1, 1), 1),   # 1x1 fast path
    (2, 2, 6, 6, 3, 1, 1, (2, 2), ((1, 0), (0, 1)), (1, 1), 1),   # 1x1 with stride/padding: general path
    (2, 2, 8, 9, 3, 3, 3, (3, 2), ((0, 0), (0, 0)), (2, 3), 1),   # stride and dilation, leftover pixels
    (1, 2, 3, 3, 2, 3, 3, (1, 1), ((0, 0), (0, 0)), (1, 1), 1),   # kernel == input: 1x1 output
    (2, 4, 6, 7, 4, 3, 2, (1, 1), ((1, 2), (0, 1)), (2, 1), 2),   # flat layout with dilation, groups
]


def test_configs_cover_both_column_layouts():
    flags = {F._is_flat(F.conv_geometry((c[0], c[1], c[2], c[3]), (c[4], c[1] // c[10], c[5], c[6]), *c[7:]))
             for c in CONFIGS if c[5:7] != (1, 1)}
    assert flags == {True, False}


def _arrays(rng, cfg, dtype=np.float64):
    N, C, H, W, O, kh, kw, stride, padding, dilation, groups = cfg
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((O, C // groups, kh, kw)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv2d_matches_loop_twin(rng, cfg):
    x, w, b, kw = _arrays(rng, cfg)
    out, cache = F.conv2d_forward(x, w, b, **kw)
    np.testing.assert_allclose(out, F.conv2d_naive(x, w, b, **kw), rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = F.conv2d_backward(dout, cache)
    ref = F.conv2d_naive_backward(dout, x, w, **kw)
    for got, expected in zip((dx, dw, db), ref):
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_conv2d_gradcheck(rng, cfg):
    x, w, b, kw = _arrays(rng, cfg)
    check_function(lambda x, w, b: F.conv2d_forward(x, w, b, **kw), F.conv2d_backward, [x, w, b],
                   names=["x", "w", "b"]).assert_ok()


def test_conv2d_noncontiguous_input_and_no_bias(rng):
    x, w, _, kw = _arrays(rng, CONFIGS[1])
    xn = noncontiguous(x)
    out, cache = F.conv2d_forward(xn, w, None, **kw)
    np.testing.assert_allclose(out, F.conv2d_naive(x, w, None, **kw), rtol=1e-10, atol=1e-10)
    dx, dw, db = F.conv2d_backward(np.ones_like(out), cache)
    assert db is None
    check_function(lambda x, w: F.conv2d_forward(x, w, None, **kw), F.conv2d_backward, [xn, w]).assert_ok()


def test_conv2d_need_flags(rng):
    x, w, b, kw = _arrays(rng, CONFIGS[0])
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    full = F.conv2d_backward(dout, cache)
    dx, dw, db = F.conv2d_backward(dout, cache, need_dx=False)
    assert dx is None and np.array_equal(dw, full[1])
    dx, dw, db = F.conv2d_backward(dout, cache, need_dw=False)
    assert dw is None and np.array_equal(dx, full[0])


@pytest.mark.parametrize("cfg", [CONFIGS[0], CONFIGS[2], CONFIGS[4]])
def test_float32_stays_float32_and_dout_untouched(rng, cfg):
    x, w, b, kw = _arrays(rng, cfg, np.float32)
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    before = dout.copy()
    grads = F.conv2d_backward(dout, cache)
    assert out.dtype == np.float32 and all(g.dtype == np.float32 for g in grads)
    assert np.array_equal(dout, before)
    np.testing.assert_allclose(out, F.conv2d_naive(x.astype(np.float64), w.astype(np.float64),
                                                    b.astype(np.float64), **kw), rtol=1e-4, atol=1e-4)


# ----------------------------------------------------------------------------- im2col / col2im


def test_im2col_layout_and_col2im_adjoint(rng):
    x = rng.standard_normal((2, 3, 6, 5))
    cols = F.im2col(x, (3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2))
    xpad = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 1)))
    Ho, Wo = conv_output_size(6, 3, 2, (1, 0)), conv_output_size(5, 2, 1, (0, 1), 2)
    assert cols.shape == (3 * 3 * 2, 2 * Ho * Wo)
    # cols[(c, i, j), (n, y, x)] = xpad[n, c, 2y + i, x + 2j]
    c, i, j, n, y, x_ = 2, 1, 1, 1, 2, 1
    assert cols[(c * 3 + i) * 2 + j, (n * Ho + y) * Wo + x_] == xpad[n, c, 2 * y + i, x_ + 2 * j]
    # col2im is the adjoint of im2col: <im2col(x), c> = <x, col2im(c)>
    other = rng.standard_normal(cols.shape)
    back = F.col2im(other, x.shape, (3, 2), stride=(2, 1), padding=((1, 0), (0, 1)), dilation=(1, 2))
    np.testing.assert_allclose((cols * other).sum(), (x * back).sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("cap", [1944, 5000, 10 ** 9])  # one output row of columns (3*3*3*9 float64), a few, all
def test_chunking_gives_identical_results(rng, cap):
    x, w, b, kw = _arrays(rng, (5, 3, 7, 7, 4, 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), 1))
    out, cache = F.conv2d_forward(x, w, b, max_buffer_bytes=cap, **kw)
    ref, ref_cache = F.conv2d_forward(x, w, b, **kw)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for got, expected in zip(F.conv2d_backward(dout, cache), F.conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("workers", [2, 3])
@pytest.mark.parametrize("config", [
    (9, 3, 7, 7, 4, 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # flat layout
    (8, 4, 9, 8, 6, 3, 2, (2, 1), ((0, 1), (2, 0)), (1, 2), 2),  # strided, dilated, groups
])
def test_chunks_shared_by_threads_give_the_same_bits(rng, monkeypatch, workers, config):
    # small chunks (about one sample each) so that every thread gets several; the answer must
    # not depend on which thread took which chunk, and match the one-thread run bit for bit
    x, w, b, kw = _arrays(rng, config)
    monkeypatch.setattr(F, "CHUNK_TARGET_BYTES", 1)
    with threads.num_workers(1):
        out1, cache1 = F.conv2d_forward(x, w, b, **kw)
        dout = rng.standard_normal(out1.shape)
        grads1 = F.conv2d_backward(dout, cache1)
    for _ in range(3):
        before = threads.load_state()["calls"]
        with threads.num_workers(workers):
            out, cache = F.conv2d_forward(x, w, b, **kw)
            grads = F.conv2d_backward(dout, cache)
        assert threads.load_state()["calls"] > before  # the chunks really were shared
        np.testing.assert_array_equal(out, out1)
        for got, want in zip(grads, grads1):
            np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(out1, F.conv2d_naive(x, w, b, **kw), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("per_sample", [True, False])
@pytest.mark.parametrize("cfg", CONFIGS)
def test_weight_gradient_one_product_or_one_per_sample(rng, monkeypatch, cfg, per_sample):
    # both ways of forming dW (see _gradients) on every configuration
    monkeypatch.setattr(F, "PER_SAMPLE_DW_ENTRIES", 10 ** 9 if per_sample else 0)
    monkeypatch.setattr(F, "PER_SAMPLE_DW_MIN_POSITIONS", 1)
    x, w, b, kw = _arrays(rng, cfg)
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    dw = F.conv2d_backward(dout, cache, need_dx=False)[1]
    np.testing.assert_allclose(dw, F.conv2d_naive_backward(dout, x, w, **kw)[1], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("by_convolution", [True, False])
def test_input_gradient_as_a_convolution_of_dout(rng, monkeypatch, by_convolution):
    # dx of stride-1 "same"-padded convolutions, as a convolution of dout with the flipped
    # kernel or by col2im, on random configurations (groups, dilation, asymmetric padding)
    monkeypatch.setattr(F, "DX_CONV_MIN_CHANNELS", 1 if by_convolution else 10 ** 9)
    taken = 0
    for _ in range(60):
        groups = int(rng.choice([1, 1, 2, 3]))
        C, O = groups * int(rng.integers(1, 3)), groups * int(rng.integers(1, 3))
        kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        # pads near d*(k-1)/2 each side ("same"-like: where the convolution route applies) or wider
        pads = tuple((int(rng.integers(d * (k - 1) // 2, d * (k - 1) + 2)), int(rng.integers(0, d * (k - 1) + 2)))
                     for k, d in ((kh, dh), (kw, dw)))
        if rng.random() < 0.5:
            pads = tuple((d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) for k, d in ((kh, dh), (kw, dw)))
        H, W = int(rng.integers(dh * (kh - 1) + 1, 10)), int(rng.integers(dw * (kw - 1) + 1, 10))
        x, w = rng.standard_normal((2, C, H, W)), rng.standard_normal((O, C // groups, kh, kw))
        kw_ = dict(stride=(1, 1), padding=pads, dilation=(dh, dw), groups=groups)
        out, cache = F.conv2d_forward(x, w, None, **kw_)
        taken += F._dx_by_convolution(cache.saved[3])
        dout = rng.standard_normal(out.shape)
        dx = F.conv2d_backward(dout, cache)[0]
        ref = F.conv2d_naive_backward(dout, x, w, **kw_)[0]
        np.testing.assert_allclose(dx, ref, rtol=1e-10, atol=1e-10, err_msg=str((x.shape, w.shape, kw_)))
    assert (taken > 10) if by_convolution else taken == 0


def test_partial_weight_gradients_are_capped(rng, monkeypatch):
    x, w, b, kw = _arrays(rng, (7, 3, 6, 6, 4, 3, 3, (1, 1), ((1, 1), (1, 1)), (1, 1), 1))
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape)
    want = F.conv2d_backward(dout, cache)
    monkeypatch.setattr(F, "CHUNK_TARGET_BYTES", 1)  # seven chunks ...
    monkeypatch.setattr(F, "DW_PARTS_BYTES", 2 * 4 * 27 * 8)  # ... in two runs (two partial dW)
    with threads.num_workers(2):
        got = F.conv2d_backward(dout, cache)
    for a, e in zip(got, want):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


def test_chunk_plan_keeps_imagenet_batch_under_the_cap():
    # 256 x 3 x 224 x 224 with a 7x7 kernel (pad 3, stride 1): the full column matrix would be
    # 147 x (256*224*224) float32 = 7.4 GB; the plan processes it in chunks of a few images
    g = F.conv_geometry((256, 3, 224, 224), (64, 3, 7, 7), padding=((3, 3), (3, 3)))
    full = F.column_bytes_per_sample(g, 4) * 256
    assert full > 7e9
    chunk, nbytes = F.chunk_plan(g, 4)
    assert nbytes <= F.DEFAULT_MAX_BUFFER_BYTES and chunk == 1
    # a smaller image: the cap (or the cache-friendly chunk target, whichever is smaller) binds
    g = F.conv_geometry((256, 3, 32, 32), (64, 3, 7, 7), padding=((3, 3), (3, 3)))
    per_sample = F.column_bytes_per_sample(g, 4)
    chunk, nbytes = F.chunk_plan(g, 4, max_buffer_bytes=3 * per_sample + 1)
    assert (chunk, nbytes) == (3, 3 * per_sample)
    chunk, nbytes = F.chunk_plan(g, 4)
    assert nbytes <= F.CHUNK_TARGET_BYTES < nbytes + per_sample


def test_set_max_buffer_bytes():
    previous = F.get_max_buffer_bytes()
    try:
        F.set_max_buffer_bytes(1000)
        g = F.conv_geometry((8, 3, 10, 10), (4, 3, 3, 3))
        assert F.chunk_plan(g, 8) == (1, F.column_bytes_per_sample(g, 8))
        with pytest.raises(ValueError):
            F.set_max_buffer_bytes(0)
    finally:
        F.set_max_buffer_bytes(previous)


def _peak_bytes(fn):
    backend.release_scratch()  # the kernels' kept work arrays are allocated afresh, and counted
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_column_buffer_respects_cap_in_practice(rng):
    # full columns: 147 x (32*16*16) float32 = 4.8 MB; with a 256 KB cap the peak stays near the
    # size of the input and output (32 x 3 x 22 x 22 padded + 32 x 8 x 16 x 16, ~0.7 MB together)
    x = rng.standard_normal((32, 3, 16, 16)).astype(np.float32)
    w = rng.standard_normal((8, 3, 7, 7)).astype(np.float32)
    kw = dict(padding=((3, 3), (3, 3)))
    g = F.conv_geometry(x.shape, w.shape, **kw)
    full = F.column_bytes_per_sample(g, 4) * 32
    capped = _peak_bytes(lambda: F.conv2d_forward(x, w, None, max_buffer_bytes=256 * 1024, **kw))
    uncapped = _peak_bytes(lambda: F.conv2d_forward(x, w, None, max_buffer_bytes=10 ** 9, **kw))
    assert uncapped > full / F.MIN_CHUNKS  # a chunk of the batch at a time ...
    assert capped < 256 * 1024 + 1.5 * 2 ** 20 < full
    out, cache = F.conv2d_forward(x, w, None, **kw)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    capped_cache = cache._replace(saved=cache.saved[:4] + (256 * 1024,))
    assert _peak_bytes(lambda: F.conv2d_backward(dout, capped_cache)) < 256 * 1024 + 2 * 2 ** 20


def test_pointwise_uses_no_columns(rng):
    g = F.conv_geometry((8, 16, 10, 10), (4, 16, 1, 1))
    assert F.chunk_plan(g, 4) == (8, 0)
    x = rng.standard_normal((8, 16, 10, 10)).astype(np.float32)
    w = rng.standard_normal((4, 16, 1, 1)).astype(np.float32)
    out_bytes = 8 * 4 * 100 * 4
    assert _peak_bytes(lambda: F.conv2d_forward(x, w)) < 2 * out_bytes


# ----------------------------------------------------------------------------- conv1d


@pytest.mark.parametrize("N,C,L,O,k,stride,padding,dilation,groups", [
    (2, 3, 11, 4, 3, 1, (1, 1), 1, 1),
    (1, 4, 12, 6, 4, 2, (2, 1), 2, 2),
    (3, 4, 9, 4, 1, 1, (0, 0), 1, 4),
])
def test_conv1d(rng, N, C, L, O, k, stride, padding, dilation, groups):
    x = rng.standard_normal((N, C, L))
    w = rng.standard_normal((O, C // groups, k))
    b = rng.standard_normal(O)
    kw = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    out, cache = F.conv1d_forward(x, w, b, **kw)
    np.testing.assert_allclose(out, F.conv1d_naive(x, w, b, **kw), rtol=1e-10, atol=1e-10)
    check_function(lambda x, w, b: F.conv1d_forward(x, w, b, **kw), F.conv1d_backward, [x, w, b]).assert_ok()


# ----------------------------------------------------------------------------- transposed convolution

# (N, Cin, H, W, Cout, kh, kw, stride, padding, output_padding, dilation, groups)
T_CONFIGS = [
    (2, 3, 4, 5, 4, 3, 3, (1, 1), ((1, 1), (1, 1)), (0, 0), (1, 1), 1),
    (1, 4, 3, 4, 6, 3, 2, (2, 3), ((1, 0), (0, 2)), (1, 2), (1, 1), 2),
    (2, 4, 3, 3, 4, 2, 3, (1, 2), ((0, 0), (1, 1)), (1, 0), (2, 1), 4),   # output_padding < dilation
    (2, 3, 4, 4, 2, 1, 1, (2, 2), ((0, 0), (0, 0)), (1, 1), (1, 1), 1),
]


@pytest.mark.parametrize("cfg", T_CONFIGS)
def test_conv_transpose2d(rng, cfg):
    N, Cin, H, W, Cout, kh, kw_, stride, padding, output_padding, dilation, groups = cfg
    x = rng.standard_normal((N, Cin, H, W))
    w = rng.standard_normal((Cin, Cout // groups, kh, kw_))
    b = rng.standard_normal(Cout)
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups)
    out, cache = F.conv_transpose2d_forward(x, w, b, **kw)
    expected_h = stride[0] * (H - 1) - sum(padding[0]) + dilation[0] * (kh - 1) + output_padding[0] + 1
    assert out.shape == (N, Cout, expected_h, out.shape[3])
    np.testing.assert_allclose(out, F.conv_transpose2d_naive(x, w, b, **kw), rtol=1e-10, atol=1e-10)
    check_function(lambda x, w, b: F.conv_transpose2d_forward(x, w, b, **kw), F.conv_transpose2d_backward,
                   [x, w, b]).assert_ok()


def test_conv_transpose_is_adjoint_of_conv(rng):
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((6, 2, 3, 3))
    kw = dict(stride=(2, 2), padding=((1, 1), (1, 1)), dilation=(1, 1), groups=2)
    y, _ = F.conv2d_forward(x, w, None, **kw)
    z = rng.standard_normal(y.shape)
    xt, _ = F.conv_transpose2d_forward(z, w, None, output_padding=(0, 1), **kw)
    assert xt.shape == x.shape
    np.testing.assert_allclose((y * z).sum(), (x * xt).sum(), rtol=1e-12)


# ----------------------------------------------------------------------------- errors


def test_errors(rng):
    x = rng.standard_normal((2, 4, 5, 5))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d_forward(x, rng.standard_normal((2, 4, 6, 3)))
    with pytest.raises(ValueError, match="larger than the padded input"):
        F.conv2d_forward(x, rng.standard_normal((2, 4, 3, 3)), dilation=(3, 1))
    with pytest.raises(ValueError, match="divisible by groups"):
        F.conv2d_forward(x, rng.standard_normal((3, 2, 3, 3)), groups=2)
    with pytest.raises(ValueError, match="input channels"):
        F.conv2d_forward(x, rng.standard_normal((2, 3, 3, 3)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        F.conv2d_forward(x[0], rng.standard_normal((2, 4, 3, 3)))
    with pytest.raises(ValueError, match="output_padding"):
        F.conv_transpose2d_forward(x, rng.standard_normal((4, 2, 3, 3)), stride=(2, 2), output_padding=(2, 0))
    with pytest.raises(ValueError, match=r"\(N, C, L\)"):
        F.conv1d_forward(x, rng.standard_normal((2, 4, 3)))


def test_output_sizes():
    assert conv_output_size(224, 7, 2, 3) == 112
    assert conv_output_size(227, 11, 4, 0) == 55
    assert conv_output_size(10, 3, 1, (1, 0), 2) == 7
    assert conv_transpose_output_size(112, 7, 2, 3, 1) == 224


# ----------------------------------------------------------------------------- padding modes


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [((1, 2), (3, 0)), ((2, 2), (1, 1)), ((0, 0), (3, 3))])
def test_pad_adjoint(rng, mode, pads):
    x = rng.standard_normal((2, 3, 5, 4))
    out, cache = pad_forward(x, pads, mode)
    np.testing.assert_array_equal(out, np.pad(x, ((0, 0), (0, 0)) + pads,
                                              mode={"zeros": "constant", "replicate": "edge",
                                                    "circular": "wrap"}.get(mode, mode)))
    d = rng.standard_normal(out.shape)
    dx = pad_backward(d, cache)
    np.testing.assert_allclose(dx, pad_backward_naive(d, x.shape, pads, mode), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose((out * d).sum(), (x * dx).sum(), rtol=1e-12)


def test_pad_errors(rng):
    x = rng.standard_normal((1, 1, 3, 3))
    with pytest.raises(ValueError, match="reflect"):
        pad_forward(x, ((3, 0), (0, 0)), "reflect")
    with pytest.raises(ValueError, match="circular"):
        pad_forward(x, ((4, 0), (0, 0)), "circular")
    with pytest.raises(ValueError, match="padding mode"):
        pad_forward(x, ((1, 1), (1, 1)), "mirror")


# ----------------------------------------------------------------------------- PyTorch oracle


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
@pytest.mark.parametrize("cfg", CONFIGS[:4])
def test_conv2d_matches_torch(rng, dtype, tol, cfg):
    torch = torch_or_skip()
    x, w, b, kw = _arrays(rng, cfg, dtype)
    (pt, pb), (pl, pr) = kw["padding"]
    out, cache = F.conv2d_forward(x, w, b, **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    dx, dw, db = F.conv2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tpad = torch.nn.functional.pad(tx, (pl, pr, pt, pb))
    tout = torch.nn.functional.conv2d(tpad, tw, tb, stride=kw["stride"], dilation=kw["dilation"],
                                      groups=kw["groups"])
    tout.backward(torch.tensor(dout))
    for got, expected in ((out, tout), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype,tol", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_conv_transpose2d_matches_torch(rng, dtype, tol):
    torch = torch_or_skip()
    x = rng.standard_normal((2, 4, 5, 4)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    kw = dict(stride=(2, 3), dilation=(2, 1), groups=2)
    out, cache = F.conv_transpose2d_forward(x, w, b, padding=((1, 1), (2, 2)), output_padding=(1, 2), **kw)
    dout = rng.standard_normal(out.shape).astype(dtype)
    grads = F.conv_transpose2d_backward(dout, cache)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv_transpose2d(tx, tw, tb, padding=(1, 2), output_padding=(1, 2), **kw)
    tout.backward(torch.tensor(dout))
    for got, expected in zip((out,) + grads, (tout, tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, expected.detach().numpy(), rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- one sample over the cap (issue 15)


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, dilation, groups", [
    ((2, 3, 11, 9), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),      # flat layout
    ((2, 4, 12, 10), (6, 2, 3, 2), (2, 1), ((2, 0), (1, 2)), (2, 1), 2),     # strided, dilated, grouped
    ((1, 2, 9, 9), (2, 2, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 1),       # 1x1 strided
])
def test_sample_over_the_cap_is_split_into_row_bands(rng, x_shape, w_shape, stride, padding, dilation, groups):
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    g = F.conv_geometry(x_shape, w_shape, stride, padding, dilation, groups)
    cap = F.column_bytes_per_sample(g, 8) // 3
    assert len(F.row_bands(g, 8, cap)) >= 3 and F.row_bands(g, 8) is None
    ref, ref_cache = F.conv2d_forward(x, w, b, stride, padding, dilation, groups)
    out, cache = F.conv2d_forward(x, w, b, stride, padding, dilation, groups, max_buffer_bytes=cap)
    np.testing.assert_allclose(out, ref, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for mine, expected in zip(F.conv2d_backward(dout, cache), F.conv2d_backward(dout, ref_cache)):
        np.testing.assert_allclose(mine, expected, rtol=1e-12, atol=1e-12)
    # the transposed convolution runs the same banded products
    wt = rng.standard_normal((w_shape[0], w_shape[1], w_shape[2], w_shape[3]))
    args = (None, stride, padding, (0, 0), dilation, groups)
    t_ref, t_ref_cache = F.conv_transpose2d_forward(ref, wt, *args)
    t_out, t_cache = F.conv_transpose2d_forward(ref, wt, *args, max_buffer_bytes=cap)
    np.testing.assert_allclose(t_out, t_ref, rtol=1e-12, atol=1e-12)
    t_dout = rng.standard_normal(t_out.shape)
    for mine, expected in zip(F.conv_transpose2d_backward(t_dout, t_cache)[:2],
                              F.conv_transpose2d_backward(t_dout, t_ref_cache)[:2]):
        np.testing.assert_allclose(mine, expected, rtol=1e-12, atol=1e-12)


def test_single_large_sample_stays_under_the_cap(rng):
    # one sample: 147 x (64*64) float32 columns = 2.4 MB; with a 256 KB cap the peak stays near
    # the padded input and the output (3 x 70 x 70 + 8 x 64 x 64, ~0.2 MB together)
    x = rng.standard_normal((1, 3, 64, 64)).astype(np.float32)
    w = rng.standard_normal((8, 3, 7, 7)).astype(np.float32)
    kw = dict(padding=((3, 3), (3, 3)), max_buffer_bytes=256 * 1024)
    g = F.conv_geometry(x.shape, w.shape, padding=kw["padding"])
    assert F.column_bytes_per_sample(g, 4) > 2 * 2 ** 20
    assert _peak_bytes(lambda: F.conv2d_forward(x, w, None, **kw)) < 256 * 1024 + 0.75 * 2 ** 20
    out, cache = F.conv2d_forward(x, w, None, **kw)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    assert _peak_bytes(lambda: F.conv2d_backward(dout, cache)) < 256 * 1024 + 1.0 * 2 ** 20


def test_a_row_over_the_cap_is_a_clear_error_before_allocating(rng):
    x = rng.standard_normal((1, 64, 4, 200)).astype(np.float32)
    w = rng.standard_normal((2, 64, 3, 3)).astype(np.float32)
    with pytest.raises(MemoryError, match=r"one output row needs 460,800 bytes .* cap of 100,000 bytes"):
        F.conv2d_forward(x, w, None, max_buffer_bytes=100_000)


def test_banded_convolution_gradcheck(rng):
    x, w, b = rng.standard_normal((2, 2, 7, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    g = F.conv_geometry(x.shape, w.shape, (2, 1), ((1, 1), (0, 1)))
    cap = F.column_bytes_per_sample(g, 8) // 2
    assert F.row_bands(g, 8, cap) is not None
    check_function(lambda x, w, b: F.conv2d_forward(x, w, b, (2, 1), ((1, 1), (0, 1)), max_buffer_bytes=cap),
                   F.conv2d_backward, [x, w, b]).assert_ok()
