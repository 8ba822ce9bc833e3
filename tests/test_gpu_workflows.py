"""The CuPy backend beyond single layers: models built on the GPU (initializers), losses,
optimizers, the training loop with an exact resume, checkpoints and weight files, the data
loader, dropout, gradient checks, diagnostics and saliency.

Marker ``gpu``: runs with ``python -m pytest -m gpu`` where CuPy and a GPU are present, and in
the default run on the fake CuPy of tests/fake_cupy (see tests/test_fake_cupy.py).
"""

import copy

import numpy as np
import pytest

import npcnn
from npcnn import backend, data, diagnostics, gradcheck, nn, optim, serialization, train, viz
from npcnn.models import get_model

pytestmark = pytest.mark.gpu

def images(n=8, shape=(1, 28, 28), classes=10, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n,) + shape).astype(np.float32), rng.integers(0, classes, n)


def close(gpu_array, cpu_array, rtol=1e-4, atol=1e-5, err_msg=""):
    np.testing.assert_allclose(backend.to_numpy(gpu_array), backend.to_numpy(cpu_array), rtol=rtol, atol=atol,
                               err_msg=err_msg)


@pytest.mark.parametrize("name", ["lenet5", "resnet20", "plain20", "mobilenet_v2", "fcn_tiny"])
def test_model_built_on_the_gpu_trains_a_step(cupy, name):
    npcnn.manual_seed(0)
    kwargs = {"num_classes": 10} if name != "fcn_tiny" else {}
    model = get_model(name, **kwargs)
    assert all(isinstance(p.data, cupy.ndarray) and p.data.dtype == np.float32 for p in model.parameters())
    shape = {"lenet5": (1, 32, 32), "fcn_tiny": (3, 32, 32), "mobilenet_v2": (3, 32, 32)}.get(name, (3, 32, 32))
    x, _ = images(2, shape)
    out = model(backend.asarray(x))
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float32
    dx = model.backward(backend.xp().ones_like(out))
    assert isinstance(dx, cupy.ndarray) and dx.shape == x.shape
    assert all(isinstance(p.grad, cupy.ndarray) for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("init", ["kaiming_normal_", "kaiming_uniform_", "xavier_normal_", "xavier_uniform_",
                                  "normal_", "uniform_", "zeros_", "ones_"])
def test_initializers_fill_gpu_parameters_with_the_right_statistics(cupy, init):
    npcnn.manual_seed(0)
    layer = nn.Linear(400, 300)
    getattr(nn.init, init)(layer.weight)
    w = layer.weight.data
    assert isinstance(w, cupy.ndarray) and w.dtype == np.float32
    with npcnn.use_backend("numpy"):
        npcnn.manual_seed(0)
        reference = nn.Linear(400, 300)
        getattr(nn.init, init)(reference.weight)
    # Different generators, same distribution: compare mean and standard deviation.
    w = backend.to_numpy(w)
    assert abs(w.mean() - reference.weight.data.mean()) < 0.01 * max(1.0, abs(reference.weight.data.mean()))
    assert abs(w.std() - reference.weight.data.std()) <= 0.02 * reference.weight.data.std() + 1e-12


def test_cross_entropy_options_on_cupy(cupy):
    logits, y = images(6, (5,), classes=5)
    y[2] = -100
    for kwargs in ({"ignore_index": -100}, {"label_smoothing": 0.1, "ignore_index": -100},
                   {"reduction": "sum", "ignore_index": -100}):
        gpu = nn.CrossEntropyLoss(**kwargs)
        loss = gpu(backend.asarray(logits), backend.asarray(y))
        grad = gpu.backward()
        with npcnn.use_backend("numpy"):
            cpu = nn.CrossEntropyLoss(**kwargs)
            expected = cpu(logits, y)
            expected_grad = cpu.backward()
        assert abs(float(loss) - float(expected)) < 1e-5, kwargs
        close(grad, expected_grad, err_msg=str(kwargs))


OPTIMIZERS = [
    (optim.SGD, {"lr": 0.1}), (optim.SGD, {"lr": 0.1, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    (optim.Adagrad, {"lr": 0.1}), (optim.RMSprop, {"lr": 0.01, "momentum": 0.5}),
    (optim.Adam, {"lr": 0.01, "amsgrad": True}), (optim.AdamW, {"lr": 0.01, "weight_decay": 0.1}),
]


@pytest.mark.parametrize("opt, kwargs", OPTIMIZERS, ids=[f"{o.__name__}{k}" for o, k in OPTIMIZERS])
def test_optimizer_steps_on_cupy_match_numpy(cupy, opt, kwargs):
    with npcnn.use_backend("numpy"):
        npcnn.manual_seed(0)
        cpu = nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 3))
    gpu = copy.deepcopy(cpu).to()
    x, y = images(8, (6,), classes=3)
    for model in (cpu, gpu):
        with npcnn.use_backend("numpy" if model is cpu else "cupy"):
            optimizer = opt(model.parameters(), **kwargs)
            loss_fn = nn.CrossEntropyLoss()
            for _ in range(3):
                train.train_step(model, loss_fn, optimizer, (x, y))
    for (name, p_gpu), p_cpu in zip(gpu.named_parameters(), cpu.parameters()):
        assert isinstance(p_gpu.data, cupy.ndarray)
        close(p_gpu.data, p_cpu.data, err_msg=name)


def test_clip_grad_norm_on_cupy(cupy):
    layer = nn.Linear(4, 3)
    layer(backend.asarray(images(5, (4,))[0]))
    layer.backward(backend.xp().ones((5, 3), dtype=np.float32))
    total = nn.utils.clip_grad_norm_(layer.parameters(), 0.5)
    assert float(total) > 0.5
    norm = np.sqrt(sum(float((p.grad ** 2).sum()) for p in layer.parameters()))
    assert abs(norm - 0.5) < 1e-4


def test_dropout_trains_on_cupy(cupy):
    npcnn.manual_seed(0)
    layer = nn.Dropout(0.5)
    x = backend.xp().ones((200, 50), dtype=np.float32)
    out = layer(x)
    assert isinstance(out, cupy.ndarray) and out.dtype == np.float32
    kept = backend.to_numpy(out) != 0
    assert 0.45 < kept.mean() < 0.55
    np.testing.assert_array_equal(backend.to_numpy(out)[kept], 2.0)
    dx = layer.backward(x)
    np.testing.assert_array_equal(backend.to_numpy(dx) != 0, kept)


class SaveAt(train.callbacks.Callback):
    """Saves the trainer's checkpoint at the end of one epoch."""

    def __init__(self, epoch, path):
        self.epoch, self.path = epoch, path

    def on_epoch_end(self, trainer, epoch, logs):
        if epoch == self.epoch:
            trainer.save_checkpoint(self.path)


def test_fit_with_loader_transforms_checkpoint_and_exact_resume(cupy, tmp_path):
    """A run resumed from its epoch-2 checkpoint ends with the very weights of the run that wrote
    it (CuPy's generator is forked at the checkpoint, see backend.get_rng_state)."""
    x, y = images(48, (1, 12, 12), classes=3)
    path = tmp_path / "epoch2.npz"

    def run(resume=None):
        npcnn.manual_seed(0)
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Dropout(0.2),
                              nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 36, 3))
        optimizer = optim.Adam(model.parameters(), lr=0.01)
        scheduler = optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
        loader = data.DataLoader((x, y), batch_size=16, shuffle=True,
                                 transform=data.transforms.RandomCrop(12, padding=1))
        callbacks = [SaveAt(2, path)] if resume is None else []
        trainer = train.Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler=scheduler, verbose=0,
                                callbacks=callbacks)
        trainer.fit(loader, 4, resume_from=resume)
        return model, trainer.history

    straight, history = run()
    resumed, resumed_history = run(resume=path)
    assert len(history.history["loss"]) == 4 and np.all(np.isfinite(history.history["loss"]))
    for (name, a), b in zip(straight.named_parameters(), resumed.parameters()):
        assert isinstance(a.data, cupy.ndarray)
        np.testing.assert_array_equal(backend.to_numpy(a.data), backend.to_numpy(b.data), err_msg=name)
    assert resumed_history.history["loss"][2:] == history.history["loss"][2:]


