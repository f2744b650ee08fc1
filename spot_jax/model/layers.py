"""Building blocks of T5 v1.1: RMS norm, relative position bias, attention with a
key/value cache, gated-GELU MLP. Every parameter and main activation carries logical
axis names (`embed`, `mlp`, `heads`, `kv`, `joined_kv`, `vocab`, `batch`, `length`)."""
import functools
import math
from typing import Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from spot_jax.model.config import T5Config

NEG_INF = -1e10  # mask value added to attention logits (float32)

_kernel_init = nn.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def dropout(config: T5Config, *, full: bool = False) -> nn.Dropout:
  """T5X's T5 dropout: one mask per example and feature, shared along the length axis
  (`broadcast_dims=(-2,)`; for `[B, H, Lq, Lk]` attention weights, shared by the queries, as
  T5X's `dot_product_attention`). `full=True` draws every element (T5X's dropout after the
  final encoder norm)."""
  return nn.Dropout(config.dropout_rate, broadcast_dims=() if full else (-2,))


def constrain(x, names):
  """Logical sharding constraint; a no-op outside a mesh with axis rules."""
  return nn.with_logical_constraint(x, names)


def _param(module: nn.Module, name: str, shape: Tuple[int, ...], names: Tuple[str, ...],
           init=_kernel_init):
  c = module.config
  return module.param(name, nn.with_logical_partitioning(init, names), shape,
                      jnp.dtype(c.param_dtype))


class RMSNorm(nn.Module):
  """T5 layer norm: scale only, no mean subtraction, no bias; computed in float32."""
  config: T5Config

  @nn.compact
  def __call__(self, x):
    scale = _param(self, "scale", (x.shape[-1],), ("embed",), nn.initializers.ones)
    x32 = x.astype(jnp.float32)
    var = jnp.mean(jnp.square(x32), axis=-1, keepdims=True)
    y = x32 * jax.lax.rsqrt(var + self.config.layer_norm_epsilon)
    return (y * scale.astype(jnp.float32)).astype(self.config.dtype)


class Dense(nn.Module):
  """A bias-free projection of the last axis, `[..., in] -> [..., out]`."""
  config: T5Config
  features: int
  axes: Tuple[str, str]
  float32_output: bool = False  # e.g. the logits

  @nn.compact
  def __call__(self, x):
    kernel = _param(self, "kernel", (x.shape[-1], self.features), self.axes)
    dt = self.config.dtype
    out = jnp.float32 if self.float32_output else None
    return jnp.dot(x.astype(dt), kernel.astype(dt), preferred_element_type=out)


def relative_position_bucket(relative_position: np.ndarray, bidirectional: bool,
                             num_buckets: int, max_distance: int) -> np.ndarray:
  """Mesh TF's bucketing of `memory_position - query_position` (Raffel et al., 2020).

  Exact buckets for small distances, log-spaced up to `max_distance`, one bucket
  beyond; the bidirectional variant spends half the buckets on each direction.
  """
  ret = 0
  n = -relative_position
  if bidirectional:
    num_buckets //= 2
    ret += (n < 0).astype(np.int32) * num_buckets
    n = np.abs(n)
  else:
    n = np.maximum(n, 0)
  max_exact = num_buckets // 2
  is_small = n < max_exact
  val_if_large = max_exact + (
      np.log(n.astype(np.float32) / max_exact + np.finfo(np.float32).eps)
      / math.log(max_distance / max_exact) * (num_buckets - max_exact)).astype(np.int32)
  val_if_large = np.minimum(val_if_large, num_buckets - 1)
  return ret + np.where(is_small, n, val_if_large)


class RelativePositionBias(nn.Module):
  """One `[H, buckets]` table per stack, shared by its layers; returns `[1, H, Lq, Lk]`."""
  config: T5Config
  bidirectional: bool

  @nn.compact
  def __call__(self, q_len: int, k_len: int, q_offset=None):
    c = self.config
    table = _param(self, "rel_embedding", (c.num_heads, c.relative_attention_num_buckets),
                   ("heads", "relpos_buckets"), nn.initializers.normal(1.0))
    # Positions are static: buckets are computed once, at trace time.
    rows = k_len if q_offset is not None else q_len
    rel = np.arange(k_len)[None, :] - np.arange(rows)[:, None]
    buckets = relative_position_bucket(rel, self.bidirectional,
                                       c.relative_attention_num_buckets,
                                       c.relative_attention_max_distance)
    bias = jnp.take(table.astype(jnp.float32), jnp.asarray(buckets), axis=1)[None]
    if q_offset is not None:  # decoding: the query rows at a traced offset
      bias = jax.lax.dynamic_slice_in_dim(bias, q_offset, q_len, axis=2)
    return bias


