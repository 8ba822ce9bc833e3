"""Transfer learning: reuse a trained network for a new task.

The three strategies, with the tools here:

* fixed feature extractor -- ``extract_features(model, loader)`` gives the last hidden layer's
  activations (or any layer's, ``layer=``); train a new linear/softmax classifier, a
  :class:`LinearSVM` or a :class:`KNeighborsClassifier` on them;
* fine-tuning -- ``replace_head(model, k)``, ``freeze(model, up_to=...)``, train the head,
  then ``unfreeze(model)`` and train everything at a lower learning rate
  (``param_groups(model, {"features": 1e-4}, default_lr=1e-3)`` gives each part its own);
* training from scratch -- the baseline both are compared with.

Freezing sets ``requires_grad = False``: layers then skip their weight gradients and optimizers
skip the parameters. (Batch-norm running statistics still move in training mode, as in PyTorch.)
"""

import numpy as np

from . import backend
from .grad_mode import no_grad
from .nn.linear import Linear
from .nn.utils import capture, eval_mode, find_layer, last_linear


def _modules_through(model, layer):
    """The modules of ``model`` in registration order up to and including ``layer``'s subtree."""
    inside = {id(m) for m in find_layer(model, layer)[1].modules()}
    chosen, reached = [], False
    for _, module in model.named_modules():
        if reached and id(module) not in inside:
            break
        reached = reached or id(module) in inside
        chosen.append(module)
    return chosen


def _set_requires_grad(modules, flag):
    count = 0
    for module in modules:
        for param in module._parameters.values():
            if param is not None:
                param.requires_grad = flag
                if not flag:
                    param.grad = None
                count += int(param.size)
    return count


def freeze(model, up_to=None):
    """Freeze every parameter of ``model`` (``up_to=None``), or of the layers registered before
    ``up_to`` and of ``up_to`` itself (a Module or a dotted name such as ``"features"``).
    Returns the number of scalar parameters frozen."""
    modules = list(model.modules()) if up_to is None else _modules_through(model, up_to)
    return _set_requires_grad(modules, False)


def unfreeze(model, from_layer=None):
    """Make parameters trainable again: all of them, or those of ``from_layer`` and the layers
    registered after it. Returns the number of scalar parameters unfrozen."""
    modules = list(model.modules())
    if from_layer is not None:
        before = _modules_through(model, from_layer)
        target = find_layer(model, from_layer)[1]
        inside = {id(m) for m in target.modules()}
        keep = {id(m) for m in before if id(m) not in inside}
        modules = [m for m in modules if id(m) not in keep]
    return _set_requires_grad(modules, True)


def trainable_parameters(model):
    """The parameters with ``requires_grad`` (what an optimizer of a frozen model needs)."""
    return [p for p in model.parameters() if p.requires_grad]


def replace_head(model, num_classes, bias=True):
    """Replace the last Linear layer (the classifier) with a freshly initialized
    ``Linear(in_features, num_classes)`` in the same place; returns the new layer."""
    old = last_linear(model)
    for _, parent in model.named_modules():
        for name, child in parent.named_children():
            if child is old:
                with backend.default_dtype(old.weight.dtype):
                    new = Linear(old.in_features, num_classes, bias=bias)
                # Assign in place in the registry (add_module would move a Sequential's entry
                # to the end and change the order of the layers).
                parent._modules[name] = new
                object.__setattr__(parent, name, new)
                return new
    raise ValueError("replace_head: the last Linear layer was not found among the children")  # unreachable


def extract_features(model, loader, layer=None):
    """(features (N, D), labels (N,)) as NumPy arrays: the activations of ``layer`` (default: the
    input of the last Linear layer, the "last hidden layer") for every batch ``(x, y)`` of
    ``loader``, flattened per sample; eval mode, no caches."""
    if layer is None:
        module, what = last_linear(model), "input"
    else:
        module, what = find_layer(model, layer)[1], "output"
    feats, labels = [], []
    with eval_mode(model), no_grad(), capture(module, what) as records:
        for x, y in loader:
            model(backend.asarray(x))
            a = backend.to_numpy(records.pop())
            feats.append(a.reshape(len(a), -1))
            labels.append(np.asarray(backend.to_numpy(y)))
    return np.concatenate(feats), np.concatenate(labels)


