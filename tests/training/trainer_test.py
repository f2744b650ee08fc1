"""The training loop end to end on offline toy tasks: a tiny model is model-tuned until
it solves prefixed skills, frozen, and a prompt is tuned to stand in for a prefix; runs
resume exactly; non-finite losses stop the run and are never saved."""
import json
import logging
import os

import jax
import numpy as np
import pytest

import toy_tasks
from spot_jax.model import checkpoints, config as config_lib
from spot_jax.prompts import prompt_files
from spot_jax.training import trainer

CONFIG = config_lib.get_config("tiny", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
                               mlp_dim=128, dropout_rate=0.0, name="toy")
LENGTHS = {"inputs": 16, "targets": 8}
ONE_DEVICE = (1, 1)  # see tests/conftest.py


@pytest.fixture(scope="module", autouse=True)
def _tasks():
  toy_tasks.register()


@pytest.fixture(scope="module")
def backbone(toy_backbone):
  assert toy_backbone[0] == CONFIG
  return toy_backbone[1], toy_backbone[2]


@pytest.mark.slow
def test_model_tuning_solves_the_prefixed_skills(backbone):
  _, out = backbone
  assert out["best"]["metric_value"] >= 95.0, out["history"][-1]


@pytest.mark.slow
def test_prompt_tuning_on_the_frozen_backbone_learns_a_task_that_needs_the_input(
    backbone, tmp_path, caplog):
  path, _ = backbone
  caplog.set_level(logging.INFO, logger="spot_jax.train")
  run = str(tmp_path / "pt")
  out = trainer.train(model_dir=run, mixture_or_task_name="toy_parity",
                      task_feature_lengths=LENGTHS, model_config=CONFIG,
                      initial_checkpoint=path, train_steps=300, prompt_length=8,
                      batch_size=32, eval_period=150, checkpoint_period=150, log_period=50,
                      prompt_save_steps=(100,), mesh_shape=ONE_DEVICE)
  # Chance is 50% (even/odd of the first digit); the label needs the input.
  assert out["best"]["metric_value"] >= 85.0, out["history"]
  # Console feedback: step, loss, throughput and ETA.
  lines = [r.getMessage() for r in caplog.records]
  assert any("step 50/300 loss" in l and "steps/s" in l and "ETA" in l for l in lines)
  # Prompts as files: the task-embedding step, the best and the final prompt.
  for name in ("step_100", "best", "final"):
    arr, meta = prompt_files.load_prompt(os.path.join(run, "prompts", name))
    assert arr.shape == (8, CONFIG.emb_dim)
    assert meta.task == "toy_parity" and meta.model_name == "toy" and meta.d_model == 64
  assert prompt_files.load_metadata(os.path.join(run, "prompts", "step_100")).role == \
      prompt_files.TASK_EMBEDDING
  best = prompt_files.load_metadata(os.path.join(run, "prompts", "best"))
  assert best.role == prompt_files.TRANSFER and best.metric_value == out["best"]["metric_value"]
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(run, "train")))


@pytest.mark.slow
def test_frozen_weights_come_from_the_checkpoint(backbone, tmp_path):
  """A silent fall-back to random weights would train and mean nothing: the loaded tree
  is the exported one, bit for bit, and a random backbone cannot solve the task."""
  path, out = backbone
  loaded = jax.tree_util.tree_flatten_with_path(checkpoints.load_frozen_model(path, CONFIG, seed=0))[0]
  with np.load(out["final_params"], allow_pickle=False) as final:  # the trained parameters
    assert sorted(final.files) == sorted(jax.tree_util.keystr(k) for k, _ in loaded)
    for k, leaf in loaded:
      np.testing.assert_array_equal(np.asarray(leaf), final[jax.tree_util.keystr(k)])
  with pytest.raises(FileNotFoundError, match="does-not-exist"):
    checkpoints.load_frozen_model(str(tmp_path / "does-not-exist"), CONFIG, seed=0)


def _losses(history):
  return [h["loss"] for h in history if "loss" in h]


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
  kwargs = dict(mixture_or_task_name="toy_parity_prefixed", task_feature_lengths=LENGTHS,
                model_config=CONFIG.replace(dropout_rate=0.1), initial_checkpoint=None,
                prompt_length=4, batch_size=8, log_period=1, checkpoint_period=3,
                keep_checkpoints=2, prompt_save_steps=(), mesh_shape=ONE_DEVICE)
  full = trainer.train(model_dir=str(tmp_path / "full"), train_steps=6, **kwargs)
  first = trainer.train(model_dir=str(tmp_path / "cut"), train_steps=3, **kwargs)
  resumed = trainer.train(model_dir=str(tmp_path / "cut"), train_steps=6, **kwargs)
  assert _losses(first["history"]) == _losses(full["history"])[:3]
  assert _losses(resumed["history"]) == _losses(full["history"])[3:]  # bit for bit
  np.testing.assert_array_equal(np.asarray(resumed["final_state"].params),
                                np.asarray(full["final_state"].params))


