"""nn.Embedding and its kernels: lookup, scatter-add backward, padding_idx, index validation,
a float64 gradient check of dW, the loop twins and PyTorch."""

import numpy as np
import pytest

import npcnn
from conftest import noncontiguous, torch_or_skip
from npcnn import nn
from npcnn.functional.embedding import (embedding_backward, embedding_backward_naive, embedding_forward,
                                        embedding_naive)
from npcnn.gradcheck import check_function, check_module, numerical_gradient

CONFIGS = [  # (num_embeddings, embedding_dim, indices shape, padding_idx)
    (7, 3, (2, 5), None),
    (4, 1, (3, 6), None),     # few rows: every row repeats many times
    (10, 4, (1, 1), None),    # batch 1, one token
    (6, 5, (9,), 2),          # 1-D indices, a padding row
    (5, 2, (2, 3, 4), -1),    # 3-D indices, padding_idx counted from the end
]


class _Lookup(nn.Module):
    """out = emb(indices) * x for fixed integer ``indices``: the Embedding as a module of a float
    input, so check_module can perturb its table and x (the form proposed for GRADCHECK_CASES).
    Gradients: dx = dout * emb(indices), and the table gets the scatter-add of dout * x."""

    def __init__(self, emb, indices):
        super().__init__()
        self.emb, self.indices = emb, indices

    def forward(self, x):
        h = self.emb(npcnn.backend.asarray(self.indices))
        self.save_for_backward((h, x))
        return h * x

    def backward(self, dout):
        h, x = self.pop_saved()
        assert self.emb.backward(dout * x) is None
        return dout * h


def _indices(rng, num, shape, padding_idx=None):
    idx = rng.integers(0, num, shape)
    if padding_idx is not None:
        idx.reshape(-1)[0] = padding_idx % num  # the padding row is looked up at least once
    return idx


@pytest.mark.parametrize("num, dim, shape, padding_idx", CONFIGS)
def test_gradcheck_weight_float64(num, dim, shape, padding_idx, rng, float64):
    emb = nn.Embedding(num, dim, padding_idx=padding_idx)
    idx = _indices(rng, num, shape)  # no padding index here: its row's true derivative is not 0
    if padding_idx is not None:
        idx[idx == padding_idx % num] = (padding_idx % num + 1) % num
    x = rng.standard_normal(shape + (dim,))
    check_module(_Lookup(emb, idx), x).assert_ok()
    check_module(_Lookup(emb, idx), noncontiguous(x)).assert_ok()
    report = check_function(lambda w: embedding_forward(idx, w), lambda d, c: (embedding_backward(d, c),),
                            [rng.standard_normal((num, dim))], names=["weight"])
    report.assert_ok()


@pytest.mark.parametrize("num, dim, shape, padding_idx", [c for c in CONFIGS if c[3] is not None])
def test_padding_row_gets_no_gradient_the_others_their_true_one(num, dim, shape, padding_idx, rng, float64):
    emb = nn.Embedding(num, dim, padding_idx=padding_idx)
    pad = padding_idx % num
    assert emb.padding_idx == pad and not emb.weight.data[pad].any()
    idx = _indices(rng, num, shape, padding_idx)
    projection = rng.standard_normal(shape + (dim,))
    emb(idx)
    emb.backward(projection)
    numeric = numerical_gradient(lambda: float((emb(idx) * projection).sum()), emb.weight.data,
                                 np.arange(num * dim)).reshape(num, dim)
    assert not emb.weight.grad[pad].any()
    assert numeric[pad].any()  # the padding row does feed the output; its gradient is withheld
    keep = np.arange(num) != pad
    np.testing.assert_allclose(emb.weight.grad[keep], numeric[keep], rtol=1e-7, atol=1e-9)


def test_float32_gradients_close_to_float64_ones(rng):
    emb = nn.Embedding(9, 4, padding_idx=0)
    module = _Lookup(emb, rng.integers(1, 9, (2, 6)))  # not the padding row: its gradient is withheld
    npcnn.gradcheck.check_module(module, rng.standard_normal((2, 6, 4)), dtype=np.float32, tol=1e-4).assert_ok()


@pytest.mark.parametrize("num, dim, shape, padding_idx", CONFIGS)
def test_matches_loop_twins(num, dim, shape, padding_idx, rng):
    weight = rng.standard_normal((num, dim)).astype(np.float32)
    idx = _indices(rng, num, shape, padding_idx)
    out, cache = embedding_forward(idx, weight)
    np.testing.assert_array_equal(out, embedding_naive(idx, weight))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    pad = None if padding_idx is None else padding_idx % num
    np.testing.assert_allclose(embedding_backward(dout, cache, pad),
                               embedding_backward_naive(dout, idx, num, pad), rtol=1e-6, atol=1e-6)


def test_repeated_indices_add_up():
    """A plain ``dw[idx] += rows`` keeps one of the repeats: the scatter-add keeps all."""
    idx = np.array([[1, 1, 1, 0]])
    dout = np.ones((1, 4, 2), dtype=np.float32)
    _, cache = embedding_forward(idx, np.zeros((3, 2), dtype=np.float32))
    np.testing.assert_array_equal(embedding_backward(dout, cache), [[1, 1], [3, 3], [0, 0]])


