"""Similarity between prompts, vectorised over a whole library.

SPoT (§3.2) compares task embeddings (prompts) with the cosine of their average
tokens and with the per-token average cosine (mean over all L x L' token pairs);
Su et al. add Euclidean distances, flattened and per token, turned into
similarities as 1 / (1 + d). Every `*_similarity` function maps a target `[P, D]`
and a library `[N, P', D]` to `[N]` scores, higher meaning more similar.

Per-token average cosine uses mean_ij cos(t_i, s_j) = <mean_i t_i/|t_i|, mean_j s_j/|s_j|>,
so it costs O(N P D) instead of O(N P P' D).
"""
from typing import Callable, Dict, Sequence, Union

import numpy as np

# Tokens or prompts with a norm below this count as zero vectors: cosine 0 with anything.
_EPS = 1e-12
# Prompts per block where a metric needs a [block, P, D] temporary.
_BLOCK = 64

ArrayLike = Union[np.ndarray, Sequence[np.ndarray]]


def _as_target(target: np.ndarray) -> np.ndarray:
  target = np.asarray(target, dtype=np.float32)
  if target.ndim != 2:
    raise ValueError(f"the target prompt must be [P, D], got shape {list(target.shape)}")
  return target


def _as_library(library: ArrayLike, target: np.ndarray, *, same_length: bool) -> np.ndarray:
  """The library as float32 `[N, P', D]`, checked against the target `[P, D]`."""
  if not isinstance(library, np.ndarray):
    library = np.stack([np.asarray(p, dtype=np.float32) for p in library]) if len(library) else (
        np.zeros((0,) + target.shape, np.float32))
  library = np.asarray(library, dtype=np.float32)
  if library.ndim != 3:
    raise ValueError(f"the library must be [N, P, D], got shape {list(library.shape)}")
  if library.shape[2] != target.shape[1]:
    raise ValueError(f"the library's prompts have d_model {library.shape[2]} but the target's "
                     f"is {target.shape[1]} (library {list(library.shape)}, target "
                     f"{list(target.shape)}); prompts of another model need the projector")
  if same_length and library.shape[1] != target.shape[0]:
    raise ValueError(f"this metric compares prompts of equal length: library "
                     f"{list(library.shape)}, target {list(target.shape)}")
  return library


def _safe_inverse(norms: np.ndarray) -> np.ndarray:
  return np.where(norms > _EPS, 1.0 / np.maximum(norms, _EPS), 0.0).astype(np.float32)


def _mean_unit_token(prompts: np.ndarray) -> np.ndarray:
  """`[..., P, D] -> [..., D]`: mean of the L2-normalised tokens, without a normalised copy."""
  norms = np.sqrt(np.einsum("...pd,...pd->...p", prompts, prompts))
  return np.einsum("...pd,...p->...d", prompts, _safe_inverse(norms)) / prompts.shape[-2]


def _cosine_rows(target: np.ndarray, rows: np.ndarray) -> np.ndarray:
  """Cosine of a vector `[D]` with each row of `[N, D]`; 0 where either is zero."""
  t_norm = np.linalg.norm(target)
  r_norm = np.sqrt(np.einsum("nk,nk->n", rows, rows))  # No [N, K] temporary, unlike norm().
  return (rows @ target) * _safe_inverse(r_norm) * _safe_inverse(np.asarray(t_norm))


def cosine_mean_token_similarity(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """SPoT's "cosine similarity of average tokens": cos(mean_i t_i, mean_j s_j), `[N]`."""
  target = _as_target(target)
  library = _as_library(library, target, same_length=False)
  return _cosine_rows(target.mean(axis=0), library.mean(axis=1))


def cosine_per_token_similarity(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """SPoT's per-token average cosine: mean over all token pairs of cos(t_i, s_j), `[N]`."""
  target = _as_target(target)
  library = _as_library(library, target, same_length=False)
  return _mean_unit_token(library) @ _mean_unit_token(target)


def cosine_flat_similarity(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """Su et al.'s `CosineSimilarity`: cosine of the flattened `[P*D]` prompts, `[N]`."""
  target = _as_target(target)
  library = _as_library(library, target, same_length=True)
  return _cosine_rows(target.reshape(-1), library.reshape(library.shape[0], -1))


def euclidean_flat_distance(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """Frobenius distance |t - s|_F between flattened prompts, `[N]`."""
  target = _as_target(target)
  library = _as_library(library, target, same_length=True)
  # Differences in blocks of prompts: exact for near-identical prompts (no |s|^2 + |t|^2 - 2<s,t>
  # cancellation) while the temporary stays at _BLOCK x P x D.
  out = np.empty(library.shape[0], np.float32)
  for start in range(0, library.shape[0], _BLOCK):
    diff = library[start:start + _BLOCK] - target
    out[start:start + _BLOCK] = np.sqrt(np.einsum("npd,npd->n", diff, diff))
  return out


def euclidean_per_token_distance(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """Mean over all token pairs of |t_i - s_j|_2 (Su et al.'s per-token distance), `[N]`."""
  target = _as_target(target)
  library = _as_library(library, target, same_length=False)
  n, p, d = library.shape
  t_sq = np.einsum("id,id->i", target, target)                      # [P]
  s_sq = np.einsum("njd,njd->nj", library, library)                  # [N, P']
  dots = (library.reshape(n * p, d) @ target.T).reshape(n, p, -1)    # [N, P', P]
  squared = s_sq[:, :, None] + t_sq[None, None, :] - 2.0 * dots
  return np.sqrt(np.maximum(squared, 0.0)).mean(axis=(1, 2))


def euclidean_flat_similarity(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """Su et al.'s `EuclideanDistances`: 1 / (1 + |t - s|_F), `[N]`."""
  return 1.0 / (1.0 + euclidean_flat_distance(target, library))


def euclidean_per_token_similarity(target: np.ndarray, library: ArrayLike) -> np.ndarray:
  """Su et al.'s `EuclideanDistances_per_token`: 1 / (1 + mean_ij |t_i - s_j|), `[N]`."""
  return 1.0 / (1.0 + euclidean_per_token_distance(target, library))


METRICS: Dict[str, Callable[[np.ndarray, ArrayLike], np.ndarray]] = {
    "cosine_mean_token": cosine_mean_token_similarity,
    "cosine_per_token": cosine_per_token_similarity,
    "cosine_flat": cosine_flat_similarity,
    "euclidean_flat": euclidean_flat_similarity,
    "euclidean_per_token": euclidean_per_token_similarity,
}
DEFAULT_METRIC = "cosine_per_token"


def score(target: np.ndarray, library: ArrayLike,
          metric: Union[str, Callable[[np.ndarray, ArrayLike], np.ndarray]] = DEFAULT_METRIC
          ) -> np.ndarray:
  """Similarity `[N]` of the target `[P, D]` to each library prompt `[N, P', D]`; higher is
  closer. `metric` names one of METRICS, or is such a function itself (e.g. the activated-
  neuron overlap, which needs the frozen model: `neurons.overlap_metric`)."""
  if callable(metric):
    return np.asarray(metric(target, library), dtype=np.float32)
  if metric not in METRICS:
    raise ValueError(f"unknown similarity metric {metric!r}; known: {sorted(METRICS)}")
  return np.asarray(METRICS[metric](target, library), dtype=np.float32)
