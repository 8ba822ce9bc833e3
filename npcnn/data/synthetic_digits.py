"""Synthetic handwritten-looking digits: printed digits from matplotlib's fonts, then distorted.

The lectures' second way to get more data is to **synthesize** it. :func:`synthetic_digits` builds
an MNIST-like training set without a single handwritten sample:

1. every digit 0-9 is rendered with every font file matplotlib ships that has all ten digits
   (DejaVu Sans / Serif / Mono in their weights and slants, STIX, Computer Modern: 22 fonts with
   matplotlib 3.11), through matplotlib's FreeType wrapper (``matplotlib.ft2font``), into a
   grayscale bitmap;
2. the stroke is thickened by a random amount (by default 0 or 1 pixel of dilation at twice the
   output scale);
3. each sample gets a random affine map (rotation, shear, anisotropic scale) about the glyph's
   centre of mass, which lands near the image centre as in MNIST (the digit fits a 20 x 20 box
   of the 28 x 28 image), and a random **elastic distortion** (Simard et al. 2003): a random
   displacement field, smoothed by a Gaussian of width ``elastic_sigma`` and scaled by up to
   ``elastic_alpha`` pixels;
4. the result is sampled bilinearly (from a slightly blurred glyph, against aliasing) into
   ``uint8`` pixels 0..255, white digit on black, like ``npcnn.data.mnist``.

Everything is seeded: the same arguments give the same arrays. matplotlib is needed only here
(``pip install -e ".[plot]"``).
"""

import math
import os

import numpy as np

SIZE = 28                 # output images are SIZE x SIZE, like MNIST
_BOX = 20.0               # the longer side of a glyph is scaled to about this many output pixels
_UP = 2                   # glyphs are rasterized at _UP x the output scale
_CANVAS = 72              # side of the square canvas each glyph is drawn on (at the _UP scale)
_CHUNK = 2048            # samples drawn at once
_SKIP_FONTS = {"LastResortHE-Regular.ttf", "cmex10.ttf", "cmsy10.ttf"}   # boxes and symbol encodings


def _ft2font():
    try:
        import matplotlib
        from matplotlib import ft2font
    except ImportError as err:
        raise ImportError("npcnn.data.synthetic_digits renders digits with matplotlib's fonts; "
                          "install matplotlib: pip install -e \".[plot]\" (or pip install matplotlib)") from err
    return matplotlib, ft2font


def available_fonts():
    """Paths of the font files shipped with matplotlib that have glyphs for all ten digits."""
    matplotlib, ft2font = _ft2font()
    folder = os.path.join(matplotlib.get_data_path(), "fonts", "ttf")
    fonts = []
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".ttf") or name in _SKIP_FONTS:
            continue
        font = ft2font.FT2Font(os.path.join(folder, name))
        if all(font.get_char_index(ord(d)) for d in "0123456789"):
            fonts.append(os.path.join(folder, name))
    return fonts


def _render(font_path, digit, ft2font):
    """The glyph of ``digit`` as a float bitmap in [0, 1], cropped to its ink."""
    font = ft2font.FT2Font(font_path)
    font.set_size(_BOX * _UP * 1.1, 72)      # points at 72 dpi = pixels: a digit's height is ~0.73 em
    font.set_text(str(digit), 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    image = np.asarray(font.get_image(), dtype=np.float32) / 255.0
    rows, cols = np.nonzero(image > 0.05)
    if len(rows) == 0:
        raise ValueError(f"synthetic_digits: font {os.path.basename(font_path)} drew nothing for {digit}")
    return image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]


def _dilate(image, radius):
    """Grayscale dilation by a (2 radius + 1)-wide square (max over shifted copies): a thicker stroke."""
    if radius == 0:
        return image
    padded = np.pad(image, radius)
    h, w = image.shape
    out = image.copy()
    for dy in range(2 * radius + 1):
        for dx in range(2 * radius + 1):
            out = np.maximum(out, padded[dy:dy + h, dx:dx + w])
    return out


