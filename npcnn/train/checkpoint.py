"""Training checkpoints: everything needed to resume a run bit for bit, in one ``.npz`` file.

A checkpoint holds the model's parameters and buffers, the optimizer's hyperparameters and
buffers, the scheduler, the epoch, npcnn's random generator state, the loader's shuffling state
(when the loader has ``state_dict()``), the History and any extra JSON-friendly values.

Layout (``np.load(path, allow_pickle=False)`` reads it; nothing in it is code):

    "model/<name>"        each parameter and buffer
    "optimizer/<n>" ...   each array found inside the optimizer's or scheduler's state dict
    "__meta__"            a 0-d string array: JSON of every non-array value, where each array
                          appears as {"__array__": "<its key>"}

The file is written atomically (:func:`npcnn.serialization.atomic_write`): a crash while saving
leaves the previous checkpoint as it was.
"""

import json
import os
from collections import OrderedDict
from typing import Any, Optional

import numpy as np

from .. import backend, serialization

FORMAT = "npcnn-checkpoint"
VERSION = 1


def save_checkpoint(path: serialization.PathLike, model: Any, optimizer: Any = None, scheduler: Any = None,
                    epoch: int = 0, history: Any = None, loader: Any = None, extra: Optional[dict] = None) -> None:
    """Write a checkpoint of a training run to ``path`` (a ``.npz`` file), atomically."""
    if os.path.splitext(os.fspath(path))[1].lower() != ".npz":
        raise ValueError(f"save_checkpoint: {os.fspath(path)!r}: checkpoints are .npz files")
    arrays = OrderedDict((f"model/{k}", backend.to_numpy(v)) for k, v in model.state_dict().items())
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "epoch": int(epoch),
        "optimizer": None if optimizer is None else _pack(optimizer.state_dict(), "optimizer", arrays),
        "scheduler": None if scheduler is None else _pack(scheduler.state_dict(), "scheduler", arrays),
        "rng": backend.get_rng_state(),
        "loader": _pack(loader.state_dict(), "loader", arrays) if hasattr(loader, "state_dict") else None,
        "history": None if history is None else history.state_dict(),
        "extra": None if extra is None else _pack(extra, "extra", arrays),
    }
    arrays["__meta__"] = np.array(json.dumps(meta))
    # looked up at call time, so a test can make the writer fail halfway
    serialization.atomic_write(path, lambda f: serialization._write_npz(f, arrays))


def load_checkpoint(path: serialization.PathLike, model: Any = None, optimizer: Any = None, scheduler: Any = None,
                    loader: Any = None, history: Any = None, restore_rng: bool = True, strict: bool = True) -> dict:
    """Restore what a checkpoint holds into the objects given; return the rest as a dict.

    The dict has ``epoch``, ``extra``, ``history`` (a state dict) and ``model`` (the model's
    ``{name: array}``). Asking to restore something the checkpoint lacks is an error.
    """
    arrays = serialization.read_npz(path)
    meta = _read_meta(arrays, os.fspath(path))
    model_state = OrderedDict((k[len("model/"):], v) for k, v in arrays.items() if k.startswith("model/"))
    if model is not None:
        model.load_state_dict(model_state, strict=strict)
    for name, target in (("optimizer", optimizer), ("scheduler", scheduler), ("loader", loader)):
        if target is None or (name == "loader" and not hasattr(target, "load_state_dict")):
            continue
        if meta[name] is None:
            raise KeyError(f"load_checkpoint: the checkpoint holds no {name} state")
        target.load_state_dict(_unpack(meta[name], arrays))
    if history is not None and meta["history"] is not None:
        history.load_state_dict(meta["history"])
    if restore_rng and meta["rng"] is not None:
        backend.set_rng_state(meta["rng"])
    extra = None if meta["extra"] is None else _unpack(meta["extra"], arrays)
    return {"epoch": meta["epoch"], "extra": extra, "history": meta["history"], "model": model_state}


_META_FIELDS = ("epoch", "optimizer", "scheduler", "rng", "loader", "history", "extra")


def _read_meta(arrays, source):
    """The checkpoint's ``__meta__`` JSON, removed from ``arrays``, checked field by field."""
    if "__meta__" not in arrays:
        raise serialization.FileFormatError(
            f"{source}: not an npcnn checkpoint (no '__meta__' entry); a weights file saved with "
            "npcnn.save loads with npcnn.load and model.load_state_dict")
    raw = arrays.pop("__meta__")
    try:
        meta = json.loads(str(raw[()]) if raw.dtype.kind == "U" and raw.ndim == 0 else "not a string")
    except (json.JSONDecodeError, RecursionError) as err:
        raise serialization.FileFormatError(
            f"{source}: the checkpoint's '__meta__' entry is corrupt (not valid JSON: {err}); "
            "resume from another checkpoint (e.g. best.npz or an older copy)") from None
    if not isinstance(meta, dict):
        raise serialization.FileFormatError(f"{source}: the checkpoint's '__meta__' must be a JSON object")
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise serialization.FileFormatError(
            f"{source}: unsupported checkpoint format {meta.get('format')!r} version {meta.get('version')!r} "
            f"(this npcnn reads {FORMAT!r} version {VERSION})")
    missing = [name for name in _META_FIELDS if name not in meta]
    if missing or not isinstance(meta["epoch"], int):
        raise serialization.FileFormatError(
            f"{source}: the checkpoint's '__meta__' lacks or garbles the field(s) {missing or ['epoch']}; "
            "resume from another checkpoint")
    _check_array_refs(meta, arrays, source)
    return meta


def _check_array_refs(value, arrays, source):
    """Every {"__array__": key} in the metadata must name an array of the file."""
    if isinstance(value, dict):
        if set(value) == {"__array__"} and value["__array__"] not in arrays:
            raise serialization.FileFormatError(
                f"{source}: '__meta__' refers to the array {value['__array__']!r}, which the file lacks "
                "(corrupt checkpoint); resume from another checkpoint")
        for v in value.values():
            _check_array_refs(v, arrays, source)
    elif isinstance(value, list):
        for v in value:
            _check_array_refs(v, arrays, source)


def _pack(value, key, arrays):
    """A JSON-friendly copy of ``value``; arrays move into ``arrays`` under keys from ``key``."""
    if isinstance(value, dict):
        return {str(k): _pack(v, f"{key}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_pack(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arrays[key] = backend.to_numpy(value)
        return {"__array__": key}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot store {type(value).__name__} at '{key}'; "
                    "only arrays, numbers, strings, lists and dicts")


def _unpack(value, arrays):
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return arrays[value["__array__"]]
        return {k: _unpack(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_unpack(v, arrays) for v in value]
    return value
