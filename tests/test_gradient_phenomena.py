"""Why deep nets are hard to train, asserted with numbers (issue 7).

Each test measures one phenomenon with ``npcnn.diagnostics.record`` on a small MLP built by
``deep_mlp`` (``depth`` weight layers: ``depth - 1`` hidden Linear -> activation blocks and a
Linear head; width 32 unless stated; inputs N(0, 1); biases 0 except for PyTorch's default init).
The full experiments, with tables and plots, are the scripts in ``benchmarks/``.
"""

import numpy as np
import pytest

import npcnn
from npcnn import nn
from npcnn.diagnostics import deep_mlp, grad_norm, init_weights_, record
from npcnn.nn.composition import Residual
from npcnn.nn.norm import BatchNorm1d
from npcnn.nn.utils import clip_grad_norm_

ACTIVATION_TYPES = (nn.ReLU, nn.Tanh, nn.Sigmoid)


def _batch(width, batch=64, seed=0, classes=10):
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((batch, width)).astype(np.float32)
    return x, generator.integers(0, classes, batch)


def _backprop(model, x, y, modules="leaves"):
    """One forward/backward under ``record``; returns (recorder, dL/dlogits, dL/dx)."""
    loss_fn = nn.CrossEntropyLoss()
    with record(model, modules=modules, max_samples=0) as rec:
        loss_fn(model(x), y)
        dlogits = loss_fn.backward()
        dx = model.backward(dlogits)
    return rec, dlogits, dx


def _norm(a):
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


def _forward_stds(model, x, types):
    with record(model, modules=types, max_samples=0) as rec:
        model(x)
    return rec.column("act_std")


# ----------------------------------------------------------------------------- 1. the chain rule


def test_sigmoid_depth20_gradient_vanishes_and_residual_keeps_it():
    """Plain sigmoid MLP, depth 20, width 32, PyTorch's default Linear init: the gradient that
    reaches the input is below 1e-6 of the gradient at the output (measured: 2e-17). Each block
    multiplies the backward signal by W^T diag(sigma'(z)), with sigma' <= 1/4 and ||W^T g|| about
    0.58 ||g|| for U(+-1/sqrt(32)) weights: about 0.14 per layer, 0.14^19 ~ 1e-16.

    The same net with residual blocks (x + sigmoid(W x + b)) keeps it near 1 (measured 0.63):
    dL/dx = dL/dH (dF/dx + 1) adds the upstream gradient unchanged at every block, so the
    product over blocks is of (I + J_l), not of J_l. The 0.6 is the head: W_head^T (10 -> 32)
    scales the logits' gradient by about sqrt(1/3) before the residual stream starts.
    """
    x, y = _batch(32)
    ratios = {}
    for residual in (False, True):
        npcnn.manual_seed(0)
        model = deep_mlp(20, 32, "sigmoid", init="default", residual=residual)
        rec, dlogits, dx = _backprop(model, x, y)
        linear_grads = rec.column("weight_grad_norm", nn.Linear)
        ratios[residual] = (_norm(dx) / _norm(dlogits), linear_grads[0] / linear_grads[-1])
    (plain_input, plain_weight), (res_input, res_weight) = ratios[False], ratios[True]
    assert plain_input < 1e-6
    assert 0.5 <= res_input <= 10
    # The first/last weight-gradient ratio vanishes just as fast in the plain net...
    assert plain_weight < 1e-6
    # ...but in the residual net it is NOT near 1 (measured 0.004), although nothing vanishes:
    # see test_residual_weight_gradient_ratio_differs_from_input_gradient_ratio for why.
    assert 1e-4 < res_weight < 0.1
    assert res_weight / plain_weight > 1e10


