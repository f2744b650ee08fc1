"""The real `python -m t5x.train --gin_file=gin/spot_superglue.gin` (and t5x.eval / t5x.infer
with gin/spot_eval.gin, gin/spot_infer.gin), run as a user runs them from the repository
root, with tiny overrides: the T5X-written fixture model as the frozen checkpoint, SuperGLUE
RTE through its real seqio pipeline on mocked TFDS rows, a source prompt file to start from.
"""
import json
import os
import shutil
import socket
import subprocess
import sys

import numpy as np
import pytest
from flax import traverse_util

from spot_jax.model import t5x_checkpoint
from spot_jax.prompts import prompt_files
from spot_jax.transfer import prompt_library

import compile_flags  # tests/, on the path
from conftest import REPO, finish, run_t5x, start_t5x  # tests/t5x_integration/conftest.py

TASK = "spot_super_glue_rte_v102"
P, D = 4, 8  # prompt length; the fixture model's width


@pytest.fixture(scope="module")
def source_prompt(tmp_path_factory, tiny_vocab):
  """A source prompt file of this model and vocabulary (what spot_source.gin would write)."""
  path = str(tmp_path_factory.mktemp("source") / "best")
  array = np.random.RandomState(0).uniform(-0.5, 0.5, (P, D)).astype(np.float32)
  prompt_files.save_prompt(path, array, dict(
      task="spot_glue_mnli_v200", model_name="t5x_tiny", step=100, role="transfer",
      vocabulary_hash=prompt_files.vocabulary_hash_of(tiny_vocab)))
  return path, array


def _tiny(model_dir, steps, t5x_checkpoint_dir, vocab_file, prompt_file, *extra):
  return ["--gin_file=gin/spot_superglue.gin", "--gin_file=test/t5x_tiny_model.gin",
          f"--gin.MODEL_DIR='{model_dir}'",
          f"--gin.INITIAL_CHECKPOINT_PATH='{t5x_checkpoint_dir}'",
          f"--gin.VOCABULARY_FILE='{vocab_file}'", f"--gin.PROMPT_FILE='{prompt_file}'",
          f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}",
          f"--gin.TRAIN_STEPS={steps}", "--gin.BATCH_SIZE=2", f"--gin.PROMPT_LENGTH={P}",
          "--gin.EVAL_PERIOD=2", "--gin.CHECKPOINT_PERIOD=2", "--gin.PROMPT_SAVE_STEPS=(2,)",
          "--gin.NUM_EVAL_EXAMPLES=4", *extra]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, t5x_env, t5x_checkpoint_dir, tiny_vocab_file, source_prompt):
  """4 steps in one run (every checkpoint kept); then the same run stopped after step 2 (its
  directory as it was then: checkpoint_2 and the prompts up to step 2) and rerun to 4."""
  root = tmp_path_factory.mktemp("t5x_runs")
  whole, split = root / "whole", root / "split"
  args = lambda d, n, *x: _tiny(d, n, t5x_checkpoint_dir, tiny_vocab_file, source_prompt[0],
                                *x)
  run_t5x("t5x.train", args(whole, 4, "--gin.KEEP_CHECKPOINTS=None"), t5x_env, REPO)
  shutil.copytree(whole, split, ignore=shutil.ignore_patterns("checkpoint_4", "final.*"))
  best = prompt_files.load_metadata(split / "prompts" / "best")
  if best.step > 2:  # a best from step 4 did not exist after step 2
    for suffix in (".npy", ".json"):
      (split / "prompts" / f"best{suffix}").unlink()
  embedding_before = (split / "prompts" / "step_2.json").read_text()
  log = run_t5x("t5x.train", args(split, 4), t5x_env, REPO)
  return {"whole": whole, "split": split, "embedding_before": embedding_before,
          "resume_log": log}


