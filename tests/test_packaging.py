"""What a package index and a new user see: metadata, extras, license, changelog, typing marker."""

import configparser
import os
import pathlib
import subprocess
import sys

import npcnn

ROOT = pathlib.Path(__file__).resolve().parents[1]


def setup_cfg():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return config


def extras():
    section = setup_cfg()["options.extras_require"]
    return {name: [line.strip() for line in section[name].strip().splitlines()] for name in section}


def test_gpu_extras_name_the_prebuilt_cupy_wheels():
    found = extras()
    assert found["gpu"] == ["cupy-cuda12x>=12"] and found["gpu-cuda12"] == ["cupy-cuda12x>=12"]
    assert found["gpu-cuda13"] == ["cupy-cuda13x>=13"]
    assert not any(req.split(">")[0] == "cupy" for reqs in found.values() for req in reqs)


def test_lessons_extra_opens_the_lessons_as_notebooks():
    names = [req.split(">")[0] for req in extras()["lessons"]]
    assert names == ["jupytext", "notebook"]


def test_metadata_for_a_package_index():
    meta = setup_cfg()["metadata"]
    assert meta["license"] == "MIT" and meta["license_files"] == "LICENSE" and meta["author"]
    urls = dict(line.split(" = ") for line in meta["project_urls"].strip().splitlines())
    assert {"Source", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    assert "License :: OSI Approved :: MIT License" in meta["classifiers"]
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert setup_cfg()["options.entry_points"]["console_scripts"].strip() == "npcnn = npcnn.cli:main"


def test_typed_package_and_changelog():
    assert (ROOT / "npcnn" / "py.typed").is_file()
    assert "py.typed" in setup_cfg()["options.package_data"]["npcnn"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{npcnn.__version__}]" in changelog and "## [Unreleased]" in changelog
    assert "[tool.mypy]" in (ROOT / "pyproject.toml").read_text()


def test_ci_checks_a_fresh_machine_the_wheel_and_the_types():
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'NPCNN_DATA=""' in ci and '-e ".[test]"' in ci  # the suite again without data or optional packages
    assert "pip wheel" in ci and "npcnn summary lenet5" in ci and "mypy" in ci


def test_a_closed_pipe_is_not_a_traceback():
    """`npcnn summary resnet20 | head -0`: the reader left; the CLI exits quietly."""
    child = subprocess.Popen([sys.executable, "-m", "npcnn", "summary", "resnet20", "--depth", "3"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    child.stdout.close()
    err = child.stderr.read().decode()
    assert child.wait(timeout=300) == 0 and "Traceback" not in err, err
