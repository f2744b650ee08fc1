"""Zero-shot transfer matrix: every prompt on every task in mixed-prompt batches, equal to
evaluating each prompt alone; relative scores to each task's own prompts; the files."""
import json

import matplotlib.image
import numpy as np
import pytest

from spot_jax.prompts import prompt_files
import toy_tasks as toy
from spot_jax.training import data, inference
from spot_jax.transfer import transfer_report, zero_shot

LENGTHS = {"inputs": 16, "targets": 8}
TASKS = ["toy_parity", "toy_first_prefixed"]


@pytest.fixture(scope="module")
def prompts(toy_backbone, tmp_path_factory):
  toy.register()
  config, _, _ = toy_backbone
  d = tmp_path_factory.mktemp("prompts")
  vocab_hash = data.vocabulary_hash(data.output_vocabulary("toy_parity"))
  rng = np.random.default_rng(0)
  out = {}
  for name, task in (("parity_a", "toy_parity"), ("parity_b", "toy_parity"),
                     ("first", "toy_first_prefixed")):
    out[name] = prompt_files.save_prompt(
        d / name, rng.normal(size=(4, config.emb_dim)).astype(np.float32),
        dict(task=task, model_name=config.name, vocabulary_hash=vocab_hash, step=1))
  return out


@pytest.mark.slow
def test_matrix_equals_each_prompt_evaluated_alone(toy_backbone, prompts, tmp_path):
  config, checkpoint, _ = toy_backbone
  result = zero_shot.zero_shot_matrix(prompts, TASKS, model_config=config,
                                      checkpoint_path=checkpoint, task_feature_lengths=LENGTHS,
                                      num_examples=12, batch_size=8)
  assert result["prompts"] == list(prompts) and result["tasks"] == TASKS
  assert result["prompt_tasks"] == ["toy_parity", "toy_parity", "toy_first_prefixed"]
  raw = np.array(result["raw"])
  for k, name in enumerate(prompts):
    for t, task in enumerate(TASKS):
      alone = inference.evaluate(mixture_or_task_name=task, task_feature_lengths=LENGTHS,
                                 model_config=config, checkpoint_path=checkpoint,
                                 prompt_file=prompts[name], num_examples=12, batch_size=8,
                                 mesh_shape=(1, 1))
      assert raw[k, t] == alone[task][result["metrics"][t]], (name, task)
  own_parity = raw[:2, 0].mean()
  rel = np.array(result["relative"], dtype=float)
  if own_parity > 0:
    np.testing.assert_allclose(rel[:, 0], raw[:, 0] / own_parity)
  if raw[2, 1] > 0:
    np.testing.assert_allclose(rel[:, 1], raw[:, 1] / raw[2, 1])

  files = transfer_report.write_zero_shot(result, str(tmp_path / "zs"))
  assert json.loads(open(files["json"]).read()) == result
  table = open(files["markdown"]).read()
  assert "| parity_a (toy_parity) |" in table and "toy_first_prefixed" in table
  assert matplotlib.image.imread(files["heatmap"]).shape[0] > 100


@pytest.mark.slow
def test_command_line_on_a_library(toy_backbone, prompts, tmp_path, capsys):
  from spot_jax.cli import library as library_cli
  from spot_jax.cli import zero_shot as zero_shot_cli
  config, checkpoint, _ = toy_backbone
  lib = str(tmp_path / "lib")
  for name, path in prompts.items():
    assert library_cli.main(["add", lib, path, "--role", "transfer", "--run", name]) == 0
  (tmp_path / "config.json").write_text(json.dumps({"config": {
      k: getattr(config, k) for k in ("vocab_size", "emb_dim", "num_heads", "head_dim",
                                      "mlp_dim", "num_encoder_layers", "num_decoder_layers",
                                      "dropout_rate", "name")}}))
  result = zero_shot_cli.main(["--library", lib, "--tasks", *TASKS, "--checkpoint", checkpoint,
                               "--config", str(tmp_path / "config.json"),
                               "--task_feature_lengths", "inputs=16", "targets=8",
                               "--task_modules", "toy_tasks:register",
                               "--num_examples", "4", "--batch_size", "8",
                               "--out", str(tmp_path / "out")])
  assert sorted(result["prompts"]) == sorted(f"{prompt_files.load_metadata(p).task}/{n}"
                                             for n, p in prompts.items())
  assert (tmp_path / "out" / "zero_shot_heatmap.png").exists()
