"""Data augmentation and preprocessing, applied to a whole batch (N, C, H, W) at once.

The lectures' augmentations, with torchvision's names, arguments and defaults: flips
(:class:`RandomHorizontalFlip`, :class:`RandomVerticalFlip`), rotation (:class:`RandomRotation`),
crop (:class:`RandomCrop`), crop and scale (:class:`RandomResizedCrop`), translation, scaling and
shear (:class:`RandomAffine`), colour jitter (:class:`ColorJitter`: brightness, contrast,
saturation, hue), plus :class:`RandomErasing`, :class:`Normalize`, :class:`ToFloat` and
:class:`Compose`.

Each random transform draws one set of parameters per sample from its own generator (``rng=``,
a ``numpy.random.Generator`` or an int seed) or, when none is given, from ``npcnn.backend.rng()``
— so ``npcnn.manual_seed`` makes augmentation reproducible. Inputs are never modified in place.
Deterministic ones: :class:`Resize`, :class:`CenterCrop`, :class:`Pad`.

Differences from torchvision: a whole batch is transformed at once (torchvision transforms one
image); :class:`RandomAffine` and :class:`RandomRotation` interpolate bilinearly by default
(torchvision: nearest; pass ``interpolation="nearest"``).

Geometric transforms (crop-and-resize, rotation, affine) share one vectorized sampler
(:func:`bilinear_sample`): every output pixel's source position is computed for the whole batch,
then the neighbouring pixels are gathered with one fancy-indexing each.

uint8 batches are accepted by every transform except :class:`Normalize`; interpolating ones
compute in float32 and round back to uint8.
"""

import math
import numbers

import numpy as np

from .. import backend
from ..backend import get_array_module
from ..functional.geometry import pair as _pair
from ._checks import check_bool, check_interval, check_real


def _rng(generator):
    return generator if generator is not None else backend.rng()


