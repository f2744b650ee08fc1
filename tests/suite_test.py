"""The suite notices when a part of it stops running: a full run that collects fewer tests
in a directory than tests/collected_counts.json records stops before running any (here
under pytest-xdist, as pytest.ini runs it, where the workers collect and the controller
checks)."""
import json
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_the_record_names_every_directory_of_tests():
  recorded = json.loads((REPO / "tests" / "collected_counts.json").read_text())
  folders = {str(p.parent.relative_to(REPO)) for p in (REPO / "tests").rglob("*_test.py")}
  assert folders == set(recorded)


def test_a_full_run_that_collects_fewer_stops_naming_the_directory(tmp_path):
  recorded = json.loads((REPO / "tests" / "collected_counts.json").read_text())
  record = tmp_path / "counts.json"
  record.write_text(json.dumps(dict(recorded, **{"tests/tools": 10_000})))
  env = dict(os.environ, SPOT_JAX_COLLECTED_COUNTS=str(record))
  for key in [k for k in env if k.startswith("PYTEST_")]:
    del env[key]  # not a worker of this run: a run of its own
  run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p",
                        "no:cacheprovider", f"--basetemp={tmp_path / 'tmp'}"], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
  assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
  out = run.stdout + run.stderr
  assert "tests/tools: " in out and "of 10000" in out and "stopped running" in out
  assert " passed" not in out
