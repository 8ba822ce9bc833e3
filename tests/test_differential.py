"""Randomized differential tests: implementations that must agree, on random configurations.

Each kind draws configurations from a generator seeded by (kind, case number), so a case is
replayed exactly by its number. For each configuration, float64, at 1e-10 relative to the largest
entry of the reference (an all-zero reference must be matched exactly):

* conv2d / conv1d: every ``algo`` ("im2col", "fft", "direct", "auto") of the layer against the loop
  twins (output, dx, dW, db), plus asymmetric padding through the functional kernels;
* conv_transpose2d: the layer against its loop twins;
* max/avg/lp pool 1d/2d and adaptive average pooling: the layer against the loop twins;
* against PyTorch when it is installed: the same numbers, and validity: npcnn raises ValueError
  (at construction or forward) exactly where PyTorch rejects the configuration.

The default run compares ``DEFAULT_CASES`` valid configurations per kind (and checks the invalid ones
drawn on the way), ``-m slow`` another ``SLOW_CASES`` from a separate range of case numbers.
A failure names the kind, the case number and the configuration; replay one case with

    python -c "import sys; sys.path[:0] = ['tests']; import test_differential as t; t.run_case('conv2d', 17)"
"""

import random

import numpy as np
import pytest
from conftest import noncontiguous, torch_or_skip

import npcnn
from npcnn import nn
from npcnn.functional import conv as F
from npcnn.functional import pooling as P

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")

DEFAULT_CASES = 200
SLOW_CASES = 2000
TOL = 1e-10

try:  # the oracle is optional: without it the validity half is skipped, the rest still runs
    import torch
except ImportError:  # pragma: no cover - depends on the machine
    torch = None


class Rejected(Exception):
    """npcnn raised ValueError for the configuration."""


