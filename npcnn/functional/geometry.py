"""Convolution and pooling geometry: sizes, padding forms and the checks, in one place.

Every layer and kernel that slides a window over an axis uses these helpers, so a formula or a
check is written once. Along one axis of size ``n`` with kernel ``k``, stride ``s``, padding
``before + after`` and dilation ``d`` (dilated extent ``d (k - 1) + 1``):

    convolution       out = floor((n + before + after - d (k - 1) - 1) / s) + 1
    transposed conv   out = s (n - 1) - before - after + d (k - 1) + output_padding + 1
    pooling           out = floor or ceil((n + 2 p - d (k - 1) - 1) / s) + 1, with ceil_mode's
                      last window dropped when it would start in the right padding (PyTorch)
    'same' padding    d (k - 1) in total, the odd one after (PyTorch's rule; stride 1 only)

Errors name the layer (the ``layer`` argument, e.g. "Conv2d"), the argument and what is allowed:
a TypeError for a value of the wrong type (``stride=2.5``), a ValueError for one out of range.
"""

import numbers
from collections import namedtuple

# ----------------------------------------------------------------------------- argument forms


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _where(layer):
    return f"{layer}: " if layer else ""


def as_tuple(value, n, layer=None, name="argument"):
    """An int or a sequence of ``n`` ints as an ``n``-tuple of Python ints.

    ``layer`` and ``name`` go in the error: a TypeError for something that is not an int or a
    sequence of ints (a float such as 2.5, a string, None), a ValueError for a wrong length."""
    if _is_int(value):
        return (int(value),) * n
    is_ints = isinstance(value, (tuple, list)) and all(_is_int(v) for v in value)
    if is_ints and len(value) == n:
        return tuple(int(v) for v in value)
    what = "an int" if n == 1 else f"an int or a tuple of {n} ints"
    raise (ValueError if is_ints else TypeError)(f"{_where(layer)}{name} must be {what}, got {value!r}")


def pair(value, layer=None, name="size"):
    """``3 -> (3, 3)``, ``(2, 3) -> (2, 3)``; anything else is an error naming ``layer`` and ``name``."""
    return as_tuple(value, 2, layer, name)


def padding_pairs(padding, n=2, layer=None):
    """int, n ints, or n (before, after) pairs -> one (before, after) pair per axis.

    E.g. for images: 1 -> ((1, 1), (1, 1)), (1, 2) -> ((1, 1), (2, 2)),
    ((0, 1), (2, 3)) -> itself (top, bottom, left, right). Entries must be ints >= 0."""
    if _is_int(padding):
        pads = ((int(padding), int(padding)),) * n
    elif isinstance(padding, (tuple, list)) and len(padding) == n:
        pads = tuple((int(p), int(p)) if _is_int(p) else tuple(as_tuple(p, 2, layer, "padding")) for p in padding)
    else:
        error = ValueError if isinstance(padding, (tuple, list)) else TypeError
        raise error(f"{_where(layer)}padding must be an int, {n} ints or {n} (before, after) pairs, got {padding!r}")
    check_at_least(layer, "padding", sum(pads, ()), 0)
    return pads


def check_at_least(layer, name, values, minimum):
    """Every entry of the int tuple ``values`` must be >= ``minimum``; the error names both."""
    if min(values) < minimum:
        shown = values[0] if len(set(values)) == 1 else values
        raise ValueError(f"{_where(layer)}{name} must be >= {minimum}, got {shown}")


def check_channels(layer, in_channels, out_channels, groups):
    """in_channels, out_channels >= 1 and groups >= 1 dividing both (the convolution layers' rule);
    a TypeError for a non-integer, a ValueError for a value out of range."""
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels), ("groups", groups)):
        if not _is_int(value):
            raise TypeError(f"{_where(layer)}{name} must be an int >= 1, got {value!r}")
        if value < 1:
            raise ValueError(f"{_where(layer)}{name} must be an int >= 1, got {value!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(f"{_where(layer)}in_channels ({in_channels}) and out_channels ({out_channels}) "
                         f"must both be divisible by groups ({groups})")