def test_evaluate_and_metrics_on_cupy(cupy):
    x, y = images(20, (6,), classes=4)
    model = nn.Linear(6, 4)
    results = train.evaluate(model, data.DataLoader((x, y), batch_size=8), metrics=("accuracy", "top5"),
                             loss_fn=nn.CrossEntropyLoss())
    assert 0.0 <= results["accuracy"] <= 1.0 and results["top5_accuracy"] == 1.0 and np.isfinite(results["loss"])


@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
def test_weights_saved_from_the_gpu_load_on_the_cpu_and_back(cupy, tmp_path, suffix):
    npcnn.manual_seed(0)
    model = get_model("lenet5")
    path = tmp_path / f"lenet{suffix}"
    serialization.save(model.state_dict(), path)
    with npcnn.use_backend("numpy"):
        cpu = get_model("lenet5")
        cpu.load_state_dict(serialization.load(path))
    for (name, a), b in zip(model.named_parameters(), cpu.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a.data), b.data, err_msg=name)
    gpu = get_model("lenet5")
    gpu.load_state_dict(serialization.load(path))
    assert all(isinstance(p.data, cupy.ndarray) for p in gpu.parameters())
    for (name, a), b in zip(gpu.named_parameters(), cpu.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a.data), b.data, err_msg=name)


