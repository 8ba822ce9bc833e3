"""Image grids and figures: confusion matrix, misclassified examples, training curves, heat maps.

The array functions (``make_grid``, ``confusion_matrix``, ``misclassified``) need only NumPy.
The ``plot_*`` functions write a PNG with matplotlib, imported inside each function (npcnn itself
never imports it) and used through ``matplotlib.figure.Figure``, so no global pyplot state or GUI
backend is touched. Each returns the array(s) it drew.
"""

import math
import os

import numpy as np

from .. import backend
from ..train.metrics import confusion_matrix


def _figure(width, height):
    from matplotlib.figure import Figure  # lazily: only the plot functions need matplotlib

    return Figure(figsize=(width, height))


def _save(fig, path, dpi=100):
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def _to_display(image):
    """(H, W), (1, H, W), (C, H, W) with C = 3, or (H, W, 3) -> what imshow takes."""
    a = np.asarray(backend.to_numpy(image), dtype=np.float64)
    if a.ndim == 3 and a.shape[0] in (1, 3) and a.shape[-1] not in (1, 3):
        a = a.transpose(1, 2, 0)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    return a


def _scale(a):
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


def make_grid(images, nrow=8, padding=1, normalize=False, pad_value=0.0):
    """Tile images (N, C, H, W) or (N, H, W) into one picture, ``nrow`` images per row.

    Returns (rows*(H+p)+p, cols*(W+p)+p) for one channel, with a trailing 3 for RGB.
    ``normalize=True`` scales each image to [0, 1] on its own (filters, feature maps).
    """
    a = np.asarray(backend.to_numpy(images), dtype=np.float64)
    if a.ndim == 3:
        a = a[:, None]
    if a.ndim != 4 or a.shape[1] not in (1, 3):
        raise ValueError(f"make_grid: expected images (N, 1 or 3, H, W) or (N, H, W), got shape {a.shape}")
    n, c, h, w = a.shape
    if normalize:
        a = np.stack([_scale(img) for img in a])
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.full((c, rows * (h + padding) + padding, cols * (w + padding) + padding), pad_value)
    for k in range(n):
        top, left = padding + (k // cols) * (h + padding), padding + (k % cols) * (w + padding)
        grid[:, top:top + h, left:left + w] = a[k]
    return grid[0] if c == 1 else grid.transpose(1, 2, 0)


def save_image(image, path, cmap="gray", normalize=True):
    """Write one array (H, W) or (H, W, 3) / (C, H, W) as a PNG, pixel for pixel."""
    import matplotlib.image

    a = _to_display(image)
    a = _scale(a) if normalize else np.clip(a, 0.0, 1.0)
    os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
    matplotlib.image.imsave(path, a, cmap=cmap, vmin=0.0, vmax=1.0)
    return path


def plot_images(images, path, titles=None, ncols=8, cmap="gray", normalize=False, suptitle=None, size=1.4):
    """A grid of images with optional titles; returns ``path``."""
    images = list(images)
    ncols = max(1, min(ncols, len(images)))
    nrows = math.ceil(len(images) / ncols)
    fig = _figure(size * ncols, size * nrows + (0.3 if suptitle else 0))
    for k, image in enumerate(images):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        a = _to_display(image)
        ax.imshow(_scale(a) if normalize else a, cmap=cmap, vmin=0 if normalize else None,
                  vmax=1 if normalize else None)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(str(titles[k]), fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def plot_heatmaps(images, maps, path, titles=None, cmap="jet", alpha=0.5, suptitle=None):
    """Two rows per group: the images, then each map overlaid on its image (saliency, guided
    backpropagation, Grad-CAM, occlusion maps resized to the image). ``maps`` is (N, H, W) or a
    dict ``{row title: (N, H, W)}`` for several methods side by side."""
    groups = maps if isinstance(maps, dict) else {"": maps}
    images = [_to_display(im) for im in images]
    n = len(images)
    fig = _figure(1.4 * n, 1.5 * (1 + len(groups)) + (0.3 if suptitle else 0))
    for j, image in enumerate(images):
        ax = fig.add_subplot(1 + len(groups), n, j + 1)
        ax.imshow(image, cmap="gray")
        ax.set_title(str(titles[j]) if titles is not None else "", fontsize=7)
        ax.set_axis_off()
    for r, (name, group) in enumerate(groups.items(), start=1):
        group = np.asarray(backend.to_numpy(group), dtype=np.float64)
        for j, image in enumerate(images):
            ax = fig.add_subplot(1 + len(groups), n, r * n + j + 1)
            ax.imshow(image, cmap="gray")
            ax.imshow(_scale(group[j]), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
            ax.set_axis_off()
            if j == 0 and name:
                ax.set_title(name, fontsize=7, loc="left")
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _save(fig, path)


def plot_confusion_matrix(cm, path=None, classes=None, normalize=False, title="Confusion matrix"):
    """Draw a confusion matrix ``cm[i, j]`` = samples of true class i predicted as j.

    ``cm`` may also be a pair ``(predicted, target)``. ``normalize=True`` divides each row by its
    total (per-class recall on the diagonal). Returns the (possibly normalized) matrix; writes a
    PNG when ``path`` is given.
    """
    if isinstance(cm, tuple):
        predicted, target = (np.asarray(backend.to_numpy(a)).ravel() for a in cm)
        k = len(classes) if classes is not None else int(max(predicted.max(), target.max())) + 1
        cm = confusion_matrix(predicted, target, k)
    m = np.asarray(backend.to_numpy(cm), dtype=np.float64)
    if normalize:
        m = m / np.maximum(m.sum(axis=1, keepdims=True), 1.0)
    if path is None:
        return m
    k = m.shape[0]
    classes = [str(c) for c in (classes if classes is not None else range(k))]
    fig = _figure(0.5 * k + 2, 0.5 * k + 1.5)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(m, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046)
    threshold = m.max() / 2
    for i in range(k):
        for j in range(k):
            text = f"{m[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6,
                    color="white" if m[i, j] > threshold else "black")
    ax.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    _save(fig, path)
    return m


def misclassified(predicted, target, k=None):
    """Indices of the samples with ``predicted != target`` (the first ``k`` when given)."""
    predicted = np.asarray(backend.to_numpy(predicted)).ravel()
    target = np.asarray(backend.to_numpy(target)).ravel()
    wrong = np.flatnonzero(predicted != target)
    return wrong if k is None else wrong[:k]


def plot_misclassified(images, predicted, target, path, classes=None, k=16, ncols=8):
    """Save the first ``k`` misclassified images titled "true -> predicted"; returns their indices."""
    idx = misclassified(predicted, target, k)
    predicted, target = np.asarray(backend.to_numpy(predicted)).ravel(), np.asarray(backend.to_numpy(target)).ravel()
    name = (lambda c: classes[c]) if classes is not None else str
    titles = [f"{name(int(target[i]))} -> {name(int(predicted[i]))}" for i in idx]
    if len(idx):
        plot_images([backend.to_numpy(images[i]) for i in idx], path, titles=titles, ncols=ncols)
    return idx


def plot_history(history, path=None, keys=None, title="Training curves"):
    """Training curves from a :class:`npcnn.train.History` (or a ``{key: list}`` dict).

    Losses go in the left panel, other metrics (accuracy, ...) in the right; ``val_*`` keys are
    drawn dashed beside their training twin; the learning rate is left out. Returns
    ``{key: values}`` of what was drawn.
    """
    data = dict(history.history) if hasattr(history, "history") else dict(history)
    epochs = list(getattr(history, "epochs", [])) or list(range(1, len(next(iter(data.values()), [])) + 1))
    keys = [k for k in (keys or data) if k != "lr"]
    drawn = {k: list(map(float, data[k])) for k in keys}
    if path is None:
        return drawn
    losses = [k for k in keys if "loss" in k]
    others = [k for k in keys if "loss" not in k]
    panels = [p for p in (losses, others) if p]
    fig = _figure(4.2 * len(panels), 3.2)
    for p, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1)
        for key in panel:
            ax.plot(epochs, drawn[key], "--" if key.startswith("val_") else "-", marker="o", markersize=3, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel("loss" if panel is losses else "metric")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return drawn
