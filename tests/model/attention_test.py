"""Attention over one example at a time (a microbatch of one, as CPU steps take it) computes
what the same example computes inside a larger batch, and its softmax is taken without the
unit batch dimension (XLA:CPU's YNNPACK reduction for the backward is slow at `[1, H, Q, K]`;
docs/speed.md). With dropout, the weighted values are dropout's then the product's, bit for
bit, and their gradient autodiff's, without keeping the dropped weights."""
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spot_jax.model.config import get_config
from spot_jax.model.layers import Attention, dropout, dropped_weighted_values, softmax_over_keys

C = get_config("tiny")
B, L = 3, 7


def _last_axis_sum_shapes(fn, *args):
  """The operand shapes of every `reduce_sum` over the last axis alone in `fn`'s jaxpr
  (nested jaxprs included): the softmax's normaliser and its backward's `sum(dP * P)`."""
  shapes = []

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      shape = tuple(getattr(eqn.invars[0].aval, "shape", ())) if eqn.invars else ()
      if eqn.primitive.name == "reduce_sum" and tuple(eqn.params["axes"]) == (len(shape) - 1,):
        shapes.append(shape)
      for sub in jax.core.jaxprs_in_params(eqn.params):
        walk(sub)

  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return shapes


def test_softmax_over_keys_equals_softmax_and_its_gradient():
  for batch in (1, 2):
    logits = jax.random.normal(jax.random.PRNGKey(batch), (batch, 2, 5, 6)) * 4
    cotangent = jax.random.normal(jax.random.PRNGKey(10 + batch), logits.shape)
    ours, vjp = jax.vjp(softmax_over_keys, logits)
    theirs, reference_vjp = jax.vjp(lambda x: jax.nn.softmax(x, axis=-1), logits)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(vjp(cotangent)[0], reference_vjp(cotangent)[0],
                               rtol=1e-5, atol=1e-7)


def test_the_backward_reduction_of_one_example_has_no_unit_batch_dimension():
  logits = jnp.ones((1, 2, 5, 6))
  grad = jax.grad(lambda x: jnp.sum(softmax_over_keys(x) * jnp.arange(6.0)))
  shapes = _last_axis_sum_shapes(grad, logits)
  assert (2, 5, 6) in shapes and not any(len(s) == 4 for s in shapes), shapes


def test_one_example_alone_equals_its_row_of_a_batch():
  x = jax.random.normal(jax.random.PRNGKey(0), (B, L, C.emb_dim))
  mask = jnp.arange(L)[None, :] < jnp.array([[L], [4], [2]])
  bias = jnp.where(mask[:, None, None, :], 0.0, -1e10)
  attention = Attention(C)
  params = attention.init(jax.random.PRNGKey(1), x, x, bias, deterministic=True)

  def loss(p, xs, b):
    return jnp.sum(attention.apply(p, xs, xs, b, deterministic=True) ** 2)

  batched, batched_grad = jax.value_and_grad(loss, argnums=(0, 1))(params, x, bias)
  out = attention.apply(params, x, x, bias, deterministic=True)
  total, grads = 0.0, []
  for i in range(B):
    row_out = attention.apply(params, x[i:i + 1], x[i:i + 1], bias[i:i + 1], deterministic=True)
    np.testing.assert_allclose(row_out[0], out[i], rtol=1e-5, atol=1e-5)
    value, grad = jax.value_and_grad(loss, argnums=(0, 1))(params, x[i:i + 1], bias[i:i + 1])
    total += value
    grads.append(grad)
  np.testing.assert_allclose(total, batched, rtol=1e-5)
  np.testing.assert_allclose(jnp.concatenate([g[1] for g in grads]), batched_grad[1],
                             rtol=1e-4, atol=1e-5)
  summed = jax.tree_util.tree_map(lambda *g: sum(g), *[g[0] for g in grads])
  jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
                         summed, batched_grad[0])


def _dropout_then_product(logits, v, rate, rng):
  """What autodiff of `nn.Dropout` followed by the product computes (the path before
  `dropped_weighted_values`)."""
  weights = nn.Dropout(rate, broadcast_dims=(-2,)).apply(
      {}, jax.nn.softmax(logits, axis=-1), deterministic=False, rngs={"dropout": rng})
  return jnp.einsum("bhqk,bkhd->bqhd", weights, v)


@pytest.mark.parametrize("batch", [1, 2])
def test_dropped_weighted_values_equal_dropout_then_the_product(batch):
  rate, rng = 0.3, jax.random.PRNGKey(7)
  logits = jax.random.normal(jax.random.PRNGKey(batch), (batch, 2, 5, 6)) * 3
  v = jax.random.normal(jax.random.PRNGKey(20 + batch), (batch, 6, 2, 4))
  cotangent = jax.random.normal(jax.random.PRNGKey(30 + batch), (batch, 5, 2, 4))
  # The mask as the model draws it: the same module on ones of the broadcast shape.
  config = C.replace(dropout_rate=rate)
  kept = nn.Dropout(rate, broadcast_dims=(-2,)).apply(
      {}, jnp.ones((batch, 2, 1, 6)), deterministic=False, rngs={"dropout": rng}) != 0
  assert dropout(config).broadcast_dims == (-2,)
  assert 0 < int(kept.sum()) < kept.size
  ours = jax.jit(lambda x, y: jax.vjp(
      lambda a, b: dropped_weighted_values(a, kept, b, 1.0 - rate), x, y)[1](cotangent))
  theirs = jax.jit(lambda x, y: jax.vjp(
      lambda a, b: _dropout_then_product(a, b, rate, rng), x, y)[1](cotangent))
  # Jitted, as the model runs (eager op-by-op rounding differs in the last bit either way).
  np.testing.assert_array_equal(
      jax.jit(lambda x, y: dropped_weighted_values(x, kept, y, 1.0 - rate))(logits, v),
      jax.jit(lambda x, y: _dropout_then_product(x, y, rate, rng))(logits, v))
  for got, want in zip(ours(logits, v), theirs(logits, v)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # One example: the backward's reduction over the keys has no unit batch dimension either.
  if batch == 1:
    grad = jax.grad(lambda x: jnp.sum(dropped_weighted_values(x, kept, v, 1.0 - rate) ** 2))
    shapes = _last_axis_sum_shapes(grad, logits)
    assert shapes and not any(len(s) == 4 for s in shapes), shapes


def test_attention_with_dropout_keeps_the_module_draw():
  """Training attention draws its mask from the same `dropout` module and rng stream: the
  dropout rng a step passes reproduces the output, another changes it."""
  config = C.replace(dropout_rate=0.5)
  x = jax.random.normal(jax.random.PRNGKey(0), (2, L, C.emb_dim))
  bias = jnp.zeros((2, 1, L, L))
  attention = Attention(config)
  params = attention.init(jax.random.PRNGKey(1), x, x, bias, deterministic=True)
  run = lambda seed: attention.apply(params, x, x, bias, deterministic=False,
                                     rngs={"dropout": jax.random.PRNGKey(seed)})
  np.testing.assert_array_equal(run(3), run(3))
  assert not np.allclose(run(3), run(4))
  assert not np.allclose(run(3), attention.apply(params, x, x, bias, deterministic=True))
