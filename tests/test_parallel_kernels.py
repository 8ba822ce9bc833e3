"""Kernels whose batch chunks are shared by threads (npcnn.threads.run_shared) give the same bits
on one thread and on several, whichever thread takes which chunk, and match their references."""

import numpy as np
import pytest

from npcnn import threads
from npcnn.functional import activation as A
from npcnn.functional import norm as Nm
from npcnn.functional import pooling as P


@pytest.fixture
def small_chunks(monkeypatch):
    """Chunks of 32 bytes, so that even test-sized batches make many of them."""
    monkeypatch.setattr(threads, "ELEMENTWISE_CHUNK_BYTES", 32)


def on_threads(fn, workers):
    with threads.num_workers(workers):
        return fn()


def same_bits(fn, shared=True):
    """fn() on 1, 2 and 3 worker threads (3 runs each): every result array identical;
    ``shared``: the work is large enough that threads must have shared it."""
    reference = on_threads(fn, 1)
    for workers in (2, 3):
        for _ in range(3):
            before = threads.load_state()["calls"]
            results = on_threads(fn, workers)
            assert threads.load_state()["calls"] > before or not shared  # the chunks really were shared
            for got, want in zip(results, reference):
                if want is None:
                    assert got is None
                else:
                    np.testing.assert_array_equal(got, want)
    return reference


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(13, 3, 5, 4), (9, 4), (7, 2, 11)])
def test_batch_norm_train(small_chunks, dtype, shape):
    rng = np.random.default_rng(sum(shape))
    x = (3.0 + rng.standard_normal(shape)).astype(dtype)
    gamma, beta = rng.standard_normal(shape[1]).astype(dtype), rng.standard_normal(shape[1]).astype(dtype)
    dout = rng.standard_normal(shape).astype(dtype)

    def run():
        out, cache, mean, var = Nm.batch_norm_train_forward(x, gamma, beta)
        return (out, mean, var) + Nm.batch_norm_backward(dout, cache)

    out, mean, var, dx, dgamma, dbeta = same_bits(run)
    assert len(threads.batch_chunks(x)) > 3 and out.dtype == dx.dtype == dtype
    axes = (0,) + tuple(range(2, x.ndim))
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=axes), rtol=tol)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=axes), rtol=tol * 10)
    np.testing.assert_allclose(out, Nm.batch_norm_naive(x, gamma, beta), rtol=tol * 10, atol=tol * 10)
    np.testing.assert_allclose(dbeta, dout.astype(np.float64).sum(axis=axes), rtol=tol * 10, atol=tol * 10)


def test_batch_norm_without_affine_and_eval(small_chunks):
    rng = np.random.default_rng(3)
    x, dout = rng.standard_normal((10, 3, 4, 4)), rng.standard_normal((10, 3, 4, 4))

    def run():
        out, cache, _, _ = Nm.batch_norm_train_forward(x, None, None)
        dx = Nm.batch_norm_backward(dout, cache)
        eval_out, eval_cache = Nm.batch_norm_eval_forward(x, np.ones(3), None, np.zeros(3), np.ones(3))
        return (out,) + dx + (eval_out,) + Nm.batch_norm_backward(dout, eval_cache)

    out, dx, dgamma, dbeta, eval_out, eval_dx, _, _ = same_bits(run)
    assert dgamma is None and dbeta is None
    np.testing.assert_allclose(eval_dx, dout / np.sqrt(1 + 1e-5), rtol=1e-12)


@pytest.mark.parametrize("shape", [(11, 3, 4, 5), (7, 6), (), (0, 3)])
def test_relu(small_chunks, shape):
    rng = np.random.default_rng(4)
    x = np.asarray(rng.standard_normal(shape), dtype=np.float32)
    x.flat[:: max(1, x.size // 5 or 1)] = 0.0  # exact zeros: no gradient there (as PyTorch)
    dout = np.asarray(rng.standard_normal(shape), dtype=np.float32)

    def run():
        out, mask = A.relu_forward(x)
        return out, mask, A.relu_backward(dout, mask)

    out, mask, dx = same_bits(run, shared=x.ndim > 0 and x.shape[0] > 1)
    np.testing.assert_array_equal(out, np.maximum(x, 0))
    np.testing.assert_array_equal(dx, np.where(x > 0, dout, 0))
    assert out.dtype == dx.dtype == np.float32 and out.shape == dx.shape == x.shape


@pytest.mark.parametrize("shape,kernel", [((9, 2, 8, 8), 2), ((7, 3, 9, 7), 2), ((6, 2, 9, 9), 3)])
def test_max_pool_tiles(small_chunks, shape, kernel):
    rng = np.random.default_rng(5)
    x = rng.standard_normal(shape).astype(np.float32)
    x[:, :, :4, :4] = np.maximum(x[:, :, :4, :4], 0)  # ties at zero, as after a ReLU

    def run():
        out, cache = P.max_pool2d_forward(x, kernel)
        dout = np.arange(out.size, dtype=np.float32).reshape(out.shape)
        return out, P.max_pool2d_backward(dout, cache)

    out, dx = same_bits(run)
    ref, index = P.max_pool2d_naive(x, kernel)
    np.testing.assert_array_equal(out, ref)
    dout = np.arange(out.size, dtype=np.float32).reshape(out.shape)
    np.testing.assert_array_equal(dx, P.max_pool2d_backward_naive(dout, index, x.shape))


def test_max_pool_nan_wins_its_window(small_chunks):
    x = np.random.default_rng(6).standard_normal((5, 2, 4, 4)).astype(np.float32)
    x[3, 1, 2, 3] = np.nan

    def run():
        out, cache = P.max_pool2d_forward(x, 2)
        return out, P.max_pool2d_backward(np.ones(out.shape, np.float32), cache)

    out, dx = same_bits(run)
    assert np.isnan(out[3, 1, 1, 1]) and np.isnan(out).sum() == 1
    assert dx[3, 1, 2, 3] == 1 and dx[3, 1, 2:, 2:].sum() == 1


def test_max_pool_backward_with_non_finite_dout_sends_nothing_elsewhere():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    out, cache = P.max_pool2d_forward(x, 2)
    dout = np.full(out.shape, np.inf, dtype=np.float32)
    dx = P.max_pool2d_backward(dout, cache)
    assert np.isinf(dx).sum() == 4 and (dx[np.isfinite(dx)] == 0).all()  # never inf * 0 = NaN


def test_each_batch_chunk_covers_the_batch_once(small_chunks):
    a = np.zeros((37, 5), dtype=np.float64)
    count = threads.each_batch_chunk(lambda k, rows: a.__setitem__(rows, a[rows] + 1), a)
    assert count == len(threads.batch_chunks(a)) > 5
    np.testing.assert_array_equal(a, 1)
    assert threads.batch_chunks(np.float32(1.0)) == [(0, 1)]
    assert threads.batch_chunks(np.zeros((0, 4))) == [(0, 0)]
