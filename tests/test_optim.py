"""Optimizers: hand-computed updates, PyTorch's updates over several steps, groups, state dicts,
frozen parameters, dtypes, bad input; gradient clipping."""

import math

import numpy as np
import pytest
from conftest import torch_or_skip

import npcnn
from npcnn import nn, optim
from npcnn.nn.parameter import Parameter
from npcnn.nn.utils import clip_grad_norm_, clip_grad_value_


def _param(values, dtype=np.float64):
    return Parameter(np.array(values, dtype=dtype))


def _run(opt, params, grads):
    """Apply ``grads[t][i]`` to ``params[i]`` at step t; return the parameter values after each step."""
    trace = []
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = np.array(g, dtype=p.dtype)
        opt.step()
        opt.zero_grad()
        trace.append([p.data.copy() for p in params])
    return trace


# ----------------------------------------------------------------------------- hand-computed updates


def test_sgd_plain_by_hand():
    p = _param([1.0, -2.0])
    _run(optim.SGD([p], lr=0.1), [p], [[[0.5, 1.0]]])
    np.testing.assert_array_equal(p.data, [1.0 - 0.05, -2.0 - 0.1])


def test_sgd_momentum_dampening_weight_decay_by_hand():
    # p0 = 1, lr = 0.1, momentum 0.9, dampening 0.5, weight decay 0.1, grads 1 then 2
    p = _param([1.0])
    _run(optim.SGD([p], lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1), [p], [[[1.0]], [[2.0]]])
    g1 = 1.0 + 0.1 * 1.0            # 1.1
    b1 = g1                          # the first buffer is the gradient itself (no dampening)
    p1 = 1.0 - 0.1 * b1              # 0.89
    g2 = 2.0 + 0.1 * p1              # 2.089
    b2 = 0.9 * b1 + 0.5 * g2         # 2.0345
    p2 = p1 - 0.1 * b2               # 0.68655
    assert p.data[0] == pytest.approx(p2, abs=1e-15)
    assert p2 == pytest.approx(0.68655, abs=1e-12)


def test_sgd_nesterov_by_hand():
    p = _param([0.0])
    _run(optim.SGD([p], lr=1.0, momentum=0.5, nesterov=True), [p], [[[1.0]], [[1.0]]])
    # step 1: b = 1, update g + 0.5 b = 1.5; step 2: b = 0.5 + 1 = 1.5, update 1 + 0.75 = 1.75
    assert p.data[0] == pytest.approx(-3.25, abs=1e-15)


def _adam_reference(p, grads, lr, b1, b2, eps, wd, amsgrad, decoupled):
    """Adam written out with Python floats, one scalar at a time."""
    m = v = vmax = 0.0
    out = []
    for t, g in enumerate(grads, 1):
        if wd and decoupled:
            p = p * (1 - lr * wd)
        elif wd:
            g = g + wd * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        vmax = max(vmax, v)
        v_used = vmax if amsgrad else v
        p = p - lr / (1 - b1 ** t) * m / (math.sqrt(v_used) / math.sqrt(1 - b2 ** t) + eps)
        out.append(p)
    return out


@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("cls,wd", [(optim.Adam, 0.0), (optim.Adam, 0.1), (optim.AdamW, 0.1)])
def test_adam_against_a_scalar_reference(cls, wd, amsgrad):
    grads = [0.3, -1.0, 2.0, 0.1, -0.5]
    p = _param([0.7])
    trace = _run(cls([p], lr=0.01, betas=(0.8, 0.9), eps=1e-6, weight_decay=wd, amsgrad=amsgrad),
                 [p], [[[g]] for g in grads])
    expected = _adam_reference(0.7, grads, 0.01, 0.8, 0.9, 1e-6, wd, amsgrad, cls is optim.AdamW)
    np.testing.assert_allclose([t[0][0] for t in trace], expected, rtol=1e-13, atol=1e-15)


def test_adam_first_step_moves_by_lr():
    # bias correction makes the first step lr * sign(g) (up to eps), whatever |g| is
    p = _param([0.0, 0.0])
    _run(optim.Adam([p], lr=0.01, eps=1e-300), [p], [[[1e-3, -50.0]]])
    np.testing.assert_allclose(p.data, [-0.01, 0.01], rtol=1e-12)


