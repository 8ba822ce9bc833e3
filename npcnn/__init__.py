"""npcnn: a from-scratch CNN framework on NumPy (CuPy on NVIDIA GPUs) with hand-written backward passes."""

from . import backend, data, diagnostics, distributed, gradcheck, models, nn, optim, serialization, train, transfer, viz
from .backend import (
    get_default_dtype,
    manual_seed,
    set_backend,
    set_default_dtype,
    to_numpy,
    use_backend,
    xp,
)
from .grad_mode import enable_grad, is_grad_enabled, no_grad
from .serialization import load, save

__version__ = "0.1.0"
