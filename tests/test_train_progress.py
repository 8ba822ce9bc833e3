"""The progress line (padding, terminal width, %g learning rate, training-only img/s, Jupyter) and
the CSVLogger callback."""

import csv
import io
import re
import sys
import time
import types

import pytest
from test_train_guards import batches, blobs

from npcnn import nn, optim, train


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def screen(text):
    """What a terminal shows after ``text``: "\\r" returns to the start of the line and
    overwrites, "\\n" starts a new line."""
    lines, current, cursor = [], [], 0
    for char in text:
        if char == "\r":
            cursor = 0
        elif char == "\n":
            lines.append("".join(current))
            current, cursor = [], 0
        else:
            if cursor < len(current):
                current[cursor] = char
            else:
                current.append(char)
            cursor += 1
    if current:
        lines.append("".join(current))
    return lines


def segments(text):
    """Every piece drawn between carriage returns and newlines."""
    return [s for s in re.split(r"[\r\n]", text) if s]


def test_a_shorter_redraw_leaves_no_stale_characters():
    out = _Terminal()
    bar = train.ProgressBar(1, 1, total=3, verbose=1, file=out, columns=200)
    bar.last_draw = -1.0
    bar.update(8, {"loss": 123456.789, "accuracy": 0.5, "top5_accuracy": 0.75})
    long_line = screen(out.getvalue())[-1]
    bar.last_draw = -1.0
    bar.update(8, {"loss": 0.5})
    shown = screen(out.getvalue())[-1]
    assert len(shown) >= len(long_line)  # padded over the longer line
    assert shown.rstrip().endswith("loss 0.5000  ETA 0:00") and "top5" not in shown


@pytest.mark.parametrize("columns", [80, 60])
def test_every_line_fits_the_terminal(columns, monkeypatch):
    monkeypatch.setenv("COLUMNS", str(columns))
    x, y = blobs(60, seed=1)
    out = _Terminal()
    model = nn.Sequential(nn.Linear(2, 3))
    train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=3e-5), batches(x, y, 20), epochs=2,
              val_loader=[(x, y)], metrics=("accuracy", "top2"), verbose=1, file=out)
    text = out.getvalue()
    assert max(len(s) for s in segments(text)) <= columns - 1
    lines = screen(text)
    # the final lines keep every value: wrapped, not cut
    start = max(i for i, line in enumerate(lines) if line.startswith("epoch 2/2"))
    final = " ".join(lines[start:])
    for part in ("epoch 2/2", "img/s", "loss ", "top2_accuracy ", "val_loss ", "val_top2_accuracy ", "lr 3e-05"):
        assert part in final, (part, lines)


def test_terminal_width_defaults_to_80_when_unknown(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    monkeypatch.setattr("shutil.get_terminal_size", lambda fallback=(80, 24): __import__("os").terminal_size(fallback))
    assert train.ProgressBar(1, 1, file=io.StringIO()).columns == 80


def test_learning_rate_is_printed_with_g():
    out = io.StringIO()
    bar = train.ProgressBar(1, 1, total=1, verbose=2, file=out)
    bar.update(4, {"loss": 1.0})
    bar.close({"loss": 1.0, "lr": 3e-5})
    assert "lr 3e-05" in out.getvalue() and "lr 0.0000" not in out.getvalue()


def test_images_per_second_counts_the_training_steps_only(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: clock[0])

    class Ticking(list):
        """Batches that take one second each."""

        def __iter__(self):
            for item in list.__iter__(self):
                clock[0] += 1.0
                yield item

    class SlowValidation(list):
        def __iter__(self):
            clock[0] += 1000.0  # a validation pass far longer than the training
            yield from list.__iter__(self)

    x, y = blobs(60, seed=2)
    out = io.StringIO()
    model = nn.Sequential(nn.Linear(2, 3))
    train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), Ticking(batches(x, y, 20)),
              epochs=1, val_loader=SlowValidation([(x, y)]), verbose=2, file=out)
    rate = float(re.search(r"([\d,]+) img/s", out.getvalue()).group(1).replace(",", ""))
    assert rate == 20.0  # 60 images in 3 seconds of training, not 60 in 1003
    assert "16:43" in out.getvalue()  # the epoch's total time still includes validation


def test_jupyter_output_is_redrawn_in_place(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    OutStream = type("OutStream", (io.StringIO,), {"__module__": "ipykernel.iostream"})
    out = OutStream()
    assert not out.isatty()
    bar = train.ProgressBar(1, 1, total=2, verbose=1, file=out)
    assert bar.live
    bar.last_draw = -1.0
    bar.update(4, {"loss": 1.0})
    bar.close({"loss": 1.0})
    assert out.getvalue().count("\r") == 2 and "ETA" in out.getvalue()
    # a plain non-terminal stream stays one line per epoch
    assert not train.ProgressBar(1, 1, total=2, verbose=1, file=io.StringIO()).live


# ----------------------------------------------------------------------------- CSVLogger


class ReadBack(train.Callback):
    """Reads the CSV file at each epoch end, after the logger (it runs second)."""

    def __init__(self, path):
        self.path, self.rows_seen = path, []

    def on_epoch_end(self, trainer, epoch, logs):
        with open(self.path, newline="") as f:
            self.rows_seen.append(len(list(csv.reader(f))))


def test_csv_logger_appends_one_flushed_row_per_epoch(tmp_path):
    path = tmp_path / "log.csv"
    x, y = blobs(40, seed=3)
    model = nn.Sequential(nn.Linear(2, 3))
    reader = ReadBack(path)
    history = train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches(x, y, 20),
                        epochs=3, val_loader=[(x, y)], callbacks=[train.CSVLogger(path), reader], verbose=0)
    assert reader.rows_seen == [2, 3, 4]  # the header and one row per finished epoch, as the run goes
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr"]
    assert [int(r[0]) for r in rows[1:]] == [1, 2, 3]
    assert [float(r[1]) for r in rows[1:]] == history["loss"]  # exact (repr)

    # append=True continues the file under the same header; separator is Keras's argument
    train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches(x, y, 20), epochs=5,
              initial_epoch=3, callbacks=[train.CSVLogger(path, append=True)], verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert [r[0] for r in rows] == ["epoch", "1", "2", "3", "4", "5"]
    assert rows[4][3] == "NA" and rows[4][5] == "0.1"  # no validation in the second run

    train.fit(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1), batches(x, y, 20), epochs=1,
              callbacks=[train.CSVLogger(path, separator=";")], verbose=0)
    assert path.read_text().splitlines()[0] == "epoch;loss;accuracy;lr"
    with pytest.raises(ValueError, match="separator must be one character"):
        train.CSVLogger(path, separator=";;")
