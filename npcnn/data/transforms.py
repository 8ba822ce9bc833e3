"""Data augmentation and preprocessing, applied to a whole batch (N, C, H, W) at once.

Each random transform draws one set of parameters per sample from its own generator (``rng=``,
a ``numpy.random.Generator``) or, when none is given, from ``npcnn.backend.rng()`` — so
``npcnn.manual_seed`` makes augmentation reproducible. Inputs are never modified in place.

Geometric transforms (crop-and-resize, rotation, affine) share one vectorized bilinear sampler
(:func:`bilinear_sample`): every output pixel's source position is computed for the whole batch,
then the four neighbouring pixels are gathered with one fancy-indexing each.

uint8 batches are accepted by every transform except :class:`Normalize`; interpolating ones
compute in float32 and round back to uint8.
"""

import math

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..functional.geometry import pair as _pair


def _rng(generator):
    return generator if generator is not None else backend.rng()


def _np(a):
    return backend.to_numpy(a)


def _check_batch(name, x):
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")


def _range(value, name, center=0.0):
    """A number d -> (center - d, center + d); a pair -> itself."""
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError(f"{name}: expected a non-negative number, got {value}")
        return center - value, center + value
    lo, hi = value
    if lo > hi:
        raise ValueError(f"{name}: expected (min, max) with min <= max, got {value!r}")
    return float(lo), float(hi)


def _to_work(x):
    """Float working copy of ``x`` (float32 for integer inputs) and a function to cast back."""
    if x.dtype.kind == "f":
        return x, lambda y: y
    xp = get_array_module(x)
    info = np.iinfo(x.dtype)
    return x.astype(np.float32), lambda y: xp.clip(xp.rint(y), info.min, info.max).astype(x.dtype)


def _upper(x):
    """The largest valid pixel value: 1 for floats (images in [0, 1]), the dtype's max for ints."""
    return 1.0 if x.dtype.kind == "f" else float(np.iinfo(x.dtype).max)


# ----------------------------------------------------------------------------- the sampler


def bilinear_sample(x, sy, sx, fill=0.0, mode="constant"):
    """Bilinear interpolation of a float batch ``x`` (N, C, H, W) at source positions ``sy``, ``sx``
    (N, Ho, Wo) (pixel centres at integer coordinates) -> (N, C, Ho, Wo).

    ``mode="constant"``: neighbours outside the image read ``fill``; ``mode="edge"``: positions
    are clamped into the image.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    if mode == "edge":
        sy, sx = xp.clip(sy, 0, h - 1), xp.clip(sx, 0, w - 1)
    y0, x0 = xp.floor(sy), xp.floor(sx)
    wy, wx = (sy - y0).astype(x.dtype), (sx - x0).astype(x.dtype)
    y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
    batch = xp.arange(n)[:, None, None]
    out = xp.zeros((n, sy.shape[1], sy.shape[2], c), dtype=x.dtype)  # channels last while gathering
    for dy, dx, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx),
                           (1, 0, wy * (1 - wx)), (1, 1, wy * wx)):
        yi, xi = y0 + dy, x0 + dx
        valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        values = x[batch, :, xp.clip(yi, 0, h - 1), xp.clip(xi, 0, w - 1)]  # (N, Ho, Wo, C)
        if mode == "constant":
            values = xp.where(valid[..., None], values, xp.asarray(fill, dtype=x.dtype))
        out += values * weight[..., None]
    return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _affine_grid(x, angle, scale, ty, tx):
    """Source positions (N, H, W) of the map  out = R(angle) * scale * (src - c) + c + t,
    per sample (angles in degrees, counter-clockwise as displayed with row 0 on top, as in
    torchvision; translations in pixels), i.e. src = R(-angle) / scale * (out - c - t) + c."""
    xp = get_array_module(x)
    _, _, h, w = x.shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    rad = -xp.asarray(np.deg2rad(angle))[:, None, None]  # rows grow downwards: flip the sense
    cos, sin = xp.cos(rad), xp.sin(rad)
    inv = 1.0 / xp.asarray(scale)[:, None, None]
    oy = xp.arange(h, dtype=np.float64)[None, :, None] - cy - xp.asarray(ty)[:, None, None]
    ox = xp.arange(w, dtype=np.float64)[None, None, :] - cx - xp.asarray(tx)[:, None, None]
    sx = (cos * ox + sin * oy) * inv + cx
    sy = (-sin * ox + cos * oy) * inv + cy
    return sy, sx


# ----------------------------------------------------------------------------- transforms


class Compose:
    """Apply ``transforms`` in order: ``Compose([RandomCrop(28, 2), Normalize(...)])``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToFloat:
    """uint8 (or any integer) images -> float ``dtype`` (default: npcnn's) in [0, 1]; floats pass through."""

    def __init__(self, dtype=None):
        self.dtype = dtype

    def __call__(self, x):
        if x.dtype.kind == "f":
            return x
        out = x.astype(self.dtype or backend.get_default_dtype())
        out *= 1.0 / float(np.iinfo(x.dtype).max)
        return out

    def __repr__(self):
        return f"ToFloat(dtype={self.dtype})"


