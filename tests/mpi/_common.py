"""Shared by the scripts in tests/mpi (run under ``mpirun -n 2``; see tests/test_distributed.py).

A failed check raises AssertionError; ``npcnn.distributed.init()`` turns an uncaught exception
on any rank into an MPI abort, so mpirun exits non-zero and the driver test fails.
"""

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

import npcnn  # noqa: E402
from npcnn import nn  # noqa: E402


def cnn(seed, dtype=np.float64):
    """Conv (no bias: BatchNorm cancels it, so its gradient is rounding noise that Adam would
    amplify to full-size steps) -> BatchNorm -> ReLU -> MaxPool -> Linear on (N, 3, 6, 6),
    deterministic from ``seed``."""
    npcnn.manual_seed(seed)
    with npcnn.backend.default_dtype(dtype):
        return nn.Sequential(
            nn.Conv2d(3, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(4 * 3 * 3, 3),
        )


def dataset(n=32, dtype=np.float64, seed=7):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, 3, 6, 6)) * 2.0 + 0.5).astype(dtype)
    y = rng.integers(0, 3, size=n)
    return x, y


class SplitBatchNorm(nn.Module):
    """BatchNorm applied separately to each of ``parts`` equal slices of the batch, with one
    shared weight and bias: what R ranks with local BatchNorm compute, in one process. Slice r's
    running statistics are ``self.parts[r]``'s."""

    def __init__(self, bn, parts):
        super().__init__()
        self.weight, self.bias = bn.weight, bn.bias
        self.parts = nn.ModuleList()
        for _ in range(parts):
            part = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum)
            part.weight, part.bias = bn.weight, bn.bias  # shared: their gradients add up
            part.to(bn.weight.dtype)
            self.parts.append(part)

    def forward(self, x):
        xs = np.split(x, len(self.parts))
        return np.concatenate([part(xi) for part, xi in zip(self.parts, xs)])

    def backward(self, dout):
        douts = np.split(dout, len(self.parts))
        return np.concatenate([part.backward(d) for part, d in zip(self.parts, douts)])


def split_batchnorm(model, index, parts):
    """``model`` with its child ``index`` (a BatchNorm) replaced by a SplitBatchNorm, in place."""
    model.add_module(str(index), SplitBatchNorm(model[index], parts))  # keeps its position
    return model


def train_steps(model, optimizer, batches):
    loss_fn = nn.CrossEntropyLoss()
    for x, y in batches:
        loss_fn(model(npcnn.backend.asarray(x)), npcnn.backend.asarray(y))  # on the GPU under CuPy
        model.backward(loss_fn.backward())
        optimizer.step()
        optimizer.zero_grad()


def assert_close(actual, expected, rtol, atol, what):
    actual, expected = npcnn.to_numpy(actual), npcnn.to_numpy(expected)
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        raise AssertionError(f"{what}: max abs difference {np.abs(actual - expected).max():.3e} "
                             f"(rtol {rtol}, atol {atol})")
