"""Numerical gradient checking: central differences in float64 against the analytic backward.

The scalar checked is a random projection of the output, L = sum(out * R) with R ~ N(0, 1), so
one backward pass (with dout = R) gives the analytic gradient of every input and parameter, and
each numerical derivative is

    dL/dtheta_i  ~=  (L(theta_i + eps) - L(theta_i - eps)) / (2 eps)        (error O(eps^2))

For each tensor the report gives the largest difference between the two, relative to the largest
gradient magnitude in that tensor:

    rel_error = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|)

(an element-wise ratio would blow up on entries that are zero up to rounding). In float64 with
eps = 1e-6 a correct backward gives about 1e-9 or better; a wrong one gives 1e-2 or worse.

``check_module(module, x, dtype=np.float32)`` checks the float32 backward against the float64
central differences at the same point: the error is then float32's rounding (1e-7 to 1e-5), and
the default tolerance ``TOLERANCES["float32"]`` is 1e-4. ``check_function`` checks a pure kernel
pair, ``check_loss`` a loss; ``npcnn.diagnostics.gradcheck_all`` runs the registry of every
layer and block (``python -m npcnn gradcheck --all``).
"""

import copy
import time
from dataclasses import dataclass, field

import numpy as np

from . import backend

# The default tolerance of each checked precision (relative error; see the module docstring)
TOLERANCES = {"float64": 1e-6, "float32": 1e-4}


@dataclass
class TensorCheck:
    """The check of one tensor: its ``name`` ("input", "weight", "0.bias" ...), ``shape``, the
    relative and absolute errors (see the module docstring) and how many entries were ``checked``."""

    name: str
    shape: tuple
    rel_error: float
    abs_error: float
    checked: int


@dataclass
class GradcheckReport:
    """Per-tensor errors of one check; ``report.ok`` compares every one with ``tol``."""

    title: str
    tensors: list = field(default_factory=list)
    tol: float = 1e-6
    seconds: float = 0.0

    @property
    def max_rel_error(self):
        """The largest relative error over the tensors (0.0 for a check of no tensor)."""
        return max((t.rel_error for t in self.tensors), default=0.0)

    @property
    def ok(self):
        """True when every tensor's relative error is below ``tol``."""
        return self.max_rel_error < self.tol

    def __str__(self):
        lines = [f"gradcheck {self.title}: {'PASS' if self.ok else 'FAIL'} "
                 f"(max rel. error {self.max_rel_error:.2e}, tol {self.tol:.0e}, {self.seconds:.2f} s)"]
        for t in self.tensors:
            lines.append(f"  {t.name:<28} {str(t.shape):<18} rel {t.rel_error:9.2e}  abs {t.abs_error:9.2e}"
                         f"  ({t.checked} entries)")
        return "\n".join(lines)

    def assert_ok(self):
        """Raise AssertionError with the whole report when the check failed; else return self."""
        if not self.ok:
            raise AssertionError(str(self))
        return self


def _relative_error(analytic, numeric):
    analytic, numeric = backend.to_numpy(analytic), backend.to_numpy(numeric)
    diff = float(np.max(np.abs(analytic - numeric), initial=0.0))
    scale = max(float(np.max(np.abs(analytic), initial=0.0)), float(np.max(np.abs(numeric), initial=0.0)))
    return (diff / scale if scale > 0 else diff), diff


def _indices(array, max_entries, generator):
    """All flat indices of ``array``, or a random subset of ``max_entries`` of them."""
    if max_entries is None or array.size <= max_entries:
        return np.arange(array.size)
    return np.sort(generator.choice(array.size, size=max_entries, replace=False))


def numerical_gradient(f, array, indices, eps=1e-6):
    """Central-difference dL/darray at ``indices`` (flat), perturbing ``array`` in place.

    ``array`` may be a non-contiguous view; each entry is restored after use.

    Args:
        f (callable): ``f() -> float``, the scalar L computed from the current ``array``.
        array (float64 array): the variable, perturbed in place (one entry at a time).
        indices (sequence of ints): flat indices into ``array`` to differentiate.
        eps (float, default 1e-6): the step: (f(a + eps) - f(a - eps)) / (2 eps).

    Returns:
        float64 NumPy array of len(indices): the numerical derivatives.
    """
    grad = np.zeros(len(indices))
    for k, flat in enumerate(indices):
        index = np.unravel_index(int(flat), array.shape)
        original = float(array[index])
        array[index] = original + eps
        plus = f()
        array[index] = original - eps
        minus = f()
        array[index] = original
        grad[k] = (plus - minus) / (2 * eps)
    return grad


