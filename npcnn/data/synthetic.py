"""Synthetic datasets: deterministic, offline, fast to make, and learnable by a small CNN.

* :func:`shapes` — images of geometric shapes (circle, square, triangle, cross, ...) at random
  positions, sizes and rotations, with noise; optionally per-pixel masks for segmentation (FCN).
* :func:`signals` — 1-D sequences (N, 1, L) of class-specific waveforms (sine, square,
  sawtooth, chirp, ECG-like beats) for a 1-D CNN.

Everything is vectorized over samples and pixels; only the short list of classes is looped over.
The same ``seed`` always gives the same arrays.
"""

import math

import numpy as np

from .. import backend
from ._checks import check_bool, check_int, check_real

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SIGNAL_CLASSES = ("sine", "square", "sawtooth", "chirp", "beats")

# Outward normals of the three edges of an upward triangle inscribed in the unit circle.
_TRIANGLE_NORMALS = [(math.cos(a), math.sin(a)) for a in (math.radians(-90), math.radians(30), math.radians(150))]


def _inside(kind, u, v):
    """Boolean mask of points (u, v), in the shape's own frame (unit radius), inside ``kind``."""
    if kind == "circle":
        return u * u + v * v <= 1.0
    if kind == "square":
        return np.maximum(abs(u), abs(v)) <= 0.75
    if kind == "triangle":
        return np.all([nx * u + ny * v <= 0.5 for nx, ny in _TRIANGLE_NORMALS], axis=0)
    if kind == "cross":
        return ((abs(u) <= 0.28) & (abs(v) <= 0.95)) | ((abs(v) <= 0.28) & (abs(u) <= 0.95))
    if kind == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.36)
    if kind == "diamond":
        return abs(u) + abs(v) <= 1.0
    raise ValueError(f"shapes: unknown class {kind!r}; expected some of {SHAPE_CLASSES}")


def _check_common(who, n, classes, seed, noise, dtype):
    """The arguments :func:`shapes` and :func:`signals` share, checked; returns ``classes`` as a tuple."""
    check_int(who, "n", n, minimum=0)
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise TypeError(f"{who}: classes must be a sequence of class names, got {classes!r}")
    classes = tuple(classes)
    if not classes:
        raise ValueError(f"{who}: classes must name at least one class")
    if seed is not None and not isinstance(seed, np.random.SeedSequence):
        check_int(who, "seed", seed, minimum=0)
    check_real(who, "noise", noise, low=0.0)
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"{who}: dtype must be a float dtype, got {np.dtype(dtype)}")
    return classes


def shapes(n, size=32, classes=("circle", "square", "triangle", "cross"), seed=0, noise=0.05,
           return_masks=False, dtype=None):
    """``n`` grayscale images (n, 1, size, size) of one shape each, with labels (n,) int64.

    Each shape has a random centre, radius (15-35% of ``size``), rotation and brightness (0.6-1
    on a 0 background), plus Gaussian noise, clipped to [0, 1].

    Args:
        n: number of images (>= 0).
        size: image height and width in pixels (>= 4).
        classes: names from ``SHAPE_CLASSES``; labels index this tuple and are balanced
            (shuffled round-robin).
        seed: seed of the drawing (an int >= 0); the same seed always gives the same arrays.
        noise: standard deviation of the added Gaussian noise (>= 0; 0 for clean images).
        return_masks: also return per-pixel masks (see Returns).
        dtype: float dtype of the images (default: npcnn's default float dtype).

    Returns:
        ``(images, labels)``, or with ``return_masks=True`` ``(images, labels, masks)``: masks
        (n, size, size) int64, 0 for background and ``label + 1`` on the shape's pixels (for a
        segmentation network, ``len(classes) + 1`` classes).
    """
    classes = _check_common("shapes", n, classes, seed, noise, dtype)
    check_int("shapes", "size", size, minimum=4)
    check_bool("shapes", "return_masks", return_masks)
    for kind in classes:
        _inside(kind, np.zeros(1), np.zeros(1))  # validates the name early
    gen = np.random.default_rng(seed)
    labels = gen.permutation(np.arange(n) % len(classes)).astype(np.int64)
    radius = gen.uniform(0.15, 0.35, n) * size
    cx, cy = (gen.uniform(radius, size - 1 - radius) for _ in range(2))
    angle = gen.uniform(0.0, 2 * math.pi, n)
    brightness = gen.uniform(0.6, 1.0, n)

    grid = np.arange(size, dtype=np.float64)
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size): pixel column minus centre
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    cos, sin = np.cos(angle)[:, None, None], np.sin(angle)[:, None, None]
    u = (dx * cos + dy * sin) / radius[:, None, None]  # (n, size, size), rotated into the shape's frame
    v = (dy * cos - dx * sin) / radius[:, None, None]

    inside = np.zeros((n, size, size), dtype=bool)
    for k, kind in enumerate(classes):
        rows = labels == k
        inside[rows] = _inside(kind, u[rows], v[rows])

    images = inside * brightness[:, None, None]
    if noise:
        images = images + gen.normal(0.0, noise, images.shape)
    images = np.clip(images, 0.0, 1.0)[:, None].astype(dtype or backend.get_default_dtype())
    if return_masks:
        return images, labels, np.where(inside, labels[:, None, None] + 1, 0).astype(np.int64)
    return images, labels


