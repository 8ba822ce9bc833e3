"""A per-epoch progress line: batches done, images/s, running loss and accuracy, ETA.

On a terminal, and in a Jupyter notebook (whose output is not a terminal but understands
``"\\r"``), the line is redrawn in place at most ~10 times a second, padded over the previous
one and cut to the terminal's width so it never wraps; when the output is a log file or CI only
the finished epoch's line is printed. The images/s figure counts the training steps only (the
validation pass after them is not in it).
"""

from __future__ import annotations

import shutil
import sys
import time
from typing import Any, Optional


def _format_seconds(seconds):
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _format_value(key, value):
    """Accuracies as percentages, the learning rate with %g (3e-05, not 0.0000), the rest %.4f."""
    if key.endswith("accuracy"):
        return f"{key} {value * 100:.2f}%"
    if key == "lr" or key.endswith("_lr"):
        return f"{key} {value:g}"
    return f"{key} {value:.4f}"


def in_notebook(file: Any) -> bool:
    """True when ``file`` is a Jupyter (ipykernel) output stream: not a TTY, yet ``"\\r"``
    redraws a line there."""
    return type(file).__module__.startswith("ipykernel") and "ipykernel" in sys.modules


def terminal_columns() -> int:
    """The terminal's width in characters (``shutil.get_terminal_size``; 80 when unknown)."""
    columns = shutil.get_terminal_size(fallback=(80, 24)).columns
    return columns if columns > 0 else 80


class ProgressBar:
    """The progress of one epoch.

    Args:
        epoch, epochs: the epoch in progress (1-based) and the last one, for "epoch 2/10".
        total: the number of batches in the epoch (draws the bar and the ETA), or None.
        verbose: 0 silent; 1 a live line on a terminal or in a notebook, one line per epoch
            otherwise; 2 one line per epoch always.
        file: the stream to write to (default ``sys.stdout``).
        columns: the width to fit (default: the terminal's, 80 when unknown).
    """

    width = 24

    def __init__(self, epoch: int, epochs: int, total: Optional[int] = None, verbose: int = 1, file: Any = None,
                 columns: Optional[int] = None) -> None:
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.file = sys.stdout if file is None else file
        self.verbose = int(verbose)
        isatty = getattr(self.file, "isatty", None)
        self.live = self.verbose == 1 and (bool(isatty and isatty()) or in_notebook(self.file))
        self.columns = terminal_columns() if columns is None else int(columns)
        self.start = self.last_draw = time.perf_counter()
        self.train_end: Optional[float] = None  # when the training steps ended (validation time is not counted)
        self.batches = self.images = 0
        self._drawn = 0  # length of the line on screen, to pad over it

    def update(self, batch_size: int, logs: dict[str, Any]) -> None:
        """One batch done; ``logs`` holds the running values (``loss``, ``accuracy``)."""
        self.batches += 1
        self.images += int(batch_size)
        now = time.perf_counter()
        if self.live and (now - self.last_draw >= 0.1 or self.batches == self.total):
            self.last_draw = now
            self._redraw(self._fit(self._parts(logs, now, done=False)))
            self.file.flush()

    def end_training(self) -> None:
        """The training steps of the epoch are over: stop the images/s clock (before validation)."""
        if self.train_end is None:
            self.train_end = time.perf_counter()

    def close(self, logs: dict[str, Any]) -> None:
        """The epoch is over: print its final line (with validation values, if any).

        On a terminal the line is wrapped onto more lines rather than cut, so no value is lost.
        """
        if self.verbose == 0:
            return
        parts = self._parts(logs, time.perf_counter(), done=True)
        if not self.live:
            self.file.write("  ".join(parts) + "\n")
        else:
            lines = self._wrap(self._narrow(parts))
            self._redraw(lines[0])
            self.file.write("".join("\n    " + line for line in lines[1:]) + "\n")
        self._drawn = 0
        self.file.flush()

    def _redraw(self, line):
        self.file.write("\r" + line + " " * max(self._drawn - len(line), 0))
        self._drawn = len(line)

    def _limit(self):
        return max(self.columns - 1, 20)  # writing into the last column wraps on some terminals

    def _narrow(self, parts):
        """``parts`` without the bar's drawing when their line is wider than the terminal."""
        if len("  ".join(parts)) > self._limit() and self.total and len(parts) > 2:
            return [parts[0], parts[1].split("] ")[-1]] + parts[2:]
        return parts

    def _fit(self, parts):
        """One line within the width: the bar dropped if needed, then the end cut off."""
        line, limit = "  ".join(self._narrow(parts)), self._limit()
        return line if len(line) <= limit else line[:limit - 3] + "..."

    def _wrap(self, parts):
        """Parts joined into lines of at most the width (continuation lines are indented by 4)."""
        limit = self._limit()
        lines = [parts[0]]
        for part in parts[1:]:
            room = limit - (4 if len(lines) > 1 else 0)
            if len(lines[-1]) + 2 + len(part) <= room:
                lines[-1] += "  " + part
            else:
                lines.append(part)
        return lines

    def _parts(self, logs, now, done):
        elapsed = max(now - self.start, 1e-9)
        training = max((self.train_end or now) - self.start, 1e-9)
        parts = [f"epoch {self.epoch}/{self.epochs}"]
        if self.total:
            filled = min(int(self.width * self.batches / self.total), self.width)
            bar = "=" * filled + (">" if filled < self.width else "") + " " * (self.width - filled - 1)
            parts.append(f"[{bar[:self.width]}] {self.batches}/{self.total}")
        else:
            parts.append(f"{self.batches} batches")
        parts.append(f"{self.images / training:,.0f} img/s")
        parts.extend(_format_value(key, value) for key, value in logs.items())
        if done:
            parts.append(f"{_format_seconds(elapsed)}")
        elif self.total:
            parts.append(f"ETA {_format_seconds(elapsed / self.batches * max(self.total - self.batches, 0))}")
        return parts
