"""Smoke tests: each example's main() runs end to end on a tiny subset and writes its outputs.

They check the plumbing (data -> model -> training -> saved files), not the accuracy the
examples reach with their default settings (those figures are in each example's docstring).
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import npcnn
from npcnn.data import cifar
from npcnn.data.download import DatasetNotFoundError

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fashion_available():
    try:
        npcnn.data.fashion_mnist(train=False, download=False)
    except (DatasetNotFoundError, OSError):
        return False
    return True


def test_signals_conv1d_learns_and_writes_outputs(tmp_path):
    example = load_example("signals_conv1d")
    result = example.main(["--epochs", "3", "--train-size", "400", "--test-size", "200", "--out", str(tmp_path),
                           "--verbose", "0"])
    assert result["test_accuracy"] > 0.5  # chance is 0.2; 3 short epochs already get far above it
    model = example.conv1d_net()
    model.load_state_dict(npcnn.load(tmp_path / "model.npz"))
    pytest.importorskip("matplotlib")
    assert (tmp_path / "signals.png").stat().st_size > 0


def test_signals_net_shapes():
    model = load_example("signals_conv1d").conv1d_net(num_classes=5, length=128)
    x = np.zeros((3, 1, 128), dtype=np.float32)
    assert model(x).shape == (3, 5)
    assert model.backward(np.ones((3, 5), dtype=np.float32)).shape == x.shape


@pytest.mark.skipif(not fashion_available(), reason="Fashion-MNIST not found (set NPCNN_DATA)")
def test_fashion_mnist_cnn_runs_on_a_subset(tmp_path):
    example = load_example("fashion_mnist_cnn")
    result = example.main(["--epochs", "1", "--subset", "256", "--out", str(tmp_path), "--verbose", "0"])
    assert result["train_images"] == 256 and result["test_images"] == 256
    assert 0.0 <= result["test_accuracy"] <= 1.0
    assert json.loads((tmp_path / "result.json").read_text())["epochs"] == 1
    model = example.small_vgg()
    model.load_state_dict(npcnn.load(tmp_path / "model.npz"))


def test_fashion_net_shapes():
    model = load_example("fashion_mnist_cnn").small_vgg()
    x = np.zeros((2, 1, 28, 28), dtype=np.float32)
    assert model(x).shape == (2, 10)
    assert model.backward(np.ones((2, 10), dtype=np.float32)).shape == x.shape


def write_cifar_fixture(root, n_per_batch=8, n_test=16, seed=0):
    """A tiny CIFAR-10 in the python layout: five train batches and a test batch."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name, n in [(f"data_batch_{i}", n_per_batch) for i in range(1, 6)] + [("test_batch", n_test)]:
        cifar.write_py_batch(folder / name, rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8),
                             rng.integers(0, 10, n))
    cifar.write_py_meta(folder / "batches.meta", npcnn.data.CIFAR10_CLASSES)


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_cifar10_resnet_runs_on_a_fixture(tmp_path, schedule):
    write_cifar_fixture(tmp_path / "data")
    out = tmp_path / "out"
    example = load_example("cifar10_resnet")
    result = example.main(["--epochs", "2", "--batch-size", "16", "--schedule", schedule, "--val-size", "8",
                           "--data-root", str(tmp_path / "data"), "--no-download", "--out", str(out),
                           "--verbose", "0"])
    assert result["train_images"] == 32 and result["epochs"] == 2  # 40 less the 8 held out
    assert len(json.loads((out / "history.json").read_text())["val_loss"]) == 2
    for name in ("model.npz", "last.npz", "history.json", "result.json"):
        assert (out / name).is_file(), name
    model = npcnn.models.resnet20()
    model.load_state_dict(npcnn.load(out / "model.npz"))


def test_cifar10_resnet_missing_data_is_a_clear_message(tmp_path):
    example = load_example("cifar10_resnet")
    with pytest.raises(SystemExit, match="NPCNN_DATA") as info:
        example.main(["--data-root", str(tmp_path / "nothing"), "--no-download", "--out", str(tmp_path / "o")])
    assert "cifar-10-python.tar.gz" in str(info.value)


def test_cifar_schedule_warms_up_then_decays():
    example = load_example("cifar10_resnet")
    for schedule in ("cosine", "step"):
        optimizer = npcnn.optim.SGD([npcnn.nn.Parameter(np.zeros(1))], lr=0.1)
        scheduler = example.make_scheduler(optimizer, schedule, epochs=4, steps_per_epoch=10)
        lrs = []
        for _ in range(40):
            lrs.append(optimizer.param_groups[0]["lr"])
            scheduler.step()
        assert lrs[0] == pytest.approx(0.01)  # warm-up starts at lr / 10
        assert max(lrs) == pytest.approx(0.1)
        assert np.all(np.diff(lrs[:10]) > 0)  # rising over the first epoch
        assert lrs[-1] < 0.011  # decayed by the end


def test_mnist_lenet5_main_example_runs_on_a_subset(tmp_path):
    try:
        npcnn.data.mnist(train=False, download=False)
    except (DatasetNotFoundError, OSError):
        pytest.skip("MNIST files not found (set NPCNN_DATA to a folder holding them)")
    example = load_example("mnist_lenet5")
    accuracy = example.main(["--epochs", "2", "--subset", "4096", "--val-size", "1000", "--out", str(tmp_path)])
    assert 0.85 < accuracy <= 1.0  # 2 epochs on 4,096 digits; the full run reaches 99.1%
    for name in ("model.npz", "history.json", "result.json", "best.npz", "last.npz"):
        assert (tmp_path / name).exists(), name
    model = npcnn.models.lenet5()
    model.load_state_dict(npcnn.load(tmp_path / "model.npz"))
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history["val_loss"]) == 2  # validated on the held-out digits each epoch
    assert json.loads((tmp_path / "result.json").read_text())["val_size"] == 1000


@pytest.mark.parametrize("name", ["mnist_lenet5", "fashion_mnist_cnn", "visualize_mnist", "transfer_learning"])
def test_examples_without_the_data_print_the_message_without_a_traceback(tmp_path, name):
    """Run as a user would, with no dataset anywhere and no network (--no-download where there
    is one; elsewhere the download fails at once: nothing can be reached from the test)."""
    env = dict(os.environ, NPCNN_DATA=str(tmp_path / "none"), XDG_CACHE_HOME=str(tmp_path / "cache"),
               PYTHONPATH=str(EXAMPLES.parent))
    extra = ["--no-download"] if name == "mnist_lenet5" else []
    if name == "visualize_mnist" and importlib.util.find_spec("matplotlib") is None:
        extra = []  # it stops at the matplotlib check first: also a message
    opener = ("import urllib.request, runpy, sys; "
              "urllib.request.urlopen = lambda *a, **k: (_ for _ in ()).throw(OSError('offline (test)')); "
              f"sys.argv = [{str(EXAMPLES / (name + '.py'))!r}] + {extra + ['--out', str(tmp_path / 'out')]!r}; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")
    result = subprocess.run([sys.executable, "-c", opener], capture_output=True, text=True, env=env, cwd=tmp_path,
                            timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert "not found" in result.stderr or "matplotlib" in result.stderr, result.stderr
