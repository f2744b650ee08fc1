"""The T5 v1.1 encoder-decoder. The encoder takes embeddings, so a soft prompt can be
placed in front of the embedded tokens before dropout; `embed` gives those embeddings.

Shapes: `B` batch, `L` encoder length, `T` decoder length, `D` emb_dim, `V` vocab.
"""
from typing import Optional

import flax.linen as nn
import jax.numpy as jnp

from spot_jax.model.config import T5Config
from spot_jax.model.layers import (Attention, Dense, GatedGeluMlp, RMSNorm, RelativePositionBias,
                                   _param, attention_bias, constrain, dropout)


class EncoderLayer(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x, bias, deterministic):
    c = self.config
    drop = lambda h: dropout(c)(h, deterministic=deterministic)
    h = RMSNorm(c, name="pre_attention_layer_norm")(x)
    x = x + drop(Attention(c, name="attention")(h, h, bias, deterministic=deterministic))
    h = RMSNorm(c, name="pre_mlp_layer_norm")(x)
    x = x + drop(GatedGeluMlp(c, name="mlp")(h, deterministic=deterministic))
    return constrain(x, ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
  config: T5Config
  cache_encoder_kv: bool = True

  @nn.compact
  def __call__(self, y, encoded, self_bias, cross_bias, *, deterministic, decode=False,
               decode_index=None):
    c = self.config
    drop = lambda h: dropout(c)(h, deterministic=deterministic)
    h = RMSNorm(c, name="pre_self_attention_layer_norm")(y)
    y = y + drop(Attention(c, name="self_attention")(
        h, h, self_bias, deterministic=deterministic, decode=decode, decode_index=decode_index))
    h = RMSNorm(c, name="pre_cross_attention_layer_norm")(y)
    y = y + drop(Attention(c, static_kv=True, cache_static_kv=self.cache_encoder_kv,
                             name="encoder_decoder_attention")(
        h, encoded, cross_bias, deterministic=deterministic, decode=decode))
    h = RMSNorm(c, name="pre_mlp_layer_norm")(y)
    y = y + drop(GatedGeluMlp(c, name="mlp")(h, deterministic=deterministic))
    return constrain(y, ("batch", "length", "embed"))


class Encoder(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, x, mask, *, deterministic):
    """`[B, L, D]` embeddings (pre-dropout) and `[B, L]` bool mask -> `[B, L, D]`."""
    c = self.config
    x = dropout(c)(x.astype(c.dtype), deterministic=deterministic)
    length = x.shape[1]
    bias = (RelativePositionBias(c, bidirectional=True, name="relpos_bias")(length, length)
            + attention_bias(mask, mask))
    layer = nn.remat(EncoderLayer, static_argnums=(3,)) if c.remat else EncoderLayer
    for i in range(c.num_encoder_layers):
      x = layer(c, name=f"layers_{i}")(x, bias, deterministic)
    x = RMSNorm(c, name="encoder_norm")(x)
    return dropout(c, full=True)(x, deterministic=deterministic)


class Decoder(nn.Module):
  config: T5Config
  cache_encoder_kv: bool = True  # project the encoder output once per decode (see Attention)

  @nn.compact
  def __call__(self, y, encoded, decoder_mask, encoder_mask, *, deterministic, decode=False,
               max_decode_length: Optional[int] = None):
    """`[B, T, D]` embedded decoder inputs -> `[B, T, V]` float32 logits.

    With `decode=True`, the first call (on full-length inputs) sizes the cache and
    later calls take one step, `T = 1`, at the position the cache keeps (`cache_index`,
    the name T5X's beam search leaves alone); a step needs `max_decode_length`, the
    cache's length. Every other cache entry is batch-major, so it can be expanded
    and reordered along the batch axis.
    """
    c = self.config
    y = dropout(c)(y.astype(c.dtype), deterministic=deterministic)
    relpos = RelativePositionBias(c, bidirectional=False, name="relpos_bias")
    decode_index = None
    if decode:
      initialised = self.has_variable("cache", "cache_index")
      idx = self.variable("cache", "cache_index", lambda: jnp.zeros((), jnp.int32))
      if initialised:
        if max_decode_length is None:
          raise ValueError("a cached decoding step needs max_decode_length, the length the "
                           "cache was sized for")
        decode_index = idx.value
        k_len = int(max_decode_length)
        key_pos = jnp.arange(k_len)
        self_bias = (relpos(1, k_len, q_offset=decode_index)
                     + jnp.where(key_pos <= decode_index, 0.0, -1e10)[None, None, None, :])
        idx.value = decode_index + 1
      else:
        self_bias = relpos(y.shape[1], y.shape[1]) + attention_bias(
            decoder_mask, decoder_mask, causal=True)
    else:
      self_bias = relpos(y.shape[1], y.shape[1]) + attention_bias(
          decoder_mask, decoder_mask, causal=True)
    cross_bias = attention_bias(decoder_mask, encoder_mask)
    for i in range(c.num_decoder_layers):
      y = DecoderLayer(c, self.cache_encoder_kv, name=f"layers_{i}")(
          y, encoded, self_bias, cross_bias, deterministic=deterministic, decode=decode,
          decode_index=decode_index)
    y = RMSNorm(c, name="decoder_norm")(y)
    y = dropout(c)(y, deterministic=deterministic)
    logits = Dense(c, c.vocab_size, ("embed", "vocab"), float32_output=True,
                   name="logits_dense")(y)
    return constrain(logits, ("batch", "length", "vocab"))


class T5(nn.Module):
  """T5 v1.1 / LM-adapted encoder-decoder with an untied output layer."""
  config: T5Config

  def setup(self):
    c = self.config
    self.token_embedder = _Embed(c)
    self.encoder = Encoder(c)
    self.decoder = Decoder(c)

  def embed(self, tokens):
    """`[B, L]` int ids -> `[B, L, D]` embeddings in the compute dtype."""
    return self.token_embedder(tokens)

  def encode(self, embeddings, mask, *, deterministic=True):
    """`[B, L, D]` embeddings (e.g. a prompt then tokens) and `[B, L]` mask -> `[B, L, D]`."""
    return self.encoder(embeddings, mask, deterministic=deterministic)

  def decode(self, encoded, encoder_mask, decoder_input_tokens, decoder_mask=None, *,
             deterministic=True, decode=False, max_decode_length=None):
    """Teacher-forced (or, with `decode=True`, cached one-step) logits `[B, T, V]`."""
    if decoder_mask is None:
      decoder_mask = jnp.ones(decoder_input_tokens.shape, bool)
    y = self.token_embedder(decoder_input_tokens)
    return self.decoder(y, encoded, decoder_mask, encoder_mask, deterministic=deterministic,
                        decode=decode, max_decode_length=max_decode_length)

  def __call__(self, encoder_input_tokens, decoder_input_tokens, decoder_target_tokens=None,
               *, deterministic=True):
    """Logits `[B, T, V]` for token ids; padding (id 0) is masked as in T5X."""
    encoder_mask = encoder_input_tokens > 0
    encoded = self.encode(self.embed(encoder_input_tokens), encoder_mask,
                          deterministic=deterministic)
    decoder_mask = None if decoder_target_tokens is None else decoder_target_tokens > 0
    return self.decode(encoded, encoder_mask, decoder_input_tokens, decoder_mask,
                       deterministic=deterministic)


class _Embed(nn.Module):
  config: T5Config

  @nn.compact
  def __call__(self, tokens):
    c = self.config
    table = _param(self, "embedding", (c.vocab_size, c.emb_dim), ("vocab", "embed"),
                   nn.initializers.normal(1.0))
    x = jnp.take(table, tokens, axis=0).astype(c.dtype)
    return constrain(x, ("batch", "length", "embed"))


def init_params(config: T5Config, rng, batch: int = 1, enc_len: int = 4, dec_len: int = 4):
  """Randomly initialised parameters (plain arrays, logical-axis boxes removed)."""
  model = T5(config)
  variables = model.init(rng, jnp.ones((batch, enc_len), jnp.int32),
                         jnp.ones((batch, dec_len), jnp.int32))
  return nn.meta.unbox(variables["params"])


def logical_axes(config: T5Config):
  """The tree of logical axis names (a `PartitionSpec` per parameter)."""
  import jax
  model = T5(config)
  abstract = jax.eval_shape(lambda: model.init(
      jax.random.PRNGKey(0), jnp.ones((1, 4), jnp.int32), jnp.ones((1, 4), jnp.int32)))
  return nn.get_partition_spec(abstract)["params"]
