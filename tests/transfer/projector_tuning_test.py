"""Su et al.'s projector task tuning across model widths: a prompt of a 64-wide model is
carried to a 48-wide one by training the projector through the 48-wide model's loss, with
the trainer's checkpoints, validation and prompt files; it resumes exactly."""
import os

import jax
import numpy as np
import pytest

from spot_jax.model import config as config_lib
from spot_jax.prompts import initializers, prompt_files
import toy_tasks as toy
from spot_jax.training import optimizer, trainer
from spot_jax.prompts import projector as projector_lib
from spot_jax.transfer.prompt_library import PromptLibrary

LENGTHS = {"inputs": 16, "targets": 8}
NARROW = config_lib.get_config("tiny", vocab_size=384, emb_dim=48, num_heads=4, head_dim=12,
                               mlp_dim=96, dropout_rate=0.0, name="toy_narrow")
TARGET_STEPS = 10  # budget at which random init has not yet solved the task


@pytest.fixture(scope="module")
def models(toy_backbone, tmp_path_factory):
  """(wide config, wide checkpoint, a toy_parity prompt of the wide model, narrow checkpoint)."""
  toy.register()
  wide, wide_path, _ = toy_backbone
  d = tmp_path_factory.mktemp("projector")
  trainer.train(model_dir=str(d / "narrow"), mixture_or_task_name="toy_mt_mixture",
                task_feature_lengths=LENGTHS, model_config=NARROW, initial_checkpoint=None,
                train_steps=400, mode="model",
                tx=optimizer.model_tuning_optimizer(learning_rate=1e-2), batch_size=32,
                eval_period=0, checkpoint_period=400, log_period=400,
                export_params_path=str(d / "narrow.msgpack"), mesh_shape=(1, 1))
  source = trainer.train(model_dir=str(d / "source"), mixture_or_task_name="toy_parity",
                         task_feature_lengths=LENGTHS, model_config=wide,
                         initial_checkpoint=wide_path, train_steps=150, prompt_length=8,
                         batch_size=32, eval_period=150, checkpoint_period=150,
                         num_eval_examples=64, prompt_save_steps=(), mesh_shape=(1, 1))
  return wide, os.path.join(d, "source", "prompts", "best"), str(d / "narrow.msgpack"), source


def _on_narrow(model_dir, checkpoint, steps, **kwargs):
  return trainer.train(model_dir=str(model_dir), mixture_or_task_name="toy_parity",
                       task_feature_lengths=LENGTHS, model_config=NARROW,
                       initial_checkpoint=checkpoint, train_steps=steps, prompt_length=8,
                       batch_size=32, eval_period=TARGET_STEPS // 2, num_eval_examples=64,
                       checkpoint_period=TARGET_STEPS // 2, prompt_save_steps=(),
                       mesh_shape=(1, 1), **kwargs)


@pytest.mark.slow
def test_task_tuned_projection_beats_random_init_and_resumes(models, tmp_path):
  wide, source_file, narrow_path, source = models
  project = dict(mode="projector", projector=projector_lib.make_projector(hidden_dim=64),
                 source_prompt_file=source_file)
  projected = _on_narrow(tmp_path / "proj", narrow_path, TARGET_STEPS, **project)
  random = _on_narrow(tmp_path / "random", narrow_path, TARGET_STEPS,
                      prompt_init=initializers.random_uniform())
  curve = lambda out: [h["mean_first_metric"] for h in out["history"] if "eval" in h]
  print(f"\n[projector] source on the wide model {source['best']['metric_value']:.1f}; "
        f"validation accuracy on the narrow model at steps 5 and 10: projected "
        f"{curve(projected)}, random init {curve(random)}")
  assert len(curve(projected)) == len(curve(random)) == 2
  assert np.mean(curve(projected)) > np.mean(curve(random))

  # Its prompts are prompt files of the narrow model, which a library accepts.
  best = os.path.join(tmp_path, "proj", "prompts", "best")
  array, meta = prompt_files.load_prompt(best)
  assert array.shape == (8, NARROW.emb_dim) and meta.model_name == NARROW.name
  assert meta.extra["projected_from"] == source_file
  entry = PromptLibrary(tmp_path / "lib", create=True).add_file(best, role="transfer")
  assert entry.signature.d_model == NARROW.emb_dim

  # Stopped halfway and resumed, it ends where the uninterrupted run ended.
  half = _on_narrow(tmp_path / "cut", narrow_path, TARGET_STEPS // 2, **project)
  assert half["final_step"] == TARGET_STEPS // 2
  resumed = _on_narrow(tmp_path / "cut", narrow_path, TARGET_STEPS, **project)
  for a, b in zip(jax.tree.leaves(projected["final_state"]),
                  jax.tree.leaves(resumed["final_state"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_projector_runs_are_checked_at_the_door(models, tmp_path):
  _, source_file, narrow_path, _ = models
  from spot_jax import settings
  with pytest.raises(settings.SettingError, match="a projector and a source_prompt_file"):
    _on_narrow(tmp_path / "x", narrow_path, 2, mode="projector")
  with pytest.raises(ValueError, match="projector target_dim=64 but the run needs 48"):
    _on_narrow(tmp_path / "y", narrow_path, 2, mode="projector",
               projector=projector_lib.make_projector(target_dim=64),
               source_prompt_file=source_file)