@pytest.mark.slow
def test_t5x_train_exports_spot_jax_prompt_files_the_library_accepts(runs, tmp_path):
  prompts = runs["whole"] / "prompts"
  embedding = prompt_files.load_metadata(prompts / "step_2")
  best = prompt_files.load_metadata(prompts / "best")
  final = prompt_files.load_metadata(prompts / "final")
  assert (embedding.role, embedding.step, embedding.task) == ("task_embedding", 2, TASK)
  assert best.role == "transfer" and best.metric_name and best.step in (2, 4)
  assert final.step == 4 and embedding.model_name == "t5x_tiny" and embedding.shape == (P, D)
  library = prompt_library.PromptLibrary(tmp_path / "library", create=True)
  library.add_file(prompts / "step_2")
  library.add_file(prompts / "best")
  assert {e.role for e in library.entries(task=TASK)} == {"task_embedding", "transfer"}


@pytest.mark.slow
def test_t5x_train_restores_the_frozen_model_and_trains_only_the_prompt(
    runs, fixtures_dir, source_prompt):
  whole = runs["whole"]
  frozen = t5x_checkpoint.read_t5x_params(str(fixtures_dir / "t5x/test_t5_tiny.checkpoint_0"))
  start = t5x_checkpoint.read_t5x_params(str(whole / "checkpoint_0"))
  end = t5x_checkpoint.read_t5x_params(str(whole / "checkpoint_4"))
  np.testing.assert_array_equal(start["prompt"], source_prompt[1])  # from PROMPT_FILE
  for name, value in traverse_util.flatten_dict(frozen, sep="/").items():
    tree_end = traverse_util.flatten_dict(end, sep="/")
    np.testing.assert_array_equal(tree_end[name], value, err_msg=name)  # bit for bit
  assert not np.array_equal(end["prompt"], start["prompt"]), "the prompt moved"
  np.testing.assert_array_equal(end["prompt"],
                                prompt_files.load_prompt_array(whole / "prompts" / "final"))
  state = t5x_checkpoint.open_t5x_checkpoint(str(whole / "checkpoint_4"),
                                             subtree="optimizer/state")
  assert {k.split("/")[1] for k in state if k.startswith("param_states/")} == {"prompt"}, (
      "frozen weights carry no optimizer state")
  assert t5x_checkpoint.read_arrays({"step": state["step"]})["step"] == 4


@pytest.mark.slow
def test_t5x_train_resumes_exactly(runs):
  whole, split = runs["whole"] / "prompts", runs["split"] / "prompts"
  assert "Restoring from checkpoint: " + str(runs["split"] / "checkpoint_2") in runs["resume_log"]
  # The rerun went on from step 2 instead of starting again: step 2's prompt was not rewritten.
  assert (split / "step_2.json").read_text() == runs["embedding_before"]
  for name in ("step_2", "final"):
    np.testing.assert_array_equal(prompt_files.load_prompt_array(split / name),
                                  prompt_files.load_prompt_array(whole / name), err_msg=name)


@pytest.mark.slow
def test_t5x_eval_and_infer_run_a_prompt_file_as_spot_jax_does(
    runs, t5x_env, t5x_checkpoint_dir, tiny_vocab_file, tmp_path):
  prompt = runs["whole"] / "prompts" / "best"
  common = ["--gin_file=test/t5x_tiny_model.gin",
            f"--gin.INITIAL_CHECKPOINT_PATH='{t5x_checkpoint_dir}'",
            f"--gin.VOCABULARY_FILE='{tiny_vocab_file}'", f"--gin.PROMPT_FILE='{prompt}'",
            f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
            "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}", "--gin.BATCH_SIZE=2"]
  started = [  # side by side: three independent commands
      start_t5x("t5x.eval", ["--gin_file=gin/spot_eval.gin", *common,
                             f"--gin.EVAL_OUTPUT_DIR='{tmp_path / 'eval'}'"], t5x_env, REPO,
                tmp_path / "eval.log"),
      start_t5x("t5x.infer", ["--gin_file=gin/spot_infer.gin", *common,
                              f"--gin.INFER_OUTPUT_DIR='{tmp_path / 't5x_infer'}'"], t5x_env,
                REPO, tmp_path / "t5x_infer.log"),
      start_t5x("spot_jax.infer", ["--gin_file=gin/spot_infer.gin", *common,
                                   f"--gin.INFER_OUTPUT_DIR='{tmp_path / 'spot_infer'}'"],
                t5x_env, REPO, tmp_path / "spot_infer.log")]
  for command in started:
    finish(command)
  [metrics_file] = [p for p in (tmp_path / "eval").rglob("*-metrics.jsonl")]
  metrics = json.loads(metrics_file.read_text().splitlines()[-1])
  assert "accuracy" in metrics
  [predictions] = [p for p in (tmp_path / "t5x_infer").glob("*-predict.jsonl-*")
                   if not p.name.endswith(".COMPLETED")]
  theirs = [json.loads(l)["prediction"] for l in predictions.read_text().splitlines()]
  ours = _spot_jax_predictions(tmp_path / "spot_infer")
  assert theirs and theirs == ours[:len(theirs)]
  assert os.path.exists(tmp_path / "eval")


