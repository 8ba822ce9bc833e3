"""The course: every lesson in ``examples/lessons/`` runs in quick mode and its closing
assertions hold (a lesson whose claim stops being true fails here).

Each lesson runs in its own process, as a student runs it (``python examples/lessons/NN_topic.py
--quick``), with its figures written under a temporary ``runs/`` folder.
"""

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