@pytest.mark.parametrize("num, dim, shape, padding_idx", CONFIGS)
def test_matches_pytorch(num, dim, shape, padding_idx, rng):
    torch = torch_or_skip()
    emb = nn.Embedding(num, dim, padding_idx=padding_idx)
    ref = torch.nn.Embedding(num, dim, padding_idx=padding_idx)
    assert repr(emb) == repr(ref)
    assert emb.padding_idx == ref.padding_idx
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(emb.weight.data))
    idx = _indices(rng, num, shape, padding_idx)
    out = emb(idx)
    ref_out = ref(torch.from_numpy(idx))
    np.testing.assert_allclose(out, ref_out.detach().numpy(), rtol=1e-6)
    dout = rng.standard_normal(out.shape).astype(np.float32)
    emb.backward(dout)
    ref_out.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(emb.weight.grad, ref.weight.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_layout_init_dtype_and_state_dict():
    emb = nn.Embedding(20, 6, padding_idx=3)
    assert emb.weight.shape == (20, 6) and emb.weight.dtype == np.float32
    assert list(emb.state_dict()) == ["weight"]
    rows = np.delete(emb.weight.data, 3, axis=0)
    assert abs(rows.mean()) < 0.3 and 0.7 < rows.std() < 1.3  # N(0, 1), PyTorch's default
    idx = np.array([[3, 4, 5]], dtype=np.int32)
    out = emb(idx)
    assert out.shape == (1, 3, 6) and out.dtype == np.float32 and not out[0, 0].any()
    dout = np.ones_like(out)
    before = dout.copy()
    emb.backward(dout)
    np.testing.assert_array_equal(dout, before)
    assert emb.weight.grad.dtype == np.float32
    out[0, 1] = 99.0  # the output is a copy: writing it leaves the table alone
    assert emb.weight.data[4, 0] != 99.0


def test_frozen_table_gets_no_gradient():
    emb = nn.Embedding(5, 2)
    emb.weight.requires_grad = False
    emb(np.array([1, 2]))
    emb.backward(np.ones((2, 2), dtype=np.float32))
    assert emb.weight.grad is None


@pytest.mark.parametrize("bad, error, words", [
    (np.array([[0.0, 1.0]]), TypeError, "integer indices"),
    (np.array([True, False]), TypeError, "integer indices"),
    ([0, 1], TypeError, "integer array"),
    (np.array([0, 5]), IndexError, "index 5 is out of range"),
    (np.array([-1, 2]), IndexError, "index -1 is out of range"),
])
def test_bad_indices_are_clear_errors_naming_the_layer(bad, error, words):
    emb = nn.Embedding(5, 2)
    with pytest.raises(error, match="Embedding") as info:
        emb(bad)
    assert words in str(info.value)


@pytest.mark.parametrize("kwargs", [dict(padding_idx=5), dict(padding_idx=-6), dict(num_embeddings=0)])
def test_bad_constructor_arguments(kwargs):
    args = dict(num_embeddings=5, embedding_dim=2) | kwargs
    with pytest.raises(ValueError, match="Embedding"):
        nn.Embedding(**args)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match="Embedding.backward"):
        nn.Embedding(3, 2).backward(np.zeros((1, 2), dtype=np.float32))


def test_trains_in_a_sequential_text_model():
    """Embedding -> mean over positions -> Linear learns which token is present."""
    npcnn.manual_seed(0)
    gen = np.random.default_rng(0)
    x = gen.integers(1, 8, (64, 5))
    y = (x == 7).any(axis=1).astype(np.int64)

    class MeanOverPositions(nn.Module):
        """(N, L, D) -> (N, D)."""

        def forward(self, h):
            self.save_for_backward(h.shape)
            return h.mean(axis=1)

        def backward(self, dout):
            shape = self.pop_saved()
            return np.broadcast_to(dout[:, None] / shape[1], shape).copy()

    model = nn.Sequential(nn.Embedding(8, 4, padding_idx=0), MeanOverPositions(), nn.Linear(4, 2))
    opt = npcnn.optim.Adam(model.parameters(), lr=0.05)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(150):
        loss = loss_fn(model(x), y)
        model.zero_grad()
        model.backward(loss_fn.backward())
        opt.step()
    assert loss < 0.2
    assert not model[0].weight.data[0].any()  # the padding row never moved


@pytest.mark.gpu
def test_on_cupy_matches_numpy(rng):
    """Forward, scatter-add backward and the index checks on the CuPy backend (the fake CuPy in
    the default run, see tests/test_fake_cupy.py)."""
    from conftest import cupy_or_skip

    cupy_or_skip()
    idx = rng.integers(0, 7, (3, 5))
    dout = rng.standard_normal((3, 5, 4)).astype(np.float32)
    cpu = nn.Embedding(7, 4, padding_idx=2)
    cpu(idx)
    cpu.backward(dout)
    with npcnn.use_backend("cupy"):
        gpu = nn.Embedding(7, 4, padding_idx=2)
        gpu.weight.data = npcnn.backend.asarray(cpu.weight.data)
        out = gpu(npcnn.backend.asarray(idx))
        gpu.backward(npcnn.backend.asarray(dout))
        np.testing.assert_array_equal(npcnn.backend.to_numpy(out), cpu.weight.data[idx])
        np.testing.assert_allclose(npcnn.backend.to_numpy(gpu.weight.grad), cpu.weight.grad, rtol=1e-6, atol=1e-6)
        with pytest.raises(IndexError, match="Embedding"):
            gpu(npcnn.backend.asarray(np.array([7])))