@pytest.mark.slow
def test_nonfinite_loss_stops_the_run_and_is_never_saved(tmp_path):
  params = jax.tree.map(np.array, checkpoints.load_frozen_model(None, CONFIG, seed=0))
  params["decoder"]["logits_dense"]["kernel"][:, 5] = np.nan
  from spot_jax.model import t5x_export
  path = str(tmp_path / "nan.msgpack")
  t5x_export.write_t5x_msgpack(params, path)
  run = tmp_path / "run"
  with pytest.raises(FloatingPointError, match="diverged at step 0: the loss was not finite"):
    trainer.train(model_dir=str(run), mixture_or_task_name="toy_parity",
                  task_feature_lengths=LENGTHS, model_config=CONFIG, initial_checkpoint=path,
                  train_steps=4, prompt_length=4, batch_size=8, log_period=2,
                  checkpoint_period=2, mesh_shape=ONE_DEVICE)
  ckpts = run / "checkpoints"
  assert not ckpts.exists() or not [p for p in ckpts.iterdir() if p.name.isdigit()]
  assert not (run / "prompts").exists()


def test_bad_configuration_fails_before_compiling(tmp_path):
  common = dict(model_dir=str(tmp_path / "r"), task_feature_lengths=LENGTHS,
                initial_checkpoint=None, train_steps=2)
  with pytest.raises(ValueError, match="toy_parity"):
    trainer.train(mixture_or_task_name="toy_parityy", model_config=CONFIG, **common)
  with pytest.raises(ValueError, match="vocabulary size mismatch: task 'toy_parity' has 259 "
                                       "pieces, the model's embedding has 128 rows"):
    trainer.train(mixture_or_task_name="toy_parity", model_config=CONFIG.replace(
        vocab_size=128), **common)
  with pytest.raises(ValueError, match="batch size 6 does not divide the mesh's data axis of "
                                       "size 8"):
    trainer.train(mixture_or_task_name="toy_parity", model_config=CONFIG, batch_size=6,
                  **common)


@pytest.mark.slow
def test_a_cpu_run_measures_its_split_and_a_resume_repeats_it(tmp_path, monkeypatch):
  """With no split or budget given, a run on CPU whose batch needs splitting times its step at
  each candidate split and trains with the fastest; the record keeps the choice and the
  times, and the resumed run repeats the split without measuring again, as does another run
  of the same model and shapes in the same process. (The CPU budget is
  shrunk here so the tiny model needs splitting: 2 examples of 8 per microbatch fit it, and
  the probe times that split and the finer one, 1 example.)"""
  from spot_jax.training import microbatch_probe, microbatching
  per_example = microbatching.activation_bytes_per_example(CONFIG, LENGTHS["inputs"] + 4,
                                                           LENGTHS["targets"])
  monkeypatch.setattr(microbatching, "CPU_BUDGET_GB", 2.5 * per_example / 2**30)
  monkeypatch.setattr(microbatching, "PROBE_MIN_STEPS_PER_CANDIDATE", 0)  # 1- and 2-step runs
  timed = []
  measure = microbatch_probe.seconds_per_step

  def counting(*args):
    timed.append(args[-1])
    return measure(*args)
  monkeypatch.setattr(microbatch_probe, "seconds_per_step", counting)
  monkeypatch.setattr(microbatch_probe, "_MEASURED", {})
  kwargs = dict(mixture_or_task_name="toy_parity_prefixed", task_feature_lengths=LENGTHS,
                model_config=CONFIG.replace(dropout_rate=0.1), initial_checkpoint=None,
                prompt_length=4, batch_size=8, log_period=1, checkpoint_period=2,
                prompt_save_steps=(), mesh_shape=ONE_DEVICE)
  cut = str(tmp_path / "cut")
  first = trainer.train(model_dir=cut, train_steps=2, **kwargs)
  assert timed == [[4, 8]]  # 2 examples per microbatch (the budget's split), then 1
  record = json.loads((tmp_path / "cut" / microbatching.RECORD_FILE).read_text())
  seconds = {int(k): v for k, v in record["probe_seconds_per_step"].items()}
  assert set(seconds) == {4, 8} and all(v > 0 for v in seconds.values())
  assert first["num_microbatches"] == record["num_microbatches"] == microbatching.fastest(
      seconds, record["budget_num_microbatches"])
  resumed = trainer.train(model_dir=cut, train_steps=4, **kwargs)
  assert timed == [[4, 8]] and resumed["num_microbatches"] == first["num_microbatches"]
  full = trainer.train(model_dir=str(tmp_path / "full"), train_steps=4,
                       num_microbatches=first["num_microbatches"], **kwargs)
  assert _losses(resumed["history"]) == _losses(full["history"])[2:]  # bit for bit
  np.testing.assert_array_equal(np.asarray(resumed["final_state"].params),
                                np.asarray(full["final_state"].params))
  # Another run of the same model and shapes in this process takes the same measurement.
  other = trainer.train(model_dir=str(tmp_path / "other"), train_steps=1,
                        **dict(kwargs, seed=1))
  assert timed == [[4, 8]] and other["num_microbatches"] == first["num_microbatches"]
  assert json.loads((tmp_path / "other" / microbatching.RECORD_FILE).read_text())[
      "probe_seconds_per_step"] == record["probe_seconds_per_step"]