def test_gradcheck_runs_on_cupy_in_float64(cupy):
    with backend.default_dtype(np.float64):
        layer = nn.Conv2d(2, 3, 3, stride=2, padding=1)
    x = np.random.default_rng(0).standard_normal((2, 2, 7, 7))
    gradcheck.check_module(layer, x).assert_ok()


def test_diagnostics_record_on_cupy(cupy):
    npcnn.manual_seed(0)
    model = diagnostics.deep_mlp(depth=4, width=16, in_features=8, out_features=3)
    x, y = images(16, (8,), classes=3)
    with diagnostics.record(model) as recorder:
        loss_fn = nn.CrossEntropyLoss()
        loss_fn(model(backend.asarray(x)), backend.asarray(y))
        model.backward(loss_fn.backward())
    norms = recorder.table().column("grad_input_norm")
    assert len(norms) >= 4 and all(np.isfinite(v) and v > 0 for v in norms)


def test_saliency_and_grad_cam_on_cupy(cupy):
    npcnn.manual_seed(0)
    model = get_model("lenet5")
    x, _ = images(2, (1, 32, 32))
    saliency = viz.saliency_map(model, backend.asarray(x))
    cam = viz.grad_cam(model, backend.asarray(x))
    assert backend.to_numpy(saliency).shape == (2, 32, 32)
    assert backend.to_numpy(cam).shape == (2, 32, 32)


def test_layer_given_a_host_array_names_itself(cupy):
    layer = nn.Conv2d(1, 2, 3)
    with pytest.raises(TypeError, match="Conv2d: the input is a NumPy array but the parameters are CuPy"):
        layer(np.zeros((1, 1, 5, 5), dtype=np.float32))
    with npcnn.use_backend("numpy"):
        cpu = nn.Linear(3, 2)
    with pytest.raises(TypeError, match="Linear: the input is a CuPy array but the parameters are NumPy"):
        cpu(backend.xp().zeros((1, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="CrossEntropyLoss: the predictions are a CuPy .* the target is a NumPy"):
        nn.CrossEntropyLoss()(backend.xp().zeros((2, 3), dtype=np.float32), np.array([0, 1]))


EXAMPLE_RUNS = {
    "mnist_lenet5": ["--epochs", "1", "--subset", "512"],
    "fashion_mnist_cnn": ["--epochs", "1", "--subset", "256", "--verbose", "0"],
    "signals_conv1d": ["--epochs", "1", "--train-size", "200", "--test-size", "100"],
    "fcn_segmentation": ["--epochs", "1", "--train", "32", "--test", "16"],
    "visualize_mnist": [],
    "cifar10_resnet": ["--epochs", "1", "--batch-size", "16", "--val-size", "8", "--no-download", "--verbose", "0"],
}


@pytest.mark.parametrize("name", sorted(EXAMPLE_RUNS))
def test_example_runs_on_cupy(cupy, tmp_path, name):
    from test_examples import load_example, write_cifar_fixture

    if name in ("fcn_segmentation", "visualize_mnist"):  # their output is a picture
        pytest.importorskip("matplotlib", reason="matplotlib is not installed (the plot extra)")
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / ("fcn.png" if name == "fcn_segmentation" else "")
    args = EXAMPLE_RUNS[name] + ["--out", str(out)]
    if name == "cifar10_resnet":
        write_cifar_fixture(tmp_path / "data")
        args += ["--data-root", str(tmp_path / "data")]
    elif name in ("mnist_lenet5", "fashion_mnist_cnn", "visualize_mnist"):
        loader = data.mnist if name != "fashion_mnist_cnn" else data.fashion_mnist
        try:
            loader(train=False, download=False)
        except (data.DatasetNotFoundError, OSError):
            pytest.skip("MNIST files not found (set NPCNN_DATA to a folder holding them)")
    load_example(name).main(args)
    assert any((tmp_path / "out").iterdir())


def test_gpu_benchmark_runs(cupy, monkeypatch):
    """benchmarks/gpu_bench.py's plumbing (synchronized timing, both conv algorithms, training
    steps) on a small shape; its figures are for a real GPU."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_bench.py"
    spec = importlib.util.spec_from_file_location("gpu_bench", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "NETS", {"lenet5": bench.NETS["lenet5"]})
    monkeypatch.setattr(bench, "CONVS", {"small": (2, 4, 9, 9, 4, 3, 1, 1)})
    results = bench.main(["--quick"])
    assert results["train"]["lenet5"]["img_s"] > 0
    assert set(results["conv"]["small"]) == {"im2col", "fft"}
