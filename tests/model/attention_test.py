"""Attention over one example at a time (a microbatch of one, as CPU steps take it) computes
what the same example computes inside a larger batch, and its softmax is taken without the
unit batch dimension (XLA:CPU's YNNPACK reduction for the backward is slow at `[1, H, Q, K]`;
docs/speed.md)."""
import jax
import jax.numpy as jnp
import numpy as np

from spot_jax.model.config import get_config
from spot_jax.model.layers import Attention, softmax_over_keys

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
