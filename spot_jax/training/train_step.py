"""The pure train and eval steps. Prompt tuning takes gradients with respect to the
prompt alone, so the frozen model carries no optimizer state and no gradient buffers;
model tuning (the ModelTuning baselines) trains every weight.

Batches are seqio `EncDecFeatureConverter` outputs: `encoder_input_tokens [B, L]`,
`decoder_input_tokens`, `decoder_target_tokens`, `decoder_loss_weights [B, T]`.
"""
import functools
from typing import Any, Dict, Tuple

import flax
import jax
import jax.numpy as jnp
import optax

from spot_jax.model.t5 import T5
from spot_jax.prompts.prompt import prefix_prompt
from spot_jax.training import losses
from spot_jax.training.modes import split_params
# An update that takes a trained value beyond this magnitude is treated like a NaN loss:
# embeddings of T5 checkpoints are O(1..100), and the RMS norms would hide an exploded
# prompt from the loss (it stays finite) while the saved prompt became useless.
MAX_ABS_PARAM = 1e6


@flax.struct.dataclass
class TrainState:
  """What a run checkpoints: the trained parameters (the `[P, D]` prompt, or the model's
  weights in model tuning), their optimizer state and the step."""
  step: jax.Array
  params: Any
  opt_state: Any
  # -1, or the first step whose loss was not finite or whose update took a trained value
  # beyond MAX_ABS_PARAM; that step's update is skipped.
  nonfinite_step: jax.Array


def init_state(params, tx: optax.GradientTransformation) -> TrainState:
  return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params),
                    nonfinite_step=jnp.full((), -1, jnp.int32))


def _encode_decode(module: T5, prompt, batch, deterministic: bool):
  tokens = batch["encoder_input_tokens"]
  mask = tokens > 0
  x = module.embed(tokens)
  if prompt is not None:
    x, mask = prefix_prompt(prompt, x, mask)
  encoded = module.encode(x, mask, deterministic=deterministic)
  return module.decode(encoded, mask, batch["decoder_input_tokens"],
                       batch["decoder_target_tokens"] > 0, deterministic=deterministic)


def compute_logits(model: T5, model_params, prompt, batch, *, rng=None,
                   deterministic: bool = True):
  """`[B, T, V]` float32 logits with an optional `[P, D]` prompt before the tokens."""
  rngs = None if deterministic else {"dropout": rng}
  return model.apply({"params": model_params}, prompt, batch, deterministic,
                     method=_encode_decode, rngs=rngs)


def loss_fn(trainable, frozen, batch, rng, *, model: T5, mode: str,
            deterministic: bool = False, projector=None, normalizer=None):
  model_params, prompt = split_params(mode, trainable, frozen, projector)
  logits = compute_logits(model, model_params, prompt, batch, rng=rng,
                          deterministic=deterministic)
  return losses.cross_entropy(logits, batch["decoder_target_tokens"],
                              batch["decoder_loss_weights"], normalizer=normalizer)



def train_step(state: TrainState, frozen, batch: Dict[str, jax.Array], rng: jax.Array, *,
               model: T5, tx: optax.GradientTransformation, mode: str,
               num_microbatches: int = 1, projector=None
               ) -> Tuple[TrainState, Dict[str, jax.Array]]:
  """One update. Dropout randomness is `fold_in(rng, step)`, so a resumed run repeats it.

  With `num_microbatches > 1` gradients are accumulated over equal slices of the batch, each
  slice's loss divided by the whole batch's target tokens: the same loss, gradient and
  metrics as the unsplit batch (up to float summation order; dropout masks are drawn per
  slice).
  A non-finite loss, or an update that takes a trained value beyond MAX_ABS_PARAM (or to
  NaN), leaves the state as it was and records the step in `nonfinite_step`.
  """
  step_rng = jax.random.fold_in(rng, state.step)
  grad_fn = jax.value_and_grad(functools.partial(loss_fn, model=model, mode=mode,
                                                 projector=projector), has_aux=True)
  if num_microbatches == 1:
    (loss, metrics), grads = grad_fn(state.params, frozen, batch, step_rng)
  else:
    micro = jax.tree.map(
        lambda x: x.reshape((num_microbatches, x.shape[0] // num_microbatches) + x.shape[1:]),
        batch)

    normalizer = losses.num_target_tokens(batch["decoder_loss_weights"])

    def body(carry, xs):
      i, mb = xs
      out = grad_fn(state.params, frozen, mb, jax.random.fold_in(step_rng, i),
                    normalizer=normalizer)
      return jax.tree.map(jnp.add, carry, out), None

    shapes = jax.eval_shape(functools.partial(grad_fn, normalizer=normalizer), state.params,
                            frozen, jax.tree.map(lambda x: x[0], micro), step_rng)
    zero = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), shapes)
    ((loss, metrics), grads), _ = jax.lax.scan(body, zero, (jnp.arange(num_microbatches), micro))
  metrics = dict(metrics, loss=loss, grad_norm=optax.global_norm(grads))
  return apply_update(state, grads, loss, tx=tx), metrics


def apply_update(state: TrainState, grads, loss, *, tx: optax.GradientTransformation
                 ) -> TrainState:
  """The optimizer step. A non-finite loss, or an update that takes a trained value beyond
  MAX_ABS_PARAM (or to NaN), leaves the state as it was and records the step."""
  updates, opt_state = tx.update(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  in_range = [jnp.all(jnp.abs(p) <= MAX_ABS_PARAM) for p in jax.tree.leaves(params)]
  finite = jnp.isfinite(loss) & functools.reduce(jnp.logical_and, in_range, jnp.array(True))
  keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
  first_bad = jnp.where(finite | (state.nonfinite_step >= 0), state.nonfinite_step, state.step)
  return TrainState(step=state.step + 1, params=keep(params, state.params),
                    opt_state=keep(opt_state, state.opt_state), nonfinite_step=first_bad)


def eval_step(state: TrainState, frozen, batch, *, model: T5, mode: str, projector=None):
  """Teacher-forced loss and token accuracy on one batch, without dropout."""
  _, metrics = loss_fn(state.params, frozen, batch, None, model=model, mode=mode,
                       deterministic=True, projector=projector)
  return metrics