def _check_rng(who, rng):
    """The ``rng`` argument: None (npcnn's generator at call time), an int seed, or a generator."""
    if rng is None:
        return None
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    if not all(hasattr(rng, m) for m in ("random", "uniform", "integers")):
        raise TypeError(f"{who}: rng must be None, an int seed or a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _np(a):
    return backend.to_numpy(a)


def _check_batch(name, x):
    if not (hasattr(x, "ndim") and hasattr(x, "dtype")):
        raise TypeError(f"{name}: expected a batch of images (N, C, H, W) as an array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{name}: expected a batch of images (N, C, H, W), got shape {tuple(x.shape)}")
    if np.dtype(x.dtype).kind not in "fiu":
        raise TypeError(f"{name}: expected float or integer images, got dtype {x.dtype}")


def _size(value, name):
    """An output size: a positive int or a pair (h, w) of positive ints, as (h, w)."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1 for v in items):
        raise ValueError(f"{name}: size must be a positive int or a pair (h, w) of positive ints, got {value!r}")
    return _pair(tuple(int(v) for v in items), name)


def _symmetric(who, name, value, center=0.0, bound=None):
    """torchvision's convention: a number d -> (center - d, center + d) (d >= 0); a pair -> itself.
    ``bound`` (lo, hi) limits both ends."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        d = check_real(who, name, value, low=0.0)
        lo, hi = center - d, center + d
        if bound is not None:
            lo = max(lo, bound[0])
            if hi > bound[1]:
                raise ValueError(f"{who}: {name} must be at most {bound[1] - center:g}, got {d:g}")
        return lo, hi
    low, high = bound if bound is not None else (None, None)
    return check_interval(who, name, value, low, high)


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


def _check_fill(who, fill):
    return check_real(who, "fill", fill)


def _check_interpolation(who, interpolation):
    if interpolation not in ("bilinear", "nearest"):
        raise ValueError(f"{who}: interpolation must be 'bilinear' or 'nearest', got {interpolation!r}")
    return interpolation


# ----------------------------------------------------------------------------- the sampler


def bilinear_sample(x, sy, sx, fill=0.0, mode="constant", interpolation="bilinear"):
    """Interpolation of a float batch ``x`` (N, C, H, W) at source positions ``sy``, ``sx``
    (N, Ho, Wo) (pixel centres at integer coordinates) -> (N, C, Ho, Wo).

    Args:
        x: float images (N, C, H, W).
        sy, sx: source row and column of every output pixel, (N, Ho, Wo).
        fill: the value read outside the image when ``mode="constant"``.
        mode: ``"constant"`` (neighbours outside the image read ``fill``) or ``"edge"``
            (positions are clamped into the image).
        interpolation: ``"bilinear"`` (the four neighbours, weighted) or ``"nearest"`` (the
            nearest pixel, ties to even as ``torch.nn.functional.grid_sample``).
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    if mode == "edge":
        sy, sx = xp.clip(sy, 0, h - 1), xp.clip(sx, 0, w - 1)
    if interpolation == "nearest":
        y0, x0 = xp.rint(sy).astype(np.int64), xp.rint(sx).astype(np.int64)
        taps = ((0, 0, None),)
    else:
        y0, x0 = xp.floor(sy), xp.floor(sx)
        wy, wx = (sy - y0).astype(x.dtype), (sx - x0).astype(x.dtype)
        y0, x0 = y0.astype(np.int64), x0.astype(np.int64)
        taps = ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)), (1, 1, wy * wx))
    batch = xp.arange(n)[:, None, None]
    out = xp.zeros((n, sy.shape[1], sy.shape[2], c), dtype=x.dtype)  # channels last while gathering
    for dy, dx, weight in taps:
        yi, xi = y0 + dy, x0 + dx
        valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
        values = x[batch, :, xp.clip(yi, 0, h - 1), xp.clip(xi, 0, w - 1)]  # (N, Ho, Wo, C)
        if mode == "constant":
            values = xp.where(valid[..., None], values, xp.asarray(fill, dtype=x.dtype))
        out += values if weight is None else values * weight[..., None]
    return xp.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _affine_grid(x, angle, scale, ty, tx, shear_x=None, shear_y=None):
    """Source positions (N, H, W) of torchvision's affine map about the image centre, per sample:
    rotation by ``angle`` degrees (counter-clockwise as displayed, row 0 on top), scale, shear
    (degrees, x then y) and translation (pixels). torchvision's inverse matrix
    (``_get_inverse_affine_matrix`` with the angle negated, as its tensor path does)."""
    xp = get_array_module(x)
    _, _, h, w = x.shape
    n = len(angle)
    shear_x = np.zeros(n) if shear_x is None else shear_x
    shear_y = np.zeros(n) if shear_y is None else shear_y
    rot, sx, sy = np.deg2rad(-np.asarray(angle)), np.deg2rad(shear_x), np.deg2rad(shear_y)
    a = np.cos(rot - sy) / np.cos(sy)
    b = -np.cos(rot - sy) * np.tan(sx) / np.cos(sy) - np.sin(rot)
    c = np.sin(rot - sy) / np.cos(sy)
    d = -np.sin(rot - sy) * np.tan(sx) / np.cos(sy) + np.cos(rot)
    m = np.stack([d, -b, -c, a], axis=1) / np.asarray(scale)[:, None]  # inverse of [[a, b], [c, d]], / scale
    m = xp.asarray(m)[:, :, None, None]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    oy = xp.arange(h, dtype=np.float64)[None, :, None] - cy - xp.asarray(ty)[:, None, None]
    ox = xp.arange(w, dtype=np.float64)[None, None, :] - cx - xp.asarray(tx)[:, None, None]
    src_x = m[:, 0] * ox + m[:, 1] * oy + cx
    src_y = m[:, 2] * ox + m[:, 3] * oy + cy
    return src_y, src_x


# ----------------------------------------------------------------------------- transforms


class Compose:
    """Apply ``transforms`` in order: ``Compose([RandomCrop(28, 2), Normalize(...)])``."""

    def __init__(self, transforms):
        if not isinstance(transforms, (list, tuple)):
            raise TypeError(f"Compose: expected a list of transforms, got {type(transforms).__name__}")
        for k, t in enumerate(transforms):
            if not callable(t):
                raise TypeError(f"Compose: transform {k} ({type(t).__name__}) is not callable")
        self.transforms = list(transforms)

    def __call__(self, x):
        """``x`` through every transform, in order."""
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self):
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class ToFloat:
    """uint8 (or any integer) images -> float ``dtype`` (default: npcnn's) in [0, 1]; floats pass through."""

    def __init__(self, dtype=None):
        if dtype is not None and np.dtype(dtype).kind != "f":
            raise TypeError(f"ToFloat: dtype must be a float dtype, got {np.dtype(dtype)}")
        self.dtype = dtype

    def __call__(self, x):
        """``x / max`` of its integer dtype, as floats (float inputs unchanged)."""
        if not hasattr(x, "dtype"):
            raise TypeError(f"ToFloat: expected an array, got {type(x).__name__}")
        if x.dtype.kind == "f":
            return x
        if x.dtype.kind not in "iu":
            raise TypeError(f"ToFloat: expected integer or float images, got dtype {x.dtype}")
        out = x.astype(self.dtype or backend.get_default_dtype())
        out *= 1.0 / float(np.iinfo(x.dtype).max)
        return out

    def __repr__(self):
        return f"ToFloat(dtype={self.dtype})"


class Normalize:
    """out[:, c] = (x[:, c] - mean[c]) / std[c], for float inputs (N, C, ...); dtype is kept.

    ``mean`` and ``std``: one number, or one per channel (finite; std > 0). ``inplace`` is
    accepted for torchvision compatibility and ignored (a new array is returned).
    """

    def __init__(self, mean, std, inplace=False):
        self.mean = self._values("mean", mean)
        self.std = self._values("std", std)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std}")
        check_bool("Normalize", "inplace", inplace)

    @staticmethod
    def _values(name, value):
        try:
            a = np.atleast_1d(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError):
            raise TypeError(f"Normalize: {name} must be a number or a list of numbers, got {value!r}") from None
        if a.ndim != 1 or not np.all(np.isfinite(a)):
            raise ValueError(f"Normalize: {name} must be finite numbers, one per channel, got {value!r}")
        return a

    def __call__(self, x):
        """The normalized batch."""
        if not hasattr(x, "dtype") or x.ndim < 2:
            raise ValueError(f"Normalize: expected a batch (N, C, ...), got {getattr(x, 'shape', type(x).__name__)}")
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
        self.p = check_real(self.name, "p", p, 0.0, 1.0)
        self.rng = _check_rng(self.name, rng)

    def __call__(self, x):
        """Each image mirrored with probability ``p``."""
        _check_batch(self.name, x)
        xp = get_array_module(x)
        flip = xp.asarray(_np(_rng(self.rng).random(len(x))) < self.p)[:, None, None, None]
        return xp.where(flip, xp.flip(x, axis=self.axis), x)

    def __repr__(self):
        return f"{self.name}(p={self.p})"


class RandomHorizontalFlip(_RandomFlip):
    """Mirror each image left-right with probability ``p`` (in [0, 1])."""

    axis, name = -1, "RandomHorizontalFlip"


class RandomVerticalFlip(_RandomFlip):
    """Mirror each image top-bottom with probability ``p`` (in [0, 1])."""

    axis, name = -2, "RandomVerticalFlip"


def _padding(value, who="RandomCrop"):
    """torchvision's padding forms -> (top, bottom, left, right): an int (all sides), a pair
    (left/right, top/bottom) or four values (left, top, right, bottom)."""
    items = value if isinstance(value, (tuple, list)) else (value,)
    if len(items) not in (1, 2, 4) or any(isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 0
                                          for v in items):
        raise ValueError(f"{who}: padding must be an int >= 0 or a sequence of 2 or 4 of them, got {value!r}")
    items = [int(v) for v in items]
    if len(items) == 1:
        return items * 4
    if len(items) == 2:
        return [items[1], items[1], items[0], items[0]]
    left, top, right, bottom = items
    return [top, bottom, left, right]


def _check_padding_mode(who, padding_mode):
    if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
        raise ValueError(f"{who}: padding_mode must be 'constant', 'edge', 'reflect' or 'symmetric', "
                         f"got {padding_mode!r}")
    return padding_mode


def _pad_batch(x, top, bottom, left, right, fill, padding_mode):
    """``x`` (N, C, H, W) padded on its last two axes (numpy.pad's modes)."""
    if not (top or bottom or left or right):
        return x
    xp = get_array_module(x)
    extra = {"constant_values": fill} if padding_mode == "constant" else {}
    return xp.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=padding_mode, **extra)


