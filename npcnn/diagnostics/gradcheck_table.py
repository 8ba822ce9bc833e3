"""Gradient-check many modules into one table: ``gradcheck_all()``.

A :class:`GradcheckCase` names a module factory and its input shapes; ``gradcheck_all`` runs each
case through the one checker, :func:`npcnn.gradcheck.check_module`, in every requested dtype:

* float64: central differences against the analytic backward; a correct backward gives about
  1e-9 or better (tolerance 1e-6);
* float32: the backward run in float32 against central differences of the same module in
  float64 at the same (float32-representable) point, so the error is what float32 arithmetic
  costs the backward, not finite-difference noise. Expect 1e-7 to 1e-5 (tolerance 1e-4).

The registry of every layer and block, ``GRADCHECK_CASES``, lives in
:mod:`npcnn.diagnostics.gradcheck_zoo` (it imports the model zoo, so it is loaded only when first
used). Loss functions are checked through :class:`LossAsModule`, which makes ``loss(pred)`` a
module with a one-element output.
"""

from dataclasses import dataclass

import numpy as np

from .. import backend, nn
from ..gradcheck import check_module
from .table import Table

GRADCHECK_COLUMNS = ["case", "dtype", "max_rel_error", "worst_tensor", "tol", "ok", "entries", "seconds"]


@dataclass
class GradcheckCase:
    """One entry of the registry: ``factory()`` builds the module; ``input_shape`` is one shape,
    or a list of shapes for a module with several inputs. ``max_entries`` checks a random subset
    of each larger tensor; ``eps`` is the finite-difference step (raise it only for a gradient
    that is nearly 0 by construction, where the rounding error of the difference,
    ~1e-16 |L| / eps, dominates)."""

    name: str
    factory: object
    input_shape: object
    max_entries: int = 64
    eps: float = 1e-6

    def input_shapes(self):
        """The input shapes as a list (one entry per input of the module)."""
        return list(self.input_shape) if isinstance(self.input_shape[0], (tuple, list)) else [self.input_shape]

    def inputs(self, seed=0):
        """The case's inputs: float64 N(0, 1) arrays (NumPy), one per input shape, drawn from
        ``default_rng(seed + 1000)``; ``gradcheck_all(seed=s)`` checks at ``inputs(s)``.

        Not ``seed`` itself: the check draws its projection R from default_rng(seed), and an input
        equal to R makes a normalization layer's input gradient vanish
        (dx ~ R - xhat mean(R xhat) = 0).
        """
        generator = np.random.default_rng(seed + 1000)
        return [generator.standard_normal(shape) for shape in self.input_shapes()]


class LossAsModule(nn.Module):
    """``loss(pred, target)`` as a module of ``pred`` alone: out = [loss] (shape (1,)),
    dL/dpred = dout[0] * loss.backward(). The target is fixed at construction (a floating target
    is cast to pred's dtype and device at each forward)."""

    def __init__(self, loss, target):
        super().__init__()
        self.loss, self.target = loss, target

    def forward(self, pred):
        dtype = pred.dtype if np.dtype(self.target.dtype).kind == "f" else None
        target = backend.asarray(self.target, dtype=dtype)  # on pred's device, in pred's precision
        value = self.loss(pred, target)
        return backend.get_array_module(pred).asarray([value], dtype=pred.dtype)

    def backward(self, dout):
        return self.loss.backward(float(dout[0]))


class FixedIndices(nn.Module):
    """A layer of integer ids (``Embedding``) as a module of a float input: out = layer(indices) * x
    for indices fixed at construction; dx = dout * layer(indices), and the layer back-propagates
    dout * x (so its weight gradient is checked through x)."""

    def __init__(self, layer, indices):
        super().__init__()
        self.layer, self.indices = layer, np.asarray(indices)

    def forward(self, x):
        h = self.layer(backend.asarray(self.indices))
        self.save_for_backward((h, x))
        return h * x

    def backward(self, dout):
        h, x = self.pop_saved()
        self.layer.backward(dout * x)
        return dout * h


def gradcheck_all(cases=None, dtypes=("float64", "float32"), names=None, seed=0, verbose=False, file=None):
    """Gradient-check every case in every dtype; one table row per (case, dtype).

    Args:
        cases (list of GradcheckCase, default None): None: the registry ``GRADCHECK_CASES``.
        dtypes (sequence, default ("float64", "float32")): the precisions of the checked
            backward (see :func:`npcnn.gradcheck.check_module`); each case's module is built
            under ``backend.default_dtype(dtype)``.
        names (list of str, default None): keep only the cases whose name contains one of these
            strings (case-insensitive); None keeps every case.
        seed (int, default 0): seeds the module's initialization (``manual_seed(seed)`` before
            each factory call), the inputs (``case.inputs(seed)``) and the check.
        verbose (bool, default False): print each row as it is measured.
        file (text stream, default None): where ``verbose`` prints (None: stdout).

    Returns:
        Table: columns ``GRADCHECK_COLUMNS``: the case, the dtype, the largest relative error
        over the case's tensors, the tensor where it occurred, the tolerance
        (``npcnn.gradcheck.TOLERANCES``), pass/fail, the entries checked and the seconds taken.
    """
    if cases is None:
        from .gradcheck_zoo import GRADCHECK_CASES as cases  # the model zoo, imported when first needed
    if names:
        cases = [c for c in cases if any(n.lower() in c.name.lower() for n in names)]
    table = Table(GRADCHECK_COLUMNS)
    for case in cases:
        for dtype in dtypes:
            dtype = np.dtype(dtype)
            backend.manual_seed(seed)
            with backend.default_dtype(dtype):
                module = case.factory()
            report = check_module(module, *case.inputs(seed), dtype=dtype, seed=seed,
                                  max_entries=case.max_entries, eps=case.eps)
            worst = max(report.tensors, key=lambda t: t.rel_error, default=None)
            row = {"case": case.name, "dtype": dtype.name, "max_rel_error": report.max_rel_error,
                   "worst_tensor": worst.name if worst else "", "tol": report.tol, "ok": report.ok,
                   "entries": sum(t.checked for t in report.tensors), "seconds": report.seconds}
            table.append(row)
            if verbose:
                print(f"{case.name:<40} {dtype.name:<8} {report.max_rel_error:9.2e} "
                      f"{'ok' if report.ok else 'FAIL'} {report.seconds:6.2f} s", file=file, flush=True)
    return table
