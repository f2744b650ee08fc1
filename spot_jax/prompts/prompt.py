"""Placing a soft prompt in front of the encoder's embedded tokens (SPoT: encoder only)."""
import jax.numpy as jnp


def prefix_prompt(prompt, embedded, mask):
  """`[P, D]` prompt + `[B, L, D]` embeddings and `[B, L]` mask -> `[B, P+L, D]`, `[B, P+L]`.

  The prompt goes after the token embedding and before the encoder's input dropout, as
  in prompt-tuning's `PromptEncoder`; its positions count as real tokens in the mask.
  """
  b = embedded.shape[0]
  p = jnp.broadcast_to(prompt.astype(embedded.dtype), (b,) + prompt.shape)
  return (jnp.concatenate([p, embedded], axis=1),
          jnp.concatenate([jnp.ones((b, prompt.shape[0]), bool), mask], axis=1))