def _spot_jax_predictions(output_dir):
  lines = (output_dir / "predictions.jsonl").read_text().splitlines()
  return [json.loads(l)["prediction"] for l in lines]


@pytest.mark.slow
def test_t5x_train_on_two_processes_with_the_model_sharded(
    t5x_env, t5x_checkpoint_dir, tiny_vocab_file, source_prompt, fixtures_dir, tmp_path):
  """t5x's multi-process path: two processes on this host joined by jax.distributed (CPU
  collectives over gloo), two devices each, the frozen model split over 2 of the 4
  (partitioning/model_parallel.gin) and the batch over the other 2."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    port = s.getsockname()[1]
  env = dict(t5x_env, JAX_CPU_COLLECTIVES_IMPLEMENTATION="gloo",
             XLA_FLAGS=compile_flags.with_fast_compile(
                 "--xla_force_host_platform_device_count=2"))
  args = _tiny(tmp_path / "run", 4, t5x_checkpoint_dir, tiny_vocab_file, source_prompt[0],
               "--gin_file=partitioning/model_parallel.gin", "--gin.MODEL_PARALLEL=2",
               "--gin.BATCH_SIZE=4")
  log_files = [open(tmp_path / f"process_{i}.log", "w+") for i in range(2)]  # no pipe to fill
  procs = [subprocess.Popen(
      [sys.executable, str(REPO / "tests" / "mocked_tfds.py"), "t5x.train",
       "--multiprocess_gpu", f"--coordinator_address=localhost:{port}", "--process_count=2",
       f"--process_index={i}", *args], env=env, cwd=REPO, stdout=log_files[i],
      stderr=subprocess.STDOUT) for i in range(2)]
  try:
    codes = [p.wait(timeout=600) for p in procs]
  finally:
    for p in procs:
      p.kill()
  logs = []
  for f in log_files:
    f.seek(0)
    logs.append(f.read())
    f.close()
  for i, (code, log) in enumerate(zip(codes, logs)):
    assert code == 0, f"process {i}:\n{log[-4000:]}"
    assert "process_count: 2" in log and f"Process ID: {i}" in log
  assert "wrote prompt" in logs[0] and "wrote prompt" not in logs[1]  # process 0 writes
  run = tmp_path / "run"
  assert prompt_files.load_metadata(run / "prompts" / "final").step == 4
  frozen = traverse_util.flatten_dict(t5x_checkpoint.read_t5x_params(
      str(fixtures_dir / "t5x/test_t5_tiny.checkpoint_0")), sep="/")
  end = traverse_util.flatten_dict(t5x_checkpoint.read_t5x_params(str(run / "checkpoint_4")),
                                   sep="/")
  for name, value in frozen.items():  # written by both processes, shard by shard
    np.testing.assert_array_equal(end[name], value, err_msg=name)
  np.testing.assert_array_equal(end["prompt"],
                                prompt_files.load_prompt_array(run / "prompts" / "final"))
