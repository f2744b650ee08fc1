"""Greedy and beam search with the cache against teacher-forced scoring of the same model."""
import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from spot_jax.model import config as config_lib
from spot_jax.model import decoding, t5


@pytest.fixture(scope="module")
def small_vocab_model():
  c = config_lib.get_config("tiny", vocab_size=6, emb_dim=16, mlp_dim=32)
  params = t5.init_params(c, jax.random.PRNGKey(1))
  model = t5.T5(c)
  tokens = jnp.array([[2, 3, 4, 5, 0], [5, 4, 0, 0, 0]])
  mask = tokens > 0
  encoded = model.apply({"params": params}, model.apply({"params": params}, tokens,
                                                        method=t5.T5.embed),
                        mask, method=t5.T5.encode)
  return model, params, encoded, mask


@functools.partial(jax.jit, static_argnums=0)
def _teacher_forced(model, params, encoded, mask, dec_in):
  """Decoder logits for the whole of `dec_in` at once, without the cache (jitted: one
  compile per length instead of every op dispatched alone)."""
  return model.apply({"params": params}, encoded, mask, dec_in, method=t5.T5.decode)


def _log_probs(model, params, encoded, mask, seq):
  """Teacher-forced log p(seq) for one row, without the cache."""
  dec_in = jnp.array([[0] + list(seq[:-1])])
  lp = np.asarray(jax.nn.log_softmax(_teacher_forced(model, params, encoded, mask, dec_in)[0]))
  return float(sum(lp[i, s] for i, s in enumerate(seq)))


@pytest.mark.slow
def test_greedy_matches_teacher_forced_argmax(small_vocab_model):
  model, params, encoded, mask = small_vocab_model
  out = np.asarray(decoding.greedy_decode(model, params, encoded, mask, max_length=5))
  for row in range(2):
    prefix = [0]
    for t in range(5):
      logits = _teacher_forced(model, params, encoded[row:row + 1], mask[row:row + 1],
                               jnp.array([prefix]))
      nxt = int(np.argmax(logits[0, -1]))
      assert out[row, t] == nxt, (row, t, out[row])
      if nxt == 1:
        assert np.all(out[row, t + 1:] == 0)
        break
      prefix.append(nxt)


@pytest.mark.slow
def test_exhaustive_beam_equals_brute_force(small_vocab_model):
  """A beam as wide as every prefix is exact search: it must find the best sequences."""
  model, params, encoded, mask = small_vocab_model
  max_len, alpha = 3, 0.6
  seqs, scores = decoding.beam_search(model, params, encoded, mask, max_length=max_len,
                                      beam_size=36, alpha=alpha)
  for row in range(2):
    cands = []
    for length in range(1, max_len + 1):
      for s in itertools.product([0, 2, 3, 4, 5], repeat=length - 1):
        seq = s + (1,)
        lp = _log_probs(model, params, encoded[row:row + 1], mask[row:row + 1], seq)
        cands.append((lp / decoding.brevity_penalty(alpha, length), seq))
    cands.sort(reverse=True)
    for j in range(3):
      want_score, want_seq = cands[j]
      got = tuple(int(x) for x in seqs[row, j, :len(want_seq)])
      assert got == want_seq
      np.testing.assert_allclose(float(scores[row, j]), want_score, rtol=1e-5)


def test_beam_of_one_is_greedy(small_vocab_model):
  model, params, encoded, mask = small_vocab_model
  greedy = decoding.greedy_decode(model, params, encoded, mask, max_length=4)
  seqs, _ = decoding.beam_search(model, params, encoded, mask, max_length=4, beam_size=1)
  for row in range(2):
    g = list(np.asarray(greedy[row]))
    b = list(np.asarray(seqs[row, 0]))
    n = g.index(1) + 1 if 1 in g else 4
    assert g[:n] == b[:n]
