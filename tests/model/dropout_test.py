"""Dropout as T5X's T5 draws it (t5x/examples/t5/network.py and layers.py): one mask per example
and feature shared along the length axis (`broadcast_dims=(-2,)`), attention weights masked per
key and shared by every query (`dot_product_attention`: `dropout_shape[-2] = 1`), and a full mask
only after the final encoder norm. The masks are random, so the test checks their structure: a
batch whose positions are all equal stays equal along the length wherever T5X shares the mask."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spot_jax.model.config import get_config
from spot_jax.model.layers import Attention, GatedGeluMlp
from spot_jax.model.t5 import Encoder, EncoderLayer

C = get_config("tiny", dropout_rate=0.5)
B, L = 2, 7


def _same_rows(x):
  """`[B, L, D]` inputs whose L positions are identical (per example)."""
  row = jax.random.normal(jax.random.PRNGKey(1), (B, 1, C.emb_dim))
  return jnp.broadcast_to(row, (B, L, C.emb_dim)) + 0 * x


def _apply(module, *args, **kwargs):
  variables = module.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(2)},
                          *args, deterministic=False, **kwargs)
  out = module.apply(variables, *args, deterministic=False, rngs={"dropout": jax.random.PRNGKey(3)},
                     **kwargs)
  reference = module.apply(variables, *args, deterministic=True, **kwargs)
  return np.asarray(out), np.asarray(reference)


def _length_constant(x):
  return np.allclose(x, x[:, :1], atol=1e-6)


@pytest.mark.parametrize("layer", ["mlp", "attention", "encoder_layer"])
def test_masks_are_shared_along_the_length(layer):
  x = _same_rows(jnp.zeros((B, L, C.emb_dim)))
  bias = jnp.zeros((1, C.num_heads, L, L))
  if layer == "mlp":
    out, reference = _apply(GatedGeluMlp(C), x)
  elif layer == "attention":
    out, reference = _apply(Attention(C), x, x, bias)
  else:
    out, reference = _apply(EncoderLayer(C), x, bias)
  assert not np.allclose(out, reference), "dropout was not applied"
  assert _length_constant(out), "positions with equal inputs got different dropout masks"


def test_attention_weights_masked_per_key_shared_by_queries():
  """Distinct keys: with the mask broadcast along queries, every query loses the same keys, so
  query rows equal in the inputs (and in the bias) stay equal after dropout."""
  keys = jax.random.normal(jax.random.PRNGKey(4), (B, L, C.emb_dim))
  queries = _same_rows(jnp.zeros((B, L, C.emb_dim)))
  bias = jnp.zeros((1, C.num_heads, L, L))
  out, reference = _apply(Attention(C), queries, keys, bias)
  assert not np.allclose(out, reference)
  assert _length_constant(out)


def test_final_encoder_dropout_is_full():
  """T5X applies an unbroadcast dropout after `encoder_norm`, the encoder's last op: the zeroed
  elements differ from position to position."""
  x = jax.random.normal(jax.random.PRNGKey(5), (B, L, C.emb_dim))
  out, reference = _apply(Encoder(C), x, jnp.ones((B, L), bool))
  dropped = (out == 0) & (reference != 0)
  assert dropped.any()
  assert not (dropped == dropped[:, :1]).all(), "the final dropout mask is shared along length"