def _close(name, mine, ref):
    """|mine - ref| <= TOL * max|ref| (exactly equal when ref is all zero), same shape; else an error."""
    mine, ref = np.asarray(mine, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if mine.shape != ref.shape:
        raise AssertionError(f"{name}: shape {mine.shape} != reference {ref.shape}")
    finite = np.isfinite(ref)
    if not np.array_equal(np.isfinite(mine), finite) or not np.array_equal(mine[~finite], ref[~finite]):
        raise AssertionError(f"{name}: non-finite entries differ")
    scale = np.abs(ref[finite]).max(initial=0.0)
    err = np.abs(mine[finite] - ref[finite]).max(initial=0.0)
    if err > TOL * scale:
        raise AssertionError(f"{name}: max difference {err:.3g} against scale {scale:.3g}")


def _data(r, shape, positive=False, noncontig=False):
    """A float64 array drawn from the case's generator (ties have probability zero)."""
    rng = np.random.default_rng(r.getrandbits(32))
    a = rng.uniform(0.5, 2.0, shape) if positive else rng.standard_normal(shape)
    return noncontiguous(a) if noncontig and a.shape[-1] > 1 else a


def _run_layer(make, x, dout_seed, state=None):
    """(layer, out, dout, dx) of a fresh layer (with parameters ``state`` when given) on x, with a
    seeded dout; ValueError -> Rejected."""
    try:
        layer = make()
        if state is not None:
            layer.load_state_dict(state)
        out = layer(x)
    except ValueError as err:
        raise Rejected(str(err)) from err
    out0 = out[0] if isinstance(out, tuple) else out
    dout = np.random.default_rng(dout_seed).standard_normal(out0.shape)
    return layer, out, dout, layer.backward(dout)


def _torch_run(make, x, dout):
    """PyTorch's (out, dx, module) or None where PyTorch rejects the configuration."""
    try:
        module = make()
        tx = torch.tensor(np.ascontiguousarray(x), requires_grad=True)
        out = module(tx)
    except (RuntimeError, ValueError, TypeError):
        return None
    if dout is not None:
        (out[0] if isinstance(out, tuple) else out).backward(torch.tensor(dout))
    return out, tx.grad, module


def _torch_accepts(make, x):
    return _torch_run(make, x, None) is not None


def _run_validated(make, make_torch, x, seed):
    """_run_layer's (layer, out, dout, dx), or None where npcnn rejects the configuration; with
    PyTorch installed, an AssertionError unless PyTorch accepts exactly the same configurations."""
    t_ok = torch is None or _torch_accepts(make_torch, x)
    try:
        result = _run_layer(make, x, seed)
    except Rejected as err:
        if torch is not None and t_ok:
            raise AssertionError(f"npcnn rejects what PyTorch accepts: {err}") from err
        return None
    if not t_ok:
        raise AssertionError("npcnn accepts what PyTorch rejects")
    return result


# ----------------------------------------------------------------------------- convolution


def _conv_config(r, dims):
    groups = r.choice([1, 1, 1, 2, 3])
    kernel = tuple(r.randint(1, 7) for _ in range(dims)) if r.random() < 0.5 else (r.randint(1, 7),) * dims
    dilation = tuple(r.choice([1, 1, 2, 3]) for _ in range(dims))
    stride = tuple(r.randint(1, 4) for _ in range(dims))
    form = r.choice(["int", "tuple", "same", "valid", "asymmetric"])
    if form == "same" and r.random() < 0.8:
        stride = (1,) * dims  # mostly valid; sometimes 'same' with a stride, which PyTorch rejects
    pads = [(r.randint(0, 3), r.randint(0, 3)) for _ in range(dims)]
    padding = {"int": pads[0][0], "tuple": tuple(p[0] for p in pads), "same": "same", "valid": "valid",
               "asymmetric": tuple(pads)}[form]
    if form in ("int", "tuple"):
        pads = [(p, p) for p in (padding,) * dims] if form == "int" else [(p[0], p[0]) for p in pads]
    elif form in ("same", "valid"):
        pads = [(d * (k - 1) // 2, d * (k - 1) - d * (k - 1) // 2) if form == "same" else (0, 0)
                for k, d in zip(kernel, dilation)]
    # sizes around the smallest valid one (so a few configurations are invalid), down to 1
    spatial = tuple(max(1, d * (k - 1) + 1 - sum(p) + r.randint(-1, 4)) for k, d, p in zip(kernel, dilation, pads))
    return dict(in_channels=groups * r.randint(1, 2), out_channels=groups * r.randint(1, 3), kernel_size=kernel,
                stride=stride, padding=padding, dilation=dilation, groups=groups, bias=r.random() < 0.7,
                padding_mode=r.choice(["zeros"] * 5 + ["reflect", "replicate", "circular"]),
                batch=r.randint(1, 2), spatial=spatial, noncontig=r.random() < 0.3, pads=tuple(pads))


def _layer_kwargs(c, keys):
    return {k: c[k] for k in keys}


_CONV_KEYS = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
              "padding_mode")


def _conv_reference(c, x, w, b, dout, dims):
    """Loop twins: padding (any mode) by pad_forward, then conv2d_naive / conv2d_naive_backward."""
    from npcnn.functional.padding import pad_backward, pad_forward

    pads, stride, dilation = c["pads"], c["stride"], c["dilation"]
    if dims == 1:
        x, w, dout = x[:, :, None, :], w[:, :, None, :], dout[:, :, None, :]
        pads, stride, dilation = ((0, 0),) + pads, (1,) + stride, (1,) + dilation
    xpad, pad_cache = pad_forward(x, pads, c["padding_mode"])
    out = F.conv2d_naive(xpad, w, b, stride, 0, dilation, c["groups"])
    dxpad, dw, db = F.conv2d_naive_backward(dout, xpad, w, stride, 0, dilation, c["groups"])
    dx = pad_backward(dxpad, pad_cache)
    if dims == 1:
        out, dx, dw = out[:, :, 0], dx[:, :, 0], dw[:, :, 0]
    return out, dx, dw, db


def _conv_case(r, dims):
    c = _conv_config(r, dims)
    x = _data(r, (c["batch"], c["in_channels"]) + c["spatial"], noncontig=c["noncontig"])
    seed = r.getrandbits(32)
    asymmetric = isinstance(c["padding"], tuple) and isinstance(c["padding"][0], tuple)
    if asymmetric:
        return _conv_functional_case(c, x, seed, dims)
    layer_cls = nn.Conv2d if dims == 2 else nn.Conv1d
    if torch is not None:
        t_cls = torch.nn.Conv2d if dims == 2 else torch.nn.Conv1d
        kwargs = _layer_kwargs(c, _CONV_KEYS)
        t_ok = _torch_accepts(lambda: t_cls(**kwargs, dtype=torch.float64), x)
    reference = state = None
    for algo in ("im2col", "fft", "direct", "auto"):
        try:
            layer, out, dout, dx = _run_layer(lambda: layer_cls(**_layer_kwargs(c, _CONV_KEYS), algo=algo), x, seed,
                                              state)
        except Rejected as err:
            if torch is not None and t_ok:
                raise AssertionError(f"npcnn rejects what PyTorch accepts: {err}") from err
            if algo != "im2col":
                raise AssertionError(f"algo={algo} rejects what im2col accepted: {err}") from err
            return "rejected"
        if torch is not None and not t_ok:
            raise AssertionError("npcnn accepts what PyTorch rejects")
        if reference is None:
            b = None if layer.bias is None else layer.bias.data
            w, state = layer.weight.data, layer.state_dict()
            reference = _conv_reference(c, x, w, b, dout, dims)
        _close(f"{algo} out", out, reference[0])
        _close(f"{algo} dx", dx, reference[1])
        _close(f"{algo} dW", layer.weight.grad, reference[2])
        if layer.bias is not None:
            _close(f"{algo} db", layer.bias.grad, reference[3])
    if torch is not None:
        t_layer = t_cls(**_layer_kwargs(c, _CONV_KEYS), dtype=torch.float64)
        t_layer.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in layer.state_dict().items()})
        t_out, t_dx, _ = _torch_run(lambda: t_layer, x, dout)
        _close("torch out", reference[0], t_out.detach().numpy())
        _close("torch dx", reference[1], t_dx.numpy())
        _close("torch dW", reference[2], t_layer.weight.grad.numpy())
    return "compared"