def test_residual_weight_gradient_ratio_differs_from_input_gradient_ratio():
    """Why ||dW_first|| / ||dW_last|| is not ||dL/dx|| / ||dL/dlogits||.

    A weight gradient is an outer product summed over the batch, dW_l = dz_l^T h_(l-1): the
    backward signal dz_l times the FORWARD signal h_(l-1) entering the layer. The input-gradient
    ratio sees only the backward signal. In the residual sigmoid net:
      * the backward signal does not vanish: the gradient reaching every block's output stays
        within [0.5, 10] of the gradient at the logits;
      * the first layer's dz_1 = sigma'(z_1) * dL/dh_1 carries one factor sigma' <= 1/4 that the
        head's dz (the logits' gradient itself) does not;
      * the forward signal grows: every block adds sigmoid(...) ~ 0.5 to each unit, so the head's
        input has mean ~ 0.5 (depth - 1) ~ 9.5 per unit against the network input's N(0, 1):
        ||h_19|| is several times ||x||, and its rows point the same way, so they add up.
    The product of the two is the ~0.004 weight-gradient ratio of the test above.
    """
    x, y = _batch(32)
    npcnn.manual_seed(0)
    model = deep_mlp(20, 32, "sigmoid", init="default", residual=True)
    rec, dlogits, _ = _backprop(model, x, y, modules="all")
    stream = rec.column("grad_output_norm", Residual) / _norm(dlogits)
    assert stream.min() >= 0.5 and stream.max() <= 10
    last_block = [r for r in rec.layers if isinstance(r.module, Residual)][-1]
    assert last_block.act_mean > 5  # the residual stream drifts upward: sum of positive sigmoid outputs
    head_input_rms = np.sqrt(last_block.act_mean ** 2 + last_block.act_std ** 2)
    assert head_input_rms > 5 * float(np.sqrt((x.astype(np.float64) ** 2).mean()))
    sigmoid_records = [r for r in rec.layers if isinstance(r.module, nn.Sigmoid)]
    first_sigmoid = sigmoid_records[0]
    # sigma' <= 1/4: the first Linear's output gradient is at most a quarter of what reaches its sigmoid
    first_linear = rec.layers[rec.layers.index(first_sigmoid) - 1]
    assert first_linear.grad_output_norm <= 0.25 * first_sigmoid.grad_output_norm * (1 + 1e-6)


@pytest.mark.parametrize("depth", [5, 10])
def test_sigmoid_chain_rule_bound(depth):
    """||dL/dx|| <= (1/4)^(depth-1) prod_l ||W_l||_2 ||dL/dlogits||: the bound from sigma' <= 1/4."""
    x, y = _batch(32)
    npcnn.manual_seed(1)
    model = deep_mlp(depth, 32, "sigmoid")
    _, dlogits, dx = _backprop(model, x, y)
    spectral = [np.linalg.norm(m.weight.data.astype(np.float64), 2) for m in model.modules()
                if isinstance(m, nn.Linear)]
    bound = 0.25 ** (depth - 1) * float(np.prod(spectral))
    ratio = _norm(dx) / _norm(dlogits)
    assert ratio <= bound
    assert ratio > bound * 1e-8  # the bound is loose but not absurdly so at these depths


# ----------------------------------------------------------------------------- 2. initialization


def test_relu_small_init_collapses_and_he_keeps_the_spread():
    """10 hidden ReLU layers, width 128. N(0, 0.01^2) weights (std 0.01, biases 0): each layer
    multiplies the activation std by sqrt(fan_in / 2) * 0.01 = 0.08, so layer 10 has std < 1e-6
    (measured 1e-11). He, N(0, 2 / fan_in), keeps E[z^2] constant; a ReLU of N(0, q) has std
    0.58 sqrt(q), and q = 2 here, so std ~ 0.8 at every layer (measured 0.75 in layer 10).

    Width 128 rather than 32: at width 32 the He std of layer 10 wanders with the seed (finite-
    width fluctuations compound over depth): measured over 100 seeds it left [0.3, 3] in 5 of
    them (min 0.10, max 3.4); at width 64 the minimum was 0.33, at 128 it was 0.41.
    """
    x, _ = _batch(128)
    stds = {}
    for init in ("small", "he"):
        npcnn.manual_seed(0)
        model = deep_mlp(11, 128, "relu", init=init)
        stds[init] = _forward_stds(model, x, nn.ReLU)
    assert len(stds["he"]) == 10
    assert stds["small"][-1] < 1e-6
    assert np.all((stds["he"] >= 0.3) & (stds["he"] <= 3))


def test_tanh_large_init_saturates_and_xavier_does_not():
    """tanh with N(0, 1) weights: pre-activations have std ~ sqrt(32) ~ 5.7, so most units sit at
    |tanh| > 0.99 where the derivative is < 0.02 (measured: 61% in layer 10). Xavier: about 1% in
    layer 1 (z ~ N(0, 1) there, and P(|z| > 2.65) = 0.8%), 0 further on as tanh shrinks the spread."""
    x, _ = _batch(32)
    saturated = {}
    for init in ("normal", "xavier"):
        npcnn.manual_seed(0)
        model = deep_mlp(11, 32, "tanh", init=init)
        with record(model, modules=nn.Tanh, max_samples=0) as rec:
            model(x)
        saturated[init] = rec.column("frac_saturated")
    assert saturated["normal"][1:].min() > 0.4
    assert saturated["xavier"].max() < 0.02 and saturated["xavier"][-1] == 0


@pytest.mark.parametrize("activation,init", [("relu", "small"), ("relu", "normal"), ("tanh", "uniform"),
                                             ("sigmoid", "normal"), ("tanh", "small")])
