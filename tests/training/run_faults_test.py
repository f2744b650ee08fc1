"""Faults a real user meets, reproduced as they happen: a second process on a run directory,
a resume with other settings, a damaged checkpoint, SIGTERM from a scheduler, `~` in a path,
a non-finite prompt file. Each ends in a clear refusal or an exact recovery."""
import json
import os
import signal
import subprocess
import sys

import gin
import numpy as np
import pytest

from spot_jax import run_lock
from spot_jax.prompts import initializers, prompt_files
import toy_tasks
from spot_jax.training import checkpointing, trainer
from spot_jax.model import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = config_lib.get_config("tiny", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
                               mlp_dim=128, dropout_rate=0.1, name="toy")
KWARGS = dict(mixture_or_task_name="toy_parity_prefixed",
              task_feature_lengths={"inputs": 16, "targets": 8}, model_config=CONFIG,
              initial_checkpoint=None, prompt_length=4, batch_size=8, log_period=1,
              checkpoint_period=2, prompt_save_steps=(), mesh_shape=(1, 1))
TINY = [f"--gin_file={os.path.join(REPO, 'tests', 'gin', 'tiny.gin')}", "--gin.EVAL_PERIOD=0",
        "--gin.PROMPT_SAVE_STEPS=()", "--gin.LOG_PERIOD=1"]


@pytest.fixture(scope="module", autouse=True)
def _tasks():
  toy_tasks.register()


@pytest.fixture(autouse=True)
def _clear_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _train_cli(*flags):
  from spot_jax import train
  gin.clear_config()
  return train.main([*TINY, *flags])


def _largest_file(directory):
  files = [os.path.join(r, f) for r, _, fs in os.walk(directory) for f in fs
           if f != checkpointing.FILE_LIST]
  return max(files, key=os.path.getsize)


def _truncate(path):
  with open(path, "r+b") as f:
    f.truncate(max(os.path.getsize(path) // 2, 1) - 1)


def _steps(run):
  return sorted(int(p) for p in os.listdir(os.path.join(run, "checkpoints")) if p.isdigit())


@pytest.mark.slow
def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(tmp_path, caplog):
  full = trainer.train(model_dir=str(tmp_path / "full"), train_steps=8, **KWARGS)
  run = str(tmp_path / "cut")
  trainer.train(model_dir=run, train_steps=4, **KWARGS)
  assert _steps(run) == [2, 4], "the latest and the one before it are kept"
  bad_state = _largest_file(os.path.join(run, "checkpoints", "4", "state"))
  _truncate(bad_state)
  with caplog.at_level("WARNING", logger="spot_jax.checkpoint"):
    resumed = trainer.train(model_dir=run, train_steps=6, **KWARGS)
  assert resumed["history"][0]["step"] == 3, "resumed after step 2"
  assert bad_state in caplog.text and "resuming from step 2" in caplog.text
  moved = os.listdir(os.path.join(run, checkpointing.CORRUPT_DIR))
  assert len(moved) == 1 and moved[0].startswith("4-")
  assert bad_state.split("/checkpoints/4/")[1] in open(
      os.path.join(run, checkpointing.CORRUPT_DIR, moved[0], "WHY.txt")).read()

  # The data iterator's file, as the issue found it: an IndexError without a file name.
  iterator = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(run, "checkpoints", "6"))
              for f in fs if "iterator" in f and "data" in f]
  assert iterator, os.listdir(os.path.join(run, "checkpoints", "6", "dataset"))
  _truncate(iterator[0])
  caplog.clear()
  with caplog.at_level("WARNING", logger="spot_jax.checkpoint"):
    last = trainer.train(model_dir=run, train_steps=8, **KWARGS)
  assert iterator[0] in caplog.text and last["history"][0]["step"] == 5
  np.testing.assert_array_equal(np.asarray(last["final_state"].params),
                                np.asarray(full["final_state"].params))


