"""python -m npcnn: summary, gradcheck and a short train run through main(argv)."""

import json
import subprocess
import sys

import pytest

from npcnn import cli, data


def test_summary_prints_the_lenet5_table(capsys):
    cli.main(["summary", "lenet5"])
    out = capsys.readouterr().out
    assert "c1" in out and "156" in out and "2,416" in out and "Total params: 61,706" in out


def test_gradcheck_named_layers_and_missing_names(capsys):
    cli.main(["gradcheck", "Linear"])
    assert "passed, 0 failed" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="pass --all"):
        cli.main(["gradcheck"])


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "npcnn", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "train" in result.stdout and "summary" in result.stdout


def test_train_lenet5_on_a_subset_writes_model_and_results(tmp_path):
    try:
        data.mnist(train=False, download=False)
    except data.DatasetNotFoundError:
        pytest.skip("MNIST files not found (set NPCNN_DATA to a folder holding them)")
    result = cli.main(["train", "--model", "lenet5", "--dataset", "mnist", "--epochs", "2", "--subset", "4096",
                       "--verbose", "0", "--out", str(tmp_path)])
    assert result == 0
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["model"] == "lenet5" and 0.85 < summary["test_accuracy"] <= 1.0  # 2 epochs on 4,096 digits
    assert (tmp_path / "model.npz").exists() and (tmp_path / "last.npz").exists()


def test_unknown_dataset_is_a_clear_error():
    with pytest.raises(SystemExit):
        cli.main(["train", "--dataset", "imagenet"])