def param_groups(model, lrs, default_lr=None, include_frozen=True):
    """Optimizer parameter groups with one learning rate per part of the model.

    ``lrs`` maps module-name prefixes to learning rates, e.g. ``{"features": 1e-4, "fc": 1e-3}``;
    the longest matching prefix wins. Parameters matching none go in a group with ``default_lr``
    (left out when it is None). ``include_frozen=False`` leaves out frozen parameters.
    Pass the result to any optimizer: ``npcnn.optim.SGD(param_groups(model, ...), lr=...)``.
    """
    groups = {prefix: [] for prefix in lrs}
    rest = []
    for name, param in model.named_parameters():
        if not (param.requires_grad or include_frozen):
            continue
        matches = [p for p in lrs if name == p or name.startswith(p + ".")]
        if matches:
            groups[max(matches, key=len)].append(param)
        else:
            rest.append(param)
    result = [{"params": params, "lr": float(lrs[prefix])} for prefix, params in groups.items() if params]
    if rest and default_lr is not None:
        result.append({"params": rest, "lr": float(default_lr)})
    return result


class LinearSVM:
    """One-vs-rest linear SVM with the hinge loss, trained by full-batch (sub)gradient descent.

    For K classes, scores s_ic = w_c . x_i + b_c and targets t_ic = +1 if y_i = c else -1:

        L = (lam / 2) sum_c ||w_c||^2 + (1 / N) sum_i sum_c max(0, 1 - t_ic s_ic)

        dL/dw_c = lam w_c - (1 / N) sum_i [t_ic s_ic < 1] t_ic x_i
        dL/db_c =         - (1 / N) sum_i [t_ic s_ic < 1] t_ic

    Features are standardized with the training mean and standard deviation. Descent uses
    momentum 0.9 and a learning rate decaying as lr / (1 + t / 100).
    """

    def __init__(self, lam=1e-3, lr=0.1, epochs=300, momentum=0.9):
        self.lam, self.lr, self.epochs, self.momentum = float(lam), float(lr), int(epochs), float(momentum)
        self.weight = self.bias = self.mean = self.std = None

    def _standardize(self, x):
        return (np.asarray(x, dtype=np.float64).reshape(len(x), -1) - self.mean) / self.std

    def loss_and_grad(self, x, t, weight, bias):
        """(loss, dW, db) at (weight (K, D), bias (K,)) for standardized x (N, D), targets t (N, K) in {-1, 1}."""
        scores = x @ weight.T + bias
        margin = 1.0 - t * scores
        active = margin > 0
        n = len(x)
        loss = 0.5 * self.lam * float((weight * weight).sum()) + float(np.where(active, margin, 0.0).sum()) / n
        coef = -(active * t) / n                # dL/dscores
        return loss, self.lam * weight + coef.T @ x, coef.sum(axis=0)

    def fit(self, x, y, num_classes=None):
        """Train on features x (N, ...) and labels y (N,) in 0..num_classes-1; returns self."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        y = np.asarray(y, dtype=np.int64)
        k = int(num_classes if num_classes is not None else y.max() + 1)
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-8
        xs = self._standardize(x)
        t = np.where(y[:, None] == np.arange(k)[None, :], 1.0, -1.0)
        self.weight, self.bias = np.zeros((k, xs.shape[1])), np.zeros(k)
        vw, vb = np.zeros_like(self.weight), np.zeros_like(self.bias)
        self.losses = []
        for step in range(self.epochs):
            loss, dw, db = self.loss_and_grad(xs, t, self.weight, self.bias)
            self.losses.append(loss)
            lr = self.lr / (1.0 + step / 100.0)
            vw = self.momentum * vw - lr * dw
            vb = self.momentum * vb - lr * db
            self.weight += vw
            self.bias += vb
        return self

    def decision_function(self, x):
        """Scores (N, K): one binary SVM per class."""
        return self._standardize(x) @ self.weight.T + self.bias

    def predict(self, x):
        """The class (N,) with the largest score."""
        return self.decision_function(x).argmax(axis=1)

    def score(self, x, y):
        """Accuracy on (x, y)."""
        return float((self.predict(x) == np.asarray(y)).mean())


class KNeighborsClassifier:
    """k-nearest-neighbour classification of feature vectors (a majority vote of the k closest).

    ``fit`` only stores the training features (standardized with their mean and standard deviation
    when ``standardize``); ``predict`` computes the distances of every query to every stored
    vector, in blocks of ``batch_size`` queries, as

        ||q - x||^2 = ||q||^2 - 2 q . x + ||x||^2          (metric="euclidean")
        1 - q . x / (||q|| ||x||)                           (metric="cosine")

    and returns the most frequent label among the k nearest. Ties between labels go to the label
    whose members are nearest (the smallest summed rank), so k=1 is the plain nearest neighbour.
    """

    def __init__(self, k=5, metric="euclidean", standardize=True, batch_size=1024):
        if int(k) != k or k < 1:
            raise ValueError(f"KNeighborsClassifier: k must be a positive integer, got {k!r}")
        if metric not in ("euclidean", "cosine"):
            raise ValueError(f"KNeighborsClassifier: metric must be 'euclidean' or 'cosine', got {metric!r}")
        self.k, self.metric, self.standardize, self.batch_size = int(k), metric, bool(standardize), int(batch_size)
        self.features = self.labels = self.mean = self.std = None

    def _prepare(self, x):
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        if self.standardize:
            x = (x - self.mean) / self.std
        if self.metric == "cosine":
            x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-12)
        return x

    def fit(self, x, y):
        """Store the training features x (N, ...) and labels y (N,); returns self."""
        x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
        y = np.asarray(y)
        if len(x) != len(y):
            raise ValueError(f"KNeighborsClassifier.fit: {len(x)} feature vectors but {len(y)} labels")
        if len(x) < self.k:
            raise ValueError(f"KNeighborsClassifier.fit: k={self.k} needs at least k training vectors, got {len(x)}")
        if not np.all(np.isfinite(x)):
            raise ValueError("KNeighborsClassifier.fit: the features contain NaN or infinite values")
        self.mean, self.std = x.mean(axis=0), x.std(axis=0) + 1e-8
        self.classes, self.labels = np.unique(y, return_inverse=True)
        self.features = self._prepare(x)
        self.sq_norms = (self.features ** 2).sum(axis=1)
        return self

    def kneighbors(self, x):
        """(distances (M, k), indices (M, k)) of the k stored vectors nearest to each query, nearest first."""
        if self.features is None:
            raise RuntimeError("KNeighborsClassifier: call fit before predict")
        n_features = int(np.prod(np.shape(x)[1:]))
        if n_features != self.features.shape[1]:
            raise ValueError(f"KNeighborsClassifier: queries have {n_features} features, the fitted data "
                             f"{self.features.shape[1]}")
        q = self._prepare(x)
        dists, idx = [], []
        for start in range(0, len(q), self.batch_size):
            block = q[start:start + self.batch_size]
            if self.metric == "euclidean":
                d = (block ** 2).sum(axis=1)[:, None] - 2.0 * block @ self.features.T + self.sq_norms[None, :]
                d = np.maximum(d, 0.0)
            else:
                d = 1.0 - block @ self.features.T
            near = np.argpartition(d, self.k - 1, axis=1)[:, :self.k]
            rows = np.arange(len(block))[:, None]
            order = np.argsort(d[rows, near], axis=1, kind="stable")
            idx.append(near[rows, order])
            dists.append(d[rows, idx[-1]])
        dists = np.concatenate(dists)
        return (np.sqrt(dists) if self.metric == "euclidean" else dists), np.concatenate(idx)

    def predict(self, x):
        """The majority label (N,) of the k nearest training vectors of each query."""
        _, idx = self.kneighbors(x)
        votes = self.labels[idx]                                  # (M, k) class indices, nearest first
        n_classes = len(self.classes)
        counts = np.zeros((len(votes), n_classes))
        ranks = np.zeros((len(votes), n_classes))
        rows = np.arange(len(votes))
        for j in range(self.k):
            counts[rows, votes[:, j]] += 1
            ranks[rows, votes[:, j]] += j
        # The most votes wins; among equal counts the smaller summed rank (nearer members).
        score = counts * (self.k * self.k + 1) - ranks
        score[counts == 0] = -np.inf
        return self.classes[score.argmax(axis=1)]

    def score(self, x, y):
        """Accuracy on (x, y)."""
        return float((self.predict(x) == np.asarray(y)).mean())
