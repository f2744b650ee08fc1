"""The train step jitted once with explicit shardings over a `('data', 'model')` mesh.

TensorFlow-free (the loop in `trainer.py` brings the data pipeline), so tools such as
`tools/bench.py` time exactly the step the trainer runs.
"""
import functools

import jax
import jax.numpy as jnp
import optax

from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5, logical_axes
from spot_jax.training import modes, partitioning
from spot_jax.training.train_step import TrainState, init_state, train_step


class PartitionedTrainer:
  """The train step jitted once with explicit shardings over a mesh; the state is donated.

  Compiled steps are shared by every trainer with the same model config, optimizer, mode,
  mesh and microbatching, so a pipeline of many runs compiles once.
  """

  def __init__(self, model: T5, tx: optax.GradientTransformation, mode: str, mesh,
               num_microbatches: int = 1, projector=None):
    if modes.get(mode).needs_projector != (projector is not None):
      raise ValueError(f"a projector is given exactly in a mode that trains one, not {mode!r}")
    self.model, self.tx, self.mode, self.mesh = model, tx, mode, mesh
    self.projector = projector
    self.num_microbatches = num_microbatches
    self.frozen_sharding, self.params_sharding = _param_shardings(model.config, mode, mesh)
    self.batch_sharding = partitioning.batch_sharding(mesh)

  def state_sharding(self):
    """Parameters by their logical axes; optimizer state and counters replicated."""
    return _state_sharding(self.model.config, self.mode, self.mesh)

  def place(self, tree, sharding):
    return jax.device_put(tree, sharding)

  def init_state(self, params) -> TrainState:
    # A copy: the step donates the state, which must not delete the caller's arrays.
    params = jax.tree.map(jnp.copy, self.place(params, self.params_sharding))
    state = init_state(params, self.tx)
    return self.place(state, _expand(self.state_sharding(), state))

  def jitted_step(self, has_frozen: bool = True):
    """The jitted `(state, frozen, batch, rng) -> (state, metrics)`, e.g. to lower and time."""
    return _jitted_step(self.model.config, self.tx, self.mode, self.mesh, self.num_microbatches,
                        has_frozen, self.projector)

  def step(self, state: TrainState, frozen, batch, rng):
    return self.jitted_step(frozen is not None)(state, frozen, batch, rng)

  def abstract_state(self, state: TrainState):
    sh = _expand(self.state_sharding(), state)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        state, sh)


def _expand(prefix_sharding: TrainState, state: TrainState):
  """A full tree of shardings from the prefix one (one sharding for the optimizer state, and
  for trained parameters that are all replicated, such as a projector's)."""
  params = prefix_sharding.params
  if isinstance(params, jax.sharding.Sharding):
    params = jax.tree.map(lambda _: prefix_sharding.params, state.params)
  return TrainState(step=prefix_sharding.step, params=params,
                    opt_state=jax.tree.map(lambda _: prefix_sharding.opt_state, state.opt_state),
                    nonfinite_step=prefix_sharding.nonfinite_step)


@functools.lru_cache(maxsize=None)
def _param_shardings(config: T5Config, mode: str, mesh):
  repl = partitioning.replicated(mesh)
  model_sharding = partitioning.logical_to_sharding(logical_axes(config), mesh)
  return modes.get(mode).shardings(model_sharding, repl)


def _state_sharding(config: T5Config, mode: str, mesh) -> TrainState:
  repl = partitioning.replicated(mesh)
  return TrainState(step=repl, params=_param_shardings(config, mode, mesh)[1], opt_state=repl,
                    nonfinite_step=repl)


@functools.lru_cache(maxsize=16)
def _jitted_step(config: T5Config, tx, mode: str, mesh, num_microbatches: int,
                 has_frozen: bool, projector=None):
  repl = partitioning.replicated(mesh)
  frozen_sh = _param_shardings(config, mode, mesh)[0] if has_frozen else None
  st_sh = _state_sharding(config, mode, mesh)
  step = functools.partial(train_step, model=T5(config), tx=tx, mode=mode,
                           num_microbatches=num_microbatches, projector=projector)
  return jax.jit(step, in_shardings=(st_sh, frozen_sh, partitioning.batch_sharding(mesh), repl),
                 out_shardings=(st_sh, repl), donate_argnums=(0,))
