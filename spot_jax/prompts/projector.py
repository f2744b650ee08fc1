"""Su et al.'s cross-model prompt projector: `[P, d_src] -> [P, d_tgt]`.

The prompt is flattened, passed through Linear(hidden) -> tanh (or leaky ReLU) ->
Linear(P * d_tgt), reshaped to `[P, d_tgt]` and optionally layer-normalised per
token (the paper's `AE_1_layer_mutiple_100_paper`). Two ways to train it:
- distance minimizing: min over same-task pairs of |Proj(P_s) - P_t|, given
  prompts of both models (`fit_distance_minimizing`, pure and self-contained);
- task tuning: minimise the frozen target model's task loss on Proj(P_s), with the
  trainer (`trainer.train(mode='projector', projector=..., source_prompt_file=...)`, or
  `gin/runs/projector_tuning.gin`): checkpoints, resume, validation, TensorBoard and prompt
  files of the projected prompt for the target model.
"""
from typing import Any, Callable, Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

ACTIVATIONS: Dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "leaky_relu": nn.leaky_relu,
}

Params = Any


class PromptProjector(nn.Module):
  """Maps prompts `[..., P, d_src]` of one model to `[..., P, target_dim]` for another."""
  prompt_length: int
  target_dim: int
  hidden_dim: int = 768
  activation: str = "tanh"
  layer_norm: bool = True

  @nn.compact
  def __call__(self, prompt: jax.Array) -> jax.Array:
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; known: {sorted(ACTIVATIONS)}")
    if prompt.ndim < 2 or prompt.shape[-2] != self.prompt_length:
      raise ValueError(f"the projector takes prompts [..., {self.prompt_length}, d_src], got "
                       f"shape {list(prompt.shape)}")
    batch = prompt.shape[:-2]
    x = prompt.reshape(batch + (-1,))                              # [..., P*d_src]
    x = nn.Dense(self.hidden_dim, name="down")(x)                  # [..., hidden]
    x = ACTIVATIONS[self.activation](x)
    x = nn.Dense(self.prompt_length * self.target_dim, name="up")(x)
    x = x.reshape(batch + (self.prompt_length, self.target_dim))   # [..., P, d_tgt]
    if self.layer_norm:
      x = nn.LayerNorm(name="layer_norm")(x)
    return x


def init_projector(projector: PromptProjector, rng: jax.Array, source_dim: int) -> Params:
  """Parameters for prompts of width `source_dim`."""
  return projector.init(rng, jnp.zeros((projector.prompt_length, source_dim), jnp.float32))


def projection_distance(params: Params, projector: PromptProjector, source: jax.Array,
                        target: jax.Array) -> jax.Array:
  """|Proj(source_n) - target_n|_F for each pair: `[N, P, d_src], [N, P, d_tgt] -> [N]`."""
  diff = projector.apply(params, source) - target
  return jnp.sqrt(jnp.sum(jnp.square(diff), axis=(-2, -1)))


def distance_loss(params: Params, projector: PromptProjector, source: jax.Array,
                  target: jax.Array) -> jax.Array:
  """Mean squared error between projected sources `[N, P, d_tgt]` and their targets.

  Squared, so the gradient is smooth at zero; for each pair it has the same
  minimiser as the distance itself.
  """
  return jnp.mean(jnp.square(projector.apply(params, source) - target))


def make_distance_train_step(projector: PromptProjector, optimizer: optax.GradientTransformation
                             ) -> Callable[..., Tuple[Params, optax.OptState, jax.Array]]:
  """A jitted pure step `(params, opt_state, source, target) -> (params, opt_state, loss)`."""

  @jax.jit
  def step(params, opt_state, source, target):
    loss, grads = jax.value_and_grad(distance_loss)(params, projector, source, target)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return step


def fit_distance_minimizing(source_prompts: np.ndarray, target_prompts: np.ndarray, *,
                            projector: PromptProjector, num_steps: int = 1000,
                            learning_rate: float = 5e-3, weight_decay: float = 0.01,
                            seed: int = 0) -> Tuple[Params, np.ndarray]:
  """Trains the projector on same-task prompt pairs, full batch, with AdamW (Su et al.: lr 0.005).

  `source_prompts` `[N, P, d_src]` and `target_prompts` `[N, P, d_tgt]` are pairs
  for the same N tasks. Returns (params, loss per step `[num_steps]`).
  """
  source = jnp.asarray(source_prompts, jnp.float32)
  target = jnp.asarray(target_prompts, jnp.float32)
  if source.ndim != 3 or target.ndim != 3 or source.shape[0] != target.shape[0]:
    raise ValueError(f"need pairs [N, P, d_src] and [N, P, d_tgt], got {list(source.shape)} "
                     f"and {list(target.shape)}")
  expected = (projector.prompt_length, projector.target_dim)
  if target.shape[1:] != expected or source.shape[1] != projector.prompt_length:
    raise ValueError(f"the projector maps [{projector.prompt_length}, d_src] -> {list(expected)}"
                     f" but the pairs are {list(source.shape)} -> {list(target.shape)}")
  if num_steps < 1:
    raise ValueError(f"num_steps must be positive, got {num_steps}")
  params = init_projector(projector, jax.random.PRNGKey(seed), int(source.shape[-1]))
  optimizer = optax.adamw(learning_rate, weight_decay=weight_decay)
  opt_state = optimizer.init(params)
  step = make_distance_train_step(projector, optimizer)
  losses = []
  for _ in range(num_steps):
    params, opt_state, loss = step(params, opt_state, source, target)
    losses.append(loss)
  return params, np.asarray(jax.device_get(jnp.stack(losses)))


def make_projector(*, prompt_length: Optional[int] = None, target_dim: Optional[int] = None,
                   hidden_dim: int = 768, activation: str = "tanh",
                   layer_norm: bool = True) -> Callable[[int, int], PromptProjector]:
  """A projector to be sized by the run (for gin: `prompts.projector`): called with the
  source prompt's length and the target model's width, each checked against a given one."""

  def build(source_length: int, model_width: int) -> PromptProjector:
    for name, given, actual in (("prompt_length", prompt_length, source_length),
                                ("target_dim", target_dim, model_width)):
      if given is not None and given != actual:
        raise ValueError(f"projector {name}={given} but the run needs {actual}")
    return PromptProjector(prompt_length=source_length, target_dim=model_width,
                           hidden_dim=hidden_dim, activation=activation, layer_norm=layer_norm)

  return build


def project(projector: PromptProjector, params: Params, prompt: np.ndarray) -> np.ndarray:
  """Projects one prompt `[P, d_src]` to `[P, d_tgt]` as float32 numpy (ready for `save_prompt`)."""
  return np.asarray(jax.device_get(projector.apply(params, jnp.asarray(prompt, jnp.float32))),
                    dtype=np.float32)