def _compare(name, analytic, array, f, eps, max_entries, generator):
    indices = _indices(array, max_entries, generator)
    numeric = numerical_gradient(f, array, indices, eps)
    analytic = backend.to_numpy(analytic).astype(np.float64).reshape(-1)[indices]
    rel, absolute = _relative_error(analytic, numeric)
    return TensorCheck(name, tuple(array.shape), rel, absolute, len(indices))


def check_module(module, *inputs, dtype=np.float64, eps=1e-6, tol=None, seed=0, max_entries=None,
                 check_inputs=True, copy_module=True):
    """Gradient-check ``module`` at ``inputs``, for every input and trainable parameter, with the
    backward computed in ``dtype``.

    The module is copied and cast to ``dtype``, the inputs are cast to ``dtype``, and one forward
    and backward (dout = a fixed random projection R) give the analytic gradients. The reference
    is the central difference of L = sum(out * R) computed in float64: for ``dtype`` float64 by
    the same module, for a lower precision by a float64 copy of the ``dtype`` module at the very
    same (``dtype``-representable) values, so the reported error is the rounding error of the
    ``dtype`` backward alone, not finite-difference noise. Random layers (dropout) see the same
    random numbers in every evaluation: the generator is reseeded before each forward and
    restored at the end. The check also fails if ``backward`` modified its ``dout`` in place.

    Args:
        module (Module): the layer or block; it is left untouched unless ``copy_module=False``.
        *inputs (arrays): one array per argument of ``module``'s forward. In float64 an input
            that already is float64 is used as the same object, so a non-contiguous view stays
            non-contiguous.
        dtype (default float64): the precision of the checked backward. float64 checks the
            formulas (a correct backward gives about 1e-9); float32 measures what float32
            arithmetic costs them (about 1e-7 to 1e-5).
        eps (float, default 1e-6): the central-difference step, in the units of the perturbed
            entry. Raise it only for a gradient that is nearly 0 by construction, where the
            rounding error of the difference (~1e-16 |L| / eps) dominates.
        tol (float, default None): the largest relative error that passes;
            None: ``TOLERANCES[dtype]`` (1e-6 for float64, 1e-4 for float32).
        seed (int, default 0): seeds R, the entry subsets, and (as seed + 1) the random layers.
        max_entries (int, default None): check a random subset of that many entries of each
            larger tensor (None: every entry).
        check_inputs (bool, default True): False checks only the parameters.
        copy_module (bool, default True): False checks ``module`` itself (it must already be
            in ``dtype``; its gradients and random state are changed).

    Returns:
        GradcheckReport: one TensorCheck per input ("input", or "input0", "input1" ...) and per
        trainable parameter (named as in ``named_parameters``); call ``.assert_ok()`` in tests.
    """
    start = time.perf_counter()
    dtype = np.dtype(dtype)
    tol = TOLERANCES.get(dtype.name, 1e-4) if tol is None else tol
    low = copy.deepcopy(module).to(dtype) if copy_module else module
    ref = low if dtype == np.float64 else copy.deepcopy(low).to(np.float64)
    xs_low = [backend.asarray(x, dtype=dtype) for x in inputs]
    xs_ref = xs_low if dtype == np.float64 else [x.astype(np.float64) for x in xs_low]
    title = type(module).__name__ if dtype == np.float64 else f"{type(module).__name__} ({dtype.name})"
    report = GradcheckReport(title, tol=tol)
    saved_state = backend.get_rng_state()
    generator = np.random.default_rng(seed)
    try:
        def forward(net, xs):
            backend.manual_seed(seed + 1)
            return net(*xs)

        projection = backend.asarray(generator.standard_normal(forward(low, xs_low).shape))
        dxs = _backward(low, forward, xs_low, projection.astype(dtype))

        def loss():
            return float((forward(ref, xs_ref) * projection).sum())

        pairs = []
        if check_inputs:
            pairs += [(f"input{i if len(xs_ref) > 1 else ''}", dx, x) for i, (dx, x) in enumerate(zip(dxs, xs_ref))]
        for (name, p_low), p_ref in zip(low.named_parameters(), ref.parameters()):
            if p_low.requires_grad:
                pairs.append((name, p_low.grad if p_low.grad is not None else p_low.data * 0, p_ref.data))
        for name, analytic, array in pairs:
            report.tensors.append(_compare(name, analytic, array, loss, eps, max_entries, generator))
    finally:
        backend.set_rng_state(saved_state)
    report.seconds = time.perf_counter() - start
    return report


