"""Classification metrics: accuracy, top-k accuracy and the confusion matrix.

Each comes as a function on one batch and as a running metric (``reset``, ``update(logits, y)``,
``compute()``) that sums counts over batches, so an epoch's value is exact, not an average of
per-batch averages.

Targets are class indices of shape (N,), or one-hot / probability rows of the logits' shape
(their argmax is the class).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..backend import get_array_module, to_numpy
from ..optim.checks import check_int


def class_targets(logits: Any, y: Any) -> Any:
    """Class indices (N,) from integer labels or from one-hot rows; None when ``y`` is not
    a classification target for ``logits`` (e.g. regression), so accuracy does not apply."""
    if logits.ndim != 2:
        return None
    if y.ndim == 1 and np.dtype(y.dtype).kind in "iu":
        return y
    if y.shape == logits.shape and logits.shape[1] > 1:
        return get_array_module(y).argmax(y, axis=1)
    return None


def topk_correct(logits: Any, y: Any, k: int = 1) -> int:
    """How many rows have their target among the ``k`` largest logits.

    For k > 1 a target tied with others counts as inside the top k when fewer than k logits are
    strictly larger; for k = 1 the first maximum wins (argmax), as in PyTorch.
    """
    k = check_int("accuracy", "k", k, 1)
    xp = get_array_module(logits)
    labels = class_targets(logits, y)
    if labels is None:
        raise ValueError(f"accuracy: expected logits (N, C) and labels (N,) or one-hot (N, C), "
                         f"got {tuple(logits.shape)} and {tuple(y.shape)}")
    if k == 1:
        return int((xp.argmax(logits, axis=1) == labels).sum())
    target_logit = xp.take_along_axis(logits, labels.reshape(-1, 1).astype(np.int64), axis=1)
    rank = (logits > target_logit).sum(axis=1)  # how many classes score strictly higher
    return int((rank < k).sum())


def accuracy(logits: Any, y: Any) -> float:
    """Top-1 accuracy in [0, 1]: the fraction of rows whose largest logit is the target."""
    return topk_correct(logits, y, 1) / logits.shape[0]


def topk_accuracy(logits: Any, y: Any, k: int = 5) -> float:
    """Top-k accuracy in [0, 1]: the fraction of rows whose target is among the k largest logits."""
    return topk_correct(logits, y, k) / logits.shape[0]


def confusion_matrix(predicted: Any, target: Any, num_classes: int) -> np.ndarray:
    """``M[i, j]`` = number of samples of true class i predicted as class j (a NumPy int64 array)."""
    predicted, target = to_numpy(predicted).astype(np.int64).ravel(), to_numpy(target).astype(np.int64).ravel()
    if predicted.shape != target.shape:
        raise ValueError(f"confusion_matrix: {predicted.shape[0]} predictions for {target.shape[0]} targets")
    if predicted.size and (min(predicted.min(), target.min()) < 0 or max(predicted.max(), target.max()) >= num_classes):
        raise ValueError(f"confusion_matrix: class indices must lie in [0, {num_classes})")
    return np.bincount(target * num_classes + predicted, minlength=num_classes ** 2).reshape(num_classes, num_classes)


class Mean:
    """Running mean of per-batch values weighted by batch size (the epoch's mean loss)."""

    name = "loss"

    def __init__(self, name: str = "loss") -> None:
        self.name = name
        self.reset()

    def reset(self) -> None:
        """Start a new mean."""
        self.total, self.count = 0.0, 0

    def update(self, value: float, n: int = 1) -> None:
        """Add ``value``, the mean over a batch of ``n`` samples (weight n)."""
        self.total += float(value) * n
        self.count += int(n)

    def compute(self) -> Any:
        """The weighted mean so far (NaN before any update)."""
        return self.total / self.count if self.count else float("nan")


class Accuracy:
    """Running top-k accuracy; named "accuracy" for k = 1 and "top{k}_accuracy" otherwise."""

    def __init__(self, k: int = 1) -> None:
        self.k = check_int("Accuracy", "k", k, 1)
        self.name = "accuracy" if self.k == 1 else f"top{self.k}_accuracy"
        self.reset()

    def reset(self) -> None:
        """Start counting again."""
        self.correct, self.count = 0, 0

    def update(self, logits: Any, y: Any) -> None:
        """Count the rows of ``logits`` (N, C) whose target ``y`` is among the top k; batches that
        are not classification (regression targets) are skipped."""
        if class_targets(logits, y) is None:
            return  # not a classification batch: accuracy is undefined, not zero
        self.correct += topk_correct(logits, y, self.k)
        self.count += logits.shape[0]

    def compute(self) -> Any:
        """The fraction correct so far, in [0, 1] (NaN before any counted batch)."""
        return self.correct / self.count if self.count else float("nan")


class ConfusionMatrix:
    """Running confusion matrix over batches; ``compute()`` returns the (C, C) counts."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = check_int("ConfusionMatrix", "num_classes", num_classes, 1)
        self.name = "confusion_matrix"
        self.reset()

    def reset(self) -> None:
        """Zero the counts."""
        self.matrix = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, logits: Any, y: Any) -> None:
        """Add a batch: the argmax of ``logits`` (N, C) against the targets ``y``."""
        labels = class_targets(logits, y)
        if labels is None:
            raise ValueError("ConfusionMatrix: expected logits (N, C) and labels (N,) or one-hot (N, C)")
        predicted = get_array_module(logits).argmax(logits, axis=1)
        self.matrix += confusion_matrix(predicted, labels, self.num_classes)

    def compute(self) -> Any:
        """The (C, C) counts so far, rows true class, columns predicted (a copy)."""
        return self.matrix.copy()


def make_metric(spec: Any) -> Any:
    """"accuracy" / "top5" / "top5_accuracy" / a metric object -> a running metric."""
    if not isinstance(spec, str):
        return spec
    if spec in ("accuracy", "acc", "top1"):
        return Accuracy(1)
    if spec.startswith("top"):
        digits = spec[3:].split("_")[0]
        if digits.isdigit():
            return Accuracy(int(digits))
    raise ValueError(f"unknown metric {spec!r}; expected 'accuracy', 'top<k>' or a metric object")
