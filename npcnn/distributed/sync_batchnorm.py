"""SyncBatchNorm: batch normalization with the statistics of the whole global batch.

With data parallelism each rank sees B/R samples. Ordinary BatchNorm normalizes each rank's
samples with that rank's own mean and variance ("local BN", the default: cheap, and usually
fine when B/R is a few dozen). SyncBatchNorm makes the ranks agree on the statistics of all B
samples, so R ranks compute exactly what one process computes on the full batch -- needed
when B/R is small (detection, segmentation, large models on few samples per GPU).

Forward (per channel; M_r entries on rank r, M = sum_r M_r):

    each rank:    n_r = M_r,  mu_r = mean of its x,  S_r = sum (x - mu_r)^2
    all-gather (n_r, mu_r, S_r), then combine (Chan, Golub & LeVeque 1979):
                  mu = sum_r n_r mu_r / M
                  var = sum_r (S_r + n_r (mu_r - mu)^2) / M           (biased, as BatchNorm)
    each rank:    xhat = (x - mu) / sqrt(var + eps),  y = gamma xhat + beta

Per-rank centred sums (not sums of x and x^2) keep the variance free of the cancellation
E[x^2] - E[x]^2 suffers in float32; one all-gather carries everything.

Backward. With g = dL/dxhat = gamma dout, the BatchNorm formula holds with sums over the
global batch:

    dx = (1 / sqrt(var + eps)) (g - sum_all(g) / M - xhat sum_all(g xhat) / M)

so one all-reduce of the two per-channel sums [sum g, sum g xhat] (length 2C) is needed.
dgamma = sum(dout xhat) and dbeta = sum(dout) stay local sums; the DistributedOptimizer
averages them with every other gradient.

Scaling. Each rank's loss is its own mean over B/R samples, R times its share of the global
mean, so every dout (and with it dx and every parameter gradient) is R times the global one;
the optimizer's average over R ranks divides it back. The formula is linear in dout, so the
all-reduced sums above carry the same factor and no rank needs to know R.
"""

import numpy as np

from .. import backend
from ..functional.norm import batch_norm_backward, batch_norm_eval_forward, batch_norm_train_forward
from ..nn.norm import _BatchNorm
from . import comm as _comm


def _channel_shape(x):
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _reduce_axes(x):
    return (0,) + tuple(range(2, x.ndim))


def combine_statistics(counts, means, sums_of_squares):
    """Merge per-rank statistics into the global ones (Chan et al.'s parallel variance).

    ``counts`` (R,), ``means`` and ``sums_of_squares`` (R, C) (squared deviations from each
    rank's own mean). Returns (M, mean (C,), biased var (C,)).
    """
    total = counts.sum()
    weights = counts[:, None]
    mean = (weights * means).sum(axis=0) / total
    deviation = means - mean
    var = (sums_of_squares + weights * deviation * deviation).sum(axis=0) / total
    return total, mean, var


def sync_batch_norm_forward(x, gamma, beta, eps, comm):
    """Training forward with global statistics. x (N, C, *); gamma, beta (C,) or None.

    Returns (out, cache, mean (C,), biased var (C,), M). Every rank must call it (same C).
    """
    xp = backend.get_array_module(x)
    axes, shape, channels = _reduce_axes(x), _channel_shape(x), x.shape[1]
    count = x.size // channels
    if count > 0:
        local_mean = x.mean(axis=axes, keepdims=True)
    else:  # an empty slice on this rank contributes nothing (its mean would be 0/0)
        local_mean = xp.zeros(shape, dtype=x.dtype)
    centered = x - local_mean
    local_squares = (centered * centered).sum(axis=axes)
    # float64 on the wire: counts stay exact past 2^24 and the combination loses nothing.
    packed = xp.concatenate([xp.asarray([count], dtype=np.float64),
                             local_mean.reshape(-1).astype(np.float64),
                             local_squares.astype(np.float64)])
    gathered = comm.all_gather(packed)
    total, mean, var = combine_statistics(gathered[:, 0], gathered[:, 1:1 + channels], gathered[:, 1 + channels:])
    mean, var = mean.astype(x.dtype), var.astype(x.dtype)
    inv_std = 1.0 / (var + eps) ** 0.5
    xhat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
    out = xhat if gamma is None else xhat * gamma.reshape(shape)
    if beta is not None:
        out = out + beta.reshape(shape)
    return out, (xhat, inv_std.reshape(shape), gamma, float(total)), mean, var, float(total)


def sync_batch_norm_backward(dout, cache, comm):
    """Returns (dx, dgamma, dbeta) (local parameter sums; None without affine parameters)."""
    xhat, inv_std, gamma, total = cache
    axes, shape = _reduce_axes(dout), _channel_shape(dout)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    # sum g = gamma sum dout and sum g xhat = gamma sum dout xhat: reuse the parameter sums.
    xp = backend.get_array_module(dout)
    sums = xp.concatenate([dbeta, dgamma]) if gamma is None else xp.concatenate([gamma * dbeta, gamma * dgamma])
    comm.all_reduce(sums)
    channels = dout.shape[1]
    sum_g, sum_g_xhat = sums[:channels].reshape(shape), sums[channels:].reshape(shape)
    g = dout if gamma is None else dout * gamma.reshape(shape)
    dx = inv_std * (g - sum_g * (1.0 / total) - xhat * (sum_g_xhat * (1.0 / total)))
    if gamma is None:
        return dx, None, None
    return dx, dgamma, dbeta


