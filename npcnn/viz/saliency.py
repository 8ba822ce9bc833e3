"""Which pixels matter for a class: gradient saliency, guided backpropagation and Grad-CAM.

All three start from one backward pass of the class score S_c (the logit, before softmax) with
dout = one-hot(c) at the output. The model runs in eval mode with its parameters frozen for the
duration (no weight gradients are computed or left behind); its state is restored afterwards.

* saliency map (Simonyan et al. 2014): M[y, x] = max_channels |dS_c / dI[c, y, x]|;
* guided backpropagation (Springenberg et al. 2015): at every ReLU, pass back only positive
  gradients and only where the forward input was positive, dx = dout [x > 0] [dout > 0],
  implemented with backward hooks on the ReLU modules, no layer edited;
* Grad-CAM (Selvaraju et al. 2017): with A (K, h, w) a layer's activations,
  alpha_k = mean_{y, x} dS_c / dA_k[y, x],  cam = ReLU(sum_k alpha_k A_k), upsampled to the input.
"""

import contextlib

from .. import backend
from ..nn.activation import ReLU
from ..nn.conv import Conv2d
from ._common import (
    as_batch,
    capture,
    find_layer,
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


def guided_backprop(model, x, target=None):
    """Guided backpropagation: the input gradient of the class score with every ReLU passing
    back only positive gradients where its input was positive. Returns x's shape."""
    with guided_relus(model):
        grad, _ = class_score_gradient(model, x, target)
    return grad


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
