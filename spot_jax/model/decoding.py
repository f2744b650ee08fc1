"""Greedy and beam-search decoding with the decoder's key/value cache.

Both take the encoder's output, so a soft prompt (already in `encoded`) decodes the
same way as plain tokens. Token 0 starts decoding (T5's decoder start and padding id).
"""
from typing import Tuple

import jax
import jax.numpy as jnp

from spot_jax.model.t5 import T5

NEG = -1e9


def init_cache(model: T5, params, encoded, encoder_mask, max_length: int):
  """The decoding cache for `max_length` steps; cross-attention keys are projected once."""
  batch = encoded.shape[0]
  _, variables = model.apply({"params": params}, encoded, encoder_mask,
                             jnp.zeros((batch, max_length), jnp.int32), method=T5.decode,
                             decode=True, mutable=["cache"])
  return variables["cache"]


def _step(model, params, cache, encoded, encoder_mask, tokens, max_length):
  """One cached step: `[B]` last tokens -> `[B, V]` float32 logits and the new cache."""
  logits, variables = model.apply({"params": params, "cache": cache}, encoded, encoder_mask,
                                  tokens[:, None], method=T5.decode, decode=True,
                                  max_decode_length=max_length, mutable=["cache"])
  return logits[:, 0], variables["cache"]


def greedy_decode(model: T5, params, encoded, encoder_mask, *, max_length: int,
                  eos_id: int = 1) -> jnp.ndarray:
  """`[B, max_length]` argmax tokens; after EOS a row is padded with 0."""
  batch = encoded.shape[0]
  cache = init_cache(model, params, encoded, encoder_mask, max_length)

  def cond(state):
    t, _, _, _, done = state
    return (t < max_length) & ~jnp.all(done)

  def body(state):
    t, cache, last, out, done = state
    logits, cache = _step(model, params, cache, encoded, encoder_mask, last, max_length)
    nxt = jnp.where(done, 0, jnp.argmax(logits, axis=-1).astype(jnp.int32))
    out = out.at[:, t].set(nxt)
    return t + 1, cache, nxt, out, done | (nxt == eos_id)

  state = (jnp.int32(0), cache, jnp.zeros((batch,), jnp.int32),
           jnp.zeros((batch, max_length), jnp.int32), jnp.zeros((batch,), bool))
  return jax.lax.while_loop(cond, body, state)[3]


def brevity_penalty(alpha: float, length):
  """T5X / GNMT length normalisation: ((5 + length) / 6) ** alpha."""
  return ((5.0 + length) / 6.0) ** alpha


def beam_search(model: T5, params, encoded, encoder_mask, *, max_length: int,
                beam_size: int, alpha: float = 0.6, eos_id: int = 1
                ) -> Tuple[jnp.ndarray, jnp.ndarray]:
  """Beam search; returns `[B, K, max_length]` sequences and `[B, K]` scores, best first.

  A hypothesis finishes at EOS with score log p / brevity_penalty(alpha, length); rows
  with no finished hypothesis by `max_length` return their live beams scored by log p, as
  T5X's beam search does.
  """
  b, k = encoded.shape[0], beam_size
  tile = lambda x: jnp.repeat(x, k, axis=0)  # [B, ...] -> [B*K, ...]
  enc, enc_mask = tile(encoded), tile(encoder_mask)
  cache = init_cache(model, params, enc, enc_mask, max_length)
  vocab = model.config.vocab_size

  live_seqs = jnp.zeros((b, k, max_length), jnp.int32)
  live_lp = jnp.tile(jnp.array([0.0] + [NEG] * (k - 1)), (b, 1))  # one live beam at start
  fin_seqs = jnp.zeros((b, k, max_length), jnp.int32)
  fin_scores = jnp.full((b, k), NEG)

  def gather(x, idx):  # x [B, K, ...], idx [B, N] -> [B, N, ...]
    return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)

  def body(t, state):
    cache, live_seqs, live_lp, fin_seqs, fin_scores = state
    last = jnp.where(t == 0, 0, live_seqs[:, :, jnp.maximum(t - 1, 0)]).reshape(b * k)
    logits, cache = _step(model, params, cache, enc, enc_mask, last, max_length)
    lp = jax.nn.log_softmax(logits).reshape(b, k, vocab) + live_lp[..., None]
    top_lp, top_idx = jax.lax.top_k(lp.reshape(b, k * vocab), 2 * k)
    beam_idx, tok = top_idx // vocab, (top_idx % vocab).astype(jnp.int32)
    seqs = gather(live_seqs, beam_idx).at[:, :, t].set(tok)  # [B, 2K, T]
    is_eos = tok == eos_id
    # Finished: merge the new EOS hypotheses with the old finished set.
    new_fin = jnp.where(is_eos, top_lp / brevity_penalty(alpha, t + 1.0), NEG)
    all_scores = jnp.concatenate([fin_scores, new_fin], axis=1)
    fin_scores, idx = jax.lax.top_k(all_scores, k)
    fin_seqs = gather(jnp.concatenate([fin_seqs, seqs], axis=1), idx)
    # Live: the best K that did not end.
    live_lp, idx = jax.lax.top_k(jnp.where(is_eos, NEG * 2, top_lp), k)
    live_seqs = gather(seqs, idx)
    src = gather(beam_idx, idx)  # which old beam each new live beam extends
    flat = (jnp.arange(b)[:, None] * k + src).reshape(b * k)
    cache = jax.tree.map(lambda x: x[flat] if x.ndim and x.shape[0] == b * k else x, cache)
    return cache, live_seqs, live_lp, fin_seqs, fin_scores

  _, live_seqs, live_lp, fin_seqs, fin_scores = jax.lax.fori_loop(
      0, max_length, body, (cache, live_seqs, live_lp, fin_seqs, fin_scores))
  any_fin = jnp.any(fin_scores > NEG / 2, axis=1, keepdims=True)
  seqs = jnp.where(any_fin[..., None], fin_seqs, live_seqs)
  scores = jnp.where(any_fin, fin_scores, live_lp)
  return seqs, scores
