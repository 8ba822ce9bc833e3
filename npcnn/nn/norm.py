"""Normalization layers: BatchNorm1d, BatchNorm2d, LayerNorm, GroupNorm, LocalResponseNorm."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np

from .. import backend
from ..functional.norm import (
    batch_norm_backward,
    batch_norm_eval_forward,
    batch_norm_train_forward,
    group_norm_backward,
    group_norm_forward,
    layer_norm_backward,
    layer_norm_forward,
    local_response_norm_backward,
    local_response_norm_forward,
)
from . import init
from .module import Module
from .parameter import Parameter
from .validation import check_float, check_int, check_ndim, check_number, check_size


class _BatchNorm(Module):
    """Shared body of BatchNorm1d and BatchNorm2d (they differ only in the accepted ranks).

    Arguments (PyTorch's): ``eps > 0`` is added to the variance; ``momentum`` in [0, 1] is the
    weight of each batch in the running averages (None: their cumulative mean);
    ``affine`` learns gamma (and beta unless ``bias=False``); ``track_running_stats`` keeps the
    running averages that evaluation uses (without them evaluation uses the batch's statistics).
    """

    _ndims: tuple[int, ...] = ()
    _layout = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1, affine: bool = True,
                 track_running_stats: bool = True, *, bias: bool = True) -> None:
        super().__init__()
        name = type(self).__name__
        self.num_features = check_int(name, "num_features", num_features)
        self.eps = check_number(name, "eps", eps, low=0.0, low_open=True)
        self.momentum = None if momentum is None else check_number(name, "momentum", momentum, 0.0, 1.0)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        xp, dtype = backend.xp(), backend.get_default_dtype()
        if self.affine:
            self.weight = Parameter(xp.empty(self.num_features, dtype=dtype))
            init.ones_(self.weight)
            if bias:
                self.bias = Parameter(xp.empty(self.num_features, dtype=dtype))
                init.zeros_(self.bias)
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", xp.zeros(self.num_features, dtype=dtype))
            self.register_buffer("running_var", xp.ones(self.num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", xp.zeros((), dtype=np.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def forward(self, x):
        name = type(self).__name__
        gamma, beta = self._checked_affine(x)
        if self.training or self.running_mean is None:
            per_channel = x.size // x.shape[1]
            if self.training and per_channel < 2:
                raise ValueError(f"{name}: expected more than 1 value per channel when training, "
                                 f"got input of shape {tuple(x.shape)}")
            out, cache, mean, var = batch_norm_train_forward(x, gamma, beta, self.eps)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, per_channel)
        else:
            out, cache = batch_norm_eval_forward(x, gamma, beta, self.running_mean, self.running_var, self.eps)
        self.save_for_backward(cache)
        return out

    def _checked_affine(self, x):
        """Check x against the layer (rank, channels, dtype); return (gamma, beta) arrays or None."""
        name = type(self).__name__
        check_ndim(name, x, self._ndims, self._layout)
        check_size(name, x, 1, self.num_features, "num_features (dimension 1)")
        check_float(name, x, None if self.weight is None else self.weight.dtype)
        gamma = None if self.weight is None else self.weight.data
        beta = None if self.bias is None else self.bias.data
        return gamma, beta

    def _update_running_stats(self, mean, var, count):
        """running <- (1 - f) running + f batch, with the UNBIASED batch variance (PyTorch)."""
        self.num_batches_tracked = self.num_batches_tracked + 1
        f = 1.0 / int(self.num_batches_tracked) if self.momentum is None else float(self.momentum)
        dtype = self.running_mean.dtype
        unbiased = var * (count / (count - 1.0))
        self.running_mean = ((1.0 - f) * self.running_mean + f * mean).astype(dtype, copy=False)
        self.running_var = ((1.0 - f) * self.running_var + f * unbiased).astype(dtype, copy=False)

    def backward(self, dout):
        dx, dgamma, dbeta = batch_norm_backward(dout, self.pop_saved())
        if self.weight is not None:
            self.weight.accumulate_grad(dgamma)
        if self.bias is not None:
            self.bias.accumulate_grad(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"bias={self.bias is not None}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalization per feature: x (N, C) or (N, C, L), statistics over (N[, L]).

    Training: y = gamma (x - mu_B) / sqrt(var_B + eps) + beta with the batch's mean and biased
    variance; running_mean/var move by ``momentum`` (None: cumulative average) towards the batch's
    mean and UNBIASED variance. Eval: the running statistics replace the batch's.

    Gradients (M entries per channel, xhat the normalized input):
    training  dx = gamma / (M sqrt(var_B + eps)) (M dout - sum dout - xhat sum(dout xhat));
    eval      dx = gamma dout / sqrt(running_var + eps);
    dgamma = sum(dout xhat),  dbeta = sum(dout).

    ``bias=False`` (with ``affine=True``) keeps only the scale gamma, as PyTorch.

    Small batches: the batch's mean and variance estimate the dataset's from only the M entries
    of each channel, so with few samples (roughly N < 16; N = 1 on (1, C) is refused in training:
    one value per channel has no variance) they are noisy, training and evaluation see different
    statistics, and the running averages drift. Per-sample normalizations do not depend on the
    batch at all: :class:`GroupNorm` for convolutional features, :class:`LayerNorm` for vectors.
    """

    _ndims, _layout = (2, 3), "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization per channel: x (N, C, H, W), statistics over (N, H, W).

    Formulas as BatchNorm1d, with M = N H W entries per channel.

    Small batches: the batch's mean and variance estimate the dataset's from only the M entries
    of each channel, so with few samples (roughly N < 16; N = 1 on (1, C) is refused in training:
    one value per channel has no variance) they are noisy, training and evaluation see different
    statistics, and the running averages drift. Per-sample normalizations do not depend on the
    batch at all: :class:`GroupNorm` for convolutional features, :class:`LayerNorm` for vectors.
    """

    _ndims, _layout = (4,), "(N, C, H, W)"


class LayerNorm(Module):
    """Normalization of each sample over its last dimensions ``normalized_shape``.

    Shapes: x (*, *normalized_shape) -> same; weight, bias of ``normalized_shape``.
    y = gamma (x - mu) / sqrt(var + eps) + beta with mu, var (biased) per sample.
    Gradients: g = dout gamma;  dx = (g - mean g - xhat mean(g xhat)) / sqrt(var + eps)
    (means over the normalized dimensions);  dgamma = sum(dout xhat),  dbeta = sum(dout).

    Batch size does not matter: each sample is normalized with its own statistics, the same at
    batch 1 as at 256 and in training as in evaluation (why transformers and small-batch
    training use it instead of :class:`BatchNorm1d`).
    """

    def __init__(self, normalized_shape: Union[int, Sequence[int]], eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True) -> None:
        super().__init__()
        if isinstance(normalized_shape, (int, np.integer)):
            normalized_shape = (normalized_shape,)
        if not isinstance(normalized_shape, (tuple, list)) or not normalized_shape:
            raise TypeError(f"LayerNorm: normalized_shape must be an int or a non-empty tuple of ints, "
                            f"got {normalized_shape!r}")
        self.normalized_shape = tuple(check_int("LayerNorm", "normalized_shape entries", n) for n in normalized_shape)
        self.eps = check_number("LayerNorm", "eps", eps, low=0.0, low_open=True)
        self.elementwise_affine = bool(elementwise_affine)
        xp, dtype = backend.xp(), backend.get_default_dtype()
        if self.elementwise_affine:
            self.weight = Parameter(xp.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(xp.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        k = len(self.normalized_shape)
        check_ndim("LayerNorm", x, range(k, 33), f"(*, {', '.join(map(str, self.normalized_shape))})")
        if tuple(x.shape[x.ndim - k:]) != self.normalized_shape:
            raise ValueError(f"LayerNorm: expected the last dimensions to be {self.normalized_shape}, "
                             f"got input of shape {tuple(x.shape)}")
        check_float("LayerNorm", x, None if self.weight is None else self.weight.dtype)
        gamma = None if self.weight is None else self.weight.data
        beta = None if self.bias is None else self.bias.data
        out, cache = layer_norm_forward(x, k, gamma, beta, self.eps)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = layer_norm_backward(dout, self.pop_saved())
        if self.weight is not None:
            self.weight.accumulate_grad(dgamma)
        if self.bias is not None:
            self.bias.accumulate_grad(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}, "
                f"bias={self.bias is not None}")


class GroupNorm(Module):
    """Normalization of each sample over groups of channels: x (N, C, *) -> same.

    The C channels split into ``num_groups`` groups of C / num_groups consecutive channels; each
    (sample, group) block is normalized with its own mean and biased variance, then scaled and
    shifted per channel: y = gamma_c xhat + beta_c.
    Gradients: per block, g = dout gamma, dx = (g - mean g - xhat mean(g xhat)) / sqrt(var + eps);
    dgamma_c = sum over (N, *) of dout xhat, dbeta_c = sum over (N, *) of dout.

    Batch size does not matter: the statistics are per sample, so GroupNorm is the replacement
    for :class:`BatchNorm2d` when batches are small (detection, segmentation, batch 1-8; Wu & He,
    2018). num_groups = 1 normalizes over all of (C, *) per sample (LayerNorm over the feature
    map); num_groups = C is instance normalization.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5, affine: bool = True, *,
                 bias: bool = True) -> None:
        super().__init__()
        self.num_groups = check_int("GroupNorm", "num_groups", num_groups)
        self.num_channels = check_int("GroupNorm", "num_channels", num_channels)
        if self.num_channels % self.num_groups != 0:
            raise ValueError(f"GroupNorm: num_channels ({num_channels}) must be divisible by "
                             f"num_groups ({num_groups})")
        self.eps = check_number("GroupNorm", "eps", eps, low=0.0, low_open=True)
        self.affine = bool(affine)
        xp, dtype = backend.xp(), backend.get_default_dtype()
        if self.affine:
            self.weight = Parameter(xp.ones(self.num_channels, dtype=dtype))
            if bias:
                self.bias = Parameter(xp.zeros(self.num_channels, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        check_ndim("GroupNorm", x, range(2, 33), "(N, C, *)")
        check_size("GroupNorm", x, 1, self.num_channels, "num_channels (dimension 1)")
        check_float("GroupNorm", x, None if self.weight is None else self.weight.dtype)
        gamma = None if self.weight is None else self.weight.data
        beta = None if self.bias is None else self.bias.data
        out, cache = group_norm_forward(x, self.num_groups, gamma, beta, self.eps)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        dx, dgamma, dbeta = group_norm_backward(dout, self.pop_saved())
        if self.weight is not None:
            self.weight.accumulate_grad(dgamma)
        if self.bias is not None:
            self.bias.accumulate_grad(dbeta)
        return dx

    def extra_repr(self):
        return (f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
                f"bias={self.bias is not None}")


class LocalResponseNorm(Module):
    """AlexNet's normalization across channels, PyTorch's definition: x (N, C, *) -> same.

    scale_c = k + (alpha / size) sum_{c' = c - size//2}^{c + (size-1)//2} x_{c'}^2  (zero outside
    the channels),  out_c = x_c scale_c^(-beta).
    Gradient: dx_j = dout_j scale_j^(-beta)
              - (2 alpha beta / size) x_j sum_{c: j in window(c)} dout_c x_c scale_c^(-beta-1).

    Per position of each sample, so the batch size does not matter.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        self.size = check_int("LocalResponseNorm", "size", size)
        self.alpha = check_number("LocalResponseNorm", "alpha", alpha)
        self.beta = check_number("LocalResponseNorm", "beta", beta)
        self.k = check_number("LocalResponseNorm", "k", k)

    def forward(self, x):
        check_ndim("LocalResponseNorm", x, range(3, 33), "(N, C, *)")
        check_float("LocalResponseNorm", x)
        out, cache = local_response_norm_forward(x, self.size, self.alpha, self.beta, self.k)
        self.save_for_backward(cache)
        return out

    def backward(self, dout):
        return local_response_norm_backward(dout, self.pop_saved())

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
