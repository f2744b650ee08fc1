"""What a run trains comes from the mode registry: the built-ins, and a new mode registered
in a few lines running through `trainer.train`."""
import dataclasses
import os

import jax
import numpy as np
import optax
import pytest

from spot_jax.model import config as config_lib
from spot_jax.prompts import prompt_files
import toy_tasks
from spot_jax.training import modes, trainer

CONFIG = config_lib.get_config("tiny", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
                               mlp_dim=128, dropout_rate=0.0, name="toy")


def test_the_builtin_modes():
  assert modes.names() == ("prompt", "model", "projector")
  prompt, model, projector = (modes.get(n) for n in modes.names())
  assert prompt.writes_prompts and not prompt.trains_model and prompt.sized_by_prompt_length
  assert model.trains_model and not model.writes_prompts
  assert projector.needs_projector and projector.prompt_tokens(100, np.zeros((7, 4))) == 7
  assert modes.split_params("prompt", "P", "M") == ("M", "P")
  assert modes.split_params("model", "M", None) == ("M", None)
  with pytest.raises(ValueError, match="mode must be one of .*'magic'"):
    modes.get("magic")
  with pytest.raises(ValueError, match="'prompt' is already registered"):
    modes.register(modes.get("prompt"))


@pytest.fixture
def sgd_prompt_tuning():
  """A new mode for one test: prompt tuning whose default optimizer is plain SGD."""
  mode = modes.register(dataclasses.replace(
      modes.get(modes.PROMPT_TUNING), name="prompt_sgd",
      default_optimizer=lambda: optax.sgd(0.5)))
  yield mode.name
  del modes._REGISTRY[mode.name]  # pylint: disable=protected-access


def test_a_registered_mode_trains_through_the_trainer(sgd_prompt_tuning, tmp_path):
  toy_tasks.register()
  out = trainer.train(model_dir=str(tmp_path / "run"), mixture_or_task_name="toy_parity",
                      task_feature_lengths={"inputs": 16, "targets": 8}, model_config=CONFIG,
                      initial_checkpoint=None, train_steps=2, mode=sgd_prompt_tuning,
                      prompt_length=4, batch_size=8, log_period=1, prompt_save_steps=(0,),
                      mesh_shape=(1, 1))
  start = prompt_files.load_prompt_array(os.path.join(tmp_path, "run", "prompts", "step_0"))
  final = prompt_files.load_prompt_array(os.path.join(tmp_path, "run", "prompts", "final"))
  assert out["final_step"] == 2 and start.shape == (4, 64)
  assert not np.array_equal(start, final)  # the prompt moved, by the mode's optimizer
  assert jax.tree.leaves(out["final_state"].opt_state) == []  # plain SGD keeps no state
