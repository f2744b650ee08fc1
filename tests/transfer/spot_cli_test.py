"""`python -m spot_jax.spot` end to end on the toy backbone: sources, library, target
embedding, retrieval and the target stage in one command, as a user runs it."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from spot_jax.prompts import prompt_files
from spot_jax.transfer.prompt_library import PromptLibrary

import compile_flags  # tests/, on the path

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_one_command_runs_spot_from_sources_to_the_target(toy_backbone, tmp_path):
  _, backbone, _ = toy_backbone
  out = tmp_path / "spot"
  args = ["--gin_file=test/tiny_model.gin", "--gin_file=runs/spot.gin",
          f"--gin.SPOT_DIR={out}", "--gin.SOURCE_TASKS=['toy_first', 'toy_last']",
          "--gin.TARGET_TASK=toy_parity", "--gin.TASK_MODULES=['toy_tasks:register']",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}",
          f"--gin.INITIAL_CHECKPOINT_PATH={backbone}", "--gin.SOURCE_STEPS=20",
          "--gin.EMBEDDING_STEP=10", "--gin.TARGET_STEPS=10", "--gin.EVAL_PERIOD=10",
          "--gin.CHECKPOINT_PERIOD=10", "--gin.LOG_PERIOD=5", "--gin.PROMPT_LENGTH=8",
          "--gin.BATCH_SIZE=16", "--gin.NUM_EVAL_EXAMPLES=16", "--gin.MESH_SHAPE=(1, 1)",
          "--gin.STRATEGY=top_k_weighted_average", "--gin.TOP_K=2"]
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
             XLA_FLAGS=compile_flags.with_fast_compile())
  proc = subprocess.run([sys.executable, "-m", "spot_jax.spot", *args], cwd=REPO, env=env,
                        capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  summary = json.loads((out / "spot_result.json").read_text())
  assert sorted(r["task"] for r in summary["ranking"]) == ["toy_first", "toy_last"]
  assert summary["strategy"] == "top_k_weighted_average" and len(summary["runs"]) == 1
  assert 0.0 <= summary["best"]["score"] <= 100.0
  library = PromptLibrary(str(out / "library"))
  assert library.verify().ok and len(library.entries()) == 4
  _, meta = prompt_files.load_prompt(str(out / "target_embeddings" / "toy_parity" / "prompts"
                                          / "step_10"))
  assert meta.task == "toy_parity" and meta.step == 10
  assert (out / "config.gin").exists() and (out / "operative_config.gin").exists()
  assert (out / "report.md").exists()  # the study's report, written by the same orchestrator
