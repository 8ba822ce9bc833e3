"""Activation kernels: ``<name>_forward(x, ...) -> (out, cache)``, ``<name>_backward(dout, cache) -> dx``.

Each backward is the chain rule through an element-wise function, dx = dout * f'(x), with f'
written in terms of whatever the forward already computed (the output, or a mask).
Constants are Python floats so float32 stays float32.
"""

import math

from ..backend import get_array_module, special_module
from ..threads import batched, each_batch_chunk


def relu_forward(x):
    """out = max(x, 0); the cache is the boolean mask x > 0 (one byte per element).

    Computed chunk by chunk of the batch on all cores (``npcnn.threads.each_batch_chunk``): each
    chunk of x is read once, while in cache, for both the output and the mask."""
    xp = get_array_module(x)
    out, mask = xp.empty_like(x), xp.empty(x.shape, dtype=bool)

    def chunk(k, rows):
        xp.maximum(x[rows], 0, out=out[rows])
        xp.greater(x[rows], 0, out=mask[rows])

    each_batch_chunk(chunk, x)
    return out, mask


def relu_backward(dout, mask):
    """dx = dout where x > 0, else 0 (the derivative at exactly 0 is taken as 0, as PyTorch).

    A product with the mask (branch-free, on all cores). An inf in dout where x <= 0 gives
    NaN there (inf * 0; PyTorch gives 0): a non-finite gradient stays non-finite either way,
    and checking for one would cost another pass."""
    xp = get_array_module(dout)
    return batched(xp.multiply, dout, mask, out=xp.empty(dout.shape, dtype=dout.dtype))


def relu6_forward(x):
    """out = min(max(x, 0), 6); the cache is the mask 0 < x < 6 where the slope is 1."""
    return x.clip(0.0, 6.0), (x > 0) & (x < 6)


def relu6_backward(dout, mask):
    """dx = dout where 0 < x < 6, else 0."""
    return dout * mask


def leaky_relu_forward(x, negative_slope=0.01):
    """out = x for x > 0, negative_slope * x otherwise; the cache is (mask x > 0, slope)."""
    mask = x > 0
    xp = get_array_module(x)
    return xp.where(mask, x, x * negative_slope), (mask, negative_slope)


def leaky_relu_backward(dout, cache):
    """dx = dout for x > 0, negative_slope * dout otherwise."""
    mask, negative_slope = cache
    xp = get_array_module(dout)
    return xp.where(mask, dout, dout * negative_slope)


def sigmoid_forward(x):
    """out = 1 / (1 + e^-x), computed as (1 + tanh(x/2)) / 2, which never overflows."""
    xp = get_array_module(x)
    out = 0.5 * (1.0 + xp.tanh(0.5 * x))
    return out, out


def sigmoid_backward(dout, out):
    """dx = dout * s (1 - s)."""
    return dout * out * (1.0 - out)


def tanh_forward(x):
    """out = tanh(x); the cache is the output (its derivative is 1 - out^2)."""
    xp = get_array_module(x)
    out = xp.tanh(x)
    return out, out


def tanh_backward(dout, out):
    """dx = dout * (1 - tanh^2)."""
    return dout * (1.0 - out * out)


def elu_forward(x, alpha=1.0):
    """out = x for x > 0, alpha (e^x - 1) otherwise (expm1 of min(x, 0) so large x never overflows)."""
    xp = get_array_module(x)
    mask = x > 0
    out = xp.where(mask, x, alpha * xp.expm1(xp.minimum(x, 0)))
    return out, (mask, out, alpha)


def elu_backward(dout, cache):
    """dx = dout for x > 0, dout * (out + alpha) otherwise (since d/dx alpha(e^x - 1) = out + alpha)."""
    mask, out, alpha = cache
    xp = get_array_module(dout)
    return xp.where(mask, dout, dout * (out + alpha))


