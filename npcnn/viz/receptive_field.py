"""Receptive fields: which input pixels a unit of a layer can see, computed from the layer stack.

Going up through a layer with kernel k, stride s, dilation d and padding p (per axis), with
k_eff = d (k - 1) + 1 the dilated kernel's extent, a unit's receptive field (size r, distance j
between neighbouring units in input pixels, and the input row ``start`` where unit 0's field
begins) becomes

    r_out     = r_in + (k_eff - 1) j_in
    j_out     = j_in s
    start_out = start_in - p j_in

starting from r = 1, j = 1, start = 0 at the input. Element-wise layers (activations, batch
norm, dropout) change nothing. Unit (i, j) of the layer then sees input rows
[start + i jump, start + i jump + size) (clipped to the image; padding makes ``start`` negative).
"""

from dataclasses import dataclass

import numpy as np

from .. import backend
from ..functional.geometry import pair as _pair
from ..nn import activation, container, dropout, norm
from ..nn.conv import Conv2d
from ..nn.pooling import AvgPool2d, LPPool2d, MaxPool2d
from ._common import find_layer, layer_activations

_POINTWISE = (activation.ReLU, activation.LeakyReLU, activation.Sigmoid, activation.Tanh, activation.ELU,
              activation.GELU, norm.BatchNorm2d, norm.LocalResponseNorm, dropout.Dropout, dropout.Dropout2d,
              container.Identity)


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's units, per axis (rows, columns)."""

    size: tuple   # (rows, columns) of input pixels one unit sees
    jump: tuple   # input pixels between neighbouring units (the product of the strides)
    start: tuple  # input coordinate of the first row/column of unit (0, 0)'s field

    def window(self, i, j):
        """(top, left, bottom, right) of unit (i, j)'s field, bottom/right exclusive, unclipped."""
        top, left = self.start[0] + i * self.jump[0], self.start[1] + j * self.jump[1]
        return top, left, top + self.size[0], left + self.size[1]


def layer_geometry(module):
    """(kernel, stride, dilation, padding-before) per axis of a spatial layer, or None for an
    element-wise one; other layers are an error."""
    if isinstance(module, Conv2d):
        return module.kernel_size, module.stride, module.dilation, tuple(p[0] for p in module._pads)
    if isinstance(module, MaxPool2d):
        return (_pair(module.kernel_size), _pair(module.stride), _pair(module.dilation), _pair(module.padding))
    if isinstance(module, AvgPool2d):
        return _pair(module.kernel_size), _pair(module.stride), (1, 1), _pair(module.padding)
    if isinstance(module, LPPool2d):
        return _pair(module.kernel_size), _pair(module.stride), (1, 1), (0, 0)
    if isinstance(module, _POINTWISE):
        return None
    raise ValueError(f"receptive_field: cannot follow a {type(module).__name__} layer (only Conv2d, pooling "
                     "and element-wise layers in a chain have a local receptive field)")


def _leaves(model):
    """Modules without children, in registration order (the order a chain runs them)."""
    return [(name, m) for name, m in model.named_modules() if not list(m.children())]


def receptive_field(model, layer):
    """The :class:`ReceptiveField` of the units of ``layer`` (a Module of ``model`` or its dotted
    name; a container stands for its last layer).

    The layers of ``model`` up to ``layer``, in registration order, must form a chain of Conv2d,
    pooling and element-wise layers (true of ``Sequential`` models and of LeNet/VGG-style bodies).
    """
    name, target = find_layer(model, layer)
    inside = {id(m) for m in target.modules()}
    size, jump, start = [1, 1], [1, 1], [0, 0]
    reached = False
    for _, module in _leaves(model):
        if reached and id(module) not in inside:
            break
        reached = reached or id(module) in inside
        geometry = layer_geometry(module)
        if geometry is None:
            continue
        for a, (k, s, d, p) in enumerate(zip(*geometry)):
            size[a] += (d * (k - 1)) * jump[a]
            start[a] -= p * jump[a]
            jump[a] *= s
    return ReceptiveField(tuple(size), tuple(jump), tuple(start))


