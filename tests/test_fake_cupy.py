"""npcnn's CuPy path, checked without a GPU on the fake CuPy of tests/fake_cupy.

The default run has one test here, ``test_gpu_suite_passes_on_the_fake_cupy``: it runs every
``gpu``-marked test (tests/test_gpu.py: each layer, block, model and loss case on "CuPy" against
NumPy; tests/test_gpu_workflows.py: initializers, optimizers, the training loop, checkpoints,
weight files, gradcheck, diagnostics, saliency) in a fresh interpreter whose ``import cupy``
finds the fake. The fake raises where CuPy raises at the Python level -- implicit conversion to
NumPy, NumPy arrays mixed into device computations, names and keywords CuPy lacks (inventory
``cupy_api.json``, dumped from CuPy 14.2.0) -- so a pass means npcnn's code is written for CuPy's
API. It cannot show CUDA kernels' numerics: ``python -m pytest -m gpu`` with the real CuPy on a
GPU still does that. (The NCCL path is run on the fake under mpirun in tests/test_distributed.py.)

The other tests (marker ``gpu``) check the fake itself -- that it does reject what it claims to
-- and skip under the real CuPy.
"""

import importlib
import inspect
import json
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import cupy_or_skip, fake_cupy_pythonpath

ROOT = pathlib.Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fake_cupy"


def fake_cupy_env(**extra):
    """Environment of a subprocess whose ``import cupy`` is the fake."""
    env = dict(os.environ)
    inherited = [env["PYTHONPATH"]] if env.get("PYTHONPATH") else []
    env["PYTHONPATH"] = os.pathsep.join([fake_cupy_pythonpath()] + inherited)
    env.update(extra)
    return env


_SKIP_LINE = re.compile(r"^SKIPPED \[\d+\] (?P<where>\S+?:\d+): (?P<reason>.*)$")
_GPU_WORDS = re.compile(r"cupy|gpu|cuda", re.IGNORECASE)


def gpu_skips(report):
    """The ``SKIPPED`` lines of a ``pytest -rs`` report whose *reason* (not the test file's path,
    e.g. tests/test_gpu_workflows.py) says CuPy, CUDA or the GPU is unusable: on the fake CuPy,
    none may skip for that; missing datasets or optional packages (matplotlib, torch) may."""
    skipped = []
    for line in report.splitlines():
        match = _SKIP_LINE.match(line.strip())
        if line.startswith("SKIPPED") and (match is None or _GPU_WORDS.search(match["reason"])):
            skipped.append(line)
    return skipped


def test_gpu_skips_reads_the_reason_not_the_path():
    report = "\n".join([
        "SKIPPED [1] tests/test_gpu_workflows.py:267: MNIST files not found (set NPCNN_DATA to a folder holding them)",
        "SKIPPED [2] tests/test_gpu_workflows.py:258: could not import 'matplotlib': No module named 'matplotlib'",
        "SKIPPED [1] tests/test_gpu.py:40: CuPy is not installed; GPU tests are skipped",
        "SKIPPED [1] tests/test_x.py:3: CuPy is installed but CUDA is unusable: no driver",
        "3 passed, 5 skipped in 1.00s",
    ])
    assert gpu_skips(report) == report.splitlines()[2:4]


def test_gpu_suite_passes_on_the_fake_cupy():
    command = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider", "tests"]
    out = subprocess.run(command, cwd=ROOT, env=fake_cupy_env(), capture_output=True, text=True, timeout=600)
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    assert out.returncode == 0, out.stdout[-6000:] + out.stderr[-3000:]
    assert not gpu_skips(out.stdout), gpu_skips(out.stdout)  # only missing data or optional packages may skip
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 100, summary  # 65 registry cases, ~30 workflow tests, the fake's own tests


# ----------------------------------------------------------------------------- the fake itself


@pytest.fixture
def fake():
    cupy = cupy_or_skip()
    if not getattr(cupy, "__fake__", False):
        pytest.skip("the real CuPy is installed: these tests check the fake")
    return cupy


@pytest.mark.gpu
def test_fake_refuses_implicit_conversion_to_numpy(fake):
    a = fake.ones(3, dtype=np.float32)
    with pytest.raises(TypeError, match="Implicit conversion"):
        np.asarray(a)
    np.testing.assert_array_equal(a.get(), np.ones(3))
    np.testing.assert_array_equal(fake.asnumpy(a), np.ones(3))


@pytest.mark.gpu
def test_fake_refuses_numpy_arrays_mixed_into_device_math(fake):
    a = fake.ones(3, dtype=np.float32)
    for mix in (lambda: a + np.ones(3), lambda: np.ones(3) * a, lambda: fake.maximum(a, np.zeros(3)),
                lambda: fake.exp(np.ones(3)), lambda: fake.concatenate([a, np.ones(3)]),
                lambda: np.matmul(a, np.ones(3))):
        with pytest.raises(TypeError, match="Unsupported type"):
            mix()
    assert isinstance(a * np.float32(2) + 1.0, fake.ndarray)  # scalars are fine, as in CuPy
    assert isinstance(fake.asarray(np.ones(3)), fake.ndarray)  # the explicit transfer


