"""The packed step of many prompt-tuning runs over one frozen model (`multi_prompt.py` has
the loop around it): one forward and one backward over every run's batch, each example
reading its own run's row of the `[N, P, D]` prompt table, and each run's own update.

TensorFlow-free (the loop brings the data pipelines), so `tools/bench.py --runs N` times
exactly the step the study's packed stages run, on machines without TensorFlow or seqio.
"""
import functools
from typing import Dict

import jax
import jax.numpy as jnp
import optax

from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5
from spot_jax.training import losses
from spot_jax.training.train_step import TrainState, apply_update, compute_logits


def multi_train_step(states: TrainState, frozen, batch: Dict[str, jax.Array],
                     rng: jax.Array, *, model: T5, tx: optax.GradientTransformation,
                     num_microbatches: int = 1):
  """One update of N runs. `states` and `batch` lead with the run axis N (`batch[k]`:
  `[N, B, ...]`); `rng` is the dropout key of the packed batch (folded with the step).

  With `num_microbatches = k > 1` each run's batch is split in k slices of B / k examples
  (microbatch i packs slice i of every run), as `train_step` splits one run's batch: each
  slice's loss is divided by its run's whole-batch token count, so the slices sum to the
  run's unsplit loss and gradient."""
  n, b = batch["encoder_input_tokens"].shape[:2]
  step_rng = jax.random.fold_in(rng, states.step[0])

  def loss_fn(table, mb, mb_rng, normalizers=None):
    m = mb["encoder_input_tokens"].shape[1]
    flat = jax.tree.map(lambda x: x.reshape((n * m,) + x.shape[2:]), mb)
    # Run n's examples are rows n*m .. n*m+m-1: each reads row n of the table. A broadcast
    # (its gradient a sum over m) rather than a gather (a scatter-add on the way back).
    prompts = jnp.broadcast_to(table[:, None], (n, m) + table.shape[1:]).reshape(
        (n * m,) + table.shape[1:])
    logits = compute_logits(model, frozen, prompts, flat, rng=mb_rng, deterministic=False)
    logits = logits.reshape((n, m) + logits.shape[1:])
    ce = lambda lg, t, w, nz: losses.cross_entropy(lg, t, w, normalizer=nz)
    per_run, metrics = jax.vmap(ce, in_axes=(0, 0, 0, None if normalizers is None else 0))(
        logits, mb["decoder_target_tokens"], mb["decoder_loss_weights"], normalizers)
    return per_run.sum(), (per_run, metrics)

  grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
  if num_microbatches == 1:
    (_, (per_run, metrics)), grads = grad_fn(states.params, batch, step_rng)
  else:
    k = num_microbatches
    micro = jax.tree.map(  # [N, B, ...] -> [k, N, B / k, ...]
        lambda x: jnp.swapaxes(x.reshape((n, k, b // k) + x.shape[2:]), 0, 1), batch)
    normalizers = jax.vmap(losses.num_target_tokens)(batch["decoder_loss_weights"])

    def body(carry, xs):
      i, mb = xs
      (_, aux), g = grad_fn(states.params, mb, jax.random.fold_in(step_rng, i), normalizers)
      return jax.tree.map(jnp.add, carry, (aux, g)), None

    shapes = jax.eval_shape(lambda mb: grad_fn(states.params, mb, step_rng, normalizers),
                            jax.tree.map(lambda x: x[0], micro))
    zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), (shapes[0][1], shapes[1]))
    ((per_run, metrics), grads), _ = jax.lax.scan(body, zero, (jnp.arange(k), micro))
  new = jax.vmap(functools.partial(apply_update, tx=tx))(states, grads, per_run)
  grad_norm = jax.vmap(optax.global_norm)(grads)
  return new, dict(metrics, loss=per_run, grad_norm=grad_norm)


@functools.lru_cache(maxsize=8)
def jitted_step(config: T5Config, tx, num_microbatches: int = 1):
  """`multi_train_step` jitted for this model, optimizer and split, the states donated
  (what a packed group trains with; tools/bench.py --runs times it)."""
  return jax.jit(functools.partial(multi_train_step, model=T5(config), tx=tx,
                                   num_microbatches=num_microbatches), donate_argnums=(0,))
