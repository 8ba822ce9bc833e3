"""Gradient-check every layer and block in one table: ``gradcheck_all()``.

``GRADCHECK_CASES`` is a plain list of :class:`GradcheckCase` (name, factory, input shape):
to cover a new layer, append a case. Each case is checked

* in float64, with :func:`npcnn.gradcheck.check_module`: central differences against the
  analytic backward; a correct backward gives about 1e-9 or better (tolerance 1e-6);
* in float32, with :func:`check_module_dtype`: the backward run in float32 against central
  differences of the same module in float64 at the same (float32-representable) point, so the
  error is what float32 arithmetic costs the backward, not finite-difference noise. Expect
  1e-7 to 1e-5 (tolerance 1e-4).

The loss functions are checked through :class:`LossAsModule`, which makes ``loss(pred)`` a
module with a one-element output.
"""

import copy
import time
from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..gradcheck import GradcheckReport, TensorCheck, check_module, numerical_gradient
from ..nn import composition, conv, dropout, norm, pooling
from ..nn.blocks import SqueezeExcitation
from ..models import densenet, fcn, lenet, mobilenet, resnet, senet
from ..models.googlenet import BasicConv2d, Inception  # (npcnn.models.googlenet is the function)
from .table import Table

TOLERANCES = {"float64": 1e-6, "float32": 1e-4}
GRADCHECK_COLUMNS = ["case", "dtype", "max_rel_error", "worst_tensor", "tol", "ok", "entries", "seconds"]


@dataclass
class GradcheckCase:
    """``factory()`` builds the module; ``input_shape`` is one shape, or a list of shapes for a
    module with several inputs. ``max_entries`` checks a random subset of each larger tensor;
    ``eps`` is the finite-difference step (raise it only for a gradient that is nearly 0 by
    construction, where the rounding error of the difference, ~1e-16 |L| / eps, dominates)."""

    name: str
    factory: object
    input_shape: object
    max_entries: int = 64
    eps: float = 1e-6

    def input_shapes(self):
        """The input shapes as a list (one entry per input of the module)."""
        return list(self.input_shape) if isinstance(self.input_shape[0], (tuple, list)) else [self.input_shape]