class Pad:
    """Pad every image: ``padding`` an int (every side), (left/right, top/bottom) or (left, top,
    right, bottom); ``fill`` for ``padding_mode="constant"``, or ``"edge"``, ``"reflect"``,
    ``"symmetric"`` (torchvision's arguments)."""

    def __init__(self, padding, fill=0, padding_mode="constant"):
        self.padding, self._pad = padding, _padding(padding, "Pad")
        self.fill = _check_fill("Pad", fill)
        self.padding_mode = _check_padding_mode("Pad", padding_mode)

    def __call__(self, x):
        """The padded batch."""
        _check_batch("Pad", x)
        return _pad_batch(x, *self._pad, self.fill, self.padding_mode)

    def __repr__(self):
        return f"Pad(padding={self.padding}, fill={self.fill}, padding_mode={self.padding_mode!r})"


class CenterCrop:
    """Cut the central ``size`` window of every image, as torchvision (offsets
    ``round((H - h) / 2)``, ``round((W - w) / 2)``; an image smaller than ``size`` is zero-padded
    first, the odd pixel going to the bottom/right)."""

    def __init__(self, size):
        self.size = _size(size, "CenterCrop")

    def __call__(self, x):
        """The central window of each image."""
        _check_batch("CenterCrop", x)
        h, w = self.size
        dh, dw = max(h - x.shape[2], 0), max(w - x.shape[3], 0)
        x = _pad_batch(x, dh // 2, (dh + 1) // 2, dw // 2, (dw + 1) // 2, 0.0, "constant")
        top, left = int(round((x.shape[2] - h) / 2.0)), int(round((x.shape[3] - w) / 2.0))
        return get_array_module(x).ascontiguousarray(x[:, :, top:top + h, left:left + w])

    def __repr__(self):
        return f"CenterCrop(size={self.size})"


class Resize:
    """Resize every image with bilinear interpolation (``torch.nn.functional.interpolate`` with
    ``align_corners=False`` and no antialiasing).

    Args:
        size: (h, w) for an exact size, or an int: the shorter side becomes ``size`` and the other
            keeps the aspect ratio (``int(size * long / short)``, as torchvision).
    """

    def __init__(self, size):
        self.size = _size(size, "Resize")
        self._shorter = not isinstance(size, (tuple, list))

    def _output_size(self, h, w):
        if not self._shorter:
            return self.size
        s = self.size[0]
        return (s, int(s * w / h)) if h <= w else (int(s * h / w), s)

    def __call__(self, x):
        """The resized batch."""
        _check_batch("Resize", x)
        xp = get_array_module(x)
        x, back = _to_work(x)
        n, _, h, w = x.shape
        oh, ow = self._output_size(h, w)
        sy = (np.arange(oh) + 0.5) * (h / oh) - 0.5  # pixel-centre aligned, clamped at the edges
        sx = (np.arange(ow) + 0.5) * (w / ow) - 0.5
        sy = xp.asarray(np.broadcast_to(sy[None, :, None], (n, oh, ow)))
        sx = xp.asarray(np.broadcast_to(sx[None, None, :], (n, oh, ow)))
        return back(bilinear_sample(x, sy, sx, mode="edge"))

    def __repr__(self):
        return f"Resize(size={self.size[0] if self._shorter else self.size})"


class RandomCrop:
    """Pad, then cut a ``size`` window at a random position per image (torchvision's arguments).

    Args:
        size: output (h, w), or an int for a square.
        padding: added first: an int (every side), (left/right, top/bottom), or
            (left, top, right, bottom); ``None`` or 0 for none.
        pad_if_needed: also pad an image smaller than ``size`` up to it.
        fill: the value of constant padding.
        padding_mode: ``"constant"``, ``"edge"``, ``"reflect"`` or ``"symmetric"`` (numpy.pad's).
    """

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant", rng=None):
        self.size = _size(size, "RandomCrop")
        self.padding = 0 if padding is None else padding
        self._pad = _padding(self.padding)
        self.pad_if_needed = check_bool("RandomCrop", "pad_if_needed", pad_if_needed)
        self.fill = _check_fill("RandomCrop", fill)
        self.padding_mode = _check_padding_mode("RandomCrop", padding_mode)
        self.rng = _check_rng("RandomCrop", rng)

    def __call__(self, x):
        """A random ``size`` window of each (padded) image."""
        _check_batch("RandomCrop", x)
        xp = get_array_module(x)
        x = _pad_batch(x, *self._pad, self.fill, self.padding_mode)
        h, w = self.size
        if self.pad_if_needed:
            dh, dw = max(h - x.shape[2], 0), max(w - x.shape[3], 0)
            x = _pad_batch(x, dh, dh, dw, dw, self.fill, self.padding_mode)  # both sides, as torchvision
        n, _, hp, wp = x.shape
        if h > hp or w > wp:
            raise ValueError(f"RandomCrop: crop {self.size} larger than the (padded) image {(hp, wp)} "
                             f"(pass padding= or pad_if_needed=True)")
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


def _box_args(who, scale, ratio):
    scale = check_interval(who, "scale", scale, 0.0, None, low_open=True)
    ratio = check_interval(who, "ratio", ratio, 0.0, None, low_open=True)
    return scale, ratio


class RandomResizedCrop:
    """Crop and scale: cut a random box from each image and resize it to ``size`` (bilinear).

    Args:
        size: output (h, w), or an int for a square.
        scale: range of the box's area as a fraction of the image's (each > 0).
        ratio: range of the box's aspect ratio w / h (each > 0), drawn log-uniformly.

    As torchvision: up to ten draws per image for a box that fits; the whole image when none does.
    """

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), rng=None):
        self.size = _size(size, "RandomResizedCrop")
        self.scale, self.ratio = _box_args("RandomResizedCrop", scale, ratio)
        self.rng = _check_rng("RandomResizedCrop", rng)

    def __call__(self, x):
        """A random box of each image, resized to ``size``."""
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


