"""spot_jax's T5 v1.1 with a soft prompt, behind the module interface T5X's
`EncoderDecoderModel` calls (`__call__`, `encode`, `decode` with T5X's argument names).

The network is spot_jax's own (`spot_jax.model.t5`'s embedder, encoder and decoder), placed
at the top of the parameter tree under T5X's names, so an official T5X checkpoint restores
into it as it is; the prompt is one more parameter, `prompt` `[P, D]`, placed in front of
the embedded inputs as in `spot_jax.prompts.prompt`. This module does not import t5x.
"""
from typing import Callable, Optional

import flax.linen as nn
import jax.numpy as jnp

from spot_jax.model.config import T5Config
from spot_jax.model.t5 import Decoder, Encoder, _Embed
from spot_jax.prompts import initializers
from spot_jax.prompts.prompt import prefix_prompt

PROMPT_PARAM = "prompt"
PROMPT_AXES = ("prompt", "embed")  # 'prompt' is replicated: ('prompt', None) in the rules


def _no_packing(**features):
  given = sorted(name for name, value in features.items() if value is not None)
  if given:
    raise ValueError(f"spot_jax's T5 does not take packed examples ({', '.join(given)} given); "
                     "use a feature converter with pack=False")


def _ids(tokens):
  """Token ids as int32 (T5X sizes some models on float dummies, e.g. in t5x.eval)."""
  return jnp.asarray(tokens).astype(jnp.int32)


class PromptedT5(nn.Module):
  """`[B, L]` tokens -> `[B, T, V]` float32 logits, the encoder reading `[prompt; tokens]`.

  `prompt_init` is an initializer `(rng, (P, D)) -> [P, D]` (see
  `spot_jax.prompts.initializers`); T5X calls it when the prompt is not in the checkpoint
  it restores (the frozen model's checkpoint, restored with `fallback_to_scratch`).
  """
  config: T5Config
  prompt_length: int
  prompt_init: Callable = initializers.uniform()

  def setup(self):
    c = self.config
    self.token_embedder = _Embed(c)
    self.encoder = Encoder(c)
    self.decoder = Decoder(c, cache_encoder_kv=False)
    self.prompt = self.param(PROMPT_PARAM,
                             nn.with_logical_partitioning(self.prompt_init, PROMPT_AXES),
                             (self.prompt_length, c.emb_dim))

  def _encoder_mask(self, encoder_input_tokens):
    """`[B, L]` tokens -> `[B, P+L]` mask of the prompted encoder input."""
    b = encoder_input_tokens.shape[0]
    return jnp.concatenate([jnp.ones((b, self.prompt_length), bool), encoder_input_tokens > 0],
                           axis=1)

  def encode(self, encoder_input_tokens, encoder_segment_ids=None, encoder_positions=None, *,
             enable_dropout: bool = True):
    """`[B, L]` tokens -> `[B, P+L, D]` encoded prompt and tokens."""
    _no_packing(encoder_segment_ids=encoder_segment_ids, encoder_positions=encoder_positions)
    encoder_input_tokens = _ids(encoder_input_tokens)
    x, mask = prefix_prompt(self.prompt, self.token_embedder(encoder_input_tokens),
                            encoder_input_tokens > 0)
    return self.encoder(x, mask, deterministic=not enable_dropout)

  def decode(self, encoded, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
             encoder_segment_ids=None, decoder_segment_ids=None, decoder_positions=None, *,
             enable_dropout: bool = True, decode: bool = False,
             max_decode_length: Optional[int] = None):
    """Teacher-forced logits, or with `decode=True` one cached step (`T = 1`). No `prefill`
    argument: T5X then decodes from an empty decoder prompt."""
    _no_packing(encoder_segment_ids=encoder_segment_ids, decoder_segment_ids=decoder_segment_ids,
                decoder_positions=decoder_positions)
    encoder_input_tokens, decoder_input_tokens = _ids(encoder_input_tokens), _ids(
        decoder_input_tokens)
    decoder_mask = (jnp.ones(decoder_input_tokens.shape, bool) if decode
                    else decoder_target_tokens > 0)
    y = self.token_embedder(decoder_input_tokens)
    return self.decoder(y, encoded, decoder_mask, self._encoder_mask(encoder_input_tokens),
                        deterministic=not enable_dropout, decode=decode,
                        max_decode_length=max_decode_length)

  def __call__(self, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens,
               encoder_segment_ids=None, decoder_segment_ids=None, encoder_positions=None,
               decoder_positions=None, *, enable_dropout: bool = True, decode: bool = False,
               max_decode_length: Optional[int] = None):
    encoded = self.encode(encoder_input_tokens, encoder_segment_ids, encoder_positions,
                          enable_dropout=enable_dropout)
    return self.decode(encoded, encoder_input_tokens, decoder_input_tokens,
                       decoder_target_tokens, encoder_segment_ids, decoder_segment_ids,
                       decoder_positions, enable_dropout=enable_dropout, decode=decode,
                       max_decode_length=max_decode_length)
