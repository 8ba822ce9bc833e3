"""What a finished run leaves behind, written the same way by the CLI and every example."""

import json
import os

from ..serialization import atomic_write, save


def save_run(out, model, history, result):
    """Write ``model.npz``, ``history.json``, ``result.json`` (the ``result`` dict) and, when
    matplotlib is installed, ``curves.png`` into the folder ``out``; returns the list of files."""
    os.makedirs(out, exist_ok=True)
    paths = [os.path.join(out, name) for name in ("model.npz", "history.json", "result.json")]
    save(model, paths[0])
    history.to_json(paths[1])
    text = json.dumps(result, indent=2).encode("utf-8")
    atomic_write(paths[2], lambda f: f.write(text))
    try:
        history.plot(os.path.join(out, "curves.png"))
        paths.append(os.path.join(out, "curves.png"))
    except ImportError:
        print("(matplotlib is not installed: no curves.png; pip install npcnn[plot])")
    return paths
