"""A per-epoch progress line: batches done, images/s, running loss and accuracy, ETA.

On a terminal the line is redrawn in place (at most ~10 times a second); when the output is
not a terminal (a log file, CI) only the finished epoch's line is printed.
"""

import sys
import time


def _format_seconds(seconds):
    seconds = int(round(seconds))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class ProgressBar:
    """``verbose=0``: silent; ``1``: a live bar on a terminal, one line per epoch otherwise;
    ``2``: one line per epoch always."""

    width = 24

    def __init__(self, epoch, epochs, total=None, verbose=1, file=None):
        self.epoch, self.epochs, self.total = epoch, epochs, total
        self.file = sys.stdout if file is None else file
        self.verbose = int(verbose)
        isatty = getattr(self.file, "isatty", None)
        self.live = self.verbose == 1 and bool(isatty and isatty())
        self.start = self.last_draw = time.perf_counter()
        self.batches = self.images = 0

    def update(self, batch_size, logs):
        """One batch done; ``logs`` holds the running values (``loss``, ``accuracy``)."""
        self.batches += 1
        self.images += int(batch_size)
        now = time.perf_counter()
        if self.live and (now - self.last_draw >= 0.1 or self.batches == self.total):
            self.last_draw = now
            self.file.write("\r" + self._line(logs, now, done=False))
            self.file.flush()

    def close(self, logs):
        """The epoch is over: print its final line (with validation values, if any)."""
        if self.verbose == 0:
            return
        line = self._line(logs, time.perf_counter(), done=True)
        self.file.write(("\r" if self.live else "") + line + "\n")
        self.file.flush()

    def _line(self, logs, now, done):
        elapsed = max(now - self.start, 1e-9)
        parts = [f"epoch {self.epoch}/{self.epochs}"]
        if self.total:
            filled = int(self.width * self.batches / self.total)
            bar = "=" * filled + (">" if filled < self.width else "") + " " * (self.width - filled - 1)
            parts.append(f"[{bar[:self.width]}] {self.batches}/{self.total}")
        else:
            parts.append(f"{self.batches} batches")
        parts.append(f"{self.images / elapsed:,.0f} img/s")
        for key, value in logs.items():
            parts.append(f"{key} {value * 100:.2f}%" if key.endswith("accuracy") else f"{key} {value:.4f}")
        if done:
            parts.append(f"{_format_seconds(elapsed)}")
        elif self.total:
            parts.append(f"ETA {_format_seconds(elapsed / self.batches * (self.total - self.batches))}")
        return "  ".join(parts)