def _shear(value):
    """torchvision's shear forms -> (x range, y range or None): a number s -> x in (-s, s);
    a pair -> the x range; four numbers -> the x range, then the y range (degrees)."""
    if value is None:
        return None, None
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return _symmetric("RandomAffine", "shear", value, bound=(-89.0, 89.0)), None
    if not isinstance(value, (tuple, list)) or len(value) not in (2, 4):
        raise ValueError(f"RandomAffine: shear must be a number, or a sequence of 2 or 4 numbers, got {value!r}")
    x_range = check_interval("RandomAffine", "shear", value[:2], -89.0, 89.0)
    y_range = check_interval("RandomAffine", "shear", value[2:], -89.0, 89.0) if len(value) == 4 else None
    return x_range, y_range


class RandomAffine:
    """Random rotation, translation, scale and shear about the image centre (torchvision's arguments).

    Args:
        degrees: rotation angle range in degrees (counter-clockwise as displayed): a number d for
            (-d, d), or (min, max).
        translate: ``(a, b)`` in [0, 1]: horizontal shifts up to a * W and vertical up to b * H
            pixels (rounded to whole pixels, as torchvision); ``None`` for none.
        scale: ``(lo, hi)`` (> 0), the zoom factor's range; ``None`` for 1.
        shear: degrees: s for an x-shear in (-s, s), (min, max) for x, or (xmin, xmax, ymin, ymax).
        interpolation: ``"bilinear"`` (default) or ``"nearest"`` (torchvision's default).
        fill: the value of pixels that come from outside the image.
    """

    def __init__(self, degrees=0, translate=None, scale=None, shear=None, interpolation="bilinear", fill=0.0,
                 rng=None):
        self.degrees = _symmetric(type(self).__name__, "degrees", degrees)
        if translate is not None:
            if not isinstance(translate, (tuple, list)) or len(translate) != 2:
                raise ValueError(f"RandomAffine: translate must be a pair (a, b) of fractions, got {translate!r}")
            translate = tuple(check_real("RandomAffine", f"translate[{k}]", v, 0.0, 1.0)
                              for k, v in enumerate(translate))
        if scale is not None:
            scale = check_interval("RandomAffine", "scale", scale, 0.0, None, low_open=True)
        self.translate, self.scale = translate, scale
        self.shear = shear
        self._shear_x, self._shear_y = _shear(shear)
        self.interpolation = _check_interpolation(type(self).__name__, interpolation)
        self.fill = _check_fill(type(self).__name__, fill)
        self.rng = _check_rng(type(self).__name__, rng)

    def _params(self, gen, n, h, w):
        """Per sample, drawn in torchvision's order: angle, translation, scale, shear."""
        angle = _np(gen.uniform(self.degrees[0], self.degrees[1], n))
        tx = ty = np.zeros(n)
        if self.translate is not None:
            a, b = self.translate
            tx = np.rint(_np(gen.uniform(-a * w, a * w, n)))
            ty = np.rint(_np(gen.uniform(-b * h, b * h, n)))
        scale = np.ones(n) if self.scale is None else _np(gen.uniform(self.scale[0], self.scale[1], n))
        shear_x = None if self._shear_x is None else _np(gen.uniform(*self._shear_x, n))
        shear_y = None if self._shear_y is None else _np(gen.uniform(*self._shear_y, n))
        return angle, scale, ty, tx, shear_x, shear_y

    def __call__(self, x):
        """Each image moved by its own random affine map."""
        _check_batch(type(self).__name__, x)
        x, back = _to_work(x)
        n, _, h, w = x.shape
        sy, sx = _affine_grid(x, *self._params(_rng(self.rng), n, h, w))
        return back(bilinear_sample(x, sy, sx, fill=self.fill, mode="constant", interpolation=self.interpolation))

    def __repr__(self):
        shear = f", shear={self.shear}" if self.shear is not None else ""
        return f"RandomAffine(degrees={self.degrees}, translate={self.translate}, scale={self.scale}{shear})"