class LossAsModule(nn.Module):
    """``loss(pred, target)`` as a module of ``pred`` alone: out = [loss] (shape (1,)),
    dL/dpred = dout[0] * loss.backward(). The target is fixed at construction."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, target

    def forward(self, pred):
        dtype = pred.dtype if np.dtype(self.target.dtype).kind == "f" else None
        target = backend.asarray(self.target, dtype=dtype)  # on pred's device, in pred's precision
        value = self.loss(pred, target)
        return backend.get_array_module(pred).asarray([value], dtype=pred.dtype)

    def backward(self, dout):
        return self.loss.backward(float(dout[0]))


def _targets(kind, shape, seed=7):
    generator = np.random.default_rng(seed)
    if kind == "class":
        return generator.integers(0, shape[1], shape[0])
    if kind == "prob":
        return generator.uniform(0.05, 0.95, shape)
    return generator.standard_normal(shape)


def _loss_case(name, make_loss, kind, shape=(4, 5), before=None):
    def factory():
        module = LossAsModule(make_loss(), _targets(kind, shape))
        return module if before is None else nn.Sequential(before(), module)
    return GradcheckCase(name, factory, shape)


S = nn.Sequential


def _random_batchnorm_eval(module):
    """``module`` in eval mode with random BatchNorm statistics and affine parameters (no layer
    output then sits exactly at an activation's kink, and BN is a fixed non-trivial affine map)."""
    generator = backend.rng()
    for m in module.modules():
        if isinstance(m, norm._BatchNorm):
            shape = m.running_mean.shape
            m.running_mean = backend.asarray(generator.normal(0.0, 0.5, shape), dtype=m.running_mean.dtype)
            m.running_var = backend.asarray(generator.uniform(0.5, 2.0, shape), dtype=m.running_var.dtype)
            m.weight.data[...] = backend.asarray(generator.uniform(0.5, 1.5, shape), dtype=m.weight.dtype)
            m.bias.data[...] = backend.asarray(generator.normal(0.0, 0.5, shape), dtype=m.bias.dtype)
    return module.eval()

GRADCHECK_CASES = [
    # fully connected and activations
    GradcheckCase("Linear", lambda: nn.Linear(5, 3), (4, 5)),
    GradcheckCase("Linear(bias=False), 3-D input", lambda: nn.Linear(5, 3, bias=False), (2, 3, 5)),
    GradcheckCase("ReLU", lambda: nn.ReLU(), (4, 7)),
    GradcheckCase("LeakyReLU(0.1)", lambda: nn.LeakyReLU(0.1), (4, 7)),
    GradcheckCase("Sigmoid", lambda: nn.Sigmoid(), (4, 7)),
    GradcheckCase("Tanh", lambda: nn.Tanh(), (4, 7)),
    GradcheckCase("ELU", lambda: nn.ELU(), (4, 7)),
    GradcheckCase("GELU", lambda: nn.GELU(), (4, 7)),
    GradcheckCase("GELU(tanh)", lambda: nn.GELU(approximate="tanh"), (4, 7)),
    GradcheckCase("Softmax(dim=1)", lambda: nn.Softmax(dim=1), (4, 7)),
    GradcheckCase("LogSoftmax(dim=1)", lambda: nn.LogSoftmax(dim=1), (4, 7)),
    # shape utilities
    GradcheckCase("Identity", lambda: nn.Identity(), (3, 4)),
    GradcheckCase("Flatten", lambda: nn.Flatten(), (2, 3, 2, 2)),
    GradcheckCase("Reshape", lambda: nn.Reshape(3, 4), (2, 12)),
    # convolutions
    GradcheckCase("Conv2d 3x3 pad 1", lambda: conv.Conv2d(3, 4, 3, padding=1), (2, 3, 6, 6)),
    GradcheckCase("Conv2d stride 2 dilation 2 groups 2", lambda: conv.Conv2d(4, 6, 3, stride=2, dilation=2, groups=2),
                  (2, 4, 9, 9)),
    GradcheckCase("Conv2d reflect pad", lambda: conv.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (1, 2, 5, 6)),
    GradcheckCase("Conv2d 7x7 algo=auto (FFT once merged)", lambda: conv.Conv2d(2, 2, 7, padding=3), (1, 2, 9, 9)),
    GradcheckCase("Conv1d", lambda: conv.Conv1d(3, 4, 3, padding=1), (2, 3, 10)),
    GradcheckCase("ConvTranspose2d stride 2",
                  lambda: conv.ConvTranspose2d(3, 2, 3, stride=2, padding=1, output_padding=1), (2, 3, 4, 4)),
    # pooling
    GradcheckCase("MaxPool2d(2)", lambda: pooling.MaxPool2d(2), (2, 3, 6, 6)),
    GradcheckCase("MaxPool2d(3, 2, pad 1)", lambda: pooling.MaxPool2d(3, stride=2, padding=1), (2, 2, 7, 7)),
    GradcheckCase("MaxPool1d(2)", lambda: pooling.MaxPool1d(2), (2, 3, 8)),
    GradcheckCase("AvgPool2d(2)", lambda: pooling.AvgPool2d(2), (2, 3, 6, 6)),
    GradcheckCase("AvgPool2d(3, 2, pad 1, no pad count)",
                  lambda: pooling.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 2, 7, 7)),
    GradcheckCase("AvgPool1d(2)", lambda: pooling.AvgPool1d(2), (2, 3, 8)),
    GradcheckCase("LPPool2d(2, 2)", lambda: pooling.LPPool2d(2, 2), (2, 3, 6, 6)),
    GradcheckCase("AdaptiveAvgPool2d((2, 3))", lambda: pooling.AdaptiveAvgPool2d((2, 3)), (2, 3, 7, 7)),
    GradcheckCase("GlobalAvgPool2d", lambda: pooling.GlobalAvgPool2d(), (2, 3, 5, 5)),
    # normalization and regularization
    GradcheckCase("BatchNorm1d", lambda: norm.BatchNorm1d(5), (6, 5)),
    GradcheckCase("BatchNorm1d (N, C, L)", lambda: norm.BatchNorm1d(3), (4, 3, 5)),
    GradcheckCase("BatchNorm2d", lambda: norm.BatchNorm2d(3), (4, 3, 4, 4)),
    GradcheckCase("BatchNorm2d eval", lambda: norm.BatchNorm2d(3).eval(), (2, 3, 4, 4)),
    GradcheckCase("LayerNorm", lambda: norm.LayerNorm((3, 4)), (2, 3, 4)),
    GradcheckCase("GroupNorm(2, 4)", lambda: norm.GroupNorm(2, 4), (2, 4, 3, 3)),
    GradcheckCase("LocalResponseNorm(3)", lambda: norm.LocalResponseNorm(3), (2, 5, 4, 4)),
    GradcheckCase("Dropout(0.3)", lambda: dropout.Dropout(0.3), (4, 10)),
    GradcheckCase("Dropout2d(0.3)", lambda: dropout.Dropout2d(0.3), (2, 4, 3, 3)),
    # composition and blocks
    GradcheckCase("Sequential(Linear, Tanh, Linear)", lambda: S(nn.Linear(5, 6), nn.Tanh(), nn.Linear(6, 3)), (4, 5)),
    GradcheckCase("Residual(Linear, Tanh)", lambda: composition.Residual(S(nn.Linear(6, 6), nn.Tanh())), (4, 6)),
    GradcheckCase("Residual with 1x1 conv shortcut",
                  lambda: composition.Residual(  # bias=False: BatchNorm removes a bias, whose gradient is exactly 0
                      S(conv.Conv2d(2, 4, 3, stride=2, padding=1, bias=False), norm.BatchNorm2d(4)),
                      conv.Conv2d(2, 4, 1, stride=2, bias=False)), (2, 2, 6, 6)),
    GradcheckCase("Add (broadcast)", lambda: composition.Add(), [(4, 5), (1, 5)]),
    GradcheckCase("Concat(Linear, Linear)", lambda: composition.Concat(nn.Linear(5, 3), nn.Linear(5, 4)), (4, 5)),
    GradcheckCase("SqueezeExcitation(8, 4)", lambda: SqueezeExcitation(8, reduction=4), (2, 8, 4, 4)),
    # blocks of the model zoo (npcnn.models), and two whole small nets
    GradcheckCase("BasicBlock", lambda: resnet.BasicBlock(4, 4), (2, 4, 5, 5)),
    GradcheckCase("BasicBlock stride 2, ShortcutA", lambda: resnet.BasicBlock(2, 4, 2, resnet.ShortcutA(2, 4, 2)),
                  (2, 2, 6, 6)),
    GradcheckCase("BasicBlock residual=False (plain)", lambda: resnet.BasicBlock(4, 4, residual=False), (2, 4, 5, 5)),
    GradcheckCase("Bottleneck with 1x1 downsample",
                  lambda: resnet.Bottleneck(4, 2, 2, S(resnet.conv1x1(4, 8, 2), norm.BatchNorm2d(8))), (2, 4, 6, 6)),
    GradcheckCase("SEBottleneck", lambda: senet.SEBottleneck(8, 2, reduction=4), (2, 8, 4, 4)),
    GradcheckCase("InvertedResidual expand 1, stride 2", lambda: mobilenet.InvertedResidual(3, 4, 2, 1), (2, 3, 6, 6)),
    # In eval mode with random BN statistics: in training mode BN -> ReLU6 -> depthwise conv -> BN is
    # invariant to scaling one channel wherever ReLU6 is linear, so dL/d(conv.0.1.weight) is ~1e-3 of
    # the other gradients and the check measures rounding (float64 4e-6, float32 1e-3); in eval mode
    # with the default statistics (mean 0, bias 0) a dead 3x3 window gives a pre-activation of
    # exactly 0, ReLU6's kink. Training-mode BN is checked in the other blocks.
    GradcheckCase("InvertedResidual expand 6, residual (eval, random BN)",
                  lambda: _random_batchnorm_eval(mobilenet.InvertedResidual(4, 4, 1, 6)), (2, 4, 5, 5)),
    GradcheckCase("ReLU6", lambda: nn.ReLU6(), (4, 7)),
    GradcheckCase("BasicConv2d", lambda: BasicConv2d(3, 4, kernel_size=3, padding=1), (2, 3, 5, 5)),
    GradcheckCase("Inception", lambda: Inception(4, 2, 2, 3, 1, 2, 2), (2, 4, 5, 5)),
    GradcheckCase("DenseLayer", lambda: densenet.DenseLayer(4, 3, 2), (2, 4, 5, 5)),
    GradcheckCase("SkipFusion (FCN)", lambda: fcn.SkipFusion(3, 2, offset=1), [(1, 2, 3, 3), (1, 3, 10, 10)]),
    GradcheckCase("LeNet5", lambda: lenet.lenet5(), (2, 1, 32, 32), max_entries=24),
    GradcheckCase("CifarResNet depth 8, width 2", lambda: resnet.CifarResNet(8, 10, 1, width=2), (2, 1, 16, 16),
                  max_entries=24),
    # losses, as modules of the prediction
    _loss_case("MSELoss", nn.MSELoss, "real"),
    _loss_case("L1Loss", nn.L1Loss, "real"),
    _loss_case("CrossEntropyLoss", nn.CrossEntropyLoss, "class"),
    _loss_case("CrossEntropyLoss(label_smoothing=0.1)", lambda: nn.CrossEntropyLoss(label_smoothing=0.1), "class"),
    _loss_case("NLLLoss after LogSoftmax", nn.NLLLoss, "class", before=lambda: nn.LogSoftmax(dim=1)),
    _loss_case("BCELoss after Sigmoid", nn.BCELoss, "prob", before=nn.Sigmoid),
    _loss_case("BCEWithLogitsLoss", nn.BCEWithLogitsLoss, "prob"),
]


