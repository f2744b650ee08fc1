"""Similarity metrics against scipy/numpy brute force and hand-checkable cases."""
import numpy as np
import pytest
from scipy.spatial import distance

from spot_jax.transfer import similarity


def _random(shape, seed):
  return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _brute_per_token_cosine(t, s):
  return np.mean([[1.0 - distance.cosine(a, b) for b in s] for a in t])


@pytest.mark.parametrize("lib_length", [6, 9])
def test_per_token_cosine_is_the_mean_over_all_token_pairs(lib_length):
  target, library = _random((6, 16), 0), _random((7, lib_length, 16), 1)
  got = similarity.cosine_per_token_similarity(target, library)
  want = [_brute_per_token_cosine(target, s) for s in library]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  # The same through scipy's pairwise matrix, in float64.
  for s, g in zip(library, got):
    assert abs(g - np.mean(1.0 - distance.cdist(target, s, "cosine"))) < 1e-5


def test_mean_of_unit_tokens_identity():
  target, source = _random((5, 8), 2), _random((4, 8), 3)
  unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
  brute = (unit(target) @ unit(source).T).mean()
  assert abs(unit(target).mean(0) @ unit(source).mean(0) - brute) < 1e-6


def test_mean_token_cosine_matches_scipy():
  target, library = _random((6, 16), 4), _random((5, 6, 16), 5)
  got = similarity.cosine_mean_token_similarity(target, library)
  want = [1.0 - distance.cosine(target.mean(0), s.mean(0)) for s in library]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_flat_cosine_matches_scipy():
  target, library = _random((6, 16), 6), _random((5, 6, 16), 7)
  got = similarity.cosine_flat_similarity(target, library)
  want = [1.0 - distance.cosine(target.ravel(), s.ravel()) for s in library]
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_euclidean_metrics_match_scipy():
  target, library = _random((6, 16), 8), _random((70, 6, 16), 9)  # > one block of 64
  flat = similarity.euclidean_flat_distance(target, library)
  np.testing.assert_allclose(
      flat, [distance.euclidean(target.ravel(), s.ravel()) for s in library], rtol=1e-5)
  per_token = similarity.euclidean_per_token_distance(target, library)
  np.testing.assert_allclose(
      per_token, [distance.cdist(target, s).mean() for s in library], rtol=1e-4)
  np.testing.assert_allclose(similarity.euclidean_flat_similarity(target, library),
                             1.0 / (1.0 + flat), rtol=1e-6)
  np.testing.assert_allclose(similarity.euclidean_per_token_similarity(target, library),
                             1.0 / (1.0 + per_token), rtol=1e-6)


def test_hand_checkable_cases():
  e0, e1 = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
  target = np.stack([e0, e0, 2 * e0])                   # [3, 4]
  library = np.stack([target, 3.0 * target, np.stack([e1] * 3), -target,
                      np.stack([e0, e1, e0])])
  for metric in ("cosine_mean_token", "cosine_per_token", "cosine_flat"):
    got = similarity.score(target, library, metric)
    np.testing.assert_allclose(got[:4], [1.0, 1.0, 0.0, -1.0], atol=1e-6, err_msg=metric)
  # Per-token: 3x3 pairs, the middle source token is orthogonal to every target token.
  assert abs(similarity.score(target, library, "cosine_per_token")[4] - 2 / 3) < 1e-6
  assert similarity.score(target, library, "euclidean_flat")[0] == pytest.approx(1.0)
  # Distance |t - 3t| = 2|t|_F = 2 * sqrt(6).
  assert similarity.euclidean_flat_distance(target, library)[1] == pytest.approx(2 * 6**0.5)


def test_zero_tokens_give_zero_not_nan():
  target = np.zeros((3, 4), np.float32)
  library = _random((2, 3, 4), 10)
  for metric in similarity.METRICS:
    assert np.all(np.isfinite(similarity.score(target, library, metric))), metric


def test_library_may_be_a_list_and_may_be_empty():
  target = _random((3, 4), 11)
  as_list = [_random((3, 4), 12), _random((3, 4), 13)]
  np.testing.assert_array_equal(similarity.score(target, as_list),
                                similarity.score(target, np.stack(as_list)))
  assert similarity.score(target, []).shape == (0,)


def test_shape_errors_name_both_shapes():
  with pytest.raises(ValueError, match=r"d_model 8 but the target's is 4"):
    similarity.score(_random((3, 4), 0), _random((2, 3, 8), 1))
  with pytest.raises(ValueError, match=r"\[2, 5, 4\].*\[3, 4\]"):
    similarity.score(_random((3, 4), 0), _random((2, 5, 4), 1), "euclidean_flat")
  with pytest.raises(ValueError, match="unknown similarity metric"):
    similarity.score(_random((3, 4), 0), _random((2, 3, 4), 1), "jaccard")
