"""Instruments for seeing why deep networks are hard to train, and for checking their gradients.

* :func:`record` — per-layer activation and gradient statistics of a forward/backward pass,
  through hooks that exist only inside the ``with`` block;
* plots (matplotlib, imported lazily): :func:`plot_gradient_norms`,
  :func:`plot_activation_histograms`, :func:`plot_curves`;
* :func:`deep_mlp` and :func:`init_weights_` — the networks and initializers the experiments use;
* :func:`gradcheck_all` — every case of the registry ``GRADCHECK_CASES`` (every layer and block),
  float64 and float32, in one table, through the one checker :func:`npcnn.gradcheck.check_module`.

``GRADCHECK_CASES`` (in :mod:`npcnn.diagnostics.gradcheck_zoo`) builds blocks of the model zoo,
so it is imported on first use (``from npcnn.diagnostics import GRADCHECK_CASES`` or
``gradcheck_all()``), not by ``import npcnn.diagnostics``.
"""

from .gradcheck_table import GRADCHECK_COLUMNS, GradcheckCase, LossAsModule, gradcheck_all
from .nets import ACTIVATIONS, INITS, deep_mlp, init_linear_, init_weights_
from .plots import plot_activation_histograms, plot_curves, plot_gradient_norms
from .recorder import LayerRecord, Recorder, array_norm, grad_norm, record
from .table import Table

__all__ = ["record", "Recorder", "gradcheck_all", "GRADCHECK_CASES", "GRADCHECK_COLUMNS", "GradcheckCase",
           "LossAsModule", "LayerRecord", "Table", "array_norm", "grad_norm",
           "plot_gradient_norms", "plot_activation_histograms", "plot_curves",
           "deep_mlp", "init_weights_", "init_linear_", "INITS", "ACTIVATIONS"]


def __getattr__(name):
    # PEP 562: ``GRADCHECK_CASES`` is loaded (with the model zoo it uses) on first access only
    if name == "GRADCHECK_CASES":
        from .gradcheck_zoo import GRADCHECK_CASES

        return GRADCHECK_CASES
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