def _blur_matrix(n, sigma):
    """(n, n) matrix of a normalized 1-D Gaussian blur with zero padding: ``G @ a`` blurs a's rows."""
    i = np.arange(n)
    g = np.exp(-0.5 * ((i[:, None] - i[None, :]) / sigma) ** 2)
    radius = int(math.ceil(4 * sigma))
    g[np.abs(i[:, None] - i[None, :]) > radius] = 0.0
    kernel_mass = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).sum()
    return g / kernel_mass


def _glyph_bank(fonts, thickness, ft2font):
    """(canvases (F * 10 * T, C, C) float32, centres of mass (.., 2), longer sides (..,), digits (..,))."""
    blur = _blur_matrix(_CANVAS, 0.6 * _UP / 2)     # a slight blur before downsampling by _UP
    canvases, centres, sides, digits = [], [], [], []
    for path in fonts:
        for digit in range(10):
            glyph = _render(path, digit, ft2font)
            for radius in thickness:
                g = _dilate(np.pad(glyph, radius), radius)
                h, w = g.shape
                if max(h, w) > _CANVAS - 4:
                    raise ValueError(f"synthetic_digits: glyph {digit} of {os.path.basename(path)} is too large")
                canvas = np.zeros((_CANVAS, _CANVAS), np.float32)
                top, left = (_CANVAS - h) // 2, (_CANVAS - w) // 2
                canvas[top:top + h, left:left + w] = g
                canvas = blur @ canvas @ blur.T
                mass = canvas.sum()
                ys, xs = np.mgrid[0:_CANVAS, 0:_CANVAS]
                canvases.append(canvas.astype(np.float32))
                centres.append(((ys * canvas).sum() / mass, (xs * canvas).sum() / mass))
                sides.append(float(max(h, w)))
                digits.append(digit)
    return np.stack(canvases), np.array(centres), np.array(sides), np.array(digits, dtype=np.int64)


def _bilinear_gather(canvases, which, sy, sx):
    """Sample canvas ``which[i]`` at (sy[i], sx[i]) (each (n, H, W)), zero outside."""
    c = canvases.shape[-1]
    y0, x0 = np.floor(sy).astype(np.int64), np.floor(sx).astype(np.int64)
    fy, fx = (sy - y0).astype(np.float32), (sx - x0).astype(np.float32)
    flat = canvases.reshape(-1)
    base = which[:, None, None] * (c * c)
    out = np.zeros(sy.shape, np.float32)
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy < c) & (xx >= 0) & (xx < c)
            values = flat[base + np.clip(yy, 0, c - 1) * c + np.clip(xx, 0, c - 1)]
            out += np.where(inside, values, 0.0) * wy * wx
    return out


def _check(n, rotation, shear, scale, shift, elastic_alpha, elastic_sigma, thickness):
    if int(n) != n or n < 0:
        raise ValueError(f"synthetic_digits: n must be a non-negative integer, got {n!r}")
    for name, value in (("rotation", rotation), ("shear", shear), ("shift", shift),
                        ("elastic_alpha", elastic_alpha)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"synthetic_digits: {name} must be a finite number >= 0, got {value!r}")
    if not (math.isfinite(elastic_sigma) and elastic_sigma > 0):
        raise ValueError(f"synthetic_digits: elastic_sigma must be > 0, got {elastic_sigma!r}")
    lo, hi = scale
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"synthetic_digits: scale must be a range (lo, hi) with 0 < lo <= hi, got {scale!r}")
    if not thickness or any(int(t) != t or t < 0 or t > 4 for t in thickness):
        raise ValueError(f"synthetic_digits: thickness must list dilation radii among 0..4, got {thickness!r}")