def test_batchnorm_restores_unit_std_whatever_the_init(activation, init):
    """Linear -> BatchNorm1d -> activation: BN's output has std ~1 in every layer, whether the
    weights are far too small or far too large (zeros excepted: W = 0 gives z = 0, nothing to
    normalize). Measured between 0.95 and 1.0000; the 0.95 is sigmoid with std-0.01 weights,
    where var(z) ~ 1e-3 is no longer large against BN's eps = 1e-5."""
    x, _ = _batch(32)
    npcnn.manual_seed(0)
    plain = _forward_stds(deep_mlp(11, 32, activation, init=init), x, ACTIVATION_TYPES)
    npcnn.manual_seed(0)
    normalized = _forward_stds(deep_mlp(11, 32, activation, init=init, batchnorm=True), x, BatchNorm1d)
    assert np.all(np.abs(normalized - 1) < 0.06)
    if init in ("small", "normal") and activation != "sigmoid":
        assert abs(np.log10(plain[-1])) > 2  # without BN: collapsed (small) or exploded (normal)


def test_zero_init_gives_identical_gradient_rows_forever():
    """Zero init: all units of a layer compute the same function, so they get the same gradient
    and the same update, forever. Sigmoid net, all weights and biases 0:
      * step 0: every hidden unit outputs sigmoid(0) = 0.5; the hidden weight gradients are
        0 (W_(l+1) = 0 blocks the backward signal) and the head's gradient has identical columns;
      * after SGD steps the hidden weights are no longer 0, but every row of a hidden weight
        matrix stays identical to the others: the symmetry is never broken.
    A random init (Xavier) gives distinct rows from the first gradient on."""
    x, y = _batch(8, batch=16)
    npcnn.manual_seed(0)
    model = deep_mlp(4, 8, "sigmoid", init="zeros")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    loss_fn = nn.CrossEntropyLoss()
    for step in range(6):
        model.zero_grad()
        loss_fn(model(x), y)
        model.backward(loss_fn.backward())
        head_grad = linears[-1].weight.grad
        assert np.all(head_grad == head_grad[:, :1])  # identical columns: hidden units indistinguishable
        for layer in linears[:-1]:
            assert np.all(layer.weight.grad == layer.weight.grad[:1])  # identical rows
            assert np.all(layer.weight.data == layer.weight.data[:1])
        for p in model.parameters():
            p.data -= 1.0 * p.grad
    assert np.abs(linears[-2].weight.data).max() > 0  # the hidden weights did move, all together
    init_weights_(model, "xavier")
    model.zero_grad()
    loss_fn(model(x), y)
    model.backward(loss_fn.backward())
    assert np.ptp(linears[0].weight.grad, axis=0).max() > 1e-6


# ----------------------------------------------------------------------------- 3. exploding


def test_large_init_explodes_with_depth_and_clipping_bounds_it():
    """ReLU with N(0, 1) weights at width 32: each layer multiplies the backward signal by about
    sqrt(32 / 2) = 4, so the gradient reaching each layer grows at every step toward the input
    (dL/dx is 1.9e6 times dL/dlogits at depth 10, 1e12 at depth 20), and the total gradient norm
    grows with depth (measured 2e3 at depth 5, 3e6 at depth 10). The weight gradients of all
    layers are about equally huge: dW_l = dz_l^T h_(l-1), and the forward signal h grows by the
    same factor 4 per layer in the other direction. ``clip_grad_norm_(params, 1)`` rescales all
    gradients together to global norm 1, keeping their direction."""
    x, y = _batch(32)
    totals = {}
    for depth in (5, 10):
        npcnn.manual_seed(0)
        model = deep_mlp(depth, 32, "relu", init="normal")
        rec, dlogits, dx = _backprop(model, x, y)
        reaching = rec.column("grad_output_norm", nn.Linear)
        assert np.all(np.diff(np.log(reaching)) < 0)  # larger at every layer toward the input
        totals[depth] = grad_norm(model.parameters())
    assert _norm(dx) / _norm(dlogits) > 1e4
    assert totals[10] > 100 * totals[5] > 1e4
    params = list(model.parameters())
    before = np.concatenate([p.grad.ravel() for p in params]).astype(np.float64)
    total = clip_grad_norm_(params, 1.0)
    after = np.concatenate([p.grad.ravel() for p in params]).astype(np.float64)
    assert total == pytest.approx(totals[10], rel=1e-5)
    assert grad_norm(params) <= 1.0 + 1e-5
    cosine = before @ after / (np.linalg.norm(before) * np.linalg.norm(after))
    assert cosine > 1 - 1e-6
