"""Fully convolutional networks (Long, Shelhamer & Darrell, "Fully Convolutional Networks for
Semantic Segmentation", 2015).

1. ``convolutionize(model, input_shape)``: a classifier's fully connected layers are
   convolutions whose kernel covers their whole input. The first Linear after the Flatten
   (VGG's fc6, on a 512x7x7 map) becomes a 7x7 conv with the same weights reshaped to
   (out, C, 7, 7); later Linears (fc7, fc8) become 1x1 convs. At the training size the outputs
   are identical (as (N, classes, 1, 1)); larger inputs give a map of class scores.

2. FCN-8s: the convolutionized VGG16 scores at 1/32 resolution, upsampled by learned transposed
   convolutions (initialized to bilinear interpolation) and fused with scores predicted from the
   finer pool4 (1/16) and pool3 (1/8) features, then upsampled 8x to the input size:

       score_fr = 1x1 conv(fc7)
       fuse4 = up2(score_fr) + crop(score_pool4(pool4))        (SkipFusion "fuse_pool4")
       fuse3 = up2(fuse4)    + crop(score_pool3(pool3))        (SkipFusion "fuse_pool3")
       out   = crop(up8(fuse3))

   As in the paper's Caffe net, conv1_1 pads by 100 and pooling rounds up, so any input size
   works; the crops (offsets 5, 9 and 31) align the maps. ``fcn_tiny`` is the same design
   for 64x64 inputs with padding chosen so every map aligns exactly (offsets 0).
"""

from __future__ import annotations

import copy
from typing import Any, Sequence

from .. import backend, nn
from ..grad_mode import no_grad
from ..nn.utils import model_dtype
from .vgg import vgg16


def _flat_layers(model):
    """The leaf layers of nested Sequentials, in order."""
    if isinstance(model, nn.Sequential):
        for child in model:
            yield from _flat_layers(child)
    else:
        yield model


def _conv_like(linear, map_shape):
    """A Conv2d computing ``linear`` on a (C, kh, kw) window: the same weights, reshaped."""
    out_features, in_features = linear.weight.shape
    c, kh, kw = map_shape
    if in_features != c * kh * kw:
        raise ValueError(f"convolutionize: {linear} cannot read a flattened map of shape {tuple(map_shape)}")
    conv = nn.Conv2d(c, out_features, (kh, kw), bias=linear.bias is not None)
    conv.weight.data = linear.weight.data.reshape(conv.weight.shape).copy()
    if linear.bias is not None:
        conv.bias.data = linear.bias.data.copy()
    return conv


def convolutionize(model: nn.Module, input_shape: Sequence[int]) -> nn.Module:
    """A copy of ``model`` (a Sequential, possibly nested) with its Linear layers as convolutions.

    ``input_shape`` is the training input without the batch dimension, e.g. (3, 224, 224):
    a forward pass at that size finds the (C, H, W) map that the Flatten flattened. Adaptive
    pools that are the identity at that size are dropped (VGG's 7x7, AlexNet's 6x6).
    Returns an ``nn.Sequential`` of the flat layers.
    """
    layers = list(_flat_layers(copy.deepcopy(model).eval()))
    x = backend.xp().zeros((1, *input_shape), dtype=model_dtype(model))
    flat_shape = None
    with no_grad():
        for layer in layers:
            if isinstance(layer, nn.Flatten):
                flat_shape = x.shape[1:]
                break
            y = layer(x)
            if isinstance(layer, nn.AdaptiveAvgPool2d) and y.shape != x.shape:
                raise ValueError(f"convolutionize: {layer} changes the map {x.shape[1:]} -> {y.shape[1:]} "
                                 f"at input {tuple(input_shape)}; at the training size it must be the identity")
            x = y
    if flat_shape is None or len(flat_shape) != 3:
        raise ValueError("convolutionize: the model must Flatten a (C, H, W) map before its Linear layers")
    return nn.Sequential(*convolutionize_layers(layers, flat_shape)).train(model.training)


def convolutionize_layers(layers: Sequence[nn.Module], map_shape: Sequence[int]) -> list[nn.Module]:
    """``layers`` with the Flatten and adaptive pools dropped and Linears made convolutions:
    the first reads the whole flattened ``map_shape`` (C, H, W), the others are 1x1. Layers
    between the Linears must be element-wise (activations, dropout)."""
    converted, first = [], True
    for layer in layers:
        if isinstance(layer, (nn.Flatten, nn.AdaptiveAvgPool2d)):
            continue
        if isinstance(layer, nn.Linear):
            converted.append(_conv_like(layer, map_shape if first else (layer.in_features, 1, 1)))
            first = False
        else:
            converted.append(layer)
    return converted


