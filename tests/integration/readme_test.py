"""The README's quick start, run exactly as written in a fresh copy of the repository, in the
README's order, from its root and with relative paths, as a new user runs it: command 1
(the install and the main job, writing ./spot_jax_demo), the same command again (it
resumes), then command 2 (the install of the test extras and the tests) in the folder
command 1 left behind.

Only the amount of work is reduced, through the environment, never by editing the
commands: the main job takes flags from SPOT_JAX_PIPELINE_FLAGS (fewer steps and tasks),
pytest from PYTEST_ADDOPTS (one test file, in one process, so the suite does not run itself).

The packages are installed once per run of the suite, not once per test: the copy's
`.venv` is made by the commands themselves (`python3 -m venv --upgrade-deps .venv`,
`pip install -e ...`), but before command 1 a `.pth` file there lets it see the packages of
the environment running this suite, the same pinned versions that `.ci/run` installs on a
clean checkout by running command 2 itself; pip finds every requirement met and installs
spot_jax alone (and, once, the newest pip).
What command 1 installs is a subset of that, so while command 1 runs, the packages outside
spot_jax's install requirements (torch, transformers, peft, pytest, t5x's dependencies)
are not on its path: the main job must run on what command 1 installs."""
import collections
import importlib.metadata
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig

import matplotlib.image
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from spot_jax.transfer import study, study_measures, study_report
from spot_jax.transfer.prompt_library import PromptLibrary

import compile_flags  # tests/, on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ("synth_sentiment_movie", "synth_sentiment_product", "synth_nli_people",
           "synth_topic_goodbad")
TARGET = "synth_sentiment_restaurant"
REDUCED_MAIN_JOB = ("--source_steps 6 --embedding_step 3 --target_steps 3 "
                    "--target_eval_points 3 --mixture_steps 3 --source_seeds 0 "
                    "--target_seeds 0 1 --prompt_length 4 --source_batch_size 8 "
                    "--target_batch_size 8 --top_k 2 --num_eval_examples 16 "
                    f"--sources {' '.join(SOURCES)} --targets {TARGET}")
ONE_TEST_FILE = "tests/prompts/prompt_files_test.py"
VIEW_ENV = "SPOT_JAX_QUICK_START_PACKAGES"  # which of the suite's packages a process sees
# Run at startup from the copy's .pth file. pip sees what is installed (metadata) and can
# import none of it, as in a new environment: it decides how to install from what it can
# import (e.g. wheel). Any other process sees the metadata of the view VIEW_ENV names and
# imports its top-level modules from the suite's site-packages itself, after the copy's own
# (a finder at the end of sys.meta_path): at their real paths, so the bytecode the suite's
# processes compiled (PYTHONPYCACHEPREFIX) serves these too. Through symbolic links each
# view's paths were new to that cache in every run: about 10 s of CPU per process compiling
# the same modules again.
PATHS = """import importlib.machinery, os, sys
_views = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spot_jax_quick_start_views")
_pip = os.path.basename(sys.argv[0] if sys.argv else "").startswith("pip")
_view = "metadata" if _pip else os.environ.get({VIEW_ENV!r}, "all")
sys.path.append(os.path.join(_views, _view))
with open(os.path.join(_views, _view + ".modules")) as _f:
  _MODULES = frozenset(_f.read().split())


class SuiteModules:
  @staticmethod
  def find_spec(name, path=None, target=None):
    if path is None and name in _MODULES:
      return importlib.machinery.PathFinder.find_spec(name, [{SUITE!r}])
    return None


sys.meta_path.append(SuiteModules)
""".replace("{VIEW_ENV!r}", repr(VIEW_ENV))


def quick_start_commands():
  """The commands of the README's quick-start code block (comments dropped)."""
  text = (REPO / "README.md").read_text()
  section = text.split("## Quick start", 1)[1]
  block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
  return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_the_quick_start_has_two_commands_and_ci_runs_the_second():
  commands = quick_start_commands()
  assert len(commands) == 2, commands
  assert "spot_jax.pipeline --out spot_jax_demo" in commands[0]
  ci = (REPO / ".ci" / "run").read_text()
  assert commands[1] in ci.splitlines()