class Normalize:
    """out[:, c] = (x[:, c] - mean[c]) / std[c], for float inputs (N, C, ...); dtype is kept."""

    def __init__(self, mean, std):
        self.mean, self.std = np.atleast_1d(np.asarray(mean, dtype=np.float64)), np.atleast_1d(
            np.asarray(std, dtype=np.float64))
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")

    def __call__(self, x):
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected float images, got {x.dtype} (apply ToFloat first)")
        c = x.shape[1]
        if self.mean.size not in (1, c) or self.std.size not in (1, c):
            raise ValueError(f"Normalize: mean/std have {self.mean.size}/{self.std.size} values for {c} channels")
        xp = get_array_module(x)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        mean = xp.asarray(self.mean, dtype=x.dtype).reshape(shape)
        std = xp.asarray(self.std, dtype=x.dtype).reshape(shape)
        return (x - mean) / std

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class _RandomFlip:
    axis = -1
    name = ""

    def __init__(self, p=0.5, rng=None):
        self.p, self.rng = float(p), rng

    def __call__(self, x):
        _check_batch(self.name, x)
        xp = get_array_module(x)
        flip = xp.asarray(_np(_rng(self.rng).random(len(x))) < self.p)[:, None, None, None]
        return xp.where(flip, xp.flip(x, axis=self.axis), x)

    def __repr__(self):
        return f"{self.name}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right with probability ``p``."""

    axis, name = -1, "RandomHorizontalFlip"


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image top-bottom with probability ``p``."""

    axis, name = -2, "RandomVerticalFlip"


class RandomCrop:
    """Pad by ``padding`` (``fill`` or ``padding_mode`` in numpy.pad's modes: constant, edge,
    reflect, symmetric), then cut a ``size`` window at a random position per image."""

    def __init__(self, size, padding=0, fill=0, padding_mode="constant", rng=None):
        self.size, self.padding = _pair(size, "RandomCrop"), int(padding)
        self.fill, self.padding_mode, self.rng = fill, padding_mode, rng

    def __call__(self, x):
        _check_batch("RandomCrop", x)
        xp = get_array_module(x)
        if self.padding:
            p = self.padding
            extra = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
            x = xp.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode=self.padding_mode, **extra)
        h, w = self.size
        n, _, hp, wp = x.shape
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {self.size} larger than the (padded) image {(hp, wp)}")
        gen = _rng(self.rng)
        top = xp.asarray(_np(gen.integers(0, hp - h + 1, n)))
        left = xp.asarray(_np(gen.integers(0, wp - w + 1, n)))
        windows = backend.sliding_window_view(x, (h, w), axis=(2, 3))  # (N, C, hp-h+1, wp-w+1, h, w)
        return xp.ascontiguousarray(windows[xp.arange(n), :, top, left])  # (N, C, h, w)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


def _random_boxes(gen, n, h, w, scale, ratio, tries=10):
    """Per sample, a box (bh, bw) with area fraction in ``scale`` and aspect w/h in ``ratio``,
    drawn as torchvision does (up to ``tries`` attempts, all drawn at once); ``ok`` is False where
    every attempt fell outside the image."""
    area = gen.uniform(scale[0], scale[1], (n, tries)) * (h * w)
    aspect = np.exp(gen.uniform(math.log(ratio[0]), math.log(ratio[1]), (n, tries)))
    bw = np.rint(np.sqrt(area * aspect)).astype(np.int64)
    bh = np.rint(np.sqrt(area / aspect)).astype(np.int64)
    valid = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
    first = valid.argmax(axis=1)  # first valid attempt (0 when none: ``ok`` says so)
    rows = np.arange(n)
    return bh[rows, first], bw[rows, first], valid.any(axis=1)


class RandomResizedCrop:
    """Cut a random box (area fraction in ``scale``, aspect ratio in ``ratio``) from each image
    and resize it to ``size`` with bilinear interpolation (the whole image when no box fits)."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), rng=None):
        self.size, self.scale, self.ratio, self.rng = _pair(size, "RandomResizedCrop"), scale, ratio, rng

    def __call__(self, x):
        _check_batch("RandomResizedCrop", x)
        xp = get_array_module(x)
        x, back = _to_work(x)
        n, _, h, w = x.shape
        gen = _rng(self.rng)
        bh, bw, ok = (_np(a) for a in _random_boxes(gen, n, h, w, self.scale, self.ratio))
        bh, bw = np.where(ok, bh, h), np.where(ok, bw, w)
        top = np.floor(_np(gen.random(n)) * (h - bh + 1))
        left = np.floor(_np(gen.random(n)) * (w - bw + 1))
        oh, ow = self.size
        # output pixel i samples the box at top + (i + 0.5) * bh / oh - 0.5 (pixel-centre aligned)
        sy = top[:, None] + (np.arange(oh)[None, :] + 0.5) * (bh[:, None] / oh) - 0.5
        sx = left[:, None] + (np.arange(ow)[None, :] + 0.5) * (bw[:, None] / ow) - 0.5
        sy = xp.asarray(np.broadcast_to(sy[:, :, None], (n, oh, ow)))
        sx = xp.asarray(np.broadcast_to(sx[:, None, :], (n, oh, ow)))
        return back(bilinear_sample(x, sy, sx, mode="edge"))

    def __repr__(self):
        return f"RandomResizedCrop(size={self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomAffine:
    """Random rotation (``degrees``), translation (``translate=(a, b)``: up to a*W and b*H pixels)
    and scaling (``scale=(lo, hi)``) about the image centre; uncovered pixels get ``fill``."""

    def __init__(self, degrees=0, translate=None, scale=None, fill=0.0, rng=None):
        self.degrees = _range(degrees, "RandomAffine degrees")
        self.translate, self.scale, self.fill, self.rng = translate, scale, float(fill), rng

    def _params(self, gen, n, h, w):
        angle = _np(gen.uniform(self.degrees[0], self.degrees[1], n))
        tx = ty = np.zeros(n)
        if self.translate is not None:
            a, b = self.translate
            tx = np.rint(_np(gen.uniform(-a * w, a * w, n)))
            ty = np.rint(_np(gen.uniform(-b * h, b * h, n)))
        scale = np.ones(n) if self.scale is None else _np(gen.uniform(self.scale[0], self.scale[1], n))
        return angle, scale, ty, tx

    def __call__(self, x):
        _check_batch(type(self).__name__, x)
        x, back = _to_work(x)
        n, _, h, w = x.shape
        angle, scale, ty, tx = self._params(_rng(self.rng), n, h, w)
        sy, sx = _affine_grid(x, angle, scale, ty, tx)
        return back(bilinear_sample(x, sy, sx, fill=self.fill, mode="constant"))

    def __repr__(self):
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale})"


