"""Winograd F(2x2, 3x3) kernels: against im2col (randomized), the loop twin, numerical
gradients, PyTorch, float32 error, chunking, flags and bad input."""

import numpy as np
import pytest

from npcnn import threads
from npcnn.functional import conv as F
from npcnn.functional import winograd as Wg
from npcnn.gradcheck import check_function, check_module
from conftest import cupy_or_skip, noncontiguous, torch_or_skip


def random_config(rng):
    """A random small 3x3 stride-1 convolution: shapes, groups, asymmetric padding, bias."""
    groups = int(rng.choice([1, 1, 1, 2, 3]))
    C, O = groups * int(rng.integers(1, 4)), groups * int(rng.integers(1, 4))
    pads = tuple(tuple(int(p) for p in rng.integers(0, 4, 2)) for _ in range(2))
    H = int(rng.integers(max(1, 3 - sum(pads[0])), 10))
    W = int(rng.integers(max(1, 3 - sum(pads[1])), 10))
    return dict(N=int(rng.integers(1, 4)), C=C, H=H, W=W, O=O, groups=groups, pads=pads,
                bias=bool(rng.integers(0, 2)))


def arrays(cfg, rng, dtype=np.float64):
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])).astype(dtype)
    w = rng.standard_normal((cfg["O"], cfg["C"] // cfg["groups"], 3, 3)).astype(dtype)
    b = rng.standard_normal(cfg["O"]).astype(dtype) if cfg["bias"] else None
    return x, w, b


@pytest.mark.parametrize("seed", range(10))
def test_matches_im2col_on_random_configurations(seed):
    """200 seeded configurations (20 per seed): out, dx, dw, db equal im2col's to 1e-10."""
    rng = np.random.default_rng(seed)
    for _ in range(20):
        cfg = random_config(rng)
        x, w, b = arrays(cfg, rng)
        out, cache = Wg.winograd_conv2d_forward(x, w, b, cfg["pads"])
        ref, ref_cache = F.conv2d_forward(x, w, b, (1, 1), cfg["pads"], groups=cfg["groups"])
        dout = rng.standard_normal(ref.shape)
        grads = Wg.winograd_conv2d_backward(dout, cache)
        ref_grads = F.conv2d_backward(dout, ref_cache)
        for name, got, want in zip(("out", "dx", "dw", "db"), (out,) + grads, (ref,) + ref_grads):
            if want is None:
                assert got is None, (name, cfg)
                continue
            assert got.shape == want.shape, (name, cfg)
            np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10, err_msg=f"{name} of {cfg}")


@pytest.mark.parametrize("cfg", [
    dict(N=2, C=3, H=5, W=6, O=4, groups=1, pads=((1, 1), (1, 1)), bias=True),
    dict(N=1, C=4, H=7, W=4, O=2, groups=2, pads=((0, 2), (1, 0)), bias=False),
    dict(N=2, C=2, H=3, W=3, O=3, groups=1, pads=((0, 0), (0, 0)), bias=True),
])
def test_matches_loop_twin(cfg):
    rng = np.random.default_rng(0)
    x, w, b = arrays(cfg, rng)
    out, _ = Wg.winograd_conv2d_forward(x, w, b, cfg["pads"])
    twin = Wg.winograd_conv2d_naive(x, w, b, cfg["pads"])
    direct = F.conv2d_naive(x, w, b, (1, 1), cfg["pads"], groups=cfg["groups"])
    np.testing.assert_allclose(twin, direct, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out, twin, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("cfg", [
    dict(N=2, C=3, H=6, W=6, O=4, groups=1, pads=((1, 1), (1, 1)), bias=True),   # even output
    dict(N=1, C=2, H=5, W=7, O=3, groups=1, pads=((1, 1), (1, 1)), bias=True),   # odd output, batch 1
    dict(N=2, C=4, H=4, W=5, O=2, groups=2, pads=((0, 2), (2, 0)), bias=False),  # groups, asymmetric
    dict(N=1, C=1, H=3, W=3, O=1, groups=1, pads=((0, 0), (0, 0)), bias=True),   # one output pixel
])
def test_gradients_numerically(cfg):
    rng = np.random.default_rng(3)
    x, w, b = arrays(cfg, rng)
    inputs = [x, w] + ([b] if b is not None else [])

    def forward(x, w, b=None):
        return Wg.winograd_conv2d_forward(x, w, b, cfg["pads"])

    check_function(forward, Wg.winograd_conv2d_backward, inputs, names=["x", "w", "b"][:len(inputs)]).assert_ok()


def test_noncontiguous_input():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 3))
    xv = noncontiguous(x)
    out, cache = Wg.winograd_conv2d_forward(xv, w, None, 1)
    ref, ref_cache = F.conv2d_forward(x, w, None, (1, 1), 1)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    for got, want in zip(Wg.winograd_conv2d_backward(dout, cache)[:2], F.conv2d_backward(dout, ref_cache)[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def relative_error(got, want):
    """max |got - want| relative to max |want|."""
    return float(np.abs(got.astype(np.float64) - want).max() / np.abs(want).max())


@pytest.mark.parametrize("shape", [(4, 16, 16, 16, 16), (2, 64, 8, 8, 32)])
def test_float32_stays_float32_within_1e5_relative(shape):
    """float32 in, float32 out and gradients; error vs float64 im2col < 1e-5 of the scale
    (measured ~2e-7: F(2x2, 3x3) is as accurate as a direct float32 convolution)."""
    N, C, H, W, O = shape
    rng = np.random.default_rng(5)
    x64, w64, b64 = rng.standard_normal((N, C, H, W)), rng.standard_normal((O, C, 3, 3)), rng.standard_normal(O)
    dout64 = rng.standard_normal((N, O, H, W))
    x, w, b, dout = (a.astype(np.float32) for a in (x64, w64, b64, dout64))
    out, cache = Wg.winograd_conv2d_forward(x, w, b, 1)
    dx, dw, db = Wg.winograd_conv2d_backward(dout, cache)
    ref, ref_cache = F.conv2d_forward(x64, w64, b64, (1, 1), 1)
    rdx, rdw, rdb = F.conv2d_backward(dout64, ref_cache)
    for got, want in ((out, ref), (dx, rdx), (dw, rdw), (db, rdb)):
        assert got.dtype == np.float32
        assert relative_error(got, want) < 1e-5


def test_torch_agrees_in_float32():
    torch = torch_or_skip()
    rng = np.random.default_rng(6)
    x = rng.standard_normal((3, 8, 9, 10)).astype(np.float32)
    w = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    out, cache = Wg.winograd_conv2d_forward(x, w, b, (1, 2))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    tout = torch.nn.functional.conv2d(tx, tw, tb, 1, (1, 2), 1, 2)
    dout = rng.standard_normal(tout.shape).astype(np.float32)
    tout.backward(torch.from_numpy(dout))
    dx, dw, db = Wg.winograd_conv2d_backward(dout, cache)
    for got, want in ((out, tout.detach()), (dx, tx.grad), (dw, tw.grad), (db, tb.grad)):
        want = want.numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_chunks_give_the_same_result(monkeypatch):
    """One sample per chunk (a tiny chunk target) agrees with the whole batch in one chunk."""
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal((5, 3, 6, 7)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    dout = rng.standard_normal((5, 4, 6, 7))
    whole_out, cache = Wg.winograd_conv2d_forward(x, w, b, 1)
    whole = Wg.winograd_conv2d_backward(dout, cache)
    monkeypatch.setattr(Wg, "CHUNK_TARGET_BYTES", 1)
    monkeypatch.setattr(Wg, "CHUNK_MIN_COLUMNS", 1)
    assert Wg._chunk_size(3, 3, 4, 8, 5) == 1
    out, cache = Wg.winograd_conv2d_forward(x, w, b, 1)
    np.testing.assert_allclose(out, whole_out, rtol=1e-12, atol=1e-12)
    for got, want in zip(Wg.winograd_conv2d_backward(dout, cache), whole):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_chunks_shared_by_threads_give_the_same_result(monkeypatch, workers):
    rng = np.random.default_rng(10)
    x, w = rng.standard_normal((7, 2, 5, 6)), rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((7, 3, 5, 6))
    out, cache = Wg.winograd_conv2d_forward(x, w, None, 1)
    grads = Wg.winograd_conv2d_backward(dout, cache)
    monkeypatch.setattr(Wg, "CHUNK_TARGET_BYTES", 1)  # one sample per chunk: seven chunks
    monkeypatch.setattr(Wg, "CHUNK_MIN_COLUMNS", 1)
    with threads.num_workers(1):
        serial = Wg.winograd_conv2d_backward(dout, Wg.winograd_conv2d_forward(x, w, None, 1)[1])
    before = threads.load_state()["calls"]
    with threads.num_workers(workers):
        split_out, split_cache = Wg.winograd_conv2d_forward(x, w, None, 1)
        split = Wg.winograd_conv2d_backward(dout, split_cache)
    assert threads.load_state()["calls"] > before or workers == 1  # the chunks really were shared
    np.testing.assert_allclose(split_out, out, rtol=1e-12, atol=1e-12)
    for got, want, one in zip(split[:2], grads[:2], serial[:2]):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        np.testing.assert_array_equal(got, one)  # bit for bit, whichever thread took which chunk


def test_partial_weight_gradients_are_capped(monkeypatch):
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((6, 2, 4, 4)), rng.standard_normal((3, 2, 3, 3))
    dout = rng.standard_normal((6, 3, 4, 4))
    want = Wg.winograd_conv2d_backward(dout, Wg.winograd_conv2d_forward(x, w, None, 1)[1])
    monkeypatch.setattr(Wg, "CHUNK_TARGET_BYTES", 1)
    monkeypatch.setattr(Wg, "CHUNK_MIN_COLUMNS", 1)
    monkeypatch.setattr(Wg, "DU_PARTS_BYTES", 2 * 16 * 3 * 2 * 8)  # room for two dUs: runs of 3 chunks
    with threads.num_workers(2):
        got = Wg.winograd_conv2d_backward(dout, Wg.winograd_conv2d_forward(x, w, None, 1)[1])
    for a, b in zip(got[:2], want[:2]):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_need_flags_and_dout_untouched():
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((2, 3, 3, 3))
    out, cache = Wg.winograd_conv2d_forward(x, w, None, 1)
    dout = rng.standard_normal(out.shape)
    saved = dout.copy()
    dx, dw, db = Wg.winograd_conv2d_backward(dout, cache)
    assert db is None
    assert Wg.winograd_conv2d_backward(dout, cache, need_dx=False)[0] is None
    np.testing.assert_array_equal(Wg.winograd_conv2d_backward(dout, cache, need_dx=False)[1], dw)
    assert Wg.winograd_conv2d_backward(dout, cache, need_dw=False)[1] is None
    np.testing.assert_array_equal(Wg.winograd_conv2d_backward(dout, cache, need_dw=False)[0], dx)
    np.testing.assert_array_equal(dout, saved)


def test_applicable():
    assert Wg.winograd_applicable((8, 4, 3, 3))
    assert Wg.winograd_applicable((8, 4, 3, 3), stride=1, dilation=(1, 1))
    assert not Wg.winograd_applicable((8, 4, 5, 5))
    assert not Wg.winograd_applicable((8, 4, 3, 3), stride=2)
    assert not Wg.winograd_applicable((8, 4, 3, 3), dilation=(2, 1))


@pytest.mark.parametrize("x_shape, w_shape, padding, message", [
    ((2, 3, 8, 8), (4, 3, 5, 5), 0, "3x3 kernels only"),
    ((2, 3, 8), (4, 3, 3, 3), 0, r"\(N, C, H, W\)"),
    ((2, 3, 8, 8), (4, 2, 3, 3), 0, "does not fit"),
    ((2, 3, 1, 8), (4, 3, 3, 3), 0, "larger than the padded input"),
    ((2, 3, 8, 8), (4, 3, 3, 3), -1, "padding must be >= 0"),
])
def test_bad_input_is_a_clear_error(x_shape, w_shape, padding, message):
    with pytest.raises(ValueError, match=message):
        Wg.winograd_conv2d_forward(np.zeros(x_shape), np.zeros(w_shape), None, padding)


def test_wrong_groups_and_dout_shape():
    x, w = np.zeros((1, 4, 5, 5)), np.zeros((2, 2, 3, 3))
    with pytest.raises(ValueError, match="groups=1"):
        Wg.winograd_conv2d_forward(x, w, None, 1, groups=1)
    out, cache = Wg.winograd_conv2d_forward(x, w, None, 1, groups=2)
    with pytest.raises(ValueError, match="expected dout of shape"):
        Wg.winograd_conv2d_backward(np.zeros((1, 2, 4, 5)), cache)


@pytest.mark.gpu
def test_cupy_matches_numpy():
    cupy = cupy_or_skip()
    rng = np.random.default_rng(9)
    x = rng.standard_normal((3, 4, 7, 6)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    dout = rng.standard_normal((3, 6, 7, 6)).astype(np.float32)
    out, cache = Wg.winograd_conv2d_forward(x, w, b, 1)
    grads = Wg.winograd_conv2d_backward(dout, cache)
    gout, gcache = Wg.winograd_conv2d_forward(cupy.asarray(x), cupy.asarray(w), cupy.asarray(b), 1)
    ggrads = Wg.winograd_conv2d_backward(cupy.asarray(dout), gcache)
    for got, want in zip((gout,) + ggrads, (out,) + grads):
        assert got.dtype == np.float32
        np.testing.assert_allclose(cupy.asnumpy(got), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups, padding", [(1, 1), (2, 0), (1, (2, 1))])
def test_conv2d_layer_with_algo_winograd_matches_im2col(groups, padding):
    from npcnn import nn

    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 7, 6))
    a = nn.Conv2d(4, 6, 3, padding=padding, groups=groups, algo="winograd").double()
    b = nn.Conv2d(4, 6, 3, padding=padding, groups=groups, algo="im2col").double()
    b.load_state_dict(a.state_dict())
    out = a(x)
    assert a.algo_used == "winograd"
    np.testing.assert_allclose(out, b(x), rtol=1e-10, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(a.backward(dout), b.backward(dout), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.weight.grad, b.weight.grad, rtol=1e-10, atol=1e-12)
    check_module(a, x).assert_ok()


def test_conv2d_algo_winograd_rejects_other_kernels():
    from npcnn import nn

    with pytest.raises(ValueError, match="winograd.*3x3"):
        nn.Conv2d(2, 2, 5, algo="winograd")(np.zeros((1, 2, 6, 6), np.float32))