def softmax_over_keys(logits: jnp.ndarray) -> jnp.ndarray:
  """`softmax(logits, axis=-1)` for `[B, H, Q, K]` attention logits.

  With one example (`B == 1`, a microbatch of one) the unit dimension is dropped around
  the softmax: XLA:CPU hands the backward's reduction over the keys to a YNNPACK kernel
  that is about 25x slower per element at `[1, H, Q, K]` than at `[H, Q, K]` (docs/speed.md).
  The values are the same either way."""
  if logits.shape[0] == 1:
    return jax.nn.softmax(logits[0], axis=-1)[None]
  return jax.nn.softmax(logits, axis=-1)


def _drop(weights, kept, keep_prob: float):
  """`nn.Dropout`'s own `select(mask, x / keep_prob, 0)`, the mask broadcast over queries."""
  return jax.lax.select(jnp.broadcast_to(kept, weights.shape), weights / keep_prob,
                        jnp.zeros_like(weights))


def _weights_and_values(logits, kept, v, keep_prob: float):
  """The softmax's weights and `einsum("bhqk,bkhd->bqhd", dropout(weights), v)`."""
  weights = softmax_over_keys(logits).astype(v.dtype)
  return weights, jnp.einsum("bhqk,bkhd->bqhd", _drop(weights, kept, keep_prob), v)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3,))
def dropped_weighted_values(logits, kept, v, keep_prob: float):
  """`einsum("bhqk,bkhd->bqhd", dropout(softmax(logits)), v)`, keeping only the softmax."""
  return _weights_and_values(logits, kept, v, keep_prob)[1]


def _softmax_backward(weights, dweights):
  """The logits' gradient of `weights = softmax(logits)`, without a unit batch dimension in
  the reduction (`softmax_over_keys`)."""
  if weights.shape[0] == 1:
    return _softmax_backward(weights[0], dweights[0])[None]
  return weights * (dweights - jnp.sum(dweights * weights, axis=-1, keepdims=True))


def _dropped_weighted_values_fwd(logits, kept, v, keep_prob):
  weights, out = _weights_and_values(logits, kept, v, keep_prob)
  return out, (weights, kept, v)


def _dropped_weighted_values_bwd(keep_prob, residuals, g):
  weights, kept, v = residuals
  per_key = jnp.where(kept, 1.0 / keep_prob, 0.0).astype(v.dtype)  # [B, H, 1, K]
  dv_t = jnp.einsum("bqhd,bhqk->bhdk", g, weights) * per_key
  dv = dv_t.transpose(0, 3, 1, 2)
  dweights = _drop(jnp.einsum("bqhd,bkhd->bhqk", g, v), kept, keep_prob)
  dlogits = _softmax_backward(weights.astype(jnp.float32), dweights.astype(jnp.float32))
  return dlogits, None, dv.astype(v.dtype)


dropped_weighted_values.defvjp(_dropped_weighted_values_fwd, _dropped_weighted_values_bwd)


