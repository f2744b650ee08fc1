"""Test-wide settings: quiet TensorFlow, 8 emulated CPU devices for mesh tests."""
import gc
import os
import sys

# Collection imports TensorFlow, JAX, seqio and every test module with the garbage collector
# paused; then what they built is frozen (pytest_collection_finish), as spot_jax's commands
# do (`spot_jax.cli.startup`): no full collection walks the libraries' objects again.
gc.disable()

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  _flags += " --xla_force_host_platform_device_count=8"
# Tiny test models compile several times faster with these (tests/compile_flags.py); the
# parity tests pass at the same bounds with them. Set XLA_FLAGS yourself to override.
import compile_flags  # noqa: E402  (tests/, on the path)
os.environ["XLA_FLAGS"] = compile_flags.with_fast_compile(_flags)
# JAX's persistent compilation cache, shared by this process and the commands tests start
# (they inherit the environment): the same tiny programs are compiled again by many tests
# and processes. Keyed by the program, the flags and the jax version, so a hit is the
# executable a compile would give. Kept in the checkout (ignored by git), so a second run
# of the suite reuses it; a clean clone starts empty. Set JAX_COMPILATION_CACHE_DIR to
# choose another place. Only programs that took half a second or more to compile are
# written: with every program written, one full run wrote 1,769 (13.7 s) and its 745 hits,
# nearly all of programs compiled in milliseconds, saved 5.6 s of compiling.
_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(_CACHE, "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# Python's bytecode cache, likewise shared: with PYTHONDONTWRITEBYTECODE=1 in the shell (as
# on CI's machines) and `pip install --no-compile`, every process compiled every module it
# imported from source again, TensorFlow's and JAX's included: about 14 s of CPU in each
# command a test starts. Written to .cache/pycache in the checkout (PYTHONPYCACHEPREFIX),
# not beside the sources; set PYTHONPYCACHEPREFIX yourself to choose another place.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", os.path.join(_CACHE, "pycache"))
sys.dont_write_bytecode = False
sys.pycache_prefix = os.environ["PYTHONPYCACHEPREFIX"]

# The test-only task modules (`toy_tasks`) import by name here and in the commands tests
# start: `--gin.TASK_MODULES=['toy_tasks:register']`.
_TESTS = os.path.dirname(os.path.abspath(__file__))
if _TESTS not in os.environ.get("PYTHONPATH", "").split(os.pathsep):
  os.environ["PYTHONPATH"] = os.pathsep.join(
      p for p in (_TESTS, os.environ.get("PYTHONPATH", "")) if p)

import json  # noqa: E402
import pathlib  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

import toy_backbone as toy_backbone_lib  # noqa: E402  (tests/, on the path)

FIXTURES = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"


@pytest.fixture(scope="session")
def fixtures_dir() -> pathlib.Path:
  if not FIXTURES.is_dir():
    pytest.fail(f"test fixtures not found at {FIXTURES}: the repository must sit beside shared/")
  return FIXTURES


# End-to-end runs use one of the 8 emulated devices (`toy_backbone.ONE_DEVICE`): an 8-way
# data-parallel step on 2 cores is slow, and XLA's CPU collectives can stall their
# rendezvous when the cores are oversubscribed. The mesh tests cover the 8-device shardings.
TOY_CONFIG = toy_backbone_lib.config()


def _shared_root(tmp_path_factory) -> pathlib.Path:
  """The run's temporary root, which every pytest-xdist worker's folder sits in."""
  root = tmp_path_factory.getbasetemp()
  return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


@pytest.fixture(scope="session")
def toy_backbone(tmp_path_factory):
  """A tiny T5 model-tuned from scratch on the prefixed toy skills (`tests/toy_backbone.py`),
  exported as a T5X msgpack checkpoint: (config, path, train() result as JSON, its final
  parameters in the .npz file at result["final_params"]). Built once per run."""
  import toy_tasks
  toy_tasks.register()
  built = toy_backbone_lib.built_once(_shared_root(tmp_path_factory), toy_backbone_lib.NAME,
                                      toy_backbone_lib.build)
  return TOY_CONFIG, built["path"], built["result"]


@pytest.fixture(scope="session")
def tiny_vocab(tmp_path_factory):
  """The tiny SentencePiece model of `mocked_tfds.train_tiny_vocab` as a seqio vocabulary."""
  import mocked_tfds  # pylint: disable=g-import-not-at-top
  import seqio  # pylint: disable=g-import-not-at-top
  path = mocked_tfds.train_tiny_vocab(tmp_path_factory.mktemp("spm"))
  return seqio.SentencePieceVocabulary(path, extra_ids=0)


# --- The suite notices when a part of it stops running ------------------------------------
# tests/collected_counts.json records how many tests each directory collects. A full run
# (no paths, -k or -m) with fewer than recorded stops before running anything: a module
# that no longer imports, a renamed file or a lost parameter would otherwise pass quietly.
# More than recorded is fine; raise the record with the new counts the summary prints.
COUNTS_FILE = pathlib.Path(os.environ.get(  # another record: tests/suite_test.py
    "SPOT_JAX_COLLECTED_COUNTS", pathlib.Path(__file__).with_name("collected_counts.json")))


def _per_directory(nodeids):
  counts = {}
  for nodeid in nodeids:
    directory = nodeid.split("::")[0].rsplit("/", 1)[0]
    counts[directory] = counts.get(directory, 0) + 1
  return dict(sorted(counts.items()))


def _full_run(config) -> bool:
  """No paths but the suite's own folder, no -k, no -m."""
  here = pathlib.Path(__file__).resolve().parent
  start = pathlib.Path(config.invocation_params.dir)
  return (all((start / a).resolve() == here for a in config.args)
          and not config.option.keyword and not config.option.markexpr)


def _check_counts(config, nodeids):
  counts = _per_directory(nodeids)
  config.stash[_COUNTS_KEY] = counts
  if not _full_run(config):
    return
  recorded = json.loads(COUNTS_FILE.read_text())
  lost = {d: (counts.get(d, 0), n) for d, n in recorded.items() if counts.get(d, 0) < n}
  if lost:
    pytest.exit("tests collected fewer than tests/collected_counts.json records: " + "; ".join(
        f"{d}: {have} of {want}" for d, (have, want) in lost.items()) + ". A part of the suite "
                "stopped running (an import error, a renamed file, a lost parameter); if "
                "tests were merged on purpose, lower the record.", returncode=1)


def pytest_sessionstart(session):
  if session.config.pluginmanager.hasplugin("dsession"):  # pytest-xdist's controller:
    gc.enable()  # it collects nothing itself


def pytest_collection_finish(session):
  gc.freeze()
  gc.enable()
  if not hasattr(session.config, "workerinput"):  # a pytest-xdist worker: its controller checks
    _check_counts(session.config, [item.nodeid for item in session.items])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
  """Under pytest-xdist the controller collects nothing itself: every worker collects the
  whole suite (xdist checks they agree), so the first worker's list is checked; then the
  toy backbone's build starts (below)."""
  if _COUNTS_KEY not in node.config.stash:
    _check_counts(node.config, ids)
    _start_toy_backbone(node.config)


_COUNTS_KEY = pytest.StashKey[dict]()


def pytest_terminal_summary(terminalreporter, config):
  counts = config.stash.get(_COUNTS_KEY, None)
  if counts:
    terminalreporter.write_line("collected per directory: " + ", ".join(
        f"{d} {n}" for d, n in counts.items()) + f" (total {sum(counts.values())})")


# --- Long modules first ----------------------------------------------------------------------
# pytest-xdist (pytest.ini: -n auto --dist loadfile --no-loadscope-reorder) runs each module
# on one worker, in collection order. Modules with end-to-end (`slow`) tests start first, so
# the short ones fill the workers in at the end instead of one long module running alone.
def pytest_collection_modifyitems(config, items):
  del config
  module = lambda item: item.nodeid.split("::")[0]
  slow = {module(item) for item in items if item.get_closest_marker("slow")}
  first = {}
  for i, item in enumerate(items):
    first.setdefault(module(item), i)
  items.sort(key=lambda item: (module(item) not in slow, first[module(item)]))


# --- The toy backbone builds from the start of a full run ------------------------------------
# Under pytest-xdist the first worker to need the toy backbone would build it while any other
# worker that needs it waits idle. In a full run whose collection passed the count check,
# the controller, which only schedules, starts the build at once in a process of its own
# (`tests/toy_backbone.py`: the fixture's own build and lock); the fixture then finds it
# built, or waits for it. If that build fails, the fixture builds in the worker as before
# (the log is toy_backbone.log in the run's root).
_BACKGROUND = pytest.StashKey[subprocess.Popen]()


def _start_toy_backbone(config):
  if not _full_run(config) or config.option.collectonly or _BACKGROUND in config.stash:
    return
  root = config._tmp_path_factory.getbasetemp()  # what xdist gives the workers, + popen-gwN
  with open(root / f"{toy_backbone_lib.NAME}.log", "w") as log:
    config.stash[_BACKGROUND] = subprocess.Popen(
        [sys.executable, toy_backbone_lib.__file__, str(root)], stdout=log,
        stderr=subprocess.STDOUT)


def pytest_sessionfinish(session):
  proc = session.config.stash.get(_BACKGROUND, None)
  if proc is not None and proc.poll() is None:
    proc.kill()
  if proc is not None:
    proc.wait()