def _inputs(case, seed):
    # Not ``seed`` itself: the check draws its projection R from default_rng(seed), and an input
    # equal to R makes a normalization layer's input gradient vanish (dx ~ R - xhat mean(R xhat) = 0).
    generator = np.random.default_rng(seed + 1000)
    return [generator.standard_normal(shape) for shape in case.input_shapes()]


def check_module_dtype(module, *inputs, dtype=np.float32, eps=1e-6, tol=None, seed=0, max_entries=None):
    """Gradient-check ``module`` with its backward computed in ``dtype``.

    float64 is :func:`npcnn.gradcheck.check_module`. For a lower precision, a copy of the module
    and the inputs in ``dtype`` runs forward and backward (dout = a fixed random projection R);
    the reference is the central difference of L = sum(out * R) computed by a float64 copy at the
    very same values (the ``dtype`` values cast up), so the reported error is the rounding
    error of the ``dtype`` backward alone.
    """
    dtype = np.dtype(dtype)
    tol = TOLERANCES.get(dtype.name, 1e-4) if tol is None else tol
    if dtype == np.float64:
        return check_module(module, *inputs, eps=eps, tol=tol, seed=seed, max_entries=max_entries)
    start = time.perf_counter()
    low = copy.deepcopy(module).to(dtype)
    ref = copy.deepcopy(low).to(np.float64)
    xs_low = [backend.asarray(x, dtype=dtype) for x in inputs]
    xs_ref = [x.astype(np.float64) for x in xs_low]
    saved_state = backend.get_rng_state()
    generator = np.random.default_rng(seed)
    report = GradcheckReport(f"{type(module).__name__} ({dtype.name})", tol=tol)
    try:
        backend.manual_seed(seed + 1)  # random layers see the same numbers in every evaluation
        out = low(*xs_low)
        projection = backend.asarray(generator.standard_normal(out.shape))
        low.zero_grad()
        dxs = low.backward(projection.astype(dtype))
        dxs = (dxs,) if len(xs_low) == 1 else dxs

        def loss():
            backend.manual_seed(seed + 1)
            return float((ref(*xs_ref) * projection).sum())

        pairs = [(f"input{i if len(xs_ref) > 1 else ''}", dx, x) for i, (dx, x) in enumerate(zip(dxs, xs_ref))]
        for (name, p_low), (_, p_ref) in zip(low.named_parameters(), ref.named_parameters()):
            if p_low.requires_grad:
                pairs.append((name, p_low.grad if p_low.grad is not None else p_low.data * 0, p_ref.data))
        for name, analytic, array in pairs:
            report.tensors.append(_compare(name, analytic, array, loss, eps, max_entries, generator))
    finally:
        backend.set_rng_state(saved_state)
    report.seconds = time.perf_counter() - start
    return report


