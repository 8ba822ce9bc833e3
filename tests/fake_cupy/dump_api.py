"""Write ``cupy_api.json``: the public names and call signatures of an installed CuPy.

The fake CuPy beside this file (see ``cupy/__init__.py``) answers only what this inventory lists,
with the parameters listed here, so code that runs on the fake calls nothing CuPy lacks. Run it
where the real CuPy imports (no GPU needed; for ``cupy.cuda.nccl`` put libnccl on the library path,
e.g. from the ``nvidia-nccl-cu12`` wheel)::

    LD_LIBRARY_PATH=.../nvidia/nccl/lib python tests/fake_cupy/dump_api.py
"""

import importlib
import inspect
import json
import re
import sys
import pathlib
import warnings

NAMESPACES = [
    "cupy", "cupy.lib.stride_tricks", "cupy.random", "cupy.fft", "cupy.linalg", "cupy.cuda",
    "cupy.cuda.runtime", "cupy.cuda.nccl", "cupyx", "cupyx.scipy.fft", "cupyx.scipy.special",
]
CLASSES = [
    "cupy.ndarray", "cupy.ufunc", "cupy.random.Generator", "cupy.cuda.Stream", "cupy.cuda.Event",
    "cupy.cuda.Device", "cupy.cuda.MemoryPointer", "cupy.cuda.nccl.NcclCommunicator",
]


def parameters(obj):
    """[[name, kind, has_default], ...] of ``obj``'s signature, or None where it can't be read."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return parameters_from_doc(obj)
    found = [[p.name, p.kind.name, p.default is not inspect.Parameter.empty] for p in signature.parameters.values()
             if p.name != "self"]
    if [kind for _, kind, _ in found] == ["VAR_POSITIONAL", "VAR_KEYWORD"]:
        return parameters_from_doc(obj) or found  # a Cython method's generic (*args, **kwargs)
    return found


def split_top_level(text):
    """Split ``text`` at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char in "([{"
        depth -= char in ")]}"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return parts + [current] if current.strip() else parts


def parameters_from_doc(obj):
    """Parameters from the signature line Cython writes at the top of a docstring:
    ``ndarray.astype(self, dtype, order='K', casting=None, subok=None, copy=True)``."""
    first = (getattr(obj, "__doc__", None) or "").strip().splitlines()[:1]
    match = re.match(r"^[\w.]+\((.*)\)", first[0]) if first else None
    if match is None:
        return None
    found, kind = [], "POSITIONAL_OR_KEYWORD"
    for part in split_top_level(match.group(1)):
        part = part.strip()
        if part in ("", "self"):
            continue
        if part == "*":
            kind = "KEYWORD_ONLY"
            continue
        if part.startswith("**"):
            found.append([part[2:].split("=")[0].split()[-1], "VAR_KEYWORD", False])
            continue
        if part.startswith("*"):
            found.append([part[1:].split()[-1], "VAR_POSITIONAL", False])
            kind = "KEYWORD_ONLY"
            continue
        name, has_default = part.split("=")[0].split()[-1], "=" in part
        found.append([name, kind, has_default])
    return found


def ufunc_keywords(ufunc):
    """The keywords a CuPy ufunc call takes, from its docstring's first line:
    ``add(x1, x2, /, out=None, \\*, casting='same_kind', dtype=None)`` -> [out, casting, dtype]."""
    first = (ufunc.__doc__ or "").strip().splitlines()[:1]
    match = re.match(r"^[\w.]+\((.*)\)", first[0]) if first else None
    if match is None or "/" not in match.group(1):
        return None
    after_slash = match.group(1).split("/", 1)[1]
    return [part.split("=")[0].strip() for part in after_slash.split(",") if "=" in part]


def describe(obj):
    if inspect.ismodule(obj):
        return {"kind": "module"}
    if inspect.isclass(obj):
        return {"kind": "class", "params": parameters_from_doc(obj)}  # None: not documented
    if hasattr(obj, "nin") and hasattr(obj, "nout"):
        return {"kind": "ufunc", "keywords": ufunc_keywords(obj)}
    if callable(obj):
        return {"kind": "function", "params": parameters(obj)}
    if isinstance(obj, (bool, int, float, str)):
        return {"kind": "value", "value": obj}  # constants such as NCCL_FLOAT32
    return {"kind": "value"}


def resolve(dotted):
    module_name, _, attribute = dotted.rpartition(".")
    return getattr(importlib.import_module(module_name), attribute)


def main():
    warnings.simplefilter("ignore")
    here = pathlib.Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if pathlib.Path(p or ".").resolve() != here]  # not the fake beside us
    import cupy

    if getattr(cupy, "__fake__", False):
        raise SystemExit("dump_api.py found the fake CuPy: run it where the real CuPy is importable")

    api = {"cupy_version": cupy.__version__, "namespaces": {}, "classes": {}}
    for name in NAMESPACES:
        module = importlib.import_module(name)
        api["namespaces"][name] = {n: describe(getattr(module, n)) for n in dir(module) if not n.startswith("_")}
    for name in CLASSES:
        cls = resolve(name)
        members = {n: describe(getattr(cls, n)) for n in dir(cls) if not n.startswith("_") or n == "__init__"}
        api["classes"][name] = members
    path = pathlib.Path(__file__).with_name("cupy_api.json")
    path.write_text(json.dumps(api, indent=0, sort_keys=True) + "\n")
    print(f"wrote {path} (CuPy {cupy.__version__})")


if __name__ == "__main__":
    main()
