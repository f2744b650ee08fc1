"""Placing a soft prompt in front of the encoder's embedded tokens (SPoT: encoder only).

One prompt `[P, D]` for the whole batch, or one per example `[B, P, D]`: a frozen model then
serves many tasks in one batch and one compilation, each example with its own prompt
(`gather_prompts` picks them from a table by index)."""
import jax.numpy as jnp


def gather_prompts(table, index):
  """`[N, P, D]` table of prompts and `[B]` int indices -> the `[B, P, D]` prompts."""
  return jnp.take(table, jnp.asarray(index, jnp.int32), axis=0)


def prefix_prompt(prompt, embedded, mask):
  """`[P, D]` or per-example `[B, P, D]` prompt + `[B, L, D]` embeddings and `[B, L]` mask
  -> `[B, P+L, D]`, `[B, P+L]`.

  The prompt goes after the token embedding and before the encoder's input dropout, as
  in prompt-tuning's `PromptEncoder`; its positions count as real tokens in the mask.
  """
  b = embedded.shape[0]
  if prompt.ndim == 3 and prompt.shape[0] != b:
    raise ValueError(f"per-example prompts {tuple(prompt.shape)} do not match the batch of {b}")
  p = jnp.broadcast_to(prompt.astype(embedded.dtype), (b,) + prompt.shape[-2:])
  return (jnp.concatenate([p, embedded], axis=1),
          jnp.concatenate([jnp.ones((b, prompt.shape[-2]), bool), mask], axis=1))