class RandomRotation(RandomAffine):
    """Rotate each image by a random angle in ``degrees`` (d -> (-d, d)) about its centre."""

    def __init__(self, degrees, fill=0.0, rng=None):
        super().__init__(degrees=degrees, fill=fill, rng=rng)

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees})"


def _grayscale(x):
    """Luma (N, 1, H, W) of RGB images (ITU-R 601 weights); single-channel images are their own."""
    if x.shape[1] != 3:
        return x
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


class ColorJitter:
    """Random brightness, contrast and saturation, each factor drawn in [max(0, 1 - v), 1 + v]:

    brightness: x * f;  contrast: blend with the image's mean gray level;  saturation: blend with
    its grayscale version (no effect on one channel). Applied in that order, clipped to the valid
    range ([0, 1] for floats, [0, 255] for uint8).
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, rng=None):
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.rng = rng

    def __call__(self, x):
        _check_batch("ColorJitter", x)
        xp = get_array_module(x)
        upper = _upper(x)
        x, back = _to_work(x)
        gen = _rng(self.rng)
        n = len(x)

        def factor(v):
            lo, hi = _range(v, "ColorJitter", center=1.0)
            return xp.asarray(_np(gen.uniform(max(lo, 0.0), hi, n)), dtype=x.dtype)[:, None, None, None]

        if self.brightness:
            x = xp.clip(x * factor(self.brightness), 0.0, upper)
        if self.contrast:
            f = factor(self.contrast)
            mean = _grayscale(x).mean(axis=(1, 2, 3), keepdims=True)
            x = xp.clip(f * x + (1 - f) * mean, 0.0, upper)
        if self.saturation:
            f = factor(self.saturation)
            x = xp.clip(f * x + (1 - f) * _grayscale(x), 0.0, upper)
        return back(x)

    def __repr__(self):
        return f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, saturation={self.saturation})"


class RandomErasing:
    """With probability ``p`` per image, set a random rectangle (area fraction in ``scale``,
    aspect ratio in ``ratio``) to ``value`` (Zhong et al. 2017, torchvision's defaults)."""

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, rng=None):
        self.p, self.scale, self.ratio, self.value, self.rng = float(p), scale, ratio, value, rng

    def __call__(self, x):
        _check_batch("RandomErasing", x)
        xp = get_array_module(x)
        n, _, h, w = x.shape
        gen = _rng(self.rng)
        apply = _np(gen.random(n)) < self.p
        bh, bw, ok = (_np(a) for a in _random_boxes(gen, n, h, w, self.scale, self.ratio))
        top = np.floor(_np(gen.random(n)) * (h - bh + 1))[:, None, None]
        left = np.floor(_np(gen.random(n)) * (w - bw + 1))[:, None, None]
        rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
        inside = (rows >= top) & (rows < top + bh[:, None, None]) & (cols >= left) & (cols < left + bw[:, None, None])
        mask = xp.asarray(inside & (apply & ok)[:, None, None])[:, None]  # (N, 1, H, W)
        return xp.where(mask, xp.asarray(self.value, dtype=x.dtype), x)

    def __repr__(self):
        return f"RandomErasing(p={self.p}, scale={self.scale}, ratio={self.ratio}, value={self.value})"