_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def gelu_forward(x, approximate="none"):
    """out = x Phi(x) with Phi the standard normal CDF; ``approximate="tanh"`` uses
    Phi(x) ~ (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2."""
    xp = get_array_module(x)
    if approximate == "tanh":
        t = xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1.0 + t), (x, t, approximate)
    cdf = 0.5 * (1.0 + special_module(x).erf(x / _SQRT_2))
    return x * cdf, (x, cdf, approximate)


def gelu_backward(dout, cache):
    """Exact: dx = dout (Phi(x) + x phi(x));  tanh form: the derivative of its formula."""
    x, value, approximate = cache
    xp = get_array_module(x)
    if approximate == "tanh":
        t = value
        inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
        return dout * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner)
    pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)
    return dout * (value + x * pdf)


def silu_forward(x):
    """out = x s(x) with s the logistic sigmoid (SiLU, "swish"); the cache is (x, s)."""
    s, _ = sigmoid_forward(x)
    return x * s, (x, s)


def silu_backward(dout, cache):
    """dx = dout (s + x s (1 - s)) = dout s (1 + x (1 - s))."""
    x, s = cache
    return dout * (s * (1.0 + x * (1.0 - s)))


def hardswish_forward(x):
    """out = x relu6(x + 3) / 6 (MobileNetV3): 0 for x <= -3, x for x >= 3, x (x + 3) / 6 between."""
    return x * (x + 3.0).clip(0.0, 6.0) / 6.0, x


def hardswish_backward(dout, x):
    """dx = 0 for x <= -3, dout (x / 3 + 1/2) for -3 < x < 3, dout for x >= 3 (at the kinks the
    one-sided derivative PyTorch uses: that of the outer pieces)."""
    xp = get_array_module(x)
    slope = xp.where(x <= -3.0, 0.0, xp.where(x < 3.0, x / 3.0 + 0.5, 1.0)).astype(x.dtype, copy=False)
    return dout * slope


def softmax_forward(x, dim=-1):
    """out = e^(x - max) / sum e^(x - max) along ``dim`` (shifted by the max: no overflow)."""
    xp = get_array_module(x)
    e = xp.exp(x - x.max(axis=dim, keepdims=True))
    out = e / e.sum(axis=dim, keepdims=True)
    return out, (out, dim)


def softmax_backward(dout, cache):
    """dx = s * (dout - sum(dout * s)) along ``dim`` (the Jacobian diag(s) - s s^T applied to dout)."""
    out, dim = cache
    return out * (dout - (dout * out).sum(axis=dim, keepdims=True))


def log_softmax_forward(x, dim=-1):
    """out = x - max - log(sum e^(x - max)) (log-sum-exp, stable for any logits)."""
    xp = get_array_module(x)
    shifted = x - x.max(axis=dim, keepdims=True)
    out = shifted - xp.log(xp.exp(shifted).sum(axis=dim, keepdims=True))
    return out, (out, dim)


def log_softmax_backward(dout, cache):
    """dx = dout - softmax(x) * sum(dout) along ``dim``."""
    out, dim = cache
    xp = get_array_module(out)
    return dout - xp.exp(out) * dout.sum(axis=dim, keepdims=True)


def activation_naive(name, x):
    """Loop twin: applies the scalar formula of ``name`` element by element (tests only)."""
    flat = x.reshape(-1)
    out = flat.copy()
    for i in range(flat.size):
        v = float(flat[i])
        out[i] = {
            "relu": lambda: max(v, 0.0),
            "sigmoid": lambda: 1.0 / (1.0 + math.exp(-v)) if v >= 0 else math.exp(v) / (1.0 + math.exp(v)),
            "tanh": lambda: math.tanh(v),
            "elu": lambda: v if v > 0 else math.expm1(v),
            "gelu": lambda: 0.5 * v * (1.0 + math.erf(v / math.sqrt(2.0))),
            "leaky_relu": lambda: v if v > 0 else 0.01 * v,
            "silu": lambda: v / (1.0 + math.exp(-v)) if v >= 0 else v * math.exp(v) / (1.0 + math.exp(v)),
            "hardswish": lambda: 0.0 if v <= -3 else (v if v >= 3 else v * (v + 3.0) / 6.0),
        }[name]()
    return out.reshape(x.shape)
