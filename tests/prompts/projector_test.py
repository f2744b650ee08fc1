"""Cross-model projector: shapes, distance-minimizing training, the task-tuning hook."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spot_jax.prompts import projector as proj


def test_shapes_batched_and_not():
  module = proj.PromptProjector(prompt_length=3, target_dim=8, hidden_dim=16)
  params = proj.init_projector(module, jax.random.PRNGKey(0), source_dim=5)
  assert params["params"]["down"]["kernel"].shape == (15, 16)
  assert params["params"]["up"]["kernel"].shape == (16, 24)
  assert module.apply(params, jnp.ones((3, 5))).shape == (3, 8)
  assert module.apply(params, jnp.ones((2, 3, 5))).shape == (2, 3, 8)
  out = proj.project(module, params, np.ones((3, 5), np.float32))
  assert out.dtype == np.float32
  # Per-token LayerNorm: each projected token has mean 0 and unit variance.
  np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-5)
  with pytest.raises(ValueError, match=r"\[..., 3, d_src\].*\[4, 5\]"):
    module.apply(params, jnp.ones((4, 5)))


def test_leaky_relu_without_layer_norm():
  module = proj.PromptProjector(prompt_length=2, target_dim=3, hidden_dim=4,
                                activation="leaky_relu", layer_norm=False)
  params = proj.init_projector(module, jax.random.PRNGKey(1), source_dim=2)
  assert "layer_norm" not in params["params"]
  with pytest.raises(ValueError, match="unknown activation"):
    proj.PromptProjector(2, 3, activation="gelu").init(jax.random.PRNGKey(0), jnp.ones((2, 2)))


def test_distance_minimizing_training_reduces_the_distance():
  rng = np.random.default_rng(0)
  source = rng.normal(size=(3, 4, 6)).astype(np.float32)   # 3 tasks, small model
  target = rng.normal(size=(3, 4, 8)).astype(np.float32)   # the same tasks, wider model
  module = proj.PromptProjector(prompt_length=4, target_dim=8, hidden_dim=32, layer_norm=False)
  before = proj.projection_distance(proj.init_projector(module, jax.random.PRNGKey(0), 6),
                                    module, source, target)
  params, losses = proj.fit_distance_minimizing(source, target, projector=module,
                                                num_steps=300, learning_rate=1e-2)
  after = proj.projection_distance(params, module, source, target)
  assert losses.shape == (300,) and losses[-1] < 0.05 * losses[0]
  assert np.all(np.asarray(after) < 0.3 * np.asarray(before))


def test_fit_checks_shapes():
  module = proj.PromptProjector(prompt_length=4, target_dim=8)
  with pytest.raises(ValueError, match=r"\[4, 8\].*\[2, 4, 6\] -> \[2, 4, 7\]"):
    proj.fit_distance_minimizing(np.zeros((2, 4, 6)), np.zeros((2, 4, 7)), projector=module)