@pytest.mark.gpu
def test_fake_copies_numpy_arrays_only_into_whole_arrays(fake):
    a = fake.zeros((2, 3))
    a[...] = np.ones((2, 3))  # the whole array, same shape and dtype: CuPy copies it over
    assert float(a.sum()) == 6.0
    for key, value in ((0, np.ones(3)), (slice(None), np.ones((2, 3), dtype=np.float32))):
        with pytest.raises(ValueError, match="non-scalar numpy.ndarray"):
            a[key] = value
    a[0] = fake.asarray(np.zeros(3))
    assert float(a.sum()) == 3.0


@pytest.mark.gpu
def test_fake_offers_only_cupys_names_and_keywords(fake):
    import cupyx.scipy.fft

    with pytest.raises(AttributeError, match="not in CuPy"):
        fake.nanpercentile
    with pytest.raises(TypeError):
        np.nanpercentile(fake.ones(3), 50)  # a NumPy function CuPy does not implement
    with pytest.raises(AttributeError):
        fake.ones(3).ctypes
    with pytest.raises(TypeError, match="where"):
        np.add(fake.ones(3), 1.0, where=fake.ones(3) > 0)  # CuPy's ufuncs take out, casting, dtype
    with pytest.raises(TypeError, match="workers"):
        cupyx.scipy.fft.rfftn(fake.ones((4, 4)), axes=(0, 1), workers=-1)
    generator = fake.random.default_rng(0)
    for missing in ("normal", "permutation", "bit_generator"):
        with pytest.raises(AttributeError):
            getattr(generator, missing)
    assert isinstance(generator.standard_normal((2, 3), dtype=np.float32), fake.ndarray)


@pytest.mark.gpu
def test_fake_arrays_share_memory_like_device_views(fake):
    a = fake.zeros((3, 4))
    view = a[1:, ::2]
    view[...] = 5.0
    assert float(a.sum()) == 20.0
    windows = fake.lib.stride_tricks.sliding_window_view(a, (2,), axis=1)
    assert isinstance(windows, fake.ndarray) and windows.shape == (3, 3, 2)
    import cupyx

    b = fake.zeros(3)
    cupyx.scatter_add(b, fake.asarray(np.array([0, 0, 2])), fake.ones(3))
    np.testing.assert_array_equal(b.get(), [2.0, 0.0, 1.0])


@pytest.mark.gpu
def test_fake_nccl_takes_cupy_14s_bytes_id(fake):
    from cupy.cuda import nccl

    uid = nccl.get_unique_id()
    assert isinstance(uid, bytes) and len(uid) == 128
    with pytest.raises(TypeError, match="commId"):
        nccl.NcclCommunicator(1, tuple(uid), 0)
    comm = nccl.NcclCommunicator(1, uid, 0)
    a, out = fake.arange(4, dtype=np.float32), fake.zeros(4, dtype=np.float32)
    comm.allReduce(a.data.ptr, out.data.ptr, 4, nccl.NCCL_FLOAT32, nccl.NCCL_SUM, 0)
    np.testing.assert_array_equal(out.get(), [0, 1, 2, 3])


MODULES = ["cupy", "cupy.random", "cupy.fft", "cupy.linalg", "cupy.lib.stride_tricks", "cupy.cuda",
           "cupy.cuda.runtime", "cupy.cuda.nccl", "cupyx", "cupyx.scipy.fft", "cupyx.scipy.special"]


@pytest.mark.gpu
@pytest.mark.parametrize("name", MODULES)
def test_fake_invents_no_api(fake, name):
    """Every public function or class the fake defines by hand exists in the real CuPy."""
    inventory = json.loads((FAKE / "cupy_api.json").read_text())
    known = set(inventory["namespaces"][name]) | {c.rpartition(".")[2] for c in inventory["classes"]
                                                   if c.rpartition(".")[0] == name}
    module = importlib.import_module(name)
    own = [n for n, v in vars(module).items() if not n.startswith("_") and (inspect.isfunction(v) or inspect.isclass(v))
           and getattr(v, "__module__", None) == name]
    assert own or name in ("cupy.fft", "cupy.linalg", "cupy.lib.stride_tricks", "cupyx.scipy.fft",
                           "cupyx.scipy.special"), f"{name}: nothing defined by hand"
    assert set(own) <= known, sorted(set(own) - known)


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["resnet20", "mobilenet_v2"])
def test_a_training_step_syncs_with_the_host_only_in_the_loss(fake, name):
    """Every device-to-host read (float(), bool(), .get()) stalls a real GPU until its queue is
    done. One SGD step on a batch already on the device reads three scalars, all in the loss
    (the target range check, the count of counted targets, the loss value), none per layer, and
    copies nothing to the device."""
    import cupy._fake as fake_core

    import npcnn
    from npcnn import backend, models, nn, optim, train

    with npcnn.use_backend("cupy"):
        npcnn.manual_seed(0)
        model = models.get_model(name, num_classes=10)
        trainer = train.Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                                verbose=0)
        batch = (backend.asarray(np.random.default_rng(0).standard_normal((4, 3, 32, 32)).astype(np.float32)),
                 backend.asarray(np.arange(4)))
        trainer.train_step(batch)  # the first step creates the optimizer's buffers
        fake_core.TRANSFERS.update(to_host=0, to_device=0)
        trainer.train_step(batch)
    assert fake_core.TRANSFERS == {"to_host": 3, "to_device": 0}