def _fresh_copy(destination: pathlib.Path) -> pathlib.Path:
  """The repository's files as a clone of this working tree has them (tracked, plus new
  files git does not ignore), without the developer's .venv or outputs (./spot_jax_demo
  is ignored, so a folder where command 1 ran copies as a clean one)."""
  files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=REPO, check=True, capture_output=True).stdout.decode().split("\0")
  for name in filter(None, files):
    source = REPO / name
    if source.is_file():
      (destination / name).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy2(source, destination / name)
  return destination


def _closure(names):
  """These distributions and their requirements, transitively (with the extras asked)."""
  keep, todo = set(), [(name, frozenset()) for name in names]
  while todo:
    name, extras = todo.pop()
    if (canonicalize_name(name), extras) in keep:
      continue
    keep.add((canonicalize_name(name), extras))
    try:
      requires = importlib.metadata.requires(name) or []
    except importlib.metadata.PackageNotFoundError:
      continue
    for req in map(Requirement, requires):
      if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in extras | {""}):
        todo.append((req.name, frozenset(req.extras)))
  return {name for name, _ in keep}


NEW_VENV = ("pip", "setuptools")  # what `python3 -m venv --upgrade-deps` installs


def _entries(dists):
  """Top-level entries of the suite's site-packages that these distributions installed."""
  site = pathlib.Path(sysconfig.get_paths()["purelib"])
  names = {canonicalize_name(d) for d in dists}
  entries = set()
  for dist in importlib.metadata.distributions(path=[str(site)]):
    if canonicalize_name(dist.metadata["Name"]) in names:
      entries.update(f.parts[0] for f in dist.files or () if f.parts[0] != "..")
  return sorted(e for e in entries if (site / e).exists())


def _module_name(site: pathlib.Path, entry: str):
  """The top-level module an entry of site-packages provides, if any."""
  if entry.endswith((".dist-info", ".egg-info", ".pth")) or entry == "__pycache__":
    return None
  if (site / entry).is_dir():
    return entry if entry.isidentifier() else None  # e.g. numpy.libs is no module
  stem = entry.split(".")[0]
  return stem if entry.endswith((".py", ".so")) and stem.isidentifier() else None


