"""Instruments for seeing why deep networks are hard to train.

* :func:`record` — per-layer activation and gradient statistics of a forward/backward pass,
  through hooks that exist only inside the ``with`` block;
* plots (matplotlib, imported lazily): :func:`plot_gradient_norms`,
  :func:`plot_activation_histograms`, :func:`plot_curves`;
* :func:`deep_mlp` and :func:`init_weights_` — the networks and initializers the experiments use;
* :func:`gradcheck_all` — every layer and block, float64 and float32, in one table.
"""

from .gradcheck_zoo import GRADCHECK_CASES, GradcheckCase, LossAsModule, check_module_dtype, gradcheck_all
from .nets import ACTIVATIONS, INITS, deep_mlp, init_linear_, init_weights_
from .plots import plot_activation_histograms, plot_curves, plot_gradient_norms
from .recorder import LayerRecord, Recorder, array_norm, grad_norm, record
from .table import Table

__all__ = ["record", "Recorder", "gradcheck_all", "GRADCHECK_CASES", "GradcheckCase", "LossAsModule",
           "check_module_dtype", "LayerRecord", "Table", "array_norm", "grad_norm",
           "plot_gradient_norms", "plot_activation_histograms", "plot_curves",
           "deep_mlp", "init_weights_", "init_linear_", "INITS", "ACTIVATIONS"]
