"""Token cross-entropy with T5X's z-loss, averaged over real (non-padding) target tokens."""
import jax
import jax.numpy as jnp

Z_LOSS = 1e-4  # T5X / prompt-tuning default


def num_target_tokens(weights):
  """The loss's denominator: the real target tokens of `[B, T]` weights (at least 1)."""
  return jnp.maximum(jnp.sum(weights.astype(jnp.float32)), 1.0)


def cross_entropy(logits, targets, weights, z_loss: float = Z_LOSS, normalizer=None):
  """`[B, T, V]` float32 logits, `[B, T]` ids and weights -> (loss, metrics dict).

  The loss is summed over tokens and divided by the number of real target tokens (or by
  `normalizer`: a microbatch divides by its whole batch's count, so that the microbatches'
  losses, gradients and metrics sum to the whole batch's);
  z-loss (`z_loss * logsumexp^2`) keeps the softmax normaliser near 1, as in T5X.
  """
  logits = logits.astype(jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  nll = lse - target_logit
  weights = weights.astype(jnp.float32)
  num_tokens = num_target_tokens(weights) if normalizer is None else normalizer
  ce = jnp.sum(nll * weights) / num_tokens
  zl = z_loss * jnp.sum(jnp.square(lse) * weights) / num_tokens
  correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32) * weights
  return ce + zl, {"cross_ent_loss": ce, "z_loss": zl,
                   "accuracy": jnp.sum(correct) / num_tokens, "num_tokens": jnp.sum(weights)}
