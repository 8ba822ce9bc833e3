"""``model.summary(input_shape)``: the classic table of layers, output shapes and parameters."""

import sys

import numpy as np

from .. import backend
from ..grad_mode import no_grad


def _leaf_modules(model):
    """Modules that do the work: those with no children, plus any holding its own parameters."""
    for name, module in model.named_modules():
        if module is model and list(module.children()):
            continue
        own = any(p is not None for p in module._parameters.values())
        if own or not list(module.children()):
            yield name or type(module).__name__, module


def summary_rows(model, input_shape, batch_size=1):
    """One row per working layer: ``(name, type, output_shape, parameters)``, in call order."""
    rows, handles = [], []

    def record(name):
        def hook(module, inputs, output):
            shape = tuple(output.shape[1:]) if hasattr(output, "shape") else None
            own = sum(int(p.size) for p in module._parameters.values() if p is not None)
            rows.append((name, type(module).__name__, shape, own))

        return hook

    for name, module in _leaf_modules(model):
        handles.append(module.register_forward_hook(record(name)))
    x = backend.xp().zeros((batch_size, *input_shape), dtype=backend.get_default_dtype())
    was_training = model.training
    try:
        model.eval()
        with no_grad():
            model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return rows


def summary(model, input_shape, file=None):
    """Print and return the table; totals count trainable and frozen parameters separately."""
    rows = summary_rows(model, tuple(input_shape))
    header = ("Layer", "Type", "Output shape", "Params")
    table = [header] + [(n, t, str(s), f"{p:,}") for n, t, s, p in rows]
    widths = [max(len(r[i]) for r in table) for i in range(4)]
    rule = "-" * (sum(widths) + 6)
    lines = [rule, "  ".join(h.ljust(w) for h, w in zip(header, widths)), rule]
    for row in table[1:]:
        lines.append("  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]),
                                row[2].ljust(widths[2]), row[3].rjust(widths[3])]))
    total = model.num_parameters()
    trainable = model.num_parameters(trainable_only=True)
    buffers = sum(int(np.prod(b.shape)) for b in model.buffers())
    lines += [rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", f"Buffer elements: {buffers:,}", rule]
    text = "\n".join(lines)
    print(text, file=file or sys.stdout)
    return text
