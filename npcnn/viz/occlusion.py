"""Occlusion sensitivity (Zeiler & Fergus 2014): cover part of the image with a grey square and
watch the class score fall.

For each position (i, j) of a ``size`` x ``size`` patch slid with ``stride``,

    map[i, j] = S_c(image) - S_c(image with the patch at (i, j) set to ``value``)

so large values mark the regions the class depends on, zero marks regions it ignores, and a
negative value marks a region that argues against the class. S_c is the logit (``score="logit"``)
or the softmax probability (``score="prob"``).
"""

import numpy as np

from .. import backend
from ..grad_mode import no_grad
from ._common import as_batch, eval_mode


def _starts(length, size, stride):
    """Patch positions along one axis; the last one is moved in to cover the far edge."""
    starts = list(range(0, max(length - size, 0) + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def _scores(model, batch, target, score):
    logits = model(batch)
    if score == "prob":
        xp = backend.get_array_module(logits)
        e = xp.exp(logits - logits.max(axis=1, keepdims=True))
        logits = e / e.sum(axis=1, keepdims=True)
    return backend.to_numpy(logits[:, target]).astype(np.float64)


def occlusion_map(model, image, target=None, size=8, stride=4, value=0.5, score="logit", batch_size=128):
    """Score drop for each patch position, an array (len(row starts), len(column starts)).

    image: one image (C, H, W); target: the class (default: the predicted one). The occluded
    copies are scored in batches, in eval mode without caches.

    Args:
        model (Module): a classifier returning logits (N, classes).
        image (array): one image (C, H, W) (or a batch of one).
        target (int, default None): the class scored; None: the model's prediction.
        size (int, default 8): the occluding square's side, in pixels.
        stride (int, default 4): pixels between patch positions; the last position in each
            axis is moved in to touch the far edge.
        value (float, default 0.5): what the covered pixels are set to (grey for [0, 1] images;
            use the data's mean for normalized ones).
        score (str, default "logit"): "logit" or "prob" (softmax probability).
        batch_size (int, default 128): occluded copies scored per forward pass.

    Returns:
        float64 NumPy array: map[i, j] = S(image) - S(image occluded at position (i, j)).
    """
    if score not in ("logit", "prob"):
        raise ValueError(f"occlusion_map: score must be 'logit' or 'prob', got {score!r}")
    x, single = as_batch(model, image)
    if not single and x.shape[0] != 1:
        raise ValueError(f"occlusion_map: expected one image (C, H, W), got shape {tuple(x.shape)}")
    _, _, h, w = x.shape
    rows, cols = _starts(h, size, stride), _starts(w, size, stride)
    xp = backend.get_array_module(x)
    with eval_mode(model), no_grad():
        if target is None:
            target = int(backend.to_numpy(model(x)).argmax())
        base = _scores(model, x, target, score)[0]
        positions = [(r, c) for r in rows for c in cols]
        drops = []
        for start in range(0, len(positions), batch_size):
            chunk = positions[start:start + batch_size]
            batch = xp.repeat(x, len(chunk), axis=0)
            for k, (r, c) in enumerate(chunk):
                batch[k, :, r:r + size, c:c + size] = value
            drops.append(base - _scores(model, batch, target, score))
    return np.concatenate(drops).reshape(len(rows), len(cols))


def occlusion_pixel_map(occlusion, image_shape, size=8, stride=4):
    """Spread an :func:`occlusion_map` back onto the pixels: each pixel gets the mean drop of
    the patches that covered it, an (H, W) array (for overlays)."""
    h, w = image_shape[-2:]
    total, count = np.zeros((h, w)), np.zeros((h, w))
    for a, r in enumerate(_starts(h, size, stride)):
        for b, c in enumerate(_starts(w, size, stride)):
            total[r:r + size, c:c + size] += occlusion[a, b]
            count[r:r + size, c:c + size] += 1
    return total / np.maximum(count, 1)