@dataclass
class ActivatingPatches:
    """The result of :func:`max_activating_patches`, best first."""

    patches: object    # (k, C, size_h, size_w) input patches (outside the image: ``fill``)
    values: object     # (k,) the activations
    indices: object    # (k,) which images
    positions: object  # (k, 2) the unit's (row, column) in the layer's output
    field: object      # the layer's ReceptiveField (None for a fully connected layer)


def cut_patch(image, field, i, j, fill=0.0):
    """The part of ``image`` (C, H, W) under unit (i, j)'s receptive field, a (C, size_h, size_w)
    array; where the field hangs over the image's border (padding) it holds ``fill``."""
    c, h, w = image.shape
    top, left, bottom, right = field.window(i, j)
    patch = np.full((c, bottom - top, right - left), fill, dtype=image.dtype)
    t, l, b, r = max(top, 0), max(left, 0), min(bottom, h), min(right, w)
    if b > t and r > l:
        patch[:, t - top:b - top, l - left:r - left] = image[:, t:b, l:r]
    return patch


def max_activating_patches(model, images, layer, channel, k=9, batch_size=256, fill=0.0):
    """The ``k`` input patches that excite channel ``channel`` of ``layer`` most.

    The images (N, C, H, W) run through the model (eval mode, no caches); for each image the
    channel's strongest unit is found, the ``k`` images with the strongest ones are kept (one
    patch per image, so a single image cannot fill the list), and each patch is cut at that
    unit's receptive field. For a fully connected layer the "patch" is the whole image.

    Args:
        model (Module): the network (its layers up to ``layer`` must form a chain, see
            :func:`receptive_field`).
        images (array): (N, C, H, W) candidates.
        layer (Module or str): the layer, or its dotted name.
        channel (int): which output channel (unit, for a Linear layer) of ``layer``.
        k (int, default 9): patches returned (fewer when N < k).
        batch_size (int, default 256): images per forward pass.
        fill (float, default 0.0): the value of a patch where the field hangs over the border.

    Returns:
        ActivatingPatches, best first.
    """
    images_np = np.asarray(backend.to_numpy(images))
    acts = layer_activations(model, images_np, layer, batch_size=batch_size)
    if not 0 <= channel < acts.shape[1]:
        raise ValueError(f"max_activating_patches: channel {channel} out of range for {acts.shape[1]} channels")
    a = acts[:, channel].reshape(len(acts), -1)          # (N, units)
    best_unit = a.argmax(axis=1)
    best_value = a[np.arange(len(a)), best_unit]
    order = np.argsort(-best_value, kind="stable")[:k]
    if acts.ndim == 2:
        positions = np.zeros((len(order), 2), dtype=np.int64)
        return ActivatingPatches(images_np[order], best_value[order], order, positions, None)
    width = acts.shape[3]
    positions = np.stack([best_unit[order] // width, best_unit[order] % width], axis=1)
    field = receptive_field(model, layer)
    patches = np.stack([cut_patch(images_np[n], field, int(i), int(j), fill) for n, (i, j) in zip(order, positions)])
    return ActivatingPatches(patches, best_value[order], order, positions, field)


def plot_max_activating_patches(model, images, layer, channels, path, k=8, fill=0.0):
    """One row per channel in ``channels``: its ``k`` top patches. Returns ``{channel: ActivatingPatches}``."""
    from .plots import plot_images

    results = {c: max_activating_patches(model, images, layer, c, k=k, fill=fill) for c in channels}
    shown, titles = [], []
    for c, res in results.items():
        for n in range(k):
            shown.append(res.patches[n] if n < len(res.patches) else np.zeros_like(res.patches[0]))
            titles.append(f"ch {c}: {res.values[n]:.2f}" if n < len(res.values) else "")
    plot_images(shown, path, titles=titles, ncols=k)
    return results