def test_no_checkpoint_to_fall_back_to_is_an_error_that_changes_nothing(tmp_path):
  run = str(tmp_path / "run")
  trainer.train(model_dir=run, train_steps=2, **KWARGS)
  listed = os.path.join(run, "checkpoints", "2", checkpointing.FILE_LIST)
  with open(listed) as f:
    first = sorted(json.load(f))[0]
  os.remove(os.path.join(run, "checkpoints", "2", first))
  with pytest.raises(checkpointing.CheckpointError, match=f"step 2: .*{first} is missing.*"
                     r"Nothing was changed; to start the run again from step 0, delete"):
    trainer.train(model_dir=run, train_steps=4, **KWARGS)
  assert _steps(run) == [2]


def test_a_resume_with_other_settings_is_refused_naming_them(tmp_path):
  run = tmp_path / "run"
  _train_cli(f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=2")
  config = (run / "config.gin").read_text()
  with pytest.raises(SystemExit) as e:
    _train_cli(f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=4", "--gin.LEARNING_RATE=1e6")
  message = str(e.value.code)
  assert f"--gin.MODEL_DIR {run} holds a run started with other settings" in message
  assert "LEARNING_RATE = 1000000.0 (the run has 0.3)" in message
  assert "TRAIN_STEPS" not in message.split("\nA resumed")[0], "a longer run is accepted"
  assert (run / "config.gin").read_text() == config, "config.gin still says what ran"
  assert _steps(str(run)) == [2]
  # The library call, for those who train without gin: the settings file catches it.
  with pytest.raises(ValueError, match=r"train: batch_size=16: expected 8, the value the run "
                                       r"in .* started with"):
    trainer.train(model_dir=str(run), train_steps=4, mixture_or_task_name="toy_parity",
                  task_feature_lengths={"inputs": 16, "targets": 8},
                  model_config=config_lib.get_config("tiny", vocab_size=384, emb_dim=64,
                                                     num_heads=4, head_dim=16, mlp_dim=128,
                                                     dropout_rate=0.0, name="tiny_test"),
                  initial_checkpoint=None, prompt_length=4, batch_size=16,
                  mesh_shape=(1, 1))
  with pytest.raises(SystemExit, match="TRAIN_STEPS = 1 \\(the run has 2\\)"):
    _train_cli(f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=1")
  again = _train_cli(f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=4")
  assert again["final_step"] == 4 and again["history"][0]["step"] == 3


def test_a_home_relative_model_dir_is_one_directory(tmp_path, monkeypatch):
  monkeypatch.setenv("HOME", str(tmp_path / "home"))
  monkeypatch.chdir(tmp_path)
  out = _train_cli("--gin.MODEL_DIR='~/run'", "--gin.TRAIN_STEPS=2")
  run = tmp_path / "home" / "run"
  assert out["model_dir"] == str(run)
  for name in ("config.gin", "operative_config.gin", "checkpoints", "prompts"):
    assert (run / name).exists(), name
  assert not (tmp_path / "~").exists()


def test_a_non_finite_init_prompt_file_is_named(tmp_path):
  path = str(tmp_path / "nan_prompt")  # a bare .npy, as a released prompt comes
  prompt = np.ones((4, 64), np.float32)
  prompt[1, 3] = np.nan
  np.save(path + ".npy", prompt)
  with pytest.raises(prompt_files.PromptFileError,
                     match=f"prompt array {path}.npy holds 1 NaN or infinite values"):
    trainer.train(model_dir=str(tmp_path / "run"), train_steps=2,
                  prompt_init=initializers.prompt_file(path),
                  **dict(KWARGS, mixture_or_task_name="toy_parity"))


def _lock_holder(directory):
  """A second process holding `directory` as a running command would."""
  code = ("import sys, time; from spot_jax import run_lock\n"
          f"with run_lock.hold({str(directory)!r}):\n"
          "  print('held', flush=True); time.sleep(120)")
  proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
  assert proc.stdout.readline().strip() == "held"
  return proc


@pytest.mark.parametrize("command,flags", [
    ("spot_jax.eval", ["--gin_file=gin/test/tiny_model.gin", "--gin_file=runs/eval.gin",
                       "--gin.MIXTURE_OR_TASK_NAME=toy_parity", "--gin.PROMPT_FILE=/nowhere",
                       "--gin.TASK_MODULES=['toy_tasks:register']",
                       "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}"]),
    ("spot_jax.infer", ["--gin_file=gin/test/tiny_model.gin", "--gin_file=runs/infer.gin",
                        "--gin.MIXTURE_OR_TASK_NAME=toy_parity", "--gin.PROMPT_FILE=/nowhere",
                        "--gin.TASK_MODULES=['toy_tasks:register']",
                        "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}"]),
    ("spot_jax.pipeline", []),  # the main job
])
def test_every_command_refuses_an_output_directory_in_use(tmp_path, command, flags):
  out = tmp_path / "out"
  holder = _lock_holder(out)
  try:
    macro = {"spot_jax.eval": "--gin.EVAL_OUTPUT_DIR=", "spot_jax.infer": "--gin.INFER_OUTPUT_DIR=",
             "spot_jax.pipeline": "--out="}[command]
    module = __import__(command, fromlist=["main"])
    with pytest.raises(SystemExit) as e:
      module.main([*flags, f"{macro}{out}"])
    message = str(e.value.code)
    assert f"{out} is in use by pid {holder.pid}" in message and "choose another" in message
    assert os.listdir(out) == [run_lock.LOCK_FILE], "nothing was written"
  finally:
    holder.kill()
    holder.wait()


def _env():
  """This process's environment: its XLA_FLAGS (tests/conftest.py) compile alike."""
  return dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")


@pytest.mark.slow
def test_a_second_train_is_refused_and_sigterm_saves_for_an_exact_resume(tmp_path):
  """Two `spot_jax.train` commands on one MODEL_DIR, as the issue ran them; then the first
  is stopped as a scheduler stops it, and the rerun resumes bit for bit."""
  run = tmp_path / "run"
  # One device: the same numerics however many devices the process emulates.
  flags = [f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=200", "--gin.CHECKPOINT_PERIOD=1000",
           "--gin.MESH_SHAPE=(1, 1)"]
  first = subprocess.Popen([sys.executable, "-m", "spot_jax.train", *TINY, *flags], cwd=REPO,
                           env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
  lines = []
  for line in first.stdout:
    lines.append(line)
    if " step 3/200 " in line:
      break
  assert first.poll() is None, "".join(lines)[-3000:]
  with pytest.raises(SystemExit) as e:  # the second command, other rate and steps
    _train_cli(f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=500", "--gin.LEARNING_RATE=0.1")
  assert f"--gin.MODEL_DIR {run} is in use by pid {first.pid}" in str(e.value.code)
  first.send_signal(signal.SIGTERM)
  out = "".join(lines) + first.stdout.read()
  assert first.wait(timeout=120) == 128 + signal.SIGTERM, out[-3000:]
  assert "rerun the same command to resume" in out
  stopped = _steps(str(run))
  assert len(stopped) == 1 and 3 <= stopped[0] < 200, out[-2000:]
  assert not [p for p in os.listdir(run / "checkpoints") if "tmp" in p]
  assert "TRAIN_STEPS = 200" in (run / "config.gin").read_text()

  resumed = _train_cli(*flags)
  assert resumed["history"][0]["step"] == stopped[0] + 1
  _train_cli(f"--gin.MODEL_DIR={tmp_path / 'reference'}", *flags[1:])  # uninterrupted
  np.testing.assert_array_equal(
      prompt_files.load_prompt_array(str(run / "prompts" / "final")),
      prompt_files.load_prompt_array(str(tmp_path / "reference" / "prompts" / "final")))