def _venv_seeing_the_suites_packages(clone: pathlib.Path):
  """`python3 -m venv .venv` in the copy (command 1 runs it again with --upgrade-deps, which
  keeps what is there and brings pip up to date), with a .pth file that shows the suite's
  packages after the copy's own (PATHS), in views: "metadata" (every distribution's
  metadata and no module, for pip), "command_1" (what `pip install -e .` installs:
  spot_jax's requirements, transitively) and "all". A view is a folder of symbolic links to
  its distributions' metadata and a list of the top-level modules it may import. Skipped (a
  full install then) when `python3` is another Python than the one running the suite."""
  version = subprocess.run(["python3", "-c", "import sys; print(sys.version_info[:2])"],
                           capture_output=True, text=True, check=True).stdout.strip()
  if version != str(tuple(sys.version_info[:2])):
    return
  subprocess.run(["python3", "-m", "venv", str(clone / ".venv")], check=True)
  site = pathlib.Path(subprocess.run(
      [str(clone / ".venv" / "bin" / "python"), "-c",
       "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
      capture_output=True, text=True, check=True).stdout.strip())
  suite = pathlib.Path(sysconfig.get_paths()["purelib"])
  everything = [d.metadata["Name"] for d in importlib.metadata.distributions(path=[str(suite)])
                if canonicalize_name(d.metadata["Name"]) != "spot-jax"]
  command_1 = _closure(["spot_jax", *NEW_VENV]) - {"spot-jax"}
  every, first = _entries(everything), _entries(command_1)
  # Per view: the entries whose metadata it shows (symbolic links), and whether it imports
  # their modules.
  views = {"metadata": (every, False), "command_1": (first, True), "all": (every, True)}
  for view, (entries, imports) in views.items():
    folder = site / "spot_jax_quick_start_views" / view
    folder.mkdir(parents=True)
    for entry in entries:
      if entry.endswith(".dist-info"):
        (folder / entry).symlink_to(suite / entry)
    modules = sorted(filter(None, (_module_name(suite, e) for e in entries))) if imports else []
    (folder.parent / f"{view}.modules").write_text("\n".join(modules) + "\n")
  (site / "spot_jax_quick_start_paths.py").write_text(
      PATHS.replace("{SUITE!r}", repr(str(suite))))
  (site / "zz_spot_jax_quick_start.pth").write_text("import spot_jax_quick_start_paths\n")


def _user_env(**extra):
  """The environment a user's shell has: none of the suite's settings but three that only
  save work, the suite's compilation caches (JAX_COMPILATION_CACHE_DIR, tests/conftest.py:
  a hit is the executable a compile would give; PYTHONPYCACHEPREFIX, Python's bytecode)
  and XLA's quicker backend for tiny models; not the 8 emulated devices, so the main job
  sees the one CPU device a user has."""
  env = {k: v for k, v in os.environ.items()
         if k not in ("XLA_FLAGS", "JAX_PLATFORMS", "PYTEST_ADDOPTS", "VIRTUAL_ENV",
                      "PYTHONPATH") and not k.startswith("PYTEST_XDIST")}
  env["XLA_FLAGS"] = compile_flags.with_fast_compile()
  env["PIP_NO_COMPILE"] = "1"  # Python compiles what it imports on first use
  env.update(extra)
  return env


def _run(command, clone, **env):
  run = subprocess.run(["bash", "-c", command], cwd=clone, capture_output=True, text=True,
                       timeout=900, env=_user_env(**env))
  assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-5000:]
  return run


QuickStart = collections.namedtuple("QuickStart", "clone first first_results again suite")


def _summary(run):
  """The main job's summary: the last line it prints."""
  return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def quick_start(tmp_path_factory):
  """Command 1, command 1 again, command 2, in one fresh copy; the results table as the
  first run wrote it (the second rewrites the file)."""
  main_job, tests = quick_start_commands()
  clone = _fresh_copy(tmp_path_factory.mktemp("quick_start") / "spot_jax")
  _venv_seeing_the_suites_packages(clone)
  first = _run(main_job, clone, SPOT_JAX_PIPELINE_FLAGS=REDUCED_MAIN_JOB,
               **{VIEW_ENV: "command_1"})
  first_results = json.loads((clone / "spot_jax_demo" / "results.json").read_text())
  again = _run(main_job, clone, SPOT_JAX_PIPELINE_FLAGS=REDUCED_MAIN_JOB,
               **{VIEW_ENV: "command_1"})
  suite = _run(tests, clone, PYTEST_ADDOPTS=f"{ONE_TEST_FILE} -n 0 --basetemp={clone / '.tmp'}")
  yield QuickStart(clone, first, first_results, again, suite)
  shutil.rmtree(clone, ignore_errors=True)


