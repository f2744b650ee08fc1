"""Many prompts in one batch: each example with its own prompt gives, per example, what it
gives alone with that prompt, in logits and in greedy decoding, with one compilation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spot_jax.model import t5
from spot_jax.model.config import get_config
from spot_jax.prompts.prompt import gather_prompts, prefix_prompt
from spot_jax.training import evaluator, train_step

CONFIG = get_config("tiny", vocab_size=48, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=24,
                    dropout_rate=0.0, name="mixed_prompts")
INDEX = np.array([2, 0, 1, 0, 2])


@pytest.fixture(scope="module")
def setup():
  params = t5.init_params(CONFIG, jax.random.PRNGKey(0))
  table = jax.random.normal(jax.random.PRNGKey(1), (3, 4, CONFIG.emb_dim))
  rng = np.random.RandomState(0)
  enc = rng.randint(2, CONFIG.vocab_size, (len(INDEX), 9)).astype(np.int32)
  enc[1, 5:] = 0
  enc[3, 2:] = 0
  tgt = rng.randint(2, CONFIG.vocab_size, (len(INDEX), 5)).astype(np.int32)
  batch = {"encoder_input_tokens": enc, "decoder_target_tokens": tgt,
           "decoder_input_tokens": np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], 1)}
  return params, table, batch


def test_a_mixed_batch_gives_each_example_its_own_prompts_logits(setup):
  params, table, batch = setup
  logits_fn = jax.jit(lambda p, prompt, b: train_step.compute_logits(t5.T5(CONFIG), p, prompt, b))
  mixed = np.asarray(logits_fn(params, gather_prompts(table, INDEX), batch))
  for i, k in enumerate(INDEX):
    # The same batch with one prompt for all: row i is computed exactly as in the mix.
    np.testing.assert_array_equal(mixed[i], np.asarray(logits_fn(params, table[k], batch))[i])
    # The example alone (batch of 1: other kernels, so float32 rounding differs a little).
    alone = logits_fn(params, table[k], jax.tree.map(lambda x, i=i: x[i:i + 1], batch))
    np.testing.assert_allclose(mixed[i], np.asarray(alone)[0], atol=1e-5, rtol=0)
  shared = np.asarray(logits_fn(params, table[0], batch))
  assert np.abs(mixed[0] - shared[0]).max() > 1e-3, "the prompts differ, so must the logits"


def test_greedy_decoding_with_per_example_prompts_in_one_compilation(setup):
  params, table, batch = setup
  decode = evaluator.make_decode_fn(CONFIG, max_length=6)
  tokens = jnp.asarray(batch["encoder_input_tokens"])
  mixed = np.asarray(decode(params, gather_prompts(table, INDEX), tokens))
  for i, k in enumerate(INDEX):
    alone = np.asarray(decode(params, jnp.broadcast_to(table[k], (len(INDEX),) + table[k].shape),
                              tokens))
    np.testing.assert_array_equal(mixed[i], alone[i])
  other = np.asarray(decode(params, gather_prompts(table, INDEX[::-1]), tokens))
  assert other.shape == mixed.shape
  assert decode._cache_size() == 1, "any mix of prompts reuses the one compilation"


def test_per_example_prompts_must_match_the_batch():
  with pytest.raises(ValueError, match=r"per-example prompts \(3, 4, 8\) do not match the batch "
                                       r"of 2"):
    prefix_prompt(jnp.zeros((3, 4, 8)), jnp.zeros((2, 5, 8)), jnp.ones((2, 5), bool))