def test_adagrad_and_rmsprop_by_hand():
    p = _param([1.0])
    _run(optim.Adagrad([p], lr=0.5, lr_decay=0.1, eps=1e-300), [p], [[[2.0]], [[1.0]]])
    p1 = 1.0 - 0.5 * 2.0 / math.sqrt(4.0)
    p2 = p1 - 0.5 / 1.1 * 1.0 / math.sqrt(5.0)
    assert p.data[0] == pytest.approx(p2, abs=1e-15)

    p = _param([1.0])
    _run(optim.RMSprop([p], lr=0.1, alpha=0.5, eps=1e-300, centered=True), [p], [[[2.0]], [[1.0]]])
    v1, a1 = 0.5 * 4.0, 0.5 * 2.0
    p1 = 1.0 - 0.1 * 2.0 / math.sqrt(v1 - a1 * a1)
    v2, a2 = 0.5 * v1 + 0.5 * 1.0, 0.5 * a1 + 0.5 * 1.0
    p2 = p1 - 0.1 * 1.0 / math.sqrt(v2 - a2 * a2)
    assert p.data[0] == pytest.approx(p2, abs=1e-14)


# ----------------------------------------------------------------------------- PyTorch oracle

CONFIGS = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.01)),
    ("Adagrad", dict(lr=0.1)),
    ("Adagrad", dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.2, eps=1e-6)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, momentum=0.5, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.01, centered=True, momentum=0.9, eps=1e-4)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True, eps=1e-6)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_matches_pytorch_over_several_steps(name, kwargs, dtype):
    torch = torch_or_skip()
    rng = np.random.default_rng(0)
    shapes = [(3, 4), (4,), (1,)]
    init = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [[rng.standard_normal(s).astype(dtype) for s in shapes] for _ in range(6)]

    params = [Parameter(a.copy()) for a in init]
    opt = getattr(optim, name)(params, **kwargs)
    tparams = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    topt = getattr(torch.optim, name)(tparams, **kwargs)
    for step_grads in grads:
        for p, tp, g in zip(params, tparams, step_grads):
            p.grad, tp.grad = g.copy(), torch.tensor(g.copy())
        opt.step()
        topt.step()
        for p, tp in zip(params, tparams):
            assert p.data.dtype == dtype
            tol = 1e-10 if dtype == np.float64 else 1e-5
            np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=tol, atol=tol)
    # the per-parameter state has PyTorch's names
    for i, tp in enumerate(tparams):
        assert set(opt.state_dict()["state"].get(i, {})) == set(topt.state_dict()["state"].get(i, {}))


