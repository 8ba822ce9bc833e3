"""npcnn's command line: summary, gradcheck, train (on a small fake dataset unless MNIST is
present), --help and --version, and every user error as a short message with the right exit status."""

import json
import os
import subprocess
import sys
import tracemalloc
import zipfile

import numpy as np
import pytest

import npcnn
from npcnn import cli, data, models
from npcnn.train import recipes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mnist_or_skip():
    try:
        data.mnist(train=False, download=False)
    except data.DatasetNotFoundError:
        pytest.skip("MNIST files not found (set NPCNN_DATA to a folder holding them)")


@pytest.fixture
def fake_digits(monkeypatch):
    """recipes.load_dataset gives 400 train / 100 test random 28x28 "digits" (no files needed)."""
    rng = np.random.default_rng(0)

    def split(n, train):
        return data.ImageDataset(rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
                                 rng.integers(0, 10, n).astype(np.int64), [str(i) for i in range(10)], "fake", train)

    train_set, test_set = split(400, True), split(100, False)
    monkeypatch.setattr(recipes, "load_dataset", lambda name, root=None, download=True: (train_set, test_set))
    return train_set, test_set


def run_main(capsys, *argv):
    """(exit status, stdout, stderr) of cli.main(argv), argparse's SystemExit included."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_short_error(err, *words):
    lines = err.strip().splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)


# ----------------------------------------------------------------------------- summary


def test_summary_prints_the_lenet5_table(capsys):
    code, out, _ = run_main(capsys, "summary", "lenet5")
    assert code == 0
    assert "c1" in out and "156" in out and "2,416" in out and "Total params: 61,706" in out
    assert "[1, 6, 28, 28]" in out  # the batch dimension, as torchinfo prints it
    assert "417 K" in out and "0.00 G" not in out


def test_summary_batch_size_and_depth(capsys):
    code, out, _ = run_main(capsys, "summary", "resnet20", "--depth", "1", "--batch-size", "4")
    assert code == 0
    assert "[4, 16, 32, 32]" in out and "Input shape: [4, 3, 32, 32]" in out
    rows = [line.split()[0] for line in out.splitlines()[3:] if line and not line.startswith("-")]
    assert "layer1" in rows and not any(r.startswith("layer1.") for r in rows)
    layer1 = next(line for line in out.splitlines() if line.split()[:1] == ["layer1"])
    assert "14,016" in layer1  # a block at the last level shows the parameters inside it (3 x 4,672)
    assert "4 x" not in out and "324 M" not in out and "162 M" in out  # 4 x 40.55M MACs
    _, deeper, _ = run_main(capsys, "summary", "resnet20", "--depth", "2")
    assert "  layer1.0 " in deeper and "layer1.0.conv1" not in deeper
    _, deepest, _ = run_main(capsys, "summary", "resnet20", "--depth", "3")
    assert "layer1.0.conv1" in deepest


def test_summary_depth_keeps_the_totals():
    prof = models.profile(models.resnet20(), (3, 32, 32), depth=1)
    assert prof.macs == 40_551_040 and prof.params == 269_722
    assert models.summary(models.resnet20(), (3, 32, 32), batch_size=2, file=open(os.devnull, "w")).macs \
        == 2 * 40_551_040


def test_vgg16_builds_without_float64_temporaries():
    """Its 102M-weight layer used to be drawn as float64 temporaries (1.8 GB peak for 0.55 GB of weights)."""
    tracemalloc.start()
    try:
        model = models.vgg16()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    weights = sum(p.data.nbytes for p in model.parameters())
    assert peak < weights + 100e6, (peak, weights)


@pytest.mark.slow
def test_vgg16_summary_peak_memory(capsys):
    tracemalloc.start()
    try:
        code, out, _ = run_main(capsys, "summary", "vgg16")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert code == 0 and "Total params: 138,357,544" in out and "15.5 G" in out
    assert peak < 0.9e9, peak


@pytest.mark.parametrize("shape,words", [(["3", "32", "32"], ["in_channels", "Conv2d"]),
                                         (["1", "8", "8"], ["larger than"]), (["1"], ["(N, C, H, W)"])])
def test_summary_of_a_shape_the_model_cannot_take(capsys, shape, words):
    code, _, err = run_main(capsys, "summary", "lenet5", "--input-shape", *shape)
    assert code == 1
    assert_short_error(err, "--input-shape", *words)


# ----------------------------------------------------------------------------- gradcheck


def test_gradcheck_named_layers_and_missing_names(capsys):
    code, out, _ = run_main(capsys, "gradcheck", "Linear")
    assert code == 0 and "passed, 0 failed" in out
    code, _, err = run_main(capsys, "gradcheck")
    assert code == 1
    assert_short_error(err, "--all")


def test_gradcheck_of_an_unknown_layer_fails(capsys):
    code, out, err = run_main(capsys, "gradcheck", "NoSuchLayer")
    assert code == 1 and "0 passed, 0 failed" not in out
    assert_short_error(err, "'NoSuchLayer'", "Conv2d")


# ----------------------------------------------------------------------------- help, version, usage errors


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "npcnn", "--help"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and "train" in result.stdout and "summary" in result.stdout
    assert result.stdout.startswith("usage: python -m npcnn")


def test_the_installed_script_calls_itself_npcnn(capsys):
    code, out, _ = run_main(capsys, "--help")
    assert code == 0 and out.startswith("usage: npcnn ")
    with open(os.path.join(ROOT, "setup.cfg")) as f:
        assert "npcnn = npcnn.cli:main" in f.read()


def test_version(capsys):
    code, out, _ = run_main(capsys, "--version")
    assert code == 0 and out.strip() == f"npcnn {npcnn.__version__}"


@pytest.mark.parametrize("command", ["train", "summary", "gradcheck"])
def test_help_gives_defaults_and_choices_without_markup(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "250")  # one line per flag
    code, out, _ = run_main(capsys, command, "--help")
    assert code == 0
    assert "``" not in out and ":func:" not in out and ":class:" not in out
    if command == "train":
        for flag, default in [("--epochs", "10"), ("--batch-size", "128"), ("--lr", "0.003"), ("--val-size", "5000"),
                              ("--optimizer", "adam"), ("--model", "lenet5"), ("--dataset", "mnist"),
                              ("--out", "runs/train"), ("--seed", "0"), ("--weight-decay", "0.0")]:
            assert flag in out and f"(default: {default})" in out, flag
        assert "fashion-mnist" in out and "cifar10" in out and "resnet20" in out and "vgg16" in out
        assert "(default: False)" not in out and "(default: None)" not in out
    if command == "summary":
        assert "--depth" in out and "--batch-size" in out and "lenet5" in out


@pytest.mark.parametrize("argv,words", [
    (["train", "--model", "nope"], ["--model", "invalid choice", "lenet5", "resnet20"]),
    (["train", "--dataset", "imagenet"], ["--dataset", "mnist"]),
    (["train", "--epochs", "-2"], ["--epochs", ">= 1", "-2"]),
    (["train", "--epochs", "two"], ["--epochs", "integer"]),
    (["train", "--lr", "-0.01"], ["--lr", "> 0"]),
    (["train", "--lr", "nan"], ["--lr", "finite"]),
    (["train", "--lr", "0"], ["--lr", "> 0"]),
    (["train", "--batch-size", "0"], ["--batch-size", ">= 1"]),
    (["train", "--val-size", "-5"], ["--val-size", ">= 0"]),
    (["train", "--subset", "-1"], ["--subset"]),
    (["train", "--weight-decay", "-1"], ["--weight-decay", ">= 0"]),
    (["train", "--seed", "-1"], ["--seed", ">= 0"]),
    (["train", "--model", "fcn_tiny"], ["--model", "invalid choice"]),  # a segmentation net: not for `train`
    (["train", "--verbose", "5"], ["--verbose"]),
    (["summary", "nope"], ["invalid choice", "lenet5"]),
    (["summary", "lenet5", "--depth", "-1"], ["--depth"]),
    (["summary", "lenet5", "--batch-size", "0"], ["--batch-size"]),
    (["frobnicate"], ["invalid choice"]),
])
def test_usage_errors_exit_2_with_two_lines(capsys, argv, words):
    code, _, err = run_main(capsys, *argv)
    assert code == 2
    assert_short_error(err, *words)


def test_usage_errors_from_a_subprocess_have_no_traceback():
    result = subprocess.run([sys.executable, "-m", "npcnn", "train", "--epochs", "-2"], capture_output=True,
                            text=True, cwd=ROOT)
    assert result.returncode == 2
    assert_short_error(result.stderr, "--epochs")


# ----------------------------------------------------------------------------- train


def test_missing_data_offline_is_a_message_without_traceback(tmp_path, monkeypatch):
    env = dict(os.environ, NPCNN_DATA="", XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "npcnn", "train", "--data-root", str(tmp_path / "none"),
                             "--no-download", "--out", str(tmp_path / "out")], capture_output=True, text=True,
                            env=env, cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "not found" in result.stderr and "NPCNN_DATA" in result.stderr
    assert result.stderr.startswith("python -m npcnn: error: ")


def _train(capsys, tmp_path, *extra):
    return run_main(capsys, "train", "--epochs", "1", "--val-size", "100", "--batch-size", "50", "--verbose", "0",
                    "--out", tmp_path / "out", *extra)


def test_train_holds_out_a_validation_split_and_tests_once(capsys, tmp_path, fake_digits, monkeypatch):
    import npcnn.train as train_pkg

    seen = []
    real_evaluate = train_pkg.evaluate

    def spy(model, loader, *args, **kwargs):
        seen.append(len(loader.dataset))
        return real_evaluate(model, loader, *args, **kwargs)

    monkeypatch.setattr(train_pkg, "evaluate", spy)
    code, out, err = _train(capsys, tmp_path)
    assert code == 0, err
    assert seen == [100]  # the 100 test images, once; validation ran inside fit on the held-out 100
    history = json.loads((tmp_path / "out" / "history.json").read_text())
    assert "val_loss" in history and "val_accuracy" in history
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["val_size"] == 100 and 0.0 <= result["test_accuracy"] <= 1.0
    for name in ("model.npz", "best.npz", "last.npz"):
        assert (tmp_path / "out" / name).is_file(), name


def test_out_that_is_a_file(capsys, tmp_path, fake_digits):
    (tmp_path / "taken").write_text("")
    code, _, err = run_main(capsys, "train", "--val-size", "100", "--out", tmp_path / "taken" / "run")
    assert code == 1
    assert_short_error(err, "--out", "cannot create")


def test_val_size_must_leave_training_images(capsys, tmp_path, fake_digits):
    code, _, err = run_main(capsys, "train", "--val-size", "400", "--out", tmp_path)
    assert code == 1
    assert_short_error(err, "--val-size")


def _bad_resume(capsys, tmp_path, write, *words):
    path = tmp_path / "bad.npz"
    write(path)
    code, _, err = _train(capsys, tmp_path, "--resume", path)
    assert code == 1
    assert_short_error(err, str(path), *words)
    assert not (tmp_path / "out" / "model.npz").exists()


def test_resume_of_a_truncated_checkpoint(capsys, tmp_path, fake_digits):
    code, _, err = _train(capsys, tmp_path)
    assert code == 0, err
    raw = (tmp_path / "out" / "last.npz").read_bytes()
    os.remove(tmp_path / "out" / "model.npz")
    _bad_resume(capsys, tmp_path, lambda p: p.write_bytes(raw[: len(raw) // 2]), "--resume", "truncated")


def test_resume_of_a_foreign_file(capsys, tmp_path, fake_digits):
    def torch_like(path):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", b"\x80\x02}q\x00.")

    _bad_resume(capsys, tmp_path, torch_like, "torch.save")
    _bad_resume(capsys, tmp_path, lambda p: npcnn.save({"w": np.zeros(2)}, p), "not an npcnn checkpoint")
    code, _, err = _train(capsys, tmp_path, "--resume", tmp_path / "missing.npz")
    assert code == 1
    assert_short_error(err, "no such file")


def test_resume_of_another_models_checkpoint(capsys, tmp_path, fake_digits):
    code, _, err = _train(capsys, tmp_path)
    assert code == 0, err
    for flags in (["--model", "resnet20"], ["--optimizer", "sgd"]):
        code, _, err = _train(capsys, tmp_path, "--resume", tmp_path / "out" / "last.npz", *flags)
        assert code == 1
        assert_short_error(err, "--resume", "does not fit")
        assert len(err) < 600, err


def test_training_that_diverges_exits_1_and_saves_nothing(capsys, tmp_path, fake_digits, monkeypatch):
    from npcnn.train import Trainer

    def diverge(self, *args, **kwargs):
        raise FloatingPointError("the loss is nan at epoch 1, batch 3")

    monkeypatch.setattr(Trainer, "fit", diverge)
    code, _, err = _train(capsys, tmp_path)
    assert code == 1
    assert_short_error(err, "diverged", "epoch 1, batch 3", "--lr")
    assert not (tmp_path / "out" / "model.npz").exists()


def test_non_finite_weights_are_never_saved(capsys, tmp_path, fake_digits, monkeypatch):
    from npcnn.train import History, Trainer

    def poison(self, *args, **kwargs):
        for p in self.model.parameters():
            p.data[...] = np.nan
        return History()

    monkeypatch.setattr(Trainer, "fit", poison)
    code, _, err = _train(capsys, tmp_path)
    assert code == 1
    assert_short_error(err, "not finite", "nothing was saved")
    assert not (tmp_path / "out" / "model.npz").exists()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_huge_learning_rate_stops_with_an_error(capsys, tmp_path, fake_digits):
    code, _, err = _train(capsys, tmp_path, "--lr", "1e38")
    assert code == 1, err
    assert_short_error(err)
    assert "diverged" in err or "not finite" in err
    assert not (tmp_path / "out" / "model.npz").exists()


def test_train_lenet5_on_a_subset_writes_model_and_results(tmp_path):
    mnist_or_skip()
    result = cli.main(["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", "2", "--subset", "4096",
                       "--val-size", "1000", "--verbose", "0", "--out", str(tmp_path)])
    assert result == 0
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["model"] == "lenet5" and 0.85 < summary["test_accuracy"] <= 1.0  # 2 epochs on 4,096 digits
    assert summary["val_size"] == 1000 and 0.85 < summary["val_accuracy"] <= 1.0
    assert (tmp_path / "model.npz").exists() and (tmp_path / "last.npz").exists()


# ----------------------------------------------------------------------------- recipes


def test_split_validation_is_seeded_disjoint_and_from_the_training_set():
    images = np.arange(1000).reshape(1000, 1, 1, 1)
    labels = np.arange(1000)
    (tr_x, tr_y), (va_x, va_y) = recipes.split_validation(images, labels, 100, seed=3)
    assert len(va_y) == 100 and len(tr_y) == 900
    assert set(tr_y) | set(va_y) == set(range(1000)) and not set(tr_y) & set(va_y)
    assert np.all(np.diff(tr_y) > 0)  # the training images keep their order
    np.testing.assert_array_equal(tr_x.ravel(), tr_y)
    again = recipes.split_validation(images, labels, 100, seed=3)[1][1]
    other = recipes.split_validation(images, labels, 100, seed=4)[1][1]
    np.testing.assert_array_equal(again, va_y)
    assert set(other) != set(va_y)
    assert len(recipes.split_validation(images, labels, 0)[1][1]) == 0
    with pytest.raises(ValueError, match="val_size"):
        recipes.split_validation(images, labels, 1000)


def test_make_loaders_gives_train_val_test(fake_digits):
    train_set, test_set = fake_digits
    loaders = recipes.make_loaders(train_set, test_set, "mnist", batch_size=32, image_size=32, val_size=50,
                                   subset=200)
    assert len(loaders.train.dataset) == 200 and len(loaders.val.dataset) == 50 and len(loaders.test.dataset) == 100
    x, _ = next(iter(loaders.val))
    assert x.shape[1:] == (1, 32, 32) and x.dtype == np.float32
    assert recipes.make_loaders(train_set, test_set, "mnist", val_size=0).val is None


def test_recipes_reject_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'; choose from cifar10, fashion-mnist, mnist"):
        recipes.load_dataset("imagenet")
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'"):
        recipes.make_optimizer("lbfgs", [], 0.1)


def test_the_cli_no_longer_holds_the_recipes():
    assert not hasattr(cli, "make_loaders") and not hasattr(cli, "make_optimizer")
    for name in ("mnist_lenet5", "fashion_mnist_cnn", "cifar10_resnet"):
        with open(os.path.join(ROOT, "examples", f"{name}.py")) as f:
            assert "npcnn.cli" not in f.read(), name


def test_profile_arguments_are_checked():
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        models.profile(models.lenet5(), (1, 32, 32), batch_size=0)
    with pytest.raises(ValueError, match="depth must be >= 0"):
        models.profile(models.lenet5(), (1, 32, 32), depth=-1)


def test_format_count_keeps_three_digits():
    from npcnn.nn.summary import format_count

    assert [format_count(n) for n in (850, 416_520, 40_551_040, 15_470_264_320, 2_500_000_000_000)] == [
        "850", "417 K", "40.6 M", "15.5 G", "2.5 T"]
