"""Per-layer statistics of one forward and backward pass, recorded with hooks.

    with npcnn.diagnostics.record(model) as rec:
        loss = loss_fn(model(x), y)
        model.backward(loss_fn.backward())
    print(rec.table())            # one row per layer
    rec.plot_gradients("grad.png")

``record`` puts a forward hook and a backward hook (``Module.register_forward_hook`` /
``register_backward_hook``) on every recorded module and takes them all away when the block
ends, so no layer knows about it and a model outside the block runs exactly as before, at no
cost. It works on any tree of modules: Sequential, residual blocks, concatenations.

What each layer's row holds (N = number of elements of the array):

    act_mean, act_std    mean and standard deviation of the layer's output
    frac_saturated       Tanh: fraction with |out| > 0.99;  Sigmoid: out < 0.01 or out > 0.99
                         (where the derivative is below 0.02 and 0.0099); other layers: nan
    frac_zero            fraction of outputs exactly 0 (a ReLU unit that is 0 passes no gradient)
    grad_output_norm     ||dL/d(output)||, the gradient reaching the layer from above
    grad_input_norm      ||dL/d(input)||, what the layer passes down
    weight_grad_norm     ||dL/dW|| of the layer's ``weight`` (nan when it has none)

Norms are Frobenius norms over the whole batch. Parameter statistics (one row per parameter,
with update-to-weight ratios) come from :meth:`Recorder.param_table`.
"""

import contextlib
import math

import numpy as np

from .. import backend
from ..nn.activation import Sigmoid, Tanh
from .table import Table

LAYER_COLUMNS = ["index", "name", "type", "shape", "act_mean", "act_std", "frac_saturated", "frac_zero",
                 "grad_output_norm", "grad_input_norm", "weight_grad_norm"]
PARAM_COLUMNS = ["name", "shape", "weight_norm", "grad_norm", "grad_to_weight", "update_to_weight"]


def array_norm(a):
    """Frobenius norm of an array (or of several, as if concatenated), as a Python float."""
    if a is None:
        return float("nan")
    if isinstance(a, (tuple, list)):
        return math.sqrt(sum(array_norm(x) ** 2 for x in a if x is not None))
    xp = backend.get_array_module(a)
    # Accumulate in float64 so a float32 gradient of 1e-30 per entry does not underflow to 0.
    return float(xp.sqrt(xp.sum(xp.square(a.astype(np.float64)))))


def grad_norm(parameters):
    """Global norm sqrt(sum_p ||p.grad||^2) over parameters that have a gradient."""
    return math.sqrt(sum(array_norm(p.grad) ** 2 for p in parameters if p.grad is not None))


def saturation(module, out):
    """Fraction of saturated outputs for Tanh and Sigmoid layers, nan for any other layer."""
    if isinstance(module, Tanh):
        return float((abs(out) > 0.99).mean())
    if isinstance(module, Sigmoid):
        return float(((out < 0.01) | (out > 0.99)).mean())
    return float("nan")


