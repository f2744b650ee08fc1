"""Su et al.'s activated-neuron indicator ("ON"): which FFN neurons of the frozen model a
prompt switches on, and how alike two prompts are by that pattern.

Protocol (Su et al. 2022, `activate_neuron_T5.py`): the encoder reads the prompt followed by
one probe token (T5's `<extra_id_0>`) and EOS; the decoder takes one step from the start
token. A neuron is one unit of the gated-GELU hidden state feeding `wo`; it is active when
that value is > 0. Su et al. hook the decoder layers; we read every layer, encoder layers
first (at the probe token's position), then decoder layers (at the first position), so the
pattern of a prompt is `[L_enc + L_dec, mlp_dim]` booleans. Two patterns are compared by the
cosine similarity of the binary vectors, over a window of layers (Su et al.: 3) or all.

The capture runs under `jit` and keeps only those two positions of each layer: a layer's
full activation is dropped once its slice is taken, so Base runs on a laptop CPU.
"""
import functools
from typing import Any, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5
from spot_jax.prompts.prompt import prefix_prompt

T5_EXTRA_ID_0 = 32099  # `<extra_id_0>` in T5's cc_all.32000.100extra vocabulary
EOS_ID = 1
WINDOW = 3  # Su et al.'s layer window


def default_probe_token(config: T5Config) -> int:
  """`<extra_id_0>` for models with T5's vocabulary; other vocabularies must name one."""
  if config.vocab_size > T5_EXTRA_ID_0:
    return T5_EXTRA_ID_0
  raise ValueError(f"model {config.name!r} has {config.vocab_size} embeddings, so T5's "
                   f"<extra_id_0> ({T5_EXTRA_ID_0}) is not among them: give the probe token "
                   "id (a sentinel of its vocabulary) explicitly")


@functools.lru_cache(maxsize=8)
def _capture_fn(config: T5Config, probe_token_id: int):
  model = T5(config)

  def capture(params, prompts):
    """`[B, P, D]` prompts -> `[B, L_enc + L_dec, mlp]` bool activation patterns."""
    b, p = prompts.shape[:2]
    tokens = jnp.tile(jnp.array([[probe_token_id, EOS_ID]], jnp.int32), (b, 1))
    x = model.apply({"params": params}, tokens, method=T5.embed)
    x, mask = prefix_prompt(prompts, x, tokens > 0)
    encoded, enc_state = model.apply({"params": params}, x, mask, method=T5.encode,
                                     mutable=["intermediates"])
    _, dec_state = model.apply({"params": params}, encoded, mask,
                               jnp.zeros((b, 1), jnp.int32), method=T5.decode,
                               mutable=["intermediates"])
    enc = enc_state["intermediates"]["encoder"]
    dec = dec_state["intermediates"]["decoder"]
    layers = ([enc[f"layers_{i}"]["mlp"]["hidden"][0][:, p] for i in
               range(config.num_encoder_layers)] +
              [dec[f"layers_{i}"]["mlp"]["hidden"][0][:, 0] for i in
               range(config.num_decoder_layers)])
    return jnp.stack(layers, axis=1) > 0

  return jax.jit(capture)


def activation_patterns(config: T5Config, params: Any, prompts: Any, *,
                        probe_token_id: Optional[int] = None, batch_size: int = 16
                        ) -> np.ndarray:
  """Bool `[N, L_enc + L_dec, mlp_dim]` patterns of `[N, P, D]` (or one `[P, D]`) prompts,
  `batch_size` prompts per call (the last batch padded, so one compilation)."""
  prompts = np.asarray(prompts, np.float32)
  single = prompts.ndim == 2
  prompts = prompts[None] if single else prompts
  if prompts.ndim != 3 or prompts.shape[-1] != config.emb_dim:
    raise ValueError(f"prompts of shape {list(prompts.shape)} do not fit model {config.name!r} "
                     f"(width {config.emb_dim})")
  probe = default_probe_token(config) if probe_token_id is None else int(probe_token_id)
  fn = _capture_fn(config, probe)
  n = prompts.shape[0]
  size = min(batch_size, n)
  out = []
  for start in range(0, n, size):
    chunk = prompts[start:start + size]
    padded = np.concatenate([chunk, np.zeros((size - len(chunk),) + chunk.shape[1:],
                                             np.float32)]) if len(chunk) < size else chunk
    out.append(np.asarray(fn(params, jnp.asarray(padded)))[:len(chunk)])
  patterns = np.concatenate(out)
  return patterns[0] if single else patterns


def layer_windows(num_layers: int, window: int = WINDOW) -> Sequence[slice]:
  """Su et al.'s windows `[l, l + window)` over the stacked layers, then all layers."""
  return [slice(l, l + window) for l in range(0, max(num_layers - window + 1, 1))] + [
      slice(0, num_layers)]


def pattern_similarity(target: np.ndarray, library: np.ndarray,
                       layers: slice = slice(None)) -> np.ndarray:
  """Cosine similarity of binary patterns: target `[L, F]` vs library `[N, L, F]` -> `[N]`
  over the layers in `layers`. A pattern with no active neuron has similarity 0."""
  t = np.asarray(target, bool)[layers].reshape(-1).astype(np.float64)
  lib = np.asarray(library, bool)[:, layers].reshape(len(library), -1).astype(np.float64)
  dots = lib @ t
  norms = np.sqrt(lib.sum(axis=1) * t.sum())
  return np.where(norms > 0, dots / np.where(norms > 0, norms, 1.0), 0.0).astype(np.float32)


def overlap_metric(config: T5Config, params: Any, *, probe_token_id: Optional[int] = None,
                   layers: slice = slice(None)):
  """A similarity metric `(target [P, D], library [N, P, D]) -> [N]` on the frozen model:
  the ON similarity of their activation patterns, for `similarity.score` and retrieval."""

  def metric(target, library):
    patterns = activation_patterns(config, params, np.concatenate(
        [np.asarray(target, np.float32)[None], np.asarray(library, np.float32)]),
                                   probe_token_id=probe_token_id)
    return pattern_similarity(patterns[0], patterns[1:], layers)

  metric.__name__ = "activated_neuron_overlap"
  return metric
