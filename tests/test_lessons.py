"""The course: every lesson in ``examples/lessons/`` runs in quick mode and its closing
assertion, that every claim it made holds, passes (a lesson whose claim stops being true fails here).

Each lesson runs in its own process, as a student runs it (``python examples/lessons/NN_topic.py
--quick``), with its figures written under a temporary ``runs/`` folder.
"""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "examples" / "lessons").glob("[0-9][0-9]_*.py"))


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_runs_in_quick_mode_and_its_claims_hold(lesson, tmp_path):
    pytest.importorskip("matplotlib", reason="the lessons draw figures: pip install -e \".[plot]\"")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               MPLBACKEND="Agg", NPCNN_LESSONS_OUT=str(tmp_path / "runs" / "lessons"))
    proc = subprocess.run([sys.executable, str(lesson), "--quick"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.fail(f"{lesson.name} --quick exited {proc.returncode}\n--- stdout (tail)\n{proc.stdout[-4000:]}"
                    f"\n--- stderr (tail)\n{proc.stderr[-4000:]}")
    assert "[ok]" in proc.stdout and "[FAILED]" not in proc.stdout, f"{lesson.name}: a claim failed or none was made"


@pytest.mark.parametrize("lesson", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_ends_by_asserting_its_claims(lesson):
    # claim() prints and records a verdict; the lesson's last statement must assert them all, so
    # a false claim fails the lesson (and this suite) instead of only printing [FAILED]
    tree = ast.parse(lesson.read_text())
    last = tree.body[-1]
    assert isinstance(last, ast.Assert) and isinstance(last.test, ast.Call), f"{lesson.name} must end with an assert"
    assert getattr(last.test.func, "id", None) == "all_claims_hold", f"{lesson.name}: end with assert all_claims_hold()"
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "claim"]
    assert len(calls) >= 5, f"{lesson.name} makes only {len(calls)} claims"
