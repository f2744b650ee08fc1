"""T5X for these tests: the installed t5x, else the pinned snapshots in ../shared/vendor (put
on sys.path here and on PYTHONPATH for the `python -m t5x.*` subprocesses). Its registry
dependencies come with `pip install -e '.[test]'`. Neither is a reason to skip: CI runs these."""
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import pytest

import compile_flags  # tests/, on the path

REPO = pathlib.Path(__file__).resolve().parents[2]
VENDOR = REPO.parent / "shared" / "vendor"
VENDORED = [VENDOR / "t5x", VENDOR / "airio", VENDOR / "jestimator"]


def _t5x_paths():
  """Folders to add to sys.path for `import t5x` (none when t5x is installed)."""
  try:
    import t5x  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return []
  except ImportError:
    pass
  missing = [str(p) for p in VENDORED if not p.is_dir()]
  if missing:
    raise RuntimeError(f"t5x is not installed and the vendored snapshots {missing} are missing: "
                       "install t5x (README) or keep the repository beside shared/")
  return [str(p) for p in VENDORED]


T5X_PATHS = _t5x_paths()
sys.path[:0] = [p for p in T5X_PATHS if p not in sys.path]

FIXTURE = "t5x/test_t5_tiny.checkpoint_0"  # T5X's "T5.1.1 tiny", written by T5X
SUPERGLUE_RTE = {"super_glue/rte:1.0.2": {"train": 2490, "validation": 277, "test": 3000}}


@pytest.fixture(scope="session")
def t5x_checkpoint_dir(fixtures_dir, tmp_path_factory):
  """The T5X fixture model in T5X's checkpoint directory layout (`checkpoint_0/checkpoint`,
  as the official `checkpoint_1100000/checkpoint`), which T5X's restore reads by step."""
  directory = tmp_path_factory.mktemp("t5x_ckpt") / "checkpoint_0"
  directory.mkdir()
  shutil.copyfile(fixtures_dir / FIXTURE, directory / "checkpoint")
  return str(directory)


@pytest.fixture(scope="session")
def tiny_vocab_file(tiny_vocab):
  return tiny_vocab.sentencepiece_model_file


@pytest.fixture(scope="session")
def t5x_env(tiny_vocab_file, tmp_path_factory):
  """Environment of a `python -m t5x.*` subprocess: offline T5 vocabulary, mocked TFDS
  metadata, one CPU device (the tiny batches do not split 8 ways)."""
  import mocked_tfds  # pylint: disable=g-import-not-at-top
  env = dict(os.environ)
  env["PYTHONPATH"] = os.pathsep.join(T5X_PATHS + [env.get("PYTHONPATH", "")]).strip(os.pathsep)
  env["SPOT_JAX_VOCAB"] = tiny_vocab_file
  env["MOCKED_TFDS_DATA_DIR"] = mocked_tfds.write_split_metadata(
      tmp_path_factory.mktemp("tfds_meta"), SUPERGLUE_RTE)
  env["XLA_FLAGS"] = compile_flags.with_fast_compile()
  env["JAX_PLATFORMS"] = "cpu"
  return env


def start_t5x(module, args, env, cwd, log_path):
  """`python -m <module> args` with TFDS mocked (tests/mocked_tfds.py), started in the
  background with its output in `log_path` (a file: no pipe to fill); see `finish`."""
  launcher = REPO / "tests" / "mocked_tfds.py"
  log = open(log_path, "w+")  # pylint: disable=consider-using-with
  proc = subprocess.Popen([sys.executable, str(launcher), module] + list(args), env=env,
                          cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
  return module, proc, log


def finish(started, timeout=600):
  """Waits for a `start_t5x` command; its output, failing the test with its tail."""
  module, proc, log = started
  try:
    code = proc.wait(timeout=timeout)
  finally:
    proc.kill()
  log.seek(0)
  out = log.read()
  log.close()
  if code:
    tail = "\n".join(l for l in out.splitlines() if "Path not found" not in l)[-6000:]
    pytest.fail(f"python -m {module} exited {code}:\n{tail}")
  return out


def run_t5x(module, args, env, cwd, timeout=600):
  """`python -m <module> args` with TFDS mocked, to the end; returns its output."""
  with tempfile.NamedTemporaryFile(suffix=".log", delete=False) as f:
    log_path = f.name
  try:
    return finish(start_t5x(module, args, env, cwd, log_path), timeout)
  finally:
    os.remove(log_path)