class RandomRotation(RandomAffine):
    """Rotate each image by a random angle in ``degrees`` (d -> (-d, d), or (min, max)) about its
    centre, counter-clockwise as displayed; ``interpolation`` and ``fill`` as in :class:`RandomAffine`."""

    def __init__(self, degrees, interpolation="bilinear", fill=0.0, rng=None):
        super().__init__(degrees=degrees, interpolation=interpolation, fill=fill, rng=rng)

    def __repr__(self):
        return f"RandomRotation(degrees={self.degrees})"


# ----------------------------------------------------------------------------- colour


def _grayscale(x):
    """Luma (N, 1, H, W) of RGB images (torchvision's ITU-R 601 weights); one channel is its own."""
    if x.shape[1] != 3:
        return x
    return 0.2989 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def rgb_to_hsv(x):
    """HSV (N, 3, H, W) of float RGB images in [0, 1], all in [0, 1] (hue in turns), as torchvision."""
    xp = get_array_module(x)
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    maxc, minc = x.max(axis=1), x.min(axis=1)
    equal = maxc == minc
    cr = maxc - minc
    s = cr / xp.where(equal, 1.0, maxc)
    divisor = xp.where(equal, 1.0, cr)
    rc, gc, bc = (maxc - r) / divisor, (maxc - g) / divisor, (maxc - b) / divisor
    hr = (maxc == r) * (bc - gc)
    hg = ((maxc == g) & (maxc != r)) * (2.0 + rc - bc)
    hb = ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = xp.fmod((hr + hg + hb) / 6.0 + 1.0, 1.0)
    return xp.stack([h, s, maxc], axis=1).astype(x.dtype)