def bilinear_kernel_(weight: Any) -> Any:
    """Fill a ConvTranspose2d weight (C, C, k, k) with per-channel bilinear upsampling (paper 3.3)."""
    xp = backend.get_array_module(weight.data)
    channels, _, k, _ = weight.shape
    factor = (k + 1) // 2
    center = factor - 1 if k % 2 == 1 else factor - 0.5
    og = xp.arange(k, dtype=weight.dtype)
    filt = (1.0 - xp.abs(og - center) / factor)[:, None] * (1.0 - xp.abs(og - center) / factor)[None, :]
    weight.data[...] = 0.0
    for c in range(channels):
        weight.data[c, c] = filt
    return weight


def _crop(x, offset, size):
    return x[:, :, offset:offset + size[0], offset:offset + size[1]]


def _check_crop(layer, x, offset, size):
    if x.shape[2] < offset + size[0] or x.shape[3] < offset + size[1]:
        raise ValueError(f"{layer}: cannot crop {size} at offset {offset} from a map of shape {tuple(x.shape)}")


def _uncrop(dout, offset, shape):
    """Backward of _crop: dout placed at the offset in zeros of the uncropped shape."""
    d = backend.get_array_module(dout).zeros(shape, dtype=dout.dtype)
    d[:, :, offset:offset + dout.shape[2], offset:offset + dout.shape[3]] = dout
    return d


class SkipFusion(nn.Module):
    """out = upscore(coarse) + crop(score(skip)): a skip connection of FCN.

    Shapes: coarse (N, K, h, w) class scores, skip (N, C, H', W') finer features ->
    out (N, K, 2h + 2 - 2 padding, ...) with K = num_classes; ``upscore`` is a 4x4 stride-2
    transposed conv (bilinear init, no bias), ``score`` a 1x1 conv (zero init, paper 4.2) whose
    output is cropped at ``offset`` to out's size.
    Backward: dcoarse = upscore.backward(dout); dskip = score.backward(dout placed at offset in zeros).
    """

    def __init__(self, skip_channels: int, num_classes: int, offset: int = 0, padding: int = 0) -> None:
        super().__init__()
        self.upscore = nn.ConvTranspose2d(num_classes, num_classes, 4, stride=2, padding=padding, bias=False)
        bilinear_kernel_(self.upscore.weight)
        self.score = nn.Conv2d(skip_channels, num_classes, 1)
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        self.offset = offset

    def forward(self, coarse, skip):
        up = self.upscore(coarse)
        scores = self.score(skip)
        _check_crop("SkipFusion", scores, self.offset, up.shape[2:])
        self.save_for_backward(scores.shape)
        return up + _crop(scores, self.offset, up.shape[2:])

    def backward(self, dout):
        scores_shape = self.pop_saved()
        dcoarse = self.upscore.backward(dout)
        dskip = self.score.backward(_uncrop(dout, self.offset, scores_shape))
        return dcoarse, dskip

    def extra_repr(self):
        return f"offset={self.offset}"


class FCN8s(nn.Module):
    """features3 (to pool3) -> features4 (to pool4) -> features5 (to pool5, fc6, fc7) -> score_fr,
    fused with pool4 and pool3 scores, upsampled 8x (``upscore8``) and cropped to the input.

    Shapes: x (N, C, H, W) -> scores (N, num_classes, H, W).
    Backward runs the graph in reverse; pool4 and pool3 each receive two gradients (from the
    next stage and from their skip) that add.
    """

    def __init__(self, features3: nn.Module, features4: nn.Module, features5: nn.Module, channels: Sequence[int],
                 num_classes: int, offsets: Sequence[int] = (5, 9, 31), paddings: Sequence[int] = (0, 0, 0)) -> None:
        super().__init__()
        c3, c4, c5 = channels
        self.features3, self.features4, self.features5 = features3, features4, features5
        self.score_fr = nn.Conv2d(c5, num_classes, 1)
        nn.init.zeros_(self.score_fr.weight)
        nn.init.zeros_(self.score_fr.bias)
        self.fuse_pool4 = SkipFusion(c4, num_classes, offsets[0], paddings[0])
        self.fuse_pool3 = SkipFusion(c3, num_classes, offsets[1], paddings[1])
        self.upscore8 = nn.ConvTranspose2d(num_classes, num_classes, 16, stride=8, padding=paddings[2], bias=False)
        bilinear_kernel_(self.upscore8.weight)
        self.offset = offsets[2]

    def forward(self, x):
        pool3 = self.features3(x)
        pool4 = self.features4(pool3)
        scores = self.score_fr(self.features5(pool4))
        fused = self.fuse_pool3(self.fuse_pool4(scores, pool4), pool3)
        up = self.upscore8(fused)
        _check_crop("FCN8s", up, self.offset, x.shape[2:])
        self.save_for_backward(up.shape)
        return _crop(up, self.offset, x.shape[2:])

    def backward(self, dout):
        dfused = self.upscore8.backward(_uncrop(dout, self.offset, self.pop_saved()))
        dfuse4, dpool3_skip = self.fuse_pool3.backward(dfused)
        dscores, dpool4_skip = self.fuse_pool4.backward(dfuse4)
        dpool4 = self.features5.backward(self.score_fr.backward(dscores)) + dpool4_skip
        dpool3 = self.features4.backward(dpool4) + dpool3_skip
        return self.features3.backward(dpool3)


