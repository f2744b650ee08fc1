"""The suite notices when a part of it stops running: a full run that collects fewer tests
in a directory than tests/collected_counts.json records stops before running any. Checked
on the suite's own conftest.py and pytest.ini (pytest-xdist's two workers, as CI runs them:
the workers collect and the controller checks) over a one-test suite, so that the check
does not collect the whole suite again."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_the_record_names_every_directory_of_tests():
  recorded = json.loads((REPO / "tests" / "collected_counts.json").read_text())
  folders = {str(p.parent.relative_to(REPO)) for p in (REPO / "tests").rglob("*_test.py")}
  assert folders == set(recorded)


def _run_suite(root, recorded):
  (root / "tests").mkdir(exist_ok=True)
  shutil.copy(REPO / "pytest.ini", root / "pytest.ini")
  shutil.copy(REPO / "tests" / "conftest.py", root / "tests" / "conftest.py")
  (root / "tests" / "one_test.py").write_text("def test_one():\n  pass\n")
  (root / "counts.json").write_text(json.dumps(recorded))
  env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}  # a run of its own
  env["SPOT_JAX_COLLECTED_COUNTS"] = str(root / "counts.json")
  return subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p",
                         "no:cacheprovider"], cwd=root, env=env, capture_output=True, text=True,
                        timeout=300)


@pytest.mark.slow
def test_a_full_run_that_collects_fewer_stops_naming_the_directory(tmp_path):
  run = _run_suite(tmp_path, {"tests": 2})
  out = run.stdout + run.stderr
  assert run.returncode == 1, out[-3000:]
  assert "tests: 1 of 2" in out and "stopped running" in out and " passed" not in out
  run = _run_suite(tmp_path, {"tests": 1})  # as many as recorded: it runs
  assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-3000:]
  assert "collected per directory: tests 1 (total 1)" in run.stdout
