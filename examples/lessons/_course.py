"""What every lesson shares: the ``--quick`` switch, where its figures go, and how it states a claim.

A lesson imports this file with ``from _course import setup, claim, all_claims_hold`` (it sits
beside the lessons), so each lesson stays a page of npcnn's public API plus these few helpers.
"""

import argparse
import os
import pathlib
import sys


def setup(name, description=""):
    """Parse the lesson's flags and make its output folder.

    Returns ``(quick, out)``: ``quick`` is True under ``--quick`` (what CI runs: small data, few
    steps), and ``out`` is ``runs/lessons/<name>/`` (or ``$NPCNN_LESSONS_OUT/<name>/``). Unknown
    arguments are ignored, so the same code runs inside a notebook kernel, whose argv is Jupyter's.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small data and few steps (what CI runs)")
    args, _ = parser.parse_known_args(sys.argv[1:] if "ipykernel" not in sys.modules else [])
    root = pathlib.Path(os.environ.get("NPCNN_LESSONS_OUT", "runs/lessons"))
    out = root / name
    out.mkdir(parents=True, exist_ok=True)
    return args.quick, out


_verdicts = []  # (text, holds) of every claim the lesson has made, in order


def claim(text, holds):
    """Print one claim of the lesson with its verdict ([ok] or [FAILED]) and record it; returns
    whether it holds. A lesson ends with ``assert all_claims_hold()``, so every verdict is
    printed before a failing lesson stops."""
    holds = bool(holds)
    _verdicts.append((text, holds))
    print(f"[{'ok' if holds else 'FAILED'}] {text}")
    return holds


def all_claims_hold():
    """True when the lesson made at least one claim and every one of them held (the claims
    that failed are printed again, so the end of the output names them)."""
    failed = [text for text, holds in _verdicts if not holds]
    for text in failed:
        print(f"claim does not hold: {text}")
    return bool(_verdicts) and not failed


def savefig(fig, out, filename):
    """Write a matplotlib figure to ``out/filename`` and return the path (closing the figure)."""
    import matplotlib.pyplot as plt

    path = pathlib.Path(out) / filename
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(f"wrote {path}")
    return path


def flat_digits(n=12000):
    """The first ``n`` MNIST training digits as flat standardized float32 rows, their labels and
    the task's name; 4,000 synthetic shapes (``npcnn.data.shapes``) where MNIST is not found, so
    a lesson still runs (and says so) on a machine without the data."""
    import numpy as np

    from npcnn import data

    try:
        mnist = data.mnist(train=True, normalize=True, download=False)
        images, labels, task = mnist.images[:n], mnist.labels[:n], "MNIST"
    except data.DatasetNotFoundError:
        print("MNIST not found: training on synthetic shapes instead")
        images, labels = data.shapes(4000, size=28, seed=0)
        task = "synthetic shapes"
    x_all = images.reshape(len(images), -1).astype(np.float32)
    return (x_all - x_all.mean()) / x_all.std(), labels, task