def _split_after_pools(layers, pools):
    """Split ``layers`` into Sequentials that end after the given (1-based) max pools."""
    parts, current, seen = [], [], 0
    for layer in layers:
        current.append(layer)
        if isinstance(layer, nn.MaxPool2d):
            seen += 1
            if seen in pools:
                parts.append(nn.Sequential(*current))
                current = []
    parts.append(nn.Sequential(*current))
    return parts


def fcn8s(backbone: str = "vgg16", num_classes: int = 21, in_channels: int = 3) -> nn.Module:
    """FCN-8s (Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic Segmentation",
    2015) on a VGG16 backbone: ``"vgg16"`` (a fresh one) or a trained ``VGG`` classifier, whose
    features and fc6/fc7 are reused as convolutions (fc8 is replaced by the num_classes scoring
    layers). The paper's geometry: conv1_1 padding 100, ceil-mode pooling.

    Stages: VGG16's five conv stages (pool3 at 1/8, pool4 at 1/16, pool5 at 1/32) - fc6 as a 7x7
    conv (4096) - fc7 as a 1x1 conv (4096) - score_fr 1x1 - two SkipFusions (pool4, pool3) -
    8x transposed conv - crop to the input size.
    Native input 3x224x224: 134,489,759 parameters, 62,860,657,728 multiply-adds (21 classes;
    any size works, and the 100-pixel padding makes conv1_1 run on 422x422 at 224: the cost
    grows with the area). The paper: 134M parameters.
    Deviations: none in the layout. Every upsampling kernel starts as bilinear interpolation
    and is a trainable parameter; the paper keeps the final one fixed at bilinear (freeze it
    with ``model.upscore8.weight.requires_grad = False``).

    Args:
        backbone ("vgg16" or VGG): where the features and fc6/fc7 come from.
        num_classes (int, default 21): classes scored per pixel (PASCAL VOC's 20 + background).
        in_channels (int, default 3): input channels (used only with ``"vgg16"``).
    """
    vgg = vgg16(in_channels=in_channels) if backbone == "vgg16" else backbone
    if not isinstance(vgg, nn.Sequential) or not hasattr(vgg, "features"):
        raise ValueError(f"fcn8s: backbone must be 'vgg16' or a VGG model, got {backbone!r}")
    layers = convolutionize_layers(list(_flat_layers(copy.deepcopy(vgg))), (512, 7, 7))[:-1]  # drop fc8
    first = layers[0]
    conv1_1 = nn.Conv2d(first.weight.shape[1], first.weight.shape[0], 3, padding=100)
    conv1_1.weight.data, conv1_1.bias.data = first.weight.data, first.bias.data
    layers[0] = conv1_1
    layers = [nn.MaxPool2d(2, stride=2, ceil_mode=True) if isinstance(m, nn.MaxPool2d) else m for m in layers]
    features3, features4, features5 = _split_after_pools(layers, pools=(3, 4))
    return FCN8s(features3, features4, features5, (256, 512, 4096), num_classes)


def fcn_tiny(num_classes: int = 2, in_channels: int = 3, width: int = 8) -> nn.Module:
    """A small FCN-8s for 64x64 inputs (the design of Long, Shelhamer & Darrell, 2015, at a size
    that trains in seconds; not from a paper).

    Stages: five conv 3x3 - ReLU - 2x2 max pool stages (width, 2, 4, 8, 8 x width channels),
    fc6 as a 3x3 conv and fc7 as a 1x1 conv (16 x width), score and fuse with pool4 and pool3
    as FCN-8s, exact 2x / 8x upsampling (padding chosen so every crop offset is 0).
    Native input 3x64x64: 153,430 parameters, 5,447,936 multiply-adds (2 classes, width 8).
    Deviations from FCN-8s: the widths, fc6's 3x3 kernel (VGG's is 7x7) and the paddings.

    Args:
        num_classes (int, default 2): classes scored per pixel.
        in_channels (int, default 3): input channels.
        width (int, default 8): channels of the first stage (the others are multiples).
    """
    w = width

    def stage(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, stride=2)]

    features3 = nn.Sequential(*stage(in_channels, w), *stage(w, 2 * w), *stage(2 * w, 4 * w))
    features4 = nn.Sequential(*stage(4 * w, 8 * w))
    features5 = nn.Sequential(*stage(8 * w, 8 * w),
                              nn.Conv2d(8 * w, 16 * w, 3, padding=1), nn.ReLU(),
                              nn.Conv2d(16 * w, 16 * w, 1), nn.ReLU())
    return FCN8s(features3, features4, features5, (4 * w, 8 * w, 16 * w), num_classes,
                 offsets=(0, 0, 0), paddings=(1, 1, 4))