def _waveform(kind, t, freq, phase):
    """Unit-amplitude waveform ``kind`` at times ``t`` (n, L) in [0, 1), per-sample freq/phase (n, 1)."""
    cycles = freq * t + phase  # number of periods elapsed
    if kind == "sine":
        return np.sin(2 * math.pi * cycles)
    if kind == "square":
        return np.where(cycles % 1.0 < 0.5, 1.0, -1.0)
    if kind == "sawtooth":
        return 2.0 * (cycles % 1.0) - 1.0
    if kind == "chirp":  # frequency sweeps linearly from freq/2 to 2 freq over the sequence
        return np.sin(2 * math.pi * (0.5 * freq * t + 0.75 * freq * t * t + phase))
    if kind == "beats":  # ECG-like: a sharp spike (R wave) and a broad bump (T wave) per period
        x = cycles % 1.0
        return 1.2 * np.exp(-0.5 * ((x - 0.3) / 0.02) ** 2) + 0.35 * np.exp(-0.5 * ((x - 0.6) / 0.07) ** 2) - 0.2
    raise ValueError(f"signals: unknown class {kind!r}; expected some of {SIGNAL_CLASSES}")


def signals(n, length=128, classes=SIGNAL_CLASSES, seed=0, noise=0.1, dtype=None):
    """``n`` 1-D sequences (n, 1, length) with labels (n,) int64 indexing ``classes``.

    Each sequence is one class's waveform with a random frequency (2-6 periods per sequence),
    phase, amplitude (0.5-1.5) and offset (+-0.2), plus Gaussian noise.

    Args:
        n: number of sequences (>= 0).
        length: samples per sequence (>= 1).
        classes: names from ``SIGNAL_CLASSES``; labels index this tuple and are balanced.
        seed: seed of the drawing (an int >= 0); the same seed always gives the same arrays.
        noise: standard deviation of the added Gaussian noise (>= 0).
        dtype: float dtype of the sequences (default: npcnn's default float dtype).

    Returns:
        ``(x, labels)``: x (n, 1, length) float, labels (n,) int64.
    """
    classes = _check_common("signals", n, classes, seed, noise, dtype)
    check_int("signals", "length", length, minimum=1)
    for kind in classes:
        _waveform(kind, np.zeros((1, 1)), 1.0, 0.0)  # validates the name early
    gen = np.random.default_rng(seed)
    labels = gen.permutation(np.arange(n) % len(classes)).astype(np.int64)
    t = np.arange(length, dtype=np.float64)[None, :] / length
    freq = gen.uniform(2.0, 6.0, (n, 1))
    phase = gen.uniform(0.0, 1.0, (n, 1))
    amplitude = gen.uniform(0.5, 1.5, (n, 1))
    offset = gen.uniform(-0.2, 0.2, (n, 1))
    x = np.empty((n, length))
    for k, kind in enumerate(classes):
        rows = labels == k
        x[rows] = _waveform(kind, t, freq[rows], phase[rows])
    x = amplitude * x + offset
    if noise:
        x += gen.normal(0.0, noise, x.shape)
    return x[:, None].astype(dtype or backend.get_default_dtype()), labels
