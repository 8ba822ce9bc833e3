"""Plots of recorded statistics, several runs side by side.

matplotlib is imported inside each function (``pip install matplotlib``), so importing npcnn
never needs it. The figures are built with ``matplotlib.figure.Figure`` (no pyplot, no global
state, no display needed); pass ``path`` to save a PNG, and the Figure is returned either way.
"""

import pathlib

import numpy as np


def _figure(nrows, ncols, width, height, layout="constrained"):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height * nrows), layout=layout)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _save(fig, path):
    if path is not None:
        pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110)
    return fig


def plot_gradient_norms(runs, path=None, column="grad_output_norm", types=None, title=None, ax=None):
    """Gradient norm per layer on a log scale, one line per run.

    ``runs`` is ``{label: Recorder}`` (or a list of ``(label, Recorder)``); ``column`` is any norm
    column of ``Recorder.table()`` ("grad_output_norm", "grad_input_norm", "weight_grad_norm");
    ``types`` keeps only layers of those types (e.g. ``npcnn.nn.Linear``). The x axis is the
    layer's depth (forward order), so vanishing gradients show as a line falling to the left.
    """
    items = list(runs.items()) if isinstance(runs, dict) else list(runs)
    fig = None
    if ax is None:
        fig, axes = _figure(1, 1, 6.4, 4.0)
        ax = axes[0, 0]
    for label, rec in items:
        values = rec.column(column, types)
        ax.semilogy(np.arange(len(values)), np.where(values > 0, values, np.nan), marker=".", label=label or None)
    ax.set_xlabel("layer (forward order)")
    ax.set_ylabel(column.replace("_", " "))
    ax.set_title(title or column.replace("_", " ") + " per layer")
    ax.grid(True, which="both", alpha=0.3)
    if any(label for label, _ in items):
        ax.legend(fontsize=8)
    return _save(fig, path) if fig is not None else ax.figure


def plot_activation_histograms(runs, path=None, types=None, max_layers=8, bins=50, title=None):
    """Histograms of layer outputs: one row per run, one column per layer.

    ``types`` keeps only layers of those types (e.g. the activation layers); at most
    ``max_layers`` evenly spaced layers are shown. The layers of one run share one x range.
    Saturation shows as mass piled at +-1 (tanh) or 0 and 1 (sigmoid), collapse as a spike at 0
    with a tiny range (read the axis labels), a healthy init as a spread that keeps its width from
    layer to layer.
    """
    items = list(runs.items()) if isinstance(runs, dict) else list(runs)
    chosen = []
    for _, rec in items:
        layers = [r for r in rec.layers if r.sample is not None and (types is None or isinstance(r.module, types))]
        if len(layers) > max_layers:
            picks = np.linspace(0, len(layers) - 1, max_layers).round().astype(int)
            layers = [layers[i] for i in picks]
        chosen.append(layers)
    ncols = max((len(c) for c in chosen), default=1) or 1
    # No constrained layout and one filled outline per histogram (not one patch per bin): a
    # 7 x 10 grid then draws in a second instead of fifteen.
    fig, axes = _figure(len(items), ncols, 2.1, 1.7, layout=None)
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.05, top=0.90 if title else 0.95, wspace=0.15, hspace=0.75)
    for row, ((label, _), layers) in enumerate(zip(items, chosen)):
        # One x range per row (per run), so a collapse from layer to layer shows as a spike
        # narrowing at 0 instead of being rescaled away.
        samples = [layer.sample for layer in layers]
        low = min((float(v.min()) for v in samples), default=0.0)
        high = max((float(v.max()) for v in samples), default=1.0)
        if high <= low:
            low, high = low - 0.5, high + 0.5
        for col in range(ncols):
            ax = axes[row, col]
            if col >= len(layers):
                ax.axis("off")
                continue
            layer = layers[col]
            counts, edges = np.histogram(layer.sample, bins=bins, range=(low, high))
            ax.stairs(counts, edges, fill=True, color="C0")
            ax.set_xlim(low, high)
            ax.set_title(f"{layer.name} {layer.type}\nstd {layer.act_std:.2g}", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.set_yticks([])
            if col == 0 and label:
                ax.set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_curves(curves, path=None, xlabel="step", ylabel="loss", title=None, logy=False, ax=None):
    """Line plot of ``{label: sequence}`` (training-loss curves and the like)."""
    fig = None
    if ax is None:
        fig, axes = _figure(1, 1, 6.4, 4.0)
        ax = axes[0, 0]
    for label, values in curves.items():
        values = np.asarray(values, dtype=float)
        ax.plot(np.arange(1, len(values) + 1), values, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path) if fig is not None else ax.figure


def grid(nrows, ncols, width=4.0, height=3.0):
    """An empty ``(Figure, axes)`` grid for benchmarks that put several plots in one PNG."""
    return _figure(nrows, ncols, width, height)


def save(fig, path):
    """Save a figure returned by :func:`grid` (or any function here) as a PNG."""
    return _save(fig, path)