def same_padding(kernel_size, dilation):
    """'same' padding, one (before, after) pair per axis: d (k - 1) in total, the odd one after."""
    totals = [d * (k - 1) for k, d in zip(kernel_size, dilation)]
    return tuple((t // 2, t - t // 2) for t in totals)


def resolve_padding(padding, kernel_size, stride, dilation, layer=None):
    """A convolution's padding argument ('valid', 'same', int, tuple of ints or of pairs) -> pairs.

    'same' needs stride 1 (as PyTorch). ``kernel_size``, ``stride``, ``dilation`` are tuples."""
    n = len(kernel_size)
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * n
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{_where(layer)}padding='same' needs stride 1, got stride {tuple(stride)}")
            return same_padding(kernel_size, dilation)
        raise ValueError(f"{_where(layer)}padding must be an int, a tuple, 'same' or 'valid', got {padding!r}")
    return padding_pairs(padding, n, layer)


# ----------------------------------------------------------------------------- output sizes


def _before_after(padding):
    return (padding, padding) if _is_int(padding) else tuple(padding)


def conv_output_size(in_size, kernel_size, stride=1, padding=0, dilation=1):
    """Output length of one convolution axis: floor((in + pad - d*(k - 1) - 1) / s) + 1.

    ``padding`` is an int (both sides) or a (before, after) pair."""
    before, after = _before_after(padding)
    return (in_size + before + after - dilation * (kernel_size - 1) - 1) // stride + 1


def conv_transpose_output_size(in_size, kernel_size, stride=1, padding=0, output_padding=0, dilation=1):
    """Output length of one transposed-convolution axis: s(i-1) - pad_total + d(k-1) + output_padding + 1."""
    before, after = _before_after(padding)
    return stride * (in_size - 1) - before - after + dilation * (kernel_size - 1) + output_padding + 1


def pool_output_size(size, kernel, stride, padding=0, dilation=1, ceil_mode=False):
    """Output length of one pooled axis, PyTorch's ``pooling_output_shape`` (``padding`` on both sides)."""
    span = size + 2 * padding - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding: PyTorch drops it
    return out


def read_extent(out, kernel, stride, dilation):
    """Length of the (padded) axis that ``out`` windows actually read: s (out - 1) + d (k - 1) + 1."""
    return stride * (out - 1) + dilation * (kernel - 1) + 1


# ----------------------------------------------------------------------------- the validators


Geometry = namedtuple("Geometry", "N C H W O kh kw Ho Wo pads stride dilation groups")
Geometry.__doc__ = """A checked 2-D convolution: input (N, C, H, W), weight (O, C/groups, kh, kw), output
(N, O, Ho, Wo), pads ((top, bottom), (left, right)), stride, dilation (pairs) and groups."""


def conv_geometry(x_shape, w_shape, stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1,
                  out_size=None, layer="conv2d"):
    """Check a 2-D convolution's shapes and options and return its :class:`Geometry`.

    ``padding`` takes any form :func:`padding_pairs` takes. ``out_size`` (Ho, Wo) may ask for
    fewer outputs than fit (the transposed convolution needs this when output_padding >= stride);
    by default every window that fits is computed. ``layer`` names the caller in errors."""
    if len(x_shape) != 4:
        raise ValueError(f"{layer}: expected input of shape (N, C, H, W), got shape {tuple(x_shape)}")
    if len(w_shape) != 4:
        raise ValueError(f"{layer}: expected weight of shape (O, C/groups, kh, kw), got shape {tuple(w_shape)}")
    stride, dilation = pair(stride, layer, "stride"), pair(dilation, layer, "dilation")
    pads = padding_pairs(padding, 2, layer)
    check_at_least(layer, "stride", stride, 1)
    check_at_least(layer, "dilation", dilation, 1)
    N, C, H, W = (int(s) for s in x_shape)
    O, Cg, kh, kw = (int(s) for s in w_shape)
    if not _is_int(groups) or groups < 1 or C % groups or O % groups:
        raise ValueError(f"{layer}: in_channels ({C}) and out_channels ({O}) must both be divisible by "
                         f"groups ({groups})")
    if Cg * groups != C:
        raise ValueError(f"{layer}: weight expects {Cg * groups} input channels ({Cg} per group x {groups} groups), "
                         f"got input of shape {tuple(x_shape)}")
    Hp, Wp = H + sum(pads[0]), W + sum(pads[1])
    ekh, ekw = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if ekh > Hp or ekw > Wp or min(kh, kw) < 1:
        raise ValueError(f"{layer}: kernel of (dilated) size ({ekh}, {ekw}) is larger than the padded input "
                         f"({Hp}, {Wp}) (input {H}x{W}, padding {pads})")
    Ho, Wo = conv_output_size(H, kh, stride[0], pads[0], dilation[0]), conv_output_size(W, kw, stride[1], pads[1],
                                                                                        dilation[1])
    if out_size is not None:
        if out_size[0] > Ho or out_size[1] > Wo:
            raise ValueError(f"{layer}: output size {tuple(out_size)} is larger than the {Ho}x{Wo} windows that fit")
        Ho, Wo = int(out_size[0]), int(out_size[1])
    return Geometry(N, C, H, W, O, kh, kw, Ho, Wo, pads, stride, dilation, groups)


def check_pool_args(layer, kernel, stride, padding, dilation):
    """Pooling hyperparameters (tuples, one entry per axis): kernel, stride, dilation >= 1 and
    0 <= padding <= kernel // 2 (PyTorch's rule)."""
    check_at_least(layer, "kernel_size", kernel, 1)
    check_at_least(layer, "stride", stride, 1)
    check_at_least(layer, "dilation", dilation, 1)
    check_at_least(layer, "padding", padding, 0)
    if any(p > k // 2 for p, k in zip(padding, kernel)):
        shown = (padding, kernel) if len(kernel) > 1 else (padding[0], kernel[0])
        raise ValueError(f"{layer}: padding {shown[0]} must be at most half the kernel size {shown[1]}")


def pool_geometry(layer, shape, kernel, stride, padding, dilation, ceil_mode):
    """Check a 2-D pooling configuration (pairs) on an input of ``shape`` against PyTorch's rules;
    return (out_h, out_w)."""
    check_pool_args(layer, kernel, stride, padding, dilation)
    H, W = shape[-2:]
    oh = pool_output_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode)
    ow = pool_output_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(f"{layer}: input of spatial size {(H, W)} with padding {padding} is smaller than the "
                         f"(dilated) kernel {kernel} (dilation {dilation}); output size would be {(oh, ow)}")
    return oh, ow


__all__ = ["Geometry", "as_tuple", "check_at_least", "check_channels", "check_pool_args", "conv_geometry",
           "conv_output_size", "conv_transpose_output_size", "padding_pairs", "pair", "pool_geometry",
           "pool_output_size", "read_extent", "resolve_padding", "same_padding"]
