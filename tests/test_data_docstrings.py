"""Every public name of npcnn.data (and the distributed loader and sampler) answers help(), and the
functions whose arguments change what they return describe each argument."""

import importlib
import inspect
import pkgutil

import pytest

import npcnn.data
import npcnn.distributed.loader
import npcnn.distributed.sampler

DUNDERS = ("__call__", "__getitem__", "__len__", "__iter__", "__add__")


def _modules():
    subs = [importlib.import_module(f"npcnn.data.{m.name}") for m in pkgutil.iter_modules(npcnn.data.__path__)
            if not m.name.startswith("_")]
    return [npcnn.data, *subs, npcnn.distributed.loader, npcnn.distributed.sampler]


def _undocumented(module):
    missing = [] if (module.__doc__ or "").strip() else [module.__name__]
    for name, obj in vars(module).items():
        if name.startswith("_") or not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        if obj.__module__ != module.__name__:
            continue  # re-exported: checked where it is defined
        if not (obj.__doc__ or "").strip():
            missing.append(f"{module.__name__}.{name}")
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in DUNDERS:
                    continue
                member = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                if callable(member) and not (member.__doc__ or "").strip():
                    missing.append(f"{module.__name__}.{name}.{attr}")
    return missing


@pytest.mark.parametrize("module", _modules(), ids=lambda m: m.__name__)
def test_every_public_name_has_a_docstring(module):
    assert _undocumented(module) == []


def test_mnist_says_uint8_in_its_first_line():
    for loader in (npcnn.data.mnist, npcnn.data.fashion_mnist, npcnn.data.cifar10):
        first = loader.__doc__.strip().splitlines()[0]
        assert "uint8" in first and "0-255" in first and "normalize=True" in first, first


@pytest.mark.parametrize("func", [npcnn.data.mnist, npcnn.data.shapes, npcnn.data.signals, npcnn.data.random_split,
                                  npcnn.data.DataLoader, npcnn.data.read_idx, npcnn.data.transforms.RandomAffine,
                                  npcnn.data.transforms.ColorJitter, npcnn.data.transforms.RandomCrop,
                                  npcnn.data.transforms.RandomResizedCrop, npcnn.data.transforms.bilinear_sample,
                                  npcnn.data.download.download, npcnn.data.download.fetch],
                         ids=lambda f: f.__qualname__)
def test_arguments_that_change_the_result_are_described(func):
    doc = inspect.getdoc(func)
    assert "Args:" in doc
    params = [p for p in inspect.signature(func).parameters if p not in ("self", "rng")]
    for p in params:
        assert f"{p}:" in doc or f"{p}," in doc or f", {p}" in doc, f"{func.__qualname__}: argument {p} not described"