def sync_batch_norm_naive(xs, gamma, beta, eps=1e-5):
    """Loop twin: the ranks' inputs ``xs`` concatenated and each channel normalized with the
    mean and variance of all of them, one value at a time. Returns the list of outputs."""
    full = np.concatenate([backend.to_numpy(x) for x in xs])
    out = np.empty_like(full)
    for c in range(full.shape[1]):
        values = full[:, c].reshape(-1)
        mean = 0.0
        for v in values:
            mean += float(v)
        mean /= values.size
        var = 0.0
        for v in values:
            var += (float(v) - mean) ** 2
        var /= values.size
        g = 1.0 if gamma is None else float(gamma[c])
        b = 0.0 if beta is None else float(beta[c])
        out[:, c] = g * (full[:, c] - mean) / (var + eps) ** 0.5 + b
    splits = np.cumsum([len(x) for x in xs])[:-1]
    return np.split(out, splits)


class SyncBatchNorm(_BatchNorm):
    """Batch normalization over the global batch of all ranks (PyTorch's ``nn.SyncBatchNorm``).

    Shapes: x (N, C, *) -> same; weight, bias, running_mean, running_var (C,),
    num_batches_tracked () -- BatchNorm's attributes and state_dict keys.

    Training: y = gamma (x - mu) / sqrt(var + eps) + beta, where mu and the biased var are the
    statistics of the concatenation of every rank's x (M entries per channel in all); the
    running statistics move towards mu and the unbiased var * M / (M - 1) on every rank alike.
    Eval: the running statistics, no communication (the model is then an ordinary BN model).

    Gradients (sums over all ranks' entries):
        dx = gamma / sqrt(var + eps) (dout - sum_all(dout) / M - xhat sum_all(dout xhat) / M)
        dgamma = sum(dout xhat), dbeta = sum(dout) over this rank's entries.

    ``process_group`` is the communicator (default: the world of ``npcnn.distributed.init``,
    looked up at each forward). Every rank must run the forward and backward of every
    SyncBatchNorm in the same order, with any N (it may differ between ranks, even be 0 on
    some as long as the global M exceeds 1).
    """

    _ndims, _layout = tuple(range(2, 10)), "(N, C, *)"

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None):
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group

    def _communicator(self):
        return _comm.get_world() if self.process_group is None else self.process_group

    def forward(self, x):
        name = type(self).__name__
        gamma, beta = self._checked_affine(x)
        if not self.training and self.running_mean is not None:
            out, cache = batch_norm_eval_forward(x, gamma, beta, self.running_mean, self.running_var, self.eps)
            self.save_for_backward((None, cache))
            return out
        comm = self._communicator()
        if comm.size == 1:  # a world of one: plain BatchNorm, no collective
            comm = None
            out, cache, mean, var = batch_norm_train_forward(x, gamma, beta, self.eps)
            total = x.size // x.shape[1]
        else:
            out, cache, mean, var, total = sync_batch_norm_forward(x, gamma, beta, self.eps, comm)
        if self.training and total < 2:
            raise ValueError(f"{name}: expected more than 1 value per channel over all ranks when training, "
                             f"got input of shape {tuple(x.shape)} ({total:g} values per channel in all)")
        if self.training and self.track_running_stats:
            self._update_running_stats(mean, var, total)
        self.save_for_backward((comm, cache))
        return out

    def backward(self, dout):
        comm, cache = self.pop_saved()
        if comm is None:
            dx, dgamma, dbeta = batch_norm_backward(dout, cache)
        else:
            dx, dgamma, dbeta = sync_batch_norm_backward(dout, cache, comm)
        if self.weight is not None:
            self.weight.accumulate_grad(dgamma)
        if self.bias is not None:
            self.bias.accumulate_grad(dbeta)
        return dx

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm1d/2d replaced by a SyncBatchNorm (PyTorch's name).

        The new layers share the old ones' Parameter objects (so an optimizer built before the
        conversion still updates them) and copy their buffers; a BatchNorm passed in directly is
        returned converted. Children are replaced in place.
        """
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            return _converted(module, process_group)
        for parent in module.modules():
            for name, child in list(parent.named_children()):
                if isinstance(child, _BatchNorm) and not isinstance(child, SyncBatchNorm):
                    parent.add_module(name, _converted(child, process_group))  # keeps its position
        return module


def _converted(bn, process_group):
    sync = SyncBatchNorm(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats, process_group)
    if bn.affine:
        sync.weight, sync.bias = bn.weight, bn.bias
    for name, buf in bn._buffers.items():
        setattr(sync, name, None if buf is None else buf.copy())
    sync.train(bn.training)
    return sync


def convert_sync_batchnorm(module, process_group=None):
    """Replace every BatchNorm in ``module`` by a SyncBatchNorm (see the classmethod)."""
    return SyncBatchNorm.convert_sync_batchnorm(module, process_group)