@pytest.mark.slow
def test_the_main_job_writes_every_artifact(quick_start):
  summary = _summary(quick_start.first)
  out = quick_start.clone / "spot_jax_demo"
  assert summary["out_dir"] == str(out) and summary["library_ok"]
  # The bundled suite's rows fit the feature lengths: counted, nothing truncated.
  assert all(r["examples"] > 0 and r["truncated_inputs"] == r["truncated_targets"] == 0
             for r in summary["data"])
  # The table: JSON and markdown agree; every init, two seeds, an interval each.
  table = json.loads((out / "results.json").read_text())
  parsed = study_report.read_results_markdown((out / "results.md").read_text())
  assert parsed["methods"] == list(study.INITS)
  assert set(parsed["rows"]) == {TARGET, study_measures.AVERAGE}
  for method in study.INITS:
    cell = table["cells"][TARGET][method]
    assert cell["n"] == 2 and 0.0 <= cell["mean"] <= 100.0 and cell["ci95"] is not None
    assert abs(parsed["rows"][TARGET][method]["mean"] - cell["mean"]) < 0.01
  # The report: claims, comparisons and conclusions from the intervals.
  data = json.loads((out / "study.json").read_text())
  report = (out / "report.md").read_text()
  assert [c["conclusion"] for c in data["comparisons"]] == summary["conclusions"]
  assert all(c in report for c in summary["conclusions"])
  # The pictures decode.
  for name in ("similarity_heatmap.png", "similarity_vs_transfer.png",
               "zero_shot/zero_shot_heatmap.png"):
    image = matplotlib.image.imread(str(out / name))
    assert image.shape[0] > 200 and image.shape[1] > 200
  for name in ("study_config.json", "summary.json", "zero_shot/zero_shot.json",
               "config.gin", "operative_config.gin"):
    assert (out / name).is_file(), name
  # The library: a key and a value per source run, all verified.
  assert (out / "library" / "manifest.jsonl").is_file()
  library = PromptLibrary(str(out / "library"))
  assert library.verify().ok and len(library.entries()) == 2 * len(SOURCES)
  sim = json.loads((out / "similarity.json").read_text())
  assert sim["tasks"] == [*SOURCES, TARGET] and len(sim["matrix"]) == len(SOURCES) + 1
  # Learning curves (validation at steps 1, 2, 3), the majority-class bar, transfer by the
  # source's relation to the target (same family, label control, other family), zero-shot
  # transfer by relation, and the claims they decide.
  record = json.loads((out / "targets" / TARGET / "random_uniform" / "seed0" /
                       "score.json").read_text())
  assert [s for s, _ in record["curve"]] == [1, 2, 3]
  assert record["score"] == record["auc"] == sum(v for _, v in record["curve"]) / 3
  assert 40.0 <= data["majority"][TARGET] < 100.0
  relations = {s["source"]: s["relation"] for s in data["source_scores"]}
  assert relations == {"synth_sentiment_movie": "same family",
                       "synth_sentiment_product": "same family",
                       "synth_nli_people": "other family",
                       "synth_topic_goodbad": "label control"}
  by_relation = data["transfer_by_relation"]["score"]
  assert by_relation["same_minus_other_family"]["n"] == 2
  assert by_relation["same_minus_label_control"]["n"] == 2
  assert set(data["zero_shot"]["by_relation"]["groups"]) == {
      "same family", "other family", "label control"}
  for claim in ("every target clearly above its majority baseline from its best init",
                "same-family sources transfer better than other-family sources",
                "zero-shot transfer within a family exceeds transfer across families"):
    assert claim in report
  assert len(json.loads((out / "transfer_pairs.json").read_text())) == len(SOURCES)
  # TensorBoard logs of the runs.
  events = [f for _, _, files in os.walk(out) for f in files if "tfevents" in f]
  assert len(events) >= 2 * (len(SOURCES) + 1)


@pytest.mark.slow
def test_the_console_shows_progress_and_results_not_library_notices(quick_start):
  log = quick_start.first.stderr
  assert any("[targets]" in line and "ETA" in line for line in log.splitlines())
  assert "packed runs" in log  # the runs of a stage trained together
  assert "FunctionDataset" not in log and "sequence lengths are longer" not in log


@pytest.mark.slow
def test_the_first_command_again_resumes_without_training(quick_start):
  run = quick_start
  assert _summary(run.again)["conclusions"] == _summary(run.first)["conclusions"]
  again_results = json.loads((run.clone / "spot_jax_demo" / "results.json").read_text())
  assert again_results["cells"] == run.first_results["cells"]
  assert "spot_jax.train]" not in run.again.stderr
  assert "spot_jax.train]" in run.first.stderr


@pytest.mark.slow
def test_the_tests_pass_in_the_folder_the_main_job_left(quick_start):
  suite = quick_start.suite
  assert (quick_start.clone / "spot_jax_demo" / "report.md").is_file()
  assert re.search(r"\b\d+ passed\b", suite.stdout) and " failed" not in suite.stdout, \
      suite.stdout[-2000:]
