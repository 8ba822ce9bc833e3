"""Which pixels matter for a class: gradient saliency, guided backpropagation and Grad-CAM.

All three start from one backward pass of the class score S_c (the logit, before softmax) with
dout = one-hot(c) at the output. The model runs in eval mode with its parameters frozen for the
duration (no weight gradients are computed or left behind); its state is restored afterwards.

* saliency map (Simonyan et al. 2014): M[y, x] = max_channels |dS_c / dI[c, y, x]|;
* guided backpropagation (Springenberg et al. 2015): at every ReLU, pass back only positive
  gradients and only where the forward input was positive, dx = dout [x > 0] [dout > 0],
  implemented with backward hooks on the ReLU modules, no layer edited; of a class score, or
  (``layer=``, ``channel=``) of one neuron or one channel of any layer, as the lectures do it
  ("pick a layer and a channel, e.g. conv5 channel 20");
* Grad-CAM (Selvaraju et al. 2017): with A (K, h, w) a layer's activations,
  alpha_k = mean_{y, x} dS_c / dA_k[y, x],  cam = ReLU(sum_k alpha_k A_k), upsampled to the input.
"""

import contextlib

import numpy as np

from .. import backend
from ..nn.activation import ReLU
from ..nn.conv import Conv2d
from ._common import (
    as_batch,
    capture,
    find_layer,
    injected_gradient,
    input_gradient_mode,
    last_module,
    normalize01,
    one_hot,
    resize_bilinear,
    targets_for,
)


def class_score_gradient(model, x, target=None):
    """(dS_c/dx, classes): the gradient of each image's class score with respect to its pixels.

    x: (N, C, H, W) (or one image (C, H, W)); target: None (the predicted class), an int, or
    one class per image. The gradient has x's shape.
    """
    batch, single = as_batch(model, x)
    with input_gradient_mode(model):
        logits = model(batch)
        if logits.ndim != 2:
            raise ValueError(f"expected the model to output class scores (N, classes), got shape {tuple(logits.shape)}")
        classes = targets_for(logits, target)
        dx = model.backward(one_hot(classes, logits.shape[1], logits.dtype))
    return (dx[0], classes[0]) if single else (dx, classes)


def saliency_map(model, x, target=None, reduce="max_abs"):
    """Gradient saliency of the class score with respect to the input pixels.

    ``reduce="max_abs"`` returns (N, H, W) (the largest |gradient| over the channels, Simonyan's
    map); ``reduce=None`` returns the raw gradient (N, C, H, W). One image in, one map out.
    For a linear model S = W x + b the raw gradient is exactly the weight row W[c].
    """
    grad, _ = class_score_gradient(model, x, target)
    if reduce is None:
        return grad
    if reduce != "max_abs":
        raise ValueError(f"saliency_map: reduce must be 'max_abs' or None, got {reduce!r}")
    xp = backend.get_array_module(grad)
    return xp.abs(grad).max(axis=-3)


def _guided_relu_hook(module, grad_input, grad_output):
    """ReLU's backward already gave dout [x > 0]; also drop the negative gradients."""
    xp = backend.get_array_module(grad_input)
    return xp.maximum(grad_input, 0)


@contextlib.contextmanager
def guided_relus(model):
    """While active, every ReLU module of ``model`` back-propagates guided gradients
    dx = dout [x > 0] [dout > 0] (backward hooks, removed on exit)."""
    handles = [m.register_backward_hook(_guided_relu_hook) for m in model.modules() if isinstance(m, ReLU)]
    if not handles:
        raise ValueError(f"guided_backprop: {type(model).__name__} has no ReLU modules")
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _neuron_seed(a, channel, position):
    """d(objective)/d(a) for the layer output ``a`` (N, K, ...): ones on the chosen neuron(s) of
    ``channel``, zeros elsewhere (see :func:`activation_gradient` for ``position``)."""
    xp = backend.get_array_module(a)
    if isinstance(channel, bool) or not isinstance(channel, (int, np.integer)) or not 0 <= channel < a.shape[1]:
        raise ValueError(f"activation_gradient: channel must be an int in [0, {a.shape[1]}) for a layer output "
                         f"of shape {tuple(a.shape)}, got {channel!r}")
    seed = xp.zeros_like(a)
    spatial = a.shape[2:]
    if not spatial or position == "sum":
        seed[:, channel] = 1.0
        return seed
    n = a.shape[0]
    if position == "max":  # each image's strongest response in the channel
        flat = xp.argmax(a[:, channel].reshape(n, -1), axis=1)
        seed[(xp.arange(n), channel) + tuple(xp.unravel_index(flat, spatial))] = 1.0
        return seed
    if (not isinstance(position, tuple) or len(position) != len(spatial)
            or not all(isinstance(p, (int, np.integer)) and 0 <= p < s for p, s in zip(position, spatial))):
        raise ValueError(f"activation_gradient: position must be 'max', 'sum' or a tuple of {len(spatial)} indices "
                         f"within the map {tuple(spatial)}, got {position!r}")
    seed[(slice(None), channel) + tuple(int(p) for p in position)] = 1.0
    return seed


