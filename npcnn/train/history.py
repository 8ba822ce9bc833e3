"""History: the per-epoch values of a training run (losses, accuracies, learning rate)."""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any

from ..serialization import atomic_write


class History:
    """``history["val_loss"]`` is the list of validation losses, one per epoch.

    ``history.epochs`` holds the epoch numbers (1-based). Keys appear as they are first logged;
    an epoch without a value for some key (e.g. no validation that epoch) stores NaN.
    """

    def __init__(self) -> None:
        self.epochs: list[Any] = []
        self.history: dict[str, list[Any]] = {}

    def append(self, epoch: int, logs: dict[str, Any]) -> None:
        """Record the ``logs`` dict ({name: number}) of ``epoch``."""
        self.epochs.append(int(epoch))
        for key in logs:
            self.history.setdefault(key, [math.nan] * (len(self.epochs) - 1))
        for key, values in self.history.items():
            values.append(float(logs.get(key, math.nan)))

    def __getitem__(self, key: str) -> list[Any]:
        return self.history[key]

    def __contains__(self, key: object) -> bool:
        return key in self.history

    def __len__(self) -> int:
        return len(self.epochs)

    def keys(self) -> Any:
        """The logged names, in the order they first appeared."""
        return self.history.keys()

    def last(self) -> dict[str, Any]:
        """The last epoch's values as a dict."""
        return {k: v[-1] for k, v in self.history.items()} if self.epochs else {}

    def __repr__(self) -> str:
        return f"History(epochs={len(self.epochs)}, keys={list(self.history)})"

    # ------------------------------------------------------------------ state and files

    def state_dict(self) -> dict[str, Any]:
        """``{"epochs": [...], "history": {name: [...]}}`` (JSON-friendly; saved in checkpoints)."""
        return {"epochs": list(self.epochs), "history": {k: list(v) for k, v in self.history.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the contents with a :meth:`state_dict`."""
        if set(state) != {"epochs", "history"}:
            raise KeyError(f"History.load_state_dict: expected keys ['epochs', 'history'], got {sorted(state)}")
        self.epochs = [int(e) for e in state["epochs"]]
        self.history = {k: [float(x) for x in v] for k, v in state["history"].items()}

    def to_json(self, path: Any) -> None:
        """Write {"epoch": [...], "loss": [...], ...} (NaN written as null)."""
        data = {"epoch": self.epochs}
        data.update({k: [None if math.isnan(x) else x for x in v] for k, v in self.history.items()})
        text = json.dumps(data, indent=1).encode("utf-8")
        atomic_write(path, lambda f: f.write(text))

    @classmethod
    def from_json(cls, path: Any) -> History:
        """Read a History written by :meth:`to_json` (null read back as NaN)."""
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        history = cls()
        history.epochs = [int(e) for e in data.pop("epoch")]
        history.history = {k: [math.nan if x is None else float(x) for x in v] for k, v in data.items()}
        return history

    def to_csv(self, path: Any) -> None:
        """One row per epoch: epoch, then one column per key."""
        rows: list[list[Any]] = [["epoch"] + list(self.history)]
        for i, epoch in enumerate(self.epochs):
            rows.append([epoch] + [repr(self.history[k][i]) for k in self.history])
        with open(os.fspath(path), "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)

    def plot(self, path: Any = None, axes: Any = None) -> Any:
        """Loss curves (train vs val) and, when logged, accuracy curves side by side.

        Returns the matplotlib figure; saves it to ``path`` when given. matplotlib is
        imported here, only when a plot is asked for.
        """
        import matplotlib.pyplot as plt

        panels = [name for name in ("loss", "accuracy") if name in self.history or f"val_{name}" in self.history]
        if axes is None:
            fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 3.5), squeeze=False)
            axes = axes[0]
        fig = axes[0].figure
        for ax, name in zip(axes, panels):
            for key, label in ((name, "train"), (f"val_{name}", "val")):
                if key in self.history:
                    ax.plot(self.epochs, self.history[key], marker="o", label=label)
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.grid(True, alpha=0.3)
            ax.legend()
        if path is not None:
            fig.savefig(os.fspath(path), bbox_inches="tight")
        return fig