def hsv_to_rgb(x):
    """RGB (N, 3, H, W) of HSV images in [0, 1] (the inverse of :func:`rgb_to_hsv`), as torchvision."""
    xp = get_array_module(x)
    h, s, v = x[:, 0], x[:, 1], x[:, 2]
    i = xp.floor(h * 6.0)
    f = h * 6.0 - i
    i = i.astype(np.int64) % 6
    p = xp.clip(v * (1.0 - s), 0.0, 1.0)
    q = xp.clip(v * (1.0 - s * f), 0.0, 1.0)
    t = xp.clip(v * (1.0 - s * (1.0 - f)), 0.0, 1.0)
    # the sector i picks (r, g, b) among v, p, q, t
    table = [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)]
    out = xp.zeros_like(x)
    for k, (r, g, b) in enumerate(table):
        sector = (i == k)[:, None]
        out = xp.where(sector, xp.stack([r, g, b], axis=1), out)
    return out


def _blend(x, other, f, upper):
    xp = get_array_module(x)
    return xp.clip(f * x + (1.0 - f) * other, 0.0, upper)


class ColorJitter:
    """Random brightness, contrast, saturation and hue per image, as torchvision's ``ColorJitter``.

    Args:
        brightness: factor range: v >= 0 for [max(0, 1 - v), 1 + v], or (min, max); the image is
            multiplied by the factor.
        contrast: factor range as ``brightness``; the image is blended with its mean gray level
            (``f * x + (1 - f) * mean``).
        saturation: factor range as ``brightness``; the image is blended with its grayscale
            version. No effect on single-channel images.
        hue: shift range in turns of the colour wheel: h in [0, 0.5] for [-h, h], or (min, max)
            within [-0.5, 0.5]; the hue channel in HSV is shifted. No effect on single-channel images.

    Each image gets its own factors and its own random order of the four adjustments (as
    torchvision draws per image); results are clipped to [0, 1] for floats, [0, max] for integer
    dtypes. Grey images take brightness and contrast; colour images must have 3 channels (RGB).
    """

    def __init__(self, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, rng=None):
        self.brightness, self.contrast, self.saturation, self.hue = brightness, contrast, saturation, hue
        self._ranges = [self._factor_range(name, value) for name, value in
                        (("brightness", brightness), ("contrast", contrast), ("saturation", saturation))]
        hue_range = _symmetric("ColorJitter", "hue", hue, bound=(-0.5, 0.5))
        self._ranges.append(None if hue_range == (0.0, 0.0) else hue_range)
        self.rng = _check_rng("ColorJitter", rng)

    @staticmethod
    def _factor_range(name, value):
        lo, hi = _symmetric("ColorJitter", name, value, center=1.0, bound=(0.0, math.inf))
        return None if lo == hi == 1.0 else (lo, hi)

    def _adjust(self, op, x, f, upper):
        """Adjustment ``op`` (0 brightness, 1 contrast, 2 saturation, 3 hue) with factors ``f`` (n, 1, 1, 1)."""
        xp = get_array_module(x)
        if op == 0:
            return xp.clip(x * f, 0.0, upper)
        if op == 1:
            return _blend(x, _grayscale(x).mean(axis=(1, 2, 3), keepdims=True), f, upper)
        if x.shape[1] == 1:  # saturation and hue leave grey images alone (as torchvision)
            return x
        if op == 2:
            return _blend(x, _grayscale(x), f, upper)
        hsv = rgb_to_hsv(x / upper)
        hsv[:, 0:1] = xp.mod(hsv[:, 0:1] + f, 1.0)  # a turn of the colour wheel wraps around
        return hsv_to_rgb(hsv) * upper

    def __call__(self, x):
        """Each image with its own random colour adjustments."""
        _check_batch("ColorJitter", x)
        if x.shape[1] not in (1, 3) and any(r is not None for r in self._ranges[1:]):
            raise ValueError(f"ColorJitter: contrast, saturation and hue need 1 (grey) or 3 (RGB) channels, "
                             f"got {x.shape[1]}")
        xp = get_array_module(x)
        upper = _upper(x)
        x, back = _to_work(x)
        x = x.copy()
        gen = _rng(self.rng)
        n = len(x)
        order = np.argsort(_np(gen.random((n, 4))), axis=1)  # a random order of the four per image
        factors = [None if r is None else xp.asarray(_np(gen.uniform(r[0], r[1], n)), dtype=x.dtype)
                   for r in self._ranges]
        for position in range(4):
            for op, f in enumerate(factors):
                rows = np.flatnonzero(order[:, position] == op)
                if f is None or rows.size == 0:
                    continue
                rows = xp.asarray(rows)
                x[rows] = self._adjust(op, x[rows], f[rows][:, None, None, None], upper)
        return back(x)

    def __repr__(self):
        return (f"ColorJitter(brightness={self.brightness}, contrast={self.contrast}, "
                f"saturation={self.saturation}, hue={self.hue})")


class RandomErasing:
    """With probability ``p`` per image, set a random rectangle to ``value`` (Zhong et al. 2017,
    torchvision's defaults).

    Args:
        p: probability of erasing each image, in [0, 1].
        scale: range of the rectangle's area as a fraction of the image's (each > 0).
        ratio: range of its aspect ratio (each > 0).
        value: the erased pixels' value (a number).
        inplace: accepted for torchvision compatibility and ignored (a new array is returned).
    """

    def __init__(self, p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value=0.0, inplace=False, rng=None):
        self.p = check_real("RandomErasing", "p", p, 0.0, 1.0)
        self.scale, self.ratio = _box_args("RandomErasing", scale, ratio)
        self.value = check_real("RandomErasing", "value", value)
        check_bool("RandomErasing", "inplace", inplace)
        self.rng = _check_rng("RandomErasing", rng)

    def __call__(self, x):
        """The batch with the drawn rectangles erased."""
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