def activation_gradient(model, x, layer, channel, position="max"):
    """The input gradient of one neuron (or one whole channel) of ``layer``'s output.

    Args:
        model: the network; it runs in eval mode, its parameters untouched.
        x: images (N, C, H, W), or one image (C, H, W); the gradient has x's shape.
        layer: a module inside ``model`` or its dotted name (``"features.3"``).
        channel: which channel of the layer's output (N, K, ...), an int in [0, K).
        position: which neuron of that channel: ``"max"`` (default) each image's most active
            one, ``"sum"`` the whole channel (the objective is the sum of its activations), or a
            tuple of indices (y, x) for the same neuron in every image. Ignored for a layer with
            a flat output (N, K), whose channel is one neuron.

    Returns dA/dx where A is the chosen activation, computed by one backward pass that starts at
    ``layer`` (the layers above it are skipped: they receive zeros).
    """
    module = find_layer(model, layer)[1]
    batch, single = as_batch(model, x)
    with input_gradient_mode(model), capture(module) as acts, injected_gradient(module) as box:
        out = model(batch)
        if not acts:
            raise ValueError(f"activation_gradient: layer {layer!r} did not run in the forward pass")
        box[0] = _neuron_seed(acts[-1], channel, position)
        dx = model.backward(backend.get_array_module(out).zeros_like(out))
    return dx[0] if single else dx


def guided_backprop(model, x, target=None, layer=None, channel=None, position="max"):
    """Guided backpropagation: an input gradient with every ReLU passing back only positive
    gradients where its input was positive. Returns x's shape.

    Args:
        model, x: the network and the images (N, C, H, W) or one image (C, H, W).
        target: without ``layer``, the class whose score is explained: None (the predicted
            class), an int, or one class per image.
        layer, channel, position: explain one neuron of a layer instead of a class score, as
            :func:`activation_gradient` chooses it (``layer`` a module or dotted name,
            ``channel`` an int, ``position`` "max", "sum" or (y, x)).
    """
    if layer is None:
        if channel is not None:
            raise ValueError("guided_backprop: channel= needs layer= (without a layer it explains a class score)")
        with guided_relus(model):
            grad, _ = class_score_gradient(model, x, target)
        return grad
    if target is not None:
        raise ValueError("guided_backprop: pass either target= (a class score) or layer= and channel=, not both")
    if channel is None:
        raise ValueError(f"guided_backprop: layer={layer!r} needs channel= (which channel of its output)")
    with guided_relus(model):
        return activation_gradient(model, x, layer, channel, position)


def grad_cam(model, x, target=None, layer=None, upsample=True, normalize=True):
    """Grad-CAM heat maps of the class score at ``layer`` (default: the last Conv2d).

    Returns (N, H, W) upsampled to the input (``upsample=False``: the layer's (N, h, w)), each
    scaled to [0, 1] unless ``normalize=False``. One image in, one map out.
    """
    module = last_module(model, Conv2d, "grad_cam needs one: pass layer=") if layer is None \
        else find_layer(model, layer)[1]
    batch, single = as_batch(model, x)
    grads = []
    handle = module.register_backward_hook(lambda m, grad_input, grad_output: grads.append(grad_output))
    try:
        with input_gradient_mode(model), capture(module) as acts:
            logits = model(batch)
            classes = targets_for(logits, target)
            model.backward(one_hot(classes, logits.shape[1], logits.dtype))
    finally:
        handle.remove()
    a, da = acts[0], grads[0]
    if a.ndim != 4:
        raise ValueError(f"grad_cam: layer output must be (N, K, h, w), got shape {tuple(a.shape)}")
    xp = backend.get_array_module(a)
    alpha = da.mean(axis=(2, 3))                                       # (N, K)
    cam = xp.maximum((alpha[:, :, None, None] * a).sum(axis=1), 0)     # (N, h, w)
    if upsample:
        cam = resize_bilinear(cam, batch.shape[2:])
    if normalize:
        cam = normalize01(cam)
    return cam[0] if single else cam
