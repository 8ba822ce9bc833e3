"""What a convolutional layer has learned: its filters, and the feature maps it computes."""

import numpy as np

from .. import backend
from ..grad_mode import no_grad
from ..nn.module import Module
from ._common import as_batch, capture, eval_mode, find_layer
from .plots import make_grid, plot_images, save_image


def first_conv(model):
    """The first module of ``model`` with a 4-D weight (a Conv2d)."""
    for _, module in model.named_modules():
        weight = getattr(module, "weight", None)
        if weight is not None and getattr(weight, "ndim", 0) == 4:
            return module
    raise ValueError(f"{type(model).__name__} has no convolution (no module with a 4-D weight)")


def filter_images(model_or_weight, layer=None):
    """The filters of a conv layer as images (C_out, C_in, kh, kw), as a NumPy array.

    ``model_or_weight``: a weight array, a conv layer, or a model (``layer`` picks the conv layer,
    default the first one).
    """
    if isinstance(model_or_weight, Module):
        module = first_conv(model_or_weight) if layer is None else find_layer(model_or_weight, layer)[1]
        weight = module.weight.data
    else:
        weight = model_or_weight
    w = np.asarray(backend.to_numpy(weight))
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected a conv weight (C_out, C_in, kh, kw), got shape {w.shape}")
    return w


def plot_filters(model_or_weight, path=None, layer=None, nrow=8, scale=8):
    """The filters of a conv layer tiled into one image grid, each scaled to [0, 1] on its own.

    One-channel (or RGB) filters are shown as they are; filters over C_in other channels show
    their first input channel. Returns the grid (H, W[, 3]); writes it as a PNG when ``path`` is
    given, each weight ``scale`` x ``scale`` pixels.
    """
    w = filter_images(model_or_weight, layer)
    images = w if w.shape[1] in (1, 3) else w[:, :1]
    grid = make_grid(images, nrow=nrow, padding=1, normalize=True, pad_value=1.0)
    if path is not None:
        big = np.kron(grid, np.ones((scale, scale))) if grid.ndim == 2 else np.kron(grid, np.ones((scale, scale, 1)))
        save_image(big, path, normalize=False)
    return grid


def feature_maps(model, x, layer):
    """The output of ``layer`` (a Module of ``model`` or its dotted name) for the input ``x``.

    x: one image (C, H, W) -> (K, h, w), or a batch (N, C, H, W) -> (N, K, h, w). The model runs
    in eval mode without keeping backward caches; its mode is restored afterwards.
    """
    module = find_layer(model, layer)[1]
    batch, single = as_batch(model, x)
    with eval_mode(model), no_grad(), capture(module) as records:
        model(batch)
    out = records[0]
    return out[0] if single else out


def plot_feature_maps(model, x, layer, path, max_maps=32, nrow=8):
    """Save the feature maps of ``layer`` for one image as a grid; returns them (K, h, w)."""
    maps = feature_maps(model, x, layer)
    if maps.ndim != 3:
        raise ValueError(f"plot_feature_maps: expected one image, got maps of shape {tuple(maps.shape)}")
    shown = backend.to_numpy(maps[:max_maps])
    name = layer if isinstance(layer, str) else type(layer).__name__
    plot_images(list(shown), path, titles=[f"{name}[{k}]" for k in range(len(shown))], ncols=nrow,
                cmap="viridis", normalize=True)
    return maps