class LayerRecord:
    """What one module saw in the last forward and backward pass inside ``record``."""

    def __init__(self, index, name, module):
        self.index, self.name, self.module = index, name, module
        self.type = type(module).__name__
        self.shape = None
        self.forward_calls = self.backward_calls = 0
        self.act_mean = self.act_std = self.frac_saturated = self.frac_zero = float("nan")
        self.grad_output_norm = self.grad_input_norm = float("nan")
        self.param_grad_norms = {}
        self.sample = None  # a strided subsample of the output, float64 NumPy, for histograms

    def observe_output(self, out, max_samples):
        """Record the statistics of a forward output ``out`` and keep up to ``max_samples`` of
        its values (a strided subsample) for histograms."""
        if not hasattr(out, "dtype"):
            return  # a module returning a tuple or a float: no activation statistics
        self.forward_calls += 1
        self.shape = tuple(out.shape)
        self.act_mean, self.act_std = float(out.mean()), float(out.std())
        self.frac_saturated = saturation(self.module, out)
        self.frac_zero = float((out == 0).mean())
        if max_samples:
            flat = out.reshape(-1)
            # A stride, not a random choice: npcnn's generator must not advance while recording,
            # or a seeded run would change just because it was observed.
            step = max(1, flat.size // max_samples)
            self.sample = backend.to_numpy(flat[::step][:max_samples]).astype(np.float64)

    def observe_gradients(self, grad_input, grad_output):
        """Record the norms of a backward's ``grad_input`` and ``grad_output`` and of the
        module's own parameter gradients."""
        self.backward_calls += 1
        self.grad_input_norm = array_norm(grad_input)
        self.grad_output_norm = array_norm(grad_output)
        self.param_grad_norms = {name: array_norm(p.grad) for name, p in self.module._parameters.items()
                                 if p is not None and p.grad is not None}

    def row(self):
        """This record as a dict of the columns of ``Recorder.table()``."""
        return {"index": self.index, "name": self.name or "(model)", "type": self.type,
                "shape": "x".join(map(str, self.shape)) if self.shape else "",
                "act_mean": self.act_mean, "act_std": self.act_std, "frac_saturated": self.frac_saturated,
                "frac_zero": self.frac_zero, "grad_output_norm": self.grad_output_norm,
                "grad_input_norm": self.grad_input_norm,
                "weight_grad_norm": self.param_grad_norms.get("weight", float("nan"))}


def _select(model, modules):
    """The (name, module) pairs to record: "leaves", "all", a type or tuple of types, a list of
    names, or a predicate ``f(name, module) -> bool``."""
    named = list(model.named_modules())
    if modules == "leaves":
        return [(n, m) for n, m in named if not any(True for _ in m.children())]
    if modules == "all":
        return named
    if isinstance(modules, type) or (isinstance(modules, tuple) and all(isinstance(t, type) for t in modules)):
        return [(n, m) for n, m in named if isinstance(m, modules)]
    if callable(modules):
        return [(n, m) for n, m in named if modules(n, m)]
    by_name = dict(named)
    missing = [n for n in modules if n not in by_name]
    if missing:
        raise KeyError(f"record: no modules named {missing} in {type(model).__name__}")
    return [(n, by_name[n]) for n in modules]


class Recorder:
    """Holds the per-layer records of a :func:`record` block; read it after the block.

    Layers are listed in the order their outputs are first produced (the order data flows, a
    container right after its children), so for the leaves ``index`` is the depth in the network.
    """

    def __init__(self, model, modules="leaves", max_samples=4096):
        self.model = model
        self.max_samples = int(max_samples)
        self._targets = _select(model, modules)
        self._records = {}  # id(module) -> LayerRecord, created at first forward
        self._order = []
        self._handles = []
        self._weights_before = None
        self.param_grad_norms = {}  # full parameter name -> ||grad|| at the end of the last backward

    # ------------------------------------------------------------------ hooks

    def attach(self):
        """Install the hooks (``record`` does this on entry); returns self."""
        if self._handles:
            return self
        self.snapshot_weights()
        names = {id(m): n for n, m in self._targets}
        for name, module in self._targets:
            self._handles.append(module.register_forward_hook(self._forward_hook(name)))
            self._handles.append(module.register_backward_hook(self._backward_hook))
        if id(self.model) not in names:
            self._handles.append(self.model.register_backward_hook(self._model_backward_hook))
        return self

    def detach(self):
        """Remove every hook: the model is back to running at full speed, untouched."""
        for handle in reversed(self._handles):
            handle.remove()
        self._handles = []

    def _record_for(self, name, module):
        key = id(module)
        if key not in self._records:
            self._records[key] = LayerRecord(len(self._order), name, module)
            self._order.append(key)
        return self._records[key]

    def _forward_hook(self, name):
        def hook(module, inputs, output):
            self._record_for(name, module).observe_output(output, self.max_samples)
        return hook

    def _backward_hook(self, module, grad_input, grad_output):
        record = self._records.get(id(module))
        if record is not None:
            record.observe_gradients(grad_input, grad_output)
        if module is self.model:
            self._model_backward_hook(module, grad_input, grad_output)

    def _model_backward_hook(self, module, grad_input, grad_output):
        self.param_grad_norms = {n: array_norm(p.grad) for n, p in self.model.named_parameters()
                                 if p.grad is not None}

    # ------------------------------------------------------------------ results

    @property
    def layers(self):
        """The LayerRecords in forward order."""
        return [self._records[k] for k in self._order]

    def __getitem__(self, name):
        for record in self.layers:
            if record.name == name:
                return record
        raise KeyError(f"Recorder: no recorded layer named {name!r}")

    def table(self):
        """One row per recorded layer (see the module docstring for the columns)."""
        return Table(LAYER_COLUMNS, [r.row() for r in self.layers])

    def column(self, name, types=None):
        """One column of :meth:`table` as a NumPy array, optionally only for layers of ``types``."""
        rows = [r.row() for r in self.layers if types is None or isinstance(r.module, types)]
        return np.array([row[name] for row in rows], dtype=float if name != "name" else object)

    def snapshot_weights(self):
        """Keep a copy of every parameter, so :meth:`update_ratios` can measure a step's change."""
        self._weights_before = {n: p.data.copy() for n, p in self.model.named_parameters()}

    def update_ratios(self, lr=None):
        """``{parameter name: update-to-weight ratio}``.

        With ``lr``: lr * ||grad|| / ||w||, the ratio a plain SGD step of that size would make.
        Without: ||w_now - w_snapshot|| / ||w_snapshot||, measured from the copy taken when the
        block was entered (or by the last :meth:`snapshot_weights`), i.e. the step an optimizer
        really took, momentum and weight decay included. About 1e-3 is the rule of thumb for a
        healthy learning rate; 1e-1 moves weights too fast, 1e-6 barely at all.
        """
        ratios = {}
        for name, p in self.model.named_parameters():
            if lr is not None:
                g = self.param_grad_norms.get(name, array_norm(p.grad) if p.grad is not None else float("nan"))
                ratios[name] = float(lr) * g / max(array_norm(p.data), 1e-300)
            elif self._weights_before is not None:
                before = self._weights_before[name]
                ratios[name] = array_norm(p.data - before) / max(array_norm(before), 1e-300)
        return ratios

    def param_table(self, lr=None):
        """One row per parameter: ||w||, ||grad||, their ratio, and the update-to-weight ratio."""
        updates = self.update_ratios(lr)
        table = Table(PARAM_COLUMNS)
        for name, p in self.model.named_parameters():
            w = array_norm(p.data)
            g = self.param_grad_norms.get(name, float("nan"))
            table.append({"name": name, "shape": "x".join(map(str, p.shape)), "weight_norm": w, "grad_norm": g,
                          "grad_to_weight": g / w if w > 0 else float("nan"),
                          "update_to_weight": updates.get(name, float("nan"))})
        return table

    # ------------------------------------------------------------------ plots

    def plot_gradients(self, path=None, **kwargs):
        """Gradient norm per layer, log scale (see :func:`npcnn.diagnostics.plot_gradient_norms`)."""
        from .plots import plot_gradient_norms

        return plot_gradient_norms({"": self}, path=path, **kwargs)

    def plot_activations(self, path=None, **kwargs):
        """Histogram of each layer's outputs (see :func:`npcnn.diagnostics.plot_activation_histograms`)."""
        from .plots import plot_activation_histograms

        return plot_activation_histograms({"": self}, path=path, **kwargs)


@contextlib.contextmanager
def record(model, modules="leaves", max_samples=4096):
    """Record per-layer statistics of ``model`` inside a ``with`` block.

    ``modules`` picks what gets a row: "leaves" (default: modules without children), "all"
    (containers and residual blocks too), a layer type or tuple of types, a list of names
    from ``model.named_modules()``, or a predicate ``f(name, module)``. ``max_samples`` output
    values per layer are kept for histograms (0 keeps none).
    """
    recorder = Recorder(model, modules, max_samples).attach()
    try:
        yield recorder
    finally:
        recorder.detach()