def _backward(module, forward, xs, dout):
    """zero_grad, forward, backward(dout): the analytic gradients of the inputs, as a tuple
    (one per input); raises if backward modified ``dout`` in place (it may feed two branches)."""
    module.zero_grad()
    forward(module, xs)
    sent = dout.copy()
    dxs = module.backward(sent)
    if not bool((sent == dout).all()):
        raise AssertionError(f"{type(module).__name__}.backward modified dout in place")
    return (dxs,) if len(xs) == 1 else dxs


def check_loss(loss_fn, pred, target, eps=1e-6, tol=1e-6):
    """Gradient-check a loss: ``loss_fn(pred, target)`` is a float, ``loss_fn.backward()`` its dpred.

    ``pred`` is cast to float64 and every entry is checked; ``target`` is passed as it is.
    ``eps`` is the central-difference step, ``tol`` the relative error that passes. Returns a
    GradcheckReport with one tensor, "pred".
    """
    start = time.perf_counter()
    pred = backend.asarray(pred, dtype=np.float64)
    loss_fn(pred, target)
    dpred = loss_fn.backward()
    report = GradcheckReport(type(loss_fn).__name__, tol=tol)
    indices = np.arange(pred.size)
    numeric = numerical_gradient(lambda: float(loss_fn(pred, target)), pred, indices, eps)
    rel, absolute = _relative_error(backend.to_numpy(dpred).reshape(-1), numeric)
    report.tensors.append(TensorCheck("pred", tuple(pred.shape), rel, absolute, pred.size))
    report.seconds = time.perf_counter() - start
    return report


def check_function(forward, backward, arrays, names=None, eps=1e-6, tol=1e-6, seed=0, max_entries=None):
    """Gradient-check a pure kernel pair.

    ``forward(*arrays) -> (out, cache)`` and ``backward(dout, cache) -> tuple of gradients``, one
    per array (None for an array not differentiated). Arrays are float64 and perturbed in place.

    Args:
        forward, backward (callables): the kernel pair, e.g. ``conv2d_forward`` with its
            options bound by a lambda, and ``conv2d_backward``.
        arrays (list of float64 arrays): the differentiable arguments of ``forward``.
        names (list of str, default None): report names; None: "arg0", "arg1", ...
        eps (float, default 1e-6): the central-difference step.
        tol (float, default 1e-6): the relative error that passes.
        seed (int, default 0): seeds the projection R (L = sum(out * R)) and the entry subsets.
        max_entries (int, default None): check a random subset of each larger array.
    """
    start = time.perf_counter()
    generator = np.random.default_rng(seed)
    out, cache = forward(*arrays)
    projection = backend.asarray(generator.standard_normal(out.shape))
    grads = backward(projection.copy(), cache)
    names = names or [f"arg{i}" for i in range(len(arrays))]
    report = GradcheckReport(getattr(forward, "__name__", "function"), tol=tol)

    def loss():
        return float((forward(*arrays)[0] * projection).sum())

    for name, array, grad in zip(names, arrays, grads):
        if grad is not None:
            report.tensors.append(_compare(name, grad, array, loss, eps, max_entries, generator))
    report.seconds = time.perf_counter() - start
    return report


__all__ = ["check_module", "check_loss", "check_function", "numerical_gradient", "GradcheckReport", "TensorCheck",
           "TOLERANCES"]
