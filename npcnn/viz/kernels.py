"""Fixed convolution kernels and what they do to an image, computed with ``Conv2d``.

Each kernel is applied to every channel separately (a depthwise convolution: ``groups = C``)
with "same" zero padding, so the output has the input's shape. Conv2d computes a
cross-correlation, out[y, x] = sum_ij k[i, j] img[y + i - r, x + j - r], which is why
``sobel_x`` (negative column on the left) responds positively to intensity increasing to the right.
"""

import numpy as np

from .. import backend
from ..grad_mode import no_grad

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "edge": [[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]],        # Laplacian: zero on flat regions
    "box_blur": [[1 / 9] * 3] * 3,                            # the mean of the 3 x 3 neighbourhood
    "gaussian_blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],         # identity + (identity - blur)
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],          # d/dx (vertical edges)
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],          # d/dy (horizontal edges)
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}


def get_kernel(kernel):
    """A 2-D float64 kernel from a name in ``KERNELS`` or an array of odd height and width."""
    if isinstance(kernel, str):
        if kernel not in KERNELS:
            raise ValueError(f"apply_kernel: unknown kernel {kernel!r}; expected one of {sorted(KERNELS)} or an array")
        kernel = KERNELS[kernel]
    k = np.asarray(backend.to_numpy(kernel), dtype=np.float64)
    if k.ndim != 2 or k.shape[0] % 2 == 0 or k.shape[1] % 2 == 0:
        raise ValueError(f"apply_kernel: expected a 2-D kernel of odd height and width, got shape {k.shape}")
    return k


def apply_kernel(image, kernel):
    """Convolve ``image`` with ``kernel`` (a name in ``KERNELS`` or a 2-D array), channel by channel.

    image: (H, W), (C, H, W) or (N, C, H, W) floats; returns an array of the same shape and dtype.
    The work is done by a depthwise ``npcnn.nn.Conv2d`` whose weight is set to the kernel.
    """
    from ..nn.conv import Conv2d  # the conv layer; imported here so npcnn.viz loads without it

    k = get_kernel(kernel)
    x = backend.asarray(image)
    if np.dtype(x.dtype).kind != "f":
        raise TypeError(f"apply_kernel: expected a float image, got dtype {x.dtype}")
    shape = x.shape
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    elif x.ndim != 4:
        raise ValueError(f"apply_kernel: expected an image (H, W), (C, H, W) or (N, C, H, W), got shape {shape}")
    c = x.shape[1]
    with backend.default_dtype(x.dtype):
        conv = Conv2d(c, c, k.shape, padding=(k.shape[0] // 2, k.shape[1] // 2), groups=c, bias=False)
    conv.weight.data = backend.asarray(np.broadcast_to(k, (c, 1) + k.shape), dtype=x.dtype).copy()
    with no_grad():
        out = conv(x)
    return out.reshape(shape)


def apply_kernels(image, kernels=("identity", "edge", "box_blur", "sharpen", "sobel_x", "sobel_y")):
    """``{name: apply_kernel(image, name)}`` for several kernels (names or ``(name, array)`` pairs)."""
    results = {}
    for item in kernels:
        name, kernel = (item, item) if isinstance(item, str) else item
        results[name] = apply_kernel(image, kernel)
    return results


def plot_kernels(image, path, kernels=("identity", "edge", "box_blur", "sharpen", "sobel_x", "sobel_y")):
    """Save a PNG with ``image`` (H, W) or (1, H, W) filtered by each kernel; returns the results dict."""
    from .plots import plot_images

    results = apply_kernels(image, kernels)
    images = [backend.to_numpy(v).reshape(v.shape[-2:]) for v in results.values()]
    plot_images(images, path, titles=list(results), cmap="gray", normalize=True, ncols=len(images))
    return results