def _compare(name, analytic, array, loss, eps, max_entries, generator):
    if max_entries is None or array.size <= max_entries:
        indices = np.arange(array.size)
    else:
        indices = np.sort(generator.choice(array.size, size=max_entries, replace=False))
    numeric = numerical_gradient(loss, array, indices, eps)
    analytic = backend.to_numpy(analytic).astype(np.float64).reshape(-1)[indices]
    diff = float(np.max(np.abs(analytic - numeric), initial=0.0))
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))
    return TensorCheck(name, tuple(array.shape), diff / scale if scale > 0 else diff, diff, len(indices))


def gradcheck_all(cases=None, dtypes=("float64", "float32"), names=None, seed=0, verbose=False, file=None):
    """Gradient-check every case (default: ``GRADCHECK_CASES``) in every dtype; returns a Table
    with one row per (case, dtype): the largest relative error over the case's tensors, the
    tensor where it occurred, pass/fail against ``TOLERANCES`` and the seconds it took.

    ``names`` keeps only the cases whose name contains one of the given strings.
    With ``verbose`` each row is printed as it is measured (to ``file``, default stdout).
    """
    cases = GRADCHECK_CASES if cases is None else cases
    if names:
        cases = [c for c in cases if any(n.lower() in c.name.lower() for n in names)]
    table = Table(GRADCHECK_COLUMNS)
    for case in cases:
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            backend.manual_seed(seed)
            with backend.default_dtype(dtype):
                module = case.factory()
            report = check_module_dtype(module, *_inputs(case, seed), dtype=dtype, seed=seed,
                                        max_entries=case.max_entries, eps=case.eps)
            worst = max(report.tensors, key=lambda t: t.rel_error, default=None)
            row = {"case": case.name, "dtype": dtype.name, "max_rel_error": report.max_rel_error,
                   "worst_tensor": worst.name if worst else "", "tol": report.tol, "ok": report.ok,
                   "entries": sum(t.checked for t in report.tensors), "seconds": report.seconds}
            table.append(row)
            if verbose:
                print(f"{case.name:<40} {dtype.name:<8} {report.max_rel_error:9.2e} "
                      f"{'ok' if report.ok else 'FAIL'} {report.seconds:6.2f} s", file=file, flush=True)
    return table