def synthetic_digits(n, seed=0, rotation=15.0, shear=0.3, scale=(0.8, 1.1), shift=1.5, elastic_alpha=2.5,
                     elastic_sigma=4.0, thickness=(0, 1), fonts=None):
    """``n`` synthetic digit images (n, 28, 28) uint8 (0..255, white on black) and labels (n,) int64.

    Labels are balanced (shuffled round-robin over 0-9); each sample picks a font and a stroke
    thickness uniformly at random. Arguments:

        seed: the random seed (the same arguments always give the same arrays);
        rotation: maximum rotation in degrees (uniform in [-rotation, rotation]);
        shear: maximum horizontal shear factor (uniform in [-shear, shear]; 0.3 is about 17 degrees);
        scale: range of the random scale factors, drawn separately for height and width, applied
            after the glyph's longer side is fitted to 20 pixels;
        shift: maximum offset in pixels of the centre of mass from the image centre;
        elastic_alpha: maximum size in pixels of the elastic displacement (each sample draws its
            own in [0, elastic_alpha]); 0 turns elastic distortion off;
        elastic_sigma: width in pixels of the Gaussian that smooths the random displacement field
            (small: a jittery, noisy stroke; large: a smooth bend);
        thickness: the stroke dilation radii to choose from, in pixels at twice the output scale;
        fonts: font file paths to use (default: :func:`available_fonts`).

    Raises ImportError with an installation hint when matplotlib is missing.
    """
    _check(n, rotation, shear, scale, shift, elastic_alpha, elastic_sigma, thickness)
    _, ft2font = _ft2font()
    fonts = list(available_fonts() if fonts is None else fonts)
    if not fonts:
        raise ValueError("synthetic_digits: no fonts to render the digits with")
    n = int(n)
    thickness = tuple(int(t) for t in thickness)
    canvases, centres, sides, bank_digits = _glyph_bank(fonts, thickness, ft2font)
    gen = np.random.default_rng(seed)
    labels = gen.permutation(np.arange(n) % 10).astype(np.int64)
    font_pick = gen.integers(0, len(fonts), n)
    thick_pick = gen.integers(0, len(thickness), n)
    which = (font_pick * 10 + labels) * len(thickness) + thick_pick       # the bank's order: font, digit, thickness
    assert np.array_equal(bank_digits[which], labels)

    angle = np.radians(gen.uniform(-rotation, rotation, n))
    shear_k = gen.uniform(-shear, shear, n)
    sy_, sx_ = (gen.uniform(scale[0], scale[1], n) for _ in range(2))
    fit = _BOX * _UP / sides                                              # canvas px -> output px is fit / _UP
    target = SIZE / 2 - 0.5 + gen.uniform(-shift, shift, (n, 2))          # where the centre of mass goes
    cos, sin = np.cos(angle), np.sin(angle)
    # A = (fit/_UP) * R(angle) @ Shear(k) @ diag(sy, sx) maps canvas offsets (y, x) to output offsets.
    a = np.empty((n, 2, 2))
    a[:, 0, 0], a[:, 0, 1] = cos * sy_, (cos * shear_k * sx_ - sin * sx_)
    a[:, 1, 0], a[:, 1, 1] = sin * sy_, (sin * shear_k * sx_ + cos * sx_)
    a *= (fit[which] / _UP)[:, None, None]
    a_inv = np.linalg.inv(a)

    blur = _blur_matrix(SIZE, elastic_sigma)
    images = np.empty((n, SIZE, SIZE), np.uint8)
    for lo in range(0, n, _CHUNK):                                         # bounded memory for large n
        part = slice(lo, min(n, lo + _CHUNK))
        field = gen.uniform(-1.0, 1.0, (part.stop - lo, 2, SIZE, SIZE)) if elastic_alpha > 0 else None
        images[part] = _sample(canvases, which[part], centres[which[part]], a_inv[part], target[part], field,
                               gen.uniform(0.0, elastic_alpha, part.stop - lo), blur)
    return images, labels


def _sample(canvases, which, centres, a_inv, target, field, alpha, blur):
    """Draw one chunk: output pixel p comes from canvas point centre + A^-1 (p + d(p) - target)."""
    grid = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)                     # (2, 28, 28): y, x
    offset = grid[None] - target[:, :, None, None]                         # (n, 2, 28, 28)
    if field is not None:
        field = blur @ field @ blur.T                                      # smooth the random field
        # Scale each field so that its largest displacement is alpha pixels.
        field /= np.sqrt((field ** 2).sum(axis=1, keepdims=True)).max(axis=(2, 3), keepdims=True) + 1e-12
        offset = offset + alpha[:, None, None, None] * field
    point = np.einsum("nij,njhw->nihw", a_inv, offset) + centres[:, :, None, None]
    images = _bilinear_gather(canvases, which, point[:, 0], point[:, 1])
    return np.clip(np.rint(images * 255.0), 0, 255).astype(np.uint8)