@pytest.mark.torch
def test_param_groups_match_pytorch():
    torch = torch_or_skip()
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    pa, pb = Parameter(a.copy()), Parameter(b.copy())
    ta, tb = torch.tensor(a.copy(), requires_grad=True), torch.tensor(b.copy(), requires_grad=True)
    opt = optim.SGD([{"params": [pa]}, {"params": [pb], "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.9)
    topt = torch.optim.SGD([{"params": [ta]}, {"params": [tb], "lr": 0.5, "momentum": 0.0}], lr=0.1, momentum=0.9)
    for _ in range(3):
        ga, gb = rng.standard_normal((2, 3)), rng.standard_normal(3)
        pa.grad, pb.grad, ta.grad, tb.grad = ga, gb, torch.tensor(ga), torch.tensor(gb)
        opt.step()
        topt.step()
    np.testing.assert_allclose(pa.data, ta.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(pb.data, tb.detach().numpy(), rtol=1e-12)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5]


# ----------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(momentum=0.9, nesterov=True)), ("Adagrad", {}),
                                         ("RMSprop", dict(centered=True, momentum=0.5)), ("Adam", dict(amsgrad=True)),
                                         ("AdamW", {})])
def test_float32_parameters_stay_float32(name, kwargs):
    p = _param(np.ones((2, 2)), dtype=np.float32)
    opt = getattr(optim, name)([p], lr=0.1, weight_decay=0.1, **kwargs)
    data_before = p.data
    _run(opt, [p], [[np.full((2, 2), 0.5)]] * 3)
    assert p.data.dtype == np.float32
    assert p.data is data_before  # updated in place
    for value in opt.state[p].values():
        if hasattr(value, "dtype"):
            assert value.dtype == np.float32


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_frozen_and_gradless_parameters_are_skipped(name):
    frozen, gradless, live = _param([1.0]), _param([2.0]), _param([3.0])
    frozen.requires_grad = False
    opt = getattr(optim, name)([frozen, gradless, live], lr=0.1, weight_decay=0.1)
    frozen.grad = np.array([1.0])  # present, yet ignored because the parameter is frozen
    live.grad = np.array([1.0])
    opt.step()
    assert frozen.data[0] == 1.0 and gradless.data[0] == 2.0 and live.data[0] != 3.0
    assert "momentum_buffer" not in opt.state.get(frozen, {}) and "exp_avg" not in opt.state.get(gradless, {})


def test_zero_grad_sets_none():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    for p in model.parameters():
        p.grad = np.ones_like(p.data)
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_zero_grad_set_to_none_false_keeps_zeroed_arrays():
    model = nn.Linear(3, 2)
    opt = optim.SGD(model.parameters(), lr=0.1)
    model.weight.grad = np.ones_like(model.weight.data)
    opt.zero_grad(set_to_none=False)
    assert model.weight.grad.shape == (2, 3) and not model.weight.grad.any() and model.bias.grad is None
    opt.zero_grad(set_to_none=True)
    assert model.weight.grad is None


def test_an_optimizer_trains_a_linear_model():
    """Linear regression to a known weight: the loss must fall by orders of magnitude."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = x @ np.array([[1.0], [-2.0], [0.5]], dtype=np.float32) + 0.3
    model = nn.Linear(3, 1)
    opt = optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        out = model(x)
        model.backward(2.0 * (out - y) / out.size)  # d mean((out - y)^2) / d out
        opt.step()
        opt.zero_grad()
    np.testing.assert_allclose(model.weight.data, [[1.0, -2.0, 0.5]], atol=1e-3)
    np.testing.assert_allclose(model.bias.data, [0.3], atol=1e-3)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(momentum=0.9)), ("Adagrad", {}),
                                         ("RMSprop", dict(centered=True, momentum=0.5)),
                                         ("Adam", dict(amsgrad=True)), ("AdamW", {})])
def test_state_dict_round_trip_continues_identically(name, kwargs):
    rng = np.random.default_rng(2)
    grads = [[rng.standard_normal((3, 2)), rng.standard_normal(2)] for _ in range(5)]
    a = [_param(np.ones((3, 2))), _param(np.zeros(2))]
    opt_a = getattr(optim, name)(a, lr=0.1, **kwargs)
    _run(opt_a, a, grads[:3])
    saved = opt_a.state_dict()

    b = [Parameter(p.data.copy()) for p in a]
    opt_b = getattr(optim, name)(b, lr=0.7, **kwargs)  # a different lr, overwritten by the load
    opt_b.load_state_dict(saved)
    assert opt_b.param_groups[0]["lr"] == 0.1
    trace_a, trace_b = _run(opt_a, a, grads[3:]), _run(opt_b, b, grads[3:])
    for ta, tb in zip(trace_a, trace_b):
        for x, y in zip(ta, tb):
            np.testing.assert_array_equal(x, y)
    # the loaded buffers are copies, not shared with the source optimizer
    for key, value in opt_b.state[b[0]].items():
        if hasattr(value, "shape"):
            assert value is not opt_a.state[a[0]][key]


def test_state_dict_layout_is_pytorchs():
    p, q = _param([1.0]), _param([2.0])
    opt = optim.Adam([{"params": [p]}, {"params": [q], "lr": 0.5}], lr=0.1)
    p.grad = np.array([1.0])
    opt.step()
    sd = opt.state_dict()
    assert list(sd) == ["state", "param_groups"]
    assert list(sd["state"]) == [0] and sd["state"][0]["step"] == 1
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1]]
    assert sd["param_groups"][1]["lr"] == 0.5 and sd["param_groups"][0]["betas"] == (0.9, 0.999)


# ----------------------------------------------------------------------------- bad input


def test_bad_input_errors():
    p = _param([1.0])
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="single Parameter"):
        optim.SGD(p, lr=0.1)
    with pytest.raises(ValueError, match="invalid lr -0.1"):
        optim.Adam([p], lr=-0.1)
    with pytest.raises(ValueError, match="invalid betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="invalid betas"):
        optim.AdamW([p], betas=(-0.1, 0.99))
    with pytest.raises(ValueError, match="invalid momentum"):
        optim.SGD([p], lr=0.1, momentum=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="unknown parameter-group keys \\['learning_rate'\\]"):
        optim.SGD([{"params": [p], "learning_rate": 0.1}])
    with pytest.raises(ValueError, match="more than one place"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    with pytest.raises(TypeError, match="expected Parameters"):
        optim.SGD([np.zeros(2)], lr=0.1)


def test_load_state_dict_rejects_unknown_keys():
    p = _param([1.0])
    opt = optim.Adam([p])
    p.grad = np.array([1.0])
    opt.step()
    good = opt.state_dict()
    bad_state = {"state": {0: dict(good["state"][0], velocity=np.zeros(1))}, "param_groups": good["param_groups"]}
    with pytest.raises(KeyError, match="unknown state keys \\['velocity'\\]"):
        optim.Adam([_param([1.0])]).load_state_dict(bad_state)
    with pytest.raises(KeyError, match="expected the keys"):
        optim.Adam([_param([1.0])]).load_state_dict(dict(good, extra=1))
    with pytest.raises(KeyError, match="unknown parameter-group keys"):
        optim.Adam([_param([1.0])]).load_state_dict(
            {"state": {}, "param_groups": [dict(good["param_groups"][0], foo=1)]})
    with pytest.raises(ValueError, match="parameter groups saved"):
        optim.Adam([{"params": [_param([1.0])]}, {"params": [_param([1.0])]}]).load_state_dict(good)
    with pytest.raises(KeyError, match="no group holds"):
        optim.Adam([_param([1.0])]).load_state_dict({"state": {3: {}}, "param_groups": good["param_groups"]})


# ----------------------------------------------------------------------------- gradient clipping


def test_clip_grad_norm_by_hand():
    p, q = _param([0.0, 0.0]), _param([0.0])
    p.grad, q.grad = np.array([3.0, 0.0]), np.array([4.0])  # global norm 5
    total = clip_grad_norm_([p, q], max_norm=1.0)
    assert total == pytest.approx(5.0)
    np.testing.assert_allclose(np.concatenate([p.grad, q.grad]), np.array([3.0, 0.0, 4.0]) / (5.0 + 1e-6), rtol=1e-15)
    # below the limit nothing changes (the very same arrays stay)
    g = p.grad
    assert clip_grad_norm_([p, q], max_norm=10.0) == pytest.approx(1.0, abs=1e-6) and p.grad is g


def test_clip_grad_norm_never_scales_an_aliased_gradient_in_place():
    shared = np.array([3.0, 4.0])
    p, q = _param([0.0, 0.0]), _param([0.0, 0.0])
    p.grad = q.grad = shared           # two parameters holding one array
    clip_grad_norm_([p, q], max_norm=1.0)
    np.testing.assert_array_equal(shared, [3.0, 4.0])   # untouched
    np.testing.assert_allclose(p.grad, q.grad)
    np.testing.assert_allclose(np.linalg.norm(np.concatenate([p.grad, q.grad])), 1.0, rtol=1e-5)


def test_clip_grad_norm_inf_norm_dtype_and_nonfinite():
    p = _param([0.0, 0.0, 0.0], dtype=np.float32)
    p.grad = np.array([1.0, -6.0, 2.0], dtype=np.float32)
    assert clip_grad_norm_(p, max_norm=3.0, norm_type=math.inf) == 6.0
    assert p.grad.dtype == np.float32
    np.testing.assert_allclose(p.grad, [0.5, -3.0, 1.0], rtol=1e-5)
    p.grad = np.array([np.nan, 1.0, 1.0], dtype=np.float32)
    with pytest.raises(RuntimeError, match="error_if_nonfinite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    assert clip_grad_norm_([_param([1.0])], 1.0) == 0.0  # no gradients at all


def test_clip_grad_value():
    p = _param([0.0, 0.0, 0.0], dtype=np.float32)
    g = np.array([-2.0, 0.5, 3.0], dtype=np.float32)
    p.grad = g
    clip_grad_value_([p], 1.0)
    np.testing.assert_array_equal(p.grad, [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(g, [-2.0, 0.5, 3.0])
    assert p.grad.dtype == np.float32


@pytest.mark.torch
@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
def test_clip_grad_norm_matches_pytorch(norm_type):
    torch = torch_or_skip()
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(s) for s in [(4, 3), (3,), (2, 2, 2)]]
    params = [Parameter(np.zeros_like(g)) for g in grads]
    tparams = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, tp, g in zip(params, tparams, grads):
        p.grad, tp.grad = g.copy(), torch.tensor(g)
    total = clip_grad_norm_(params, 0.5, norm_type=norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(tparams, 0.5, norm_type=norm_type)
    assert total == pytest.approx(float(ttotal), rel=1e-12)
    for p, tp in zip(params, tparams):
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)


def test_manual_seed_makes_training_deterministic():
    def run():
        npcnn.manual_seed(42)
        model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
        opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x = npcnn.backend.rng().standard_normal((16, 4)).astype(np.float32)
        for _ in range(5):
            out = model(x)
            model.backward(2.0 * out / out.size)
            opt.step()
            opt.zero_grad()
        return [p.data.copy() for p in model.parameters()]

    for a, b in zip(run(), run()):
        np.testing.assert_array_equal(a, b)


BAD_HYPERPARAMETERS = [
    (optim.SGD, {"lr": math.nan}, "SGD: invalid lr nan; expected a finite number >= 0"),
    (optim.SGD, {"lr": math.inf}, "SGD: invalid lr inf"),
    (optim.SGD, {"lr": "0.1"}, "SGD: invalid lr '0.1'"),
    (optim.SGD, {"momentum": 1.5}, r"SGD: invalid momentum 1.5; expected a finite number in \[0, 1\)"),
    (optim.SGD, {"momentum": 1.0}, r"invalid momentum 1.0; expected a finite number in \[0, 1\)"),
    (optim.SGD, {"momentum": 0.9, "dampening": 1.0}, r"SGD: invalid dampening 1.0; .* in \[0, 1\)"),
    (optim.SGD, {"weight_decay": -1e-4}, "SGD: invalid weight_decay -0.0001; expected a finite number >= 0"),
    (optim.SGD, {"weight_decay": math.nan}, "SGD: invalid weight_decay nan"),
    (optim.SGD, {"momentum": 0.9, "nesterov": "yes"}, "SGD: invalid nesterov 'yes'; expected True or False"),
    (optim.RMSprop, {"alpha": 2.0}, r"RMSprop: invalid alpha 2.0; expected a finite number in \[0, 1\)"),
    (optim.RMSprop, {"eps": 0.0}, "RMSprop: invalid eps 0.0; expected a finite number > 0"),
    (optim.RMSprop, {"momentum": -0.5}, r"RMSprop: invalid momentum -0.5"),
    (optim.Adam, {"betas": (0.9, 1.5)}, r"Adam: invalid betas\[1\] 1.5; expected a finite number in \[0, 1\)"),
    (optim.Adam, {"betas": (math.nan, 0.999)}, r"Adam: invalid betas\[0\] nan"),
    (optim.Adam, {"betas": (0.9,)}, "Adam: invalid betas"),
    (optim.Adam, {"eps": -1e-8}, "Adam: invalid eps -1e-08; expected a finite number > 0"),
    (optim.AdamW, {"weight_decay": math.inf}, "AdamW: invalid weight_decay inf"),
    (optim.AdamW, {"lr": -1e-3}, "AdamW: invalid lr -0.001"),
    (optim.Adagrad, {"lr_decay": -0.1}, "Adagrad: invalid lr_decay -0.1"),
    (optim.Adagrad, {"initial_accumulator_value": math.nan}, "Adagrad: invalid initial_accumulator_value nan"),
    (optim.Adagrad, {"eps": 0}, "Adagrad: invalid eps 0; expected a finite number > 0"),
]


@pytest.mark.parametrize("cls,kwargs,message", BAD_HYPERPARAMETERS)
def test_every_hyperparameter_is_checked(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls([_param([1.0])], **kwargs)
    # the same check guards a parameter group's own values
    with pytest.raises(ValueError, match=message):
        cls([{"params": [_param([1.0])]}, {"params": [_param([2.0])], **kwargs}])


def test_edges_of_the_ranges_are_accepted():
    p = _param([1.0])
    optim.SGD([p], lr=0.0, momentum=0.0, dampening=0.0, weight_decay=0.0)
    optim.SGD([p], lr=np.float32(0.1), momentum=0.999, dampening=0.5)
    optim.Adam([p], betas=(0.0, 0.0), eps=1e-300)
    optim.RMSprop([p], alpha=0.0, momentum=0.0)


def test_a_module_or_a_state_dict_instead_of_parameters_says_what_to_pass():
    model = nn.Linear(2, 3)
    with pytest.raises(TypeError, match=r"got the module Linear itself; pass its parameters: "
                                        r"SGD\(model.parameters\(\), \.\.\.\)"):
        optim.SGD(model, lr=0.1)
    with pytest.raises(TypeError, match="Adam: .*got a dict.*pass model.parameters()"):
        optim.Adam(model.state_dict())
    with pytest.raises(TypeError, match="RMSprop: params must be an iterable of Parameters .*got int"):
        optim.RMSprop(3)


def test_load_state_dict_rejects_a_saved_nan_learning_rate_and_changes_nothing():
    p = _param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = math.nan
    with pytest.raises(ValueError, match="SGD: invalid lr nan"):
        opt.load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.1
