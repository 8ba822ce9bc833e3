"""The gradient-check registry: ``GRADCHECK_CASES``, every layer and block of npcnn in one list.

Each entry is a :class:`~npcnn.diagnostics.gradcheck_table.GradcheckCase` (name, factory, input
shape): to cover a new layer, append a case. The list is what ``python -m npcnn gradcheck``
(through :func:`~npcnn.diagnostics.gradcheck_all`), ``tests/test_diagnostics.py`` (every case
passes; every layer class of ``npcnn.nn`` has a case), ``tests/test_layer_contract.py`` (float32
stays float32) and ``tests/test_gpu.py`` (CuPy agrees with NumPy) run. Use it as

    from npcnn.diagnostics import GRADCHECK_CASES     # loads this module on first use
    for case in GRADCHECK_CASES:
        module, xs = case.factory(), case.inputs(seed=0)

This module imports the model zoo (its blocks are cases), so ``npcnn.diagnostics`` loads it only
when ``GRADCHECK_CASES`` or ``gradcheck_all()`` is first used.
"""

import numpy as np

from .. import backend, nn
from ..models import densenet, fcn, lenet, mobilenet, resnet, senet
from ..models.googlenet import BasicConv2d, Inception  # (npcnn.models.googlenet is the function)
from ..nn import channel_pool, composition, conv, dropout, norm, pooling
from ..nn.blocks import SqueezeExcitation
from .gradcheck_table import FixedIndices, GradcheckCase, LossAsModule


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
    GradcheckCase("Conv2d 7x7 algo=auto (FFT)", lambda: conv.Conv2d(2, 2, 7, padding=3), (1, 2, 9, 9)),
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
    GradcheckCase("LPPool1d(2, 3)", lambda: pooling.LPPool1d(2, 3), (2, 3, 9)),
    GradcheckCase("MaxPoolChannels(2)", lambda: channel_pool.MaxPoolChannels(2), (2, 6, 3, 3)),
    GradcheckCase("MaxPoolChannels(3, stride 1)", lambda: channel_pool.MaxPoolChannels(3, stride=1), (2, 5, 4)),
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
    # ids from 1: the padding row's gradient is withheld by design, which a numerical check would flag
    GradcheckCase("Embedding padding_idx=0", lambda: FixedIndices(nn.Embedding(10, 4, padding_idx=0),
                  np.random.default_rng(3).integers(1, 10, (2, 6))), (2, 6, 4)),
    GradcheckCase("SiLU", lambda: nn.SiLU(), (4, 7)),
    GradcheckCase("Hardswish", lambda: nn.Hardswish(), (4, 7)),
    GradcheckCase("Unflatten", lambda: nn.Unflatten(1, (3, 4)), (2, 12)),
    GradcheckCase("Upsample nearest x2", lambda: nn.Upsample(scale_factor=2), (2, 3, 4, 5)),
    GradcheckCase("Upsample bilinear size (7, 3)", lambda: nn.Upsample(size=(7, 3), mode="bilinear"), (2, 2, 4, 5)),
    GradcheckCase("Upsample bilinear align_corners x1.5",
                  lambda: nn.Upsample(scale_factor=1.5, mode="bilinear", align_corners=True), (1, 2, 3, 4)),
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
    _loss_case("CrossEntropyLoss(weight, ignore_index=1, label_smoothing=0.1)",
               lambda: nn.CrossEntropyLoss(weight=np.array([0.5, 1.0, 2.0, 1.5, 0.8]), ignore_index=1,
                                           label_smoothing=0.1), "class"),
    _loss_case("NLLLoss(weight) after LogSoftmax", lambda: nn.NLLLoss(weight=np.array([0.5, 1.0, 2.0, 1.5, 0.8])),
               "class", before=lambda: nn.LogSoftmax(dim=1)),
    _loss_case("BCELoss after Sigmoid", nn.BCELoss, "prob", before=nn.Sigmoid),
    _loss_case("BCEWithLogitsLoss", nn.BCEWithLogitsLoss, "prob"),
]