class Attention(nn.Module):
  """Multi-head dot-product attention with T5's unscaled logits.

  With `decode=True` keys and values go to a cache: the first (initialising) call
  sizes it from its inputs, later calls write one step at `decode_index`. Cross
  attention (`static_kv=True`) caches the projected encoder keys once, unless
  `cache_static_kv=False` (T5X sizes caches on dummy inputs, so its decoders project the
  encoder output at every step).
  """
  config: T5Config
  static_kv: bool = False
  cache_static_kv: bool = True

  @nn.compact
  def __call__(self, x_q, x_kv, bias, *, deterministic: bool, decode: bool = False,
               decode_index=None):
    c = self.config
    hk = c.num_heads * c.head_dim
    proj = lambda name, x: Dense(c, hk, ("embed", "joined_kv"), name=name)(x)
    split = lambda t: constrain(t.reshape(t.shape[:2] + (c.num_heads, c.head_dim)),
                                ("batch", "length", "heads", "kv"))
    q = split(proj("query", x_q))
    if decode and self.static_kv and self.cache_static_kv:
      if self.has_variable("cache", "cached_key"):
        k, v = self.get_variable("cache", "cached_key"), self.get_variable("cache", "cached_value")
      else:  # the sizing call projects the encoder output once
        k, v = split(proj("key", x_kv)), split(proj("value", x_kv))
        self.put_variable("cache", "cached_key", k)
        self.put_variable("cache", "cached_value", v)
    else:
      k, v = split(proj("key", x_kv)), split(proj("value", x_kv))
      if decode and not self.static_kv:
        initialised = self.has_variable("cache", "cached_key")
        ck = self.variable("cache", "cached_key", jnp.zeros, k.shape, k.dtype)
        cv = self.variable("cache", "cached_value", jnp.zeros, v.shape, v.dtype)
        if initialised:
          ck.value = jax.lax.dynamic_update_slice_in_dim(ck.value, k, decode_index, axis=1)
          cv.value = jax.lax.dynamic_update_slice_in_dim(cv.value, v, decode_index, axis=1)
          k, v = ck.value, cv.value
    logits = jnp.einsum("bqhd,bkhd->bhqk", q, k, preferred_element_type=jnp.float32)
    logits = logits + bias
    if deterministic or c.dropout_rate == 1.0:  # nothing to differentiate, or nothing kept
      weights = softmax_over_keys(logits).astype(c.dtype)
      weights = dropout(c)(weights, deterministic=deterministic)
      out = jnp.einsum("bhqk,bkhd->bqhd", weights, v)
    else:
      mask_shape = logits.shape[:2] + (1,) + logits.shape[3:]  # one draw per key
      if c.dropout_rate > 0:  # nn.Dropout's own draw, from the same rng stream
        kept = dropout(c)(jnp.ones(mask_shape, c.dtype), deterministic=False) != 0
      else:
        kept = jnp.ones(mask_shape, bool)
      out = dropped_weighted_values(logits, kept, v, 1.0 - c.dropout_rate)
    out = constrain(out, ("batch", "length", "heads", "kv"))
    out = out.reshape(out.shape[:2] + (hk,))
    out = Dense(c, c.emb_dim, ("joined_kv", "embed"), name="out")(out)
    return constrain(out, ("batch", "length", "embed"))


class GatedGeluMlp(nn.Module):
  """`wo(gelu(wi_0 x) * wi_1 x)` with dropout on the hidden activation.

  The hidden activation `[B, L, mlp]` (the "neurons" of Su et al.'s activated-neuron
  indicator) is sown as `intermediates/.../mlp/hidden` when the caller makes that
  collection mutable; otherwise the sow costs nothing."""
  config: T5Config

  @nn.compact
  def __call__(self, x, *, deterministic: bool):
    c = self.config
    gate = nn.gelu(Dense(c, c.mlp_dim, ("embed", "mlp"), name="wi_0")(x), approximate=True)
    h = gate * Dense(c, c.mlp_dim, ("embed", "mlp"), name="wi_1")(x)
    h = constrain(h, ("batch", "length", "mlp"))
    self.sow("intermediates", "hidden", h)
    h = dropout(c)(h, deterministic=deterministic)
    return Dense(c, c.emb_dim, ("mlp", "embed"), name="wo")(h)


def attention_bias(mask_q: jnp.ndarray, mask_k: jnp.ndarray, causal: bool = False):
  """`[B, 1, Lq, Lk]` float32 bias: 0 where query and key are both real, else NEG_INF."""
  m = mask_q[:, :, None] & mask_k[:, None, :]
  if causal:
    lq, lk = mask_q.shape[1], mask_k.shape[1]
    m = m & jnp.tril(jnp.ones((lq, lk), bool))[None]
  return jnp.where(m, 0.0, NEG_INF).astype(jnp.float32)[:, None]