def _conv_functional_case(c, x, seed, dims):
    """Asymmetric ((before, after) per axis) zero padding: conv2d_forward / conv1d_forward, every algo."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c["out_channels"], c["in_channels"] // c["groups"]) + c["kernel_size"])
    b = rng.standard_normal(c["out_channels"]) if c["bias"] else None
    c = dict(c, padding_mode="zeros")
    forward, backward = (F.conv2d_forward, F.conv2d_backward) if dims == 2 else (F.conv1d_forward, F.conv1d_backward)
    padding = c["pads"] if dims == 2 else c["pads"][0]
    stride, dilation = (c["stride"], c["dilation"]) if dims == 2 else (c["stride"][0], c["dilation"][0])
    reference = None
    for algo in ("im2col", "fft", "direct", "auto"):
        try:
            out, cache = forward(x, w, b, stride, padding, dilation, c["groups"], algo=algo)
        except ValueError as err:
            if algo != "im2col":
                raise AssertionError(f"algo={algo} rejects what im2col accepted: {err}") from err
            return "rejected"
        if reference is None:
            dout = rng.standard_normal(out.shape)
            reference = _conv_reference(c, x, w, b, dout, dims)
        _close(f"{algo} out", out, reference[0])
        for name, mine, ref in zip(("dx", "dW", "db"), backward(dout, cache), reference[1:]):
            if name != "db" or b is not None:
                _close(f"{algo} {name}", mine, ref)
    if torch is not None:
        tx, tw = torch.tensor(np.ascontiguousarray(x), requires_grad=True), torch.tensor(w, requires_grad=True)
        flat = sum(reversed(c["pads"]), ())  # F.pad wants the last axis first
        tconv = torch.nn.functional.conv2d if dims == 2 else torch.nn.functional.conv1d
        t_out = tconv(torch.nn.functional.pad(tx, flat), tw, None if b is None else torch.tensor(b), stride, 0,
                      dilation, c["groups"])
        t_out.backward(torch.tensor(dout))
        _close("torch out", reference[0], t_out.detach().numpy())
        _close("torch dx", reference[1], tx.grad.numpy())
        _close("torch dW", reference[2], tw.grad.numpy())
    return "compared"


def _conv_transpose_case(r):
    groups = r.choice([1, 1, 2, 3])
    kernel = (r.randint(1, 5), r.randint(1, 5))
    stride, dilation = (r.randint(1, 4), r.randint(1, 4)), (r.choice([1, 1, 2, 3]), r.choice([1, 1, 2]))
    c = dict(in_channels=groups * r.randint(1, 3), out_channels=groups * r.randint(1, 3), kernel_size=kernel,
             stride=stride, padding=(r.randint(0, 3), r.randint(0, 3)),
             output_padding=tuple(r.randint(0, max(s, d) - (r.random() < 0.9)) for s, d in zip(stride, dilation)),
             groups=groups, bias=r.random() < 0.7, dilation=dilation)
    x = _data(r, (r.randint(1, 2), c["in_channels"], r.randint(1, 5), r.randint(1, 5)), noncontig=r.random() < 0.3)
    seed = r.getrandbits(32)
    result = _run_validated(lambda: nn.ConvTranspose2d(**c), lambda: torch.nn.ConvTranspose2d(**c, dtype=torch.float64),
                            x, seed)
    if result is None:
        return "rejected"
    layer, out, dout, dx = result
    w, b = layer.weight.data, None if layer.bias is None else layer.bias.data
    pads = tuple((p, p) for p in c["padding"])
    args = (c["stride"], pads, c["output_padding"], c["dilation"], c["groups"])
    _close("out", out, F.conv_transpose2d_naive(x, w, b, *args))
    ref_dx, ref_dw, ref_db = F.conv_transpose2d_naive_backward(dout, x, w, *args)
    _close("dx", dx, ref_dx)
    _close("dW", layer.weight.grad, ref_dw)
    if b is not None:
        _close("db", layer.bias.grad, ref_db)
    if torch is not None:
        t_layer = torch.nn.ConvTranspose2d(**c, dtype=torch.float64)
        t_layer.load_state_dict({k: torch.tensor(np.asarray(v)) for k, v in layer.state_dict().items()})
        t_out, t_dx, _ = _torch_run(lambda: t_layer, x, dout)
        _close("torch out", out, t_out.detach().numpy())
        _close("torch dx", dx, t_dx.numpy())
        _close("torch dW", layer.weight.grad, t_layer.weight.grad.numpy())
    return "compared"


# ----------------------------------------------------------------------------- pooling


def _pool_config(r, dims, dilation=True):
    kernel = tuple(r.randint(1, 4) for _ in range(dims))
    c = dict(kernel_size=kernel if dims == 2 and r.random() < 0.6 else kernel[0],
             stride=r.choice([None, r.randint(1, 4), tuple(r.randint(1, 4) for _ in range(dims))]),
             padding=tuple(r.randint(0, k // 2 + (r.random() < 0.1)) for k in kernel),  # a few too large
             ceil_mode=r.random() < 0.5)
    if dims == 1:
        c["stride"] = c["stride"][0] if isinstance(c["stride"], tuple) else c["stride"]
        c["padding"] = c["padding"][0]
    elif r.random() < 0.3:
        c["padding"] = c["padding"][0]
    if dilation:
        c["dilation"] = r.choice([1, 1, 2, 3]) if dims == 1 or r.random() < 0.5 else (r.randint(1, 3), r.randint(1, 3))
    dil = c.get("dilation", 1)
    dil = dil if isinstance(dil, tuple) else (dil,) * dims
    pad = c["padding"] if isinstance(c["padding"], tuple) else (c["padding"],) * dims
    # sizes around the smallest valid one (a few invalid), down to 1
    spatial = tuple(max(1, d * (k - 1) + 1 - 2 * p + r.randint(-1, 5)) for k, d, p in zip(kernel, dil, pad))
    return c, (r.randint(1, 2), r.randint(1, 3)) + spatial


def _pairs(c):
    """The 2-D kernel arguments (pairs) of a 1-D or 2-D pooling configuration."""
    def two(v, one):
        return (one, v) if not isinstance(v, tuple) and c["_dims"] == 1 else v
    kernel = two(c["kernel_size"], 1)
    stride = None if c["stride"] is None else two(c["stride"], 1)
    return P.pool_args("reference", kernel, stride, two(c.get("padding", 0), 0), two(c.get("dilation", 1), 1))


def _pool_case(r, kind, dims):
    dilation = kind == "max"
    c, shape = _pool_config(r, dims, dilation)
    if kind == "avg":
        c["count_include_pad"] = r.random() < 0.5
    if kind == "lp":
        del c["padding"]
        c["norm_type"] = r.choice([1, 2, 3, 1.5])
    positive = kind == "lp"
    x = _data(r, shape, positive=positive, noncontig=r.random() < 0.3)
    seed = r.getrandbits(32)
    name = {"max": "MaxPool", "avg": "AvgPool", "lp": "LPPool"}[kind] + f"{dims}d"
    kwargs = {k: v for k, v in c.items() if k != "norm_type"}
    args = (c["norm_type"],) if kind == "lp" else ()
    if kind == "max":
        kwargs["return_indices"] = True
    result = _run_validated(lambda: getattr(nn, name)(*args, **kwargs),
                            lambda: getattr(torch.nn, name)(*args, **kwargs), x, seed)
    if result is None:
        return "rejected"
    layer, out, dout, dx = result
    c["_dims"] = dims
    kernel, stride, padding, dil = _pairs(c)
    x4 = x if dims == 2 else x[:, :, None, :]
    d4 = dout if dims == 2 else dout[:, :, None, :]

    def one(a):
        return a if dims == 2 else a[:, :, 0, :]

    if kind == "max":
        ref, index = P.max_pool2d_naive(x4, kernel, stride, padding, dil, c["ceil_mode"])
        _close("out", out[0], one(ref))
        np.testing.assert_array_equal(out[1], one(index), err_msg="indices")
        _close("dx", dx, one(P.max_pool2d_backward_naive(d4, index, x4.shape)))
    elif kind == "avg":
        _close("out", out, one(P.avg_pool2d_naive(x4, kernel, stride, padding, c["ceil_mode"],
                                                  c["count_include_pad"])))
        _close("dx", dx, one(P.avg_pool2d_backward_naive(d4, x4.shape, kernel, stride, padding, c["ceil_mode"],
                                                         c["count_include_pad"])))
    else:
        p = float(c["norm_type"])
        total = P.avg_pool2d_naive(x4 ** p, kernel, stride, 0, c["ceil_mode"]) * float(kernel[0] * kernel[1])
        _close("out", out, one(total ** (1 / p)))
        dtotal = d4 * total ** (1 / p - 1) / p * float(kernel[0] * kernel[1])
        ref_dx = P.avg_pool2d_backward_naive(dtotal, x4.shape, kernel, stride, 0, c["ceil_mode"]) * p * x4 ** (p - 1)
        _close("dx", dx, one(ref_dx))
    if torch is not None:
        ref_out = out[0] if kind == "max" else out
        # A max-pool window without input elements (ceil_mode + dilation) is -inf with no gradient
        # here; PyTorch sends its gradient to an index outside the window, so leave those out.
        t_dout = np.where(np.isneginf(ref_out), 0.0, dout)
        if kind == "max":
            layer(x)
            mine_dx = layer.backward(t_dout)
        else:
            mine_dx = dx
        t_out, t_dx, _ = _torch_run(lambda: getattr(torch.nn, name)(*args, **kwargs), x, t_dout)
        _close("torch out", ref_out, (t_out[0] if kind == "max" else t_out).detach().numpy())
        if kind == "max":
            valid = ~np.isneginf(ref_out)
            np.testing.assert_array_equal(out[1][valid], t_out[1].numpy()[valid], err_msg="torch indices")
        _close("torch dx", mine_dx, t_dx.numpy())
    return "compared"


def _adaptive_case(r):
    shape = (r.randint(1, 2), r.randint(1, 3), r.randint(1, 9), r.randint(1, 9))
    size = r.choice([r.randint(1, 10), (r.randint(1, 10), r.randint(1, 10)), (None, r.randint(1, 10)),
                     (r.randint(1, 10), None)])
    x = _data(r, shape, noncontig=r.random() < 0.3)
    seed = r.getrandbits(32)
    layer, out, dout, dx = _run_layer(lambda: nn.AdaptiveAvgPool2d(size), x, seed)
    _close("out", out, P.adaptive_avg_pool2d_naive(x, size))
    # loop twin of the backward: each window spreads dout / its size over itself
    oh, ow = out.shape[2:]
    ref_dx = np.zeros_like(x)
    for i, (h0, h1) in enumerate(P.adaptive_bounds(shape[2], oh)):
        for j, (w0, w1) in enumerate(P.adaptive_bounds(shape[3], ow)):
            ref_dx[:, :, h0:h1, w0:w1] += dout[:, :, i, j][:, :, None, None] / ((h1 - h0) * (w1 - w0))
    _close("dx", dx, ref_dx)
    if torch is not None:
        t_out, t_dx, _ = _torch_run(lambda: torch.nn.AdaptiveAvgPool2d(size), x, dout)
        _close("torch out", out, t_out.detach().numpy())
        _close("torch dx", dx, t_dx.numpy())
    return "compared"


# ----------------------------------------------------------------------------- driver

KINDS = {
    "conv2d": lambda r: _conv_case(r, 2),
    "conv1d": lambda r: _conv_case(r, 1),
    "conv_transpose2d": _conv_transpose_case,
    "max_pool2d": lambda r: _pool_case(r, "max", 2),
    "max_pool1d": lambda r: _pool_case(r, "max", 1),
    "avg_pool2d": lambda r: _pool_case(r, "avg", 2),
    "avg_pool1d": lambda r: _pool_case(r, "avg", 1),
    "lp_pool2d": lambda r: _pool_case(r, "lp", 2),
    "lp_pool1d": lambda r: _pool_case(r, "lp", 1),
    "adaptive_avg_pool2d": _adaptive_case,
}


def run_case(kind, number):
    """Run configuration ``number`` of ``kind``; returns "compared" or "rejected" (by npcnn and,
    when installed, PyTorch alike). Raises AssertionError naming the case on a disagreement."""
    r = random.Random(f"{kind}/{number}")
    with npcnn.backend.default_dtype(np.float64), np.errstate(all="ignore"):
        try:
            return KINDS[kind](r)
        except AssertionError as err:
            replay = random.Random(f"{kind}/{number}")
            config = _describe(kind, replay)
            raise AssertionError(f"{kind} case {number}: {err}\n  configuration: {config}\n  replay: "
                                 f"python -c \"import sys; sys.path[:0] = ['tests']; import test_differential as t; "
                                 f"t.run_case('{kind}', {number})\"") from err


def _describe(kind, r):
    """The configuration a case draws first (for the failure message)."""
    if kind in ("conv2d", "conv1d"):
        return _conv_config(r, 2 if kind == "conv2d" else 1)
    if kind == "conv_transpose2d" or kind == "adaptive_avg_pool2d":
        return "(see the generator; replay the case)"
    return _pool_config(r, 1 if kind.endswith("1d") else 2, kind.startswith("max"))


def run_kind(kind, start, target):
    """Run cases start, start + 1, ... until ``target`` of them were valid and compared; returns
    (compared, rejected). The rejected ones were checked for validity against PyTorch."""
    compared = rejected = 0
    number = start
    while compared < target:
        if run_case(kind, number) == "compared":
            compared += 1
        else:
            rejected += 1
        number += 1
        assert rejected <= 2 * target, f"{kind}: the generator draws too many invalid configurations"
    return compared, rejected


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """PyTorch's thread pool costs milliseconds per call on these tiny tensors (more on a busy
    machine); one thread for this module, restored after."""
    if torch is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_pytorch_half_runs():
    """The PyTorch half of the tests below (its numbers, and validity) runs only where PyTorch is
    installed; without it this test is skipped with the reason, so the summary says so."""
    torch_or_skip()
    assert torch is not None


@pytest.mark.parametrize("kind", KINDS)
def test_differential(kind):
    run_kind(kind, 0, DEFAULT_CASES)


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_differential_slow(kind):
    run_kind(kind, 10 ** 6, SLOW_CASES)
