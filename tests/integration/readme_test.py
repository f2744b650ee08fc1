"""The README's quick start, run exactly as written in a fresh copy of the repository, from
its root and with relative paths, as a new user runs it: a fresh virtual environment, the
install, the main job (writing into ./spot_jax_demo) and the test command.

Only the amount of work is reduced, through the environment, never by editing the
commands: the main job takes flags from SPOT_JAX_PIPELINE_FLAGS (fewer steps and tasks),
pytest from PYTEST_ADDOPTS (one test file, so the suite does not run itself), pip from
PIP_NO_COMPILE (no .pyc files written at install)."""
import json
import os
import pathlib
import re
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
REDUCED_MAIN_JOB = ("--source_steps 4 --embedding_step 2 --target_steps 2 --target_eval_points 2 "
                    "--mixture_steps 2 "
                    "--source_seeds 0 --target_seeds 0 1 --sources synth_sentiment_movie "
                    "synth_nli_people --targets synth_sentiment_restaurant --prompt_length 4 "
                    "--source_batch_size 4 --target_batch_size 4 --num_eval_examples 8 "
                    "--top_k 1")
ONE_TEST_FILE = "tests/prompts/prompt_files_test.py"


def quick_start_commands():
  """The commands of the README's quick-start code block (comments dropped)."""
  text = (REPO / "README.md").read_text()
  section = text.split("## Quick start", 1)[1]
  block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
  return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def _fresh_copy(destination: pathlib.Path) -> pathlib.Path:
  """The repository's files as a clone of this working tree has them (tracked, plus new
  files git does not ignore), without the developer's .venv or outputs."""
  files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
  for name in filter(None, files):
    source = REPO / name
    if source.is_file():
      (destination / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(source, destination / name)
  return destination


def _user_env(**extra):
  """The environment a user's shell has: none of the test suite's JAX/XLA settings. pip
  skips byte-compiling the installed packages (PIP_NO_COMPILE: Python compiles what it
  imports on first use), which saves the suite a minute and changes nothing else."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", "JAX_PLATFORMS", "PYTEST_ADDOPTS", "VIRTUAL_ENV",
                      "PYTHONPATH") and not k.startswith(("JAX_COMPILATION_CACHE",
                                                          "JAX_PERSISTENT_CACHE"))}
  env["PIP_NO_COMPILE"] = "1"
  env.update(extra)
  return env


def test_the_quick_start_has_two_commands_and_ci_runs_the_second():
  commands = quick_start_commands()
  assert len(commands) == 2, commands
  assert "spot_jax.pipeline --out spot_jax_demo" in commands[0]
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1] in ci.splitlines()


@pytest.mark.slow
def test_the_quick_start_commands_run_verbatim_in_a_fresh_copy(tmp_path):
  main_job, tests = quick_start_commands()
  clone = _fresh_copy(tmp_path / "spot_jax")
  try:
    run = subprocess.run(["bash", "-c", main_job], cwd=clone, capture_output=True, text=True,
                         timeout=900, env=_user_env(SPOT_JAX_PIPELINE_FLAGS=REDUCED_MAIN_JOB))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    demo = clone / "spot_jax_demo"
    assert summary["out_dir"] == str(demo) and summary["library_ok"]
    for name in ("report.md", "results.md", "results.json", "study.json",
                 "similarity_heatmap.png", "similarity_vs_transfer.png", "study_config.json",
                 "summary.json", "zero_shot/zero_shot.json"):
      assert (demo / name).is_file(), name
    assert (demo / "library" / "manifest.jsonl").is_file()

    run = subprocess.run(["bash", "-c", tests], cwd=clone, capture_output=True, text=True,
                         timeout=900, env=_user_env(
                             PYTEST_ADDOPTS=f"{ONE_TEST_FILE} --basetemp={clone / '.tmp'}"))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert re.search(r"\b\d+ passed\b", run.stdout), run.stdout[-2000:]
  finally:
    shutil.rmtree(clone, ignore_errors=True)  # two virtual environments, several GB
