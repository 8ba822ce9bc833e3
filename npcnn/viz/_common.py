"""Shared plumbing of the visualizations: reading a layer's activations with a forward hook
(the model-tree helpers ``find_layer``, ``capture``, ``eval_mode``, ... live in
:mod:`npcnn.nn.utils` and are re-exported here), and computing gradients with respect to the
input without touching the model's state.

Everything here works for any model whose ``forward``/``backward`` pass through the chosen layer
once, not only for ``Sequential`` chains: activations are read with hooks, never by re-running a
slice of the network.
"""

import contextlib

import numpy as np

from .. import backend
from ..grad_mode import no_grad
from ..nn.utils import capture, eval_mode, find_layer, last_linear, last_module, model_dtype

# The model-tree helpers live in npcnn.nn.utils; these names stay importable from here.
__all__ = ["capture", "eval_mode", "find_layer", "last_linear", "last_module", "model_dtype", "as_batch",
           "targets_for", "one_hot", "input_gradient_mode", "injected_gradient", "layer_activations",
           "gaussian_kernel1d", "blur", "resize_bilinear", "normalize01"]


def as_batch(model, x):
    """``x`` as a float batch (N, ...) of the model's dtype on the active backend; a single
    image (C, H, W) becomes a batch of one. Returns (batch, was_single)."""
    x = backend.asarray(x)
    single = x.ndim == 3
    if single:
        x = x[None]
    if np.dtype(x.dtype).kind != "f":
        raise TypeError(f"expected float images (N, C, H, W) in the model's dtype, got dtype {x.dtype}")
    return x.astype(model_dtype(model), copy=False), single


def targets_for(logits, target):
    """Class indices (N,) from ``target``: None -> the predicted classes, an int -> the same
    class for every image, an array -> one class per image."""
    xp = backend.get_array_module(logits)
    n = logits.shape[0]
    if target is None:
        return xp.argmax(logits, axis=1)
    t = xp.asarray(target, dtype=np.int64).reshape(-1)
    if t.size == 1:
        t = xp.full(n, int(t[0]), dtype=np.int64)
    if t.shape[0] != n or int(t.min()) < 0 or int(t.max()) >= logits.shape[1]:
        raise ValueError(f"target must be None, a class index in [0, {logits.shape[1]}) or {n} of them, got {target}")
    return t


def one_hot(classes, num_classes, dtype):
    """(N,) class indices -> (N, num_classes) one-hot rows of ``dtype``."""
    xp = backend.get_array_module(classes)
    out = xp.zeros((classes.shape[0], num_classes), dtype=dtype)
    out[xp.arange(classes.shape[0]), classes] = 1.0
    return out


@contextlib.contextmanager
def input_gradient_mode(model):
    """Eval mode and every parameter frozen for the duration, so a backward pass computes only
    the gradient with respect to the input (layers skip their weight gradients) and leaves the
    parameters' ``grad`` and ``requires_grad`` exactly as they were."""
    params = list(model.parameters())
    saved = [(p.requires_grad, p.grad) for p in params]
    for p in params:
        p.requires_grad = False
    try:
        with eval_mode(model):
            yield
    finally:
        for p, (requires_grad, grad) in zip(params, saved):
            p.requires_grad, p.grad = requires_grad, grad


@contextlib.contextmanager
def injected_gradient(layer):
    """While active, ``layer.backward`` ignores the gradient arriving from above and
    back-propagates ``box[0]`` instead (set ``box[0]`` before calling ``model.backward``).

    So ``model.backward(zeros)`` yields d(objective)/d(input) for an objective defined on the
    layer's output: every layer above the chosen one sees zeros, the chosen one starts the pass.
    A backward pre-hook (``Module.register_backward_pre_hook``), so backward hooks registered
    inside or outside the block see the injected gradient and compose with it.
    """
    box = [None]
    handle = layer.register_backward_pre_hook(lambda module, dout: box[0])
    try:
        yield box
    finally:
        handle.remove()


def layer_activations(model, x, layer, what="output", batch_size=256):
    """The activations of ``layer`` for the images ``x`` (N, ...), computed in batches in eval
    mode without caches; a NumPy array. ``layer=None``: the input of the last Linear layer (the
    last hidden layer's features)."""
    if layer is None:
        layer, what = last_linear(model), "input"
    else:
        layer = find_layer(model, layer)[1]
    chunks = []
    with eval_mode(model), no_grad(), capture(layer, what) as records:
        for start in range(0, len(x), batch_size):
            batch, _ = as_batch(model, x[start:start + batch_size])
            model(batch)
            chunks.append(backend.to_numpy(records.pop()))
    return np.concatenate(chunks, axis=0)


def gaussian_kernel1d(sigma, dtype=np.float64):
    """A normalized 1-D Gaussian of radius ceil(3 sigma)."""
    radius = max(1, int(np.ceil(3.0 * sigma)))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).astype(dtype)


def blur(x, sigma):
    """Separable Gaussian blur of (N, C, H, W) images over H and W, edges replicated."""
    if sigma <= 0:
        return x
    xp = backend.get_array_module(x)
    k = xp.asarray(gaussian_kernel1d(sigma, x.dtype))
    r = (k.shape[0] - 1) // 2
    for axis in (2, 3):
        pad = [(0, 0)] * 4
        pad[axis] = (r, r)
        padded = xp.pad(x, pad, mode="edge")
        out = xp.zeros_like(x)
        for i in range(k.shape[0]):
            window = [slice(None)] * 4
            window[axis] = slice(i, i + x.shape[axis])
            out += k[i] * padded[tuple(window)]
        x = out
    return x


def resize_bilinear(maps, size):
    """Resize (N, h, w) maps to (N, H, W) by bilinear interpolation (pixel centres aligned, as
    PyTorch's ``align_corners=False``)."""
    xp = backend.get_array_module(maps)
    n, h, w = maps.shape
    out_h, out_w = size

    def coords(n_in, n_out):
        src = (xp.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        src = xp.clip(src, 0, n_in - 1)
        lo = xp.floor(src).astype(np.int64)
        hi = xp.minimum(lo + 1, n_in - 1)
        return lo, hi, (src - lo).astype(maps.dtype)

    y0, y1, wy = coords(h, out_h)
    x0, x1, wx = coords(w, out_w)
    top = maps[:, y0][:, :, x0] * (1 - wx) + maps[:, y0][:, :, x1] * wx
    bottom = maps[:, y1][:, :, x0] * (1 - wx) + maps[:, y1][:, :, x1] * wx
    return top * (1 - wy)[:, None] + bottom * wy[:, None]


def normalize01(maps):
    """Scale each map (first axis = sample) to [0, 1]; a constant map becomes zeros."""
    xp = backend.get_array_module(maps)
    axes = tuple(range(1, maps.ndim))
    lo = maps.min(axis=axes, keepdims=True)
    span = maps.max(axis=axes, keepdims=True) - lo
    return xp.where(span > 0, (maps - lo) / xp.where(span > 0, span, 1), 0).astype(maps.dtype)
