"""Prompt initializers: closures `(rng, shape) -> [P, D] array` that check the shape.

As in SPoT and Lester et al.: uniform (scale 0.5), sampled vocabulary (rows of the
frozen embedding table among the most frequent pieces — SentencePiece orders pieces by
frequency, so the first ids), class labels (mean embedding of each verbalizer's pieces,
the rest sampled vocabulary), a string's embeddings, and a prompt file.
"""
import logging
from typing import Callable, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

Initializer = Callable[[jax.Array, Tuple[int, int]], jax.Array]
log = logging.getLogger("spot_jax.prompts")


def _check_2d(shape) -> Tuple[int, int]:
  if len(shape) != 2:
    raise ValueError(f"a prompt has shape [P, D]; asked for shape {tuple(shape)}")
  return int(shape[0]), int(shape[1])


def _check_embed_dim(embedding: np.ndarray, shape, what: str):
  p, d = _check_2d(shape)
  if embedding.ndim != 2 or embedding.shape[1] != d:
    raise ValueError(f"{what}: embedding table of shape {tuple(embedding.shape)} does not fit "
                     f"a prompt of shape {(p, d)} (embedding dim {d})")
  return p, d


def uniform(scale: float = 0.5) -> Initializer:
  """U(-scale, scale), the prompt-tuning default."""
  def init(rng, shape):
    _check_2d(shape)
    return jax.random.uniform(rng, shape, jnp.float32, -scale, scale)
  return init


def from_sampled_vocab(embedding, population_size: int = 5000) -> Initializer:
  """Rows of `embedding [V, D]` drawn from the first `population_size` pieces, without
  replacement unless the prompt is longer than the population."""
  embedding = np.asarray(embedding, np.float32)
  population = min(population_size, embedding.shape[0])
  rows = embedding[:population]  # all a traced init captures (not the whole table)

  def init(rng, shape):
    p, _ = _check_embed_dim(embedding, shape, "from_sampled_vocab")
    idx = jax.random.choice(rng, population, (p,), replace=p > population)
    return jnp.asarray(rows)[idx]
  return init


def from_token_ids(embedding, token_ids: Sequence[Sequence[int]],
                   fallback: Optional[Initializer] = None) -> Initializer:
  """Row i is the mean embedding of `token_ids[i]` (a label split into several pieces is
  averaged); remaining rows come from `fallback` (sampled vocabulary by default)."""
  embedding = np.asarray(embedding, np.float32)
  fallback = fallback or from_sampled_vocab(embedding)
  token_ids = [list(ids) for ids in token_ids]
  for i, ids in enumerate(token_ids):
    if not ids:
      raise ValueError(f"from_token_ids: entry {i} has no token ids")
    if max(ids) >= embedding.shape[0] or min(ids) < 0:
      raise ValueError(f"from_token_ids: entry {i} has ids {ids} outside the vocabulary of "
                       f"size {embedding.shape[0]}")

  def init(rng, shape):
    p, _ = _check_embed_dim(embedding, shape, "from_token_ids")
    if len(token_ids) > p:
      raise ValueError(f"from_token_ids: {len(token_ids)} labels do not fit a prompt of "
                       f"length {p}")
    rows = np.stack([embedding[ids].mean(axis=0) for ids in token_ids]) if token_ids else \
        np.zeros((0, shape[1]), np.float32)
    rest = fallback(rng, (p - len(token_ids), shape[1]))
    return jnp.concatenate([jnp.asarray(rows), rest], axis=0)
  return init


def from_class_labels(embedding, labels: Sequence[str], vocabulary) -> Initializer:
  """Class-label ("verbalizer") init; `vocabulary` is a seqio-style vocabulary with `encode`."""
  return from_token_ids(embedding, [vocabulary.encode(label) for label in labels])


def from_string(embedding, text: str, vocabulary) -> Initializer:
  """The embeddings of `text`'s pieces, one per prompt row, the rest sampled vocabulary."""
  return from_token_ids(embedding, [[i] for i in vocabulary.encode(text)])


def from_array(array) -> Initializer:
  """A given `[P, D]` array (e.g. a source prompt for SPoT transfer), shape-checked."""
  array = np.asarray(array, np.float32)

  def init(rng, shape):
    del rng
    if tuple(array.shape) != tuple(shape):
      raise ValueError(f"prompt array has shape {tuple(array.shape)} but the model's prompt "
                       f"has shape {tuple(shape)}")
    return jnp.asarray(array)
  return init


def from_file(path: str, model=None, *, allow_other_model: bool = False) -> Initializer:
  """A prompt file (`.npy`, never unpickled) as written by the trainer or a library.

  Its sidecar must match the array's recorded sha256 and, given `model` (the run's
  `prompt_files.ModelSignature`), name the same vocabulary and model (`allow_other_model`
  accepts another model name of the same width and vocabulary, with a warning). A bare
  `.npy` with no sidecar (e.g. a released prompt) is accepted with a warning."""
  from spot_jax.prompts import prompt_files
  npy_path, _ = prompt_files.prompt_paths(path)

  def init(rng, shape):
    array, meta = prompt_files.load_prompt(path, require_metadata=False)
    if meta is None:
      log.warning("%s has no .json sidecar: its model, vocabulary and integrity cannot be "
                  "checked", npy_path)
    elif model is not None:
      found = prompt_files.ModelSignature.of(meta)
      prompt_files.check_same_model(found, model, what=f"prompt file {npy_path}",
                                    match_model_name=not allow_other_model,
                                    wanted_by="this run")
      if found.model_name != model.model_name:
        log.warning("%s comes from model %r; this run's model is %r", npy_path,
                    found.model_name, model.model_name)
    try:
      return from_array(array)(rng, shape)
    except ValueError as e:
      raise ValueError(f"{path}: {e}") from None
  return init


# Factories for configuration: `(embedding [V, D], vocabulary, model_name) -> Initializer`,
# so a run can choose a scheme before the frozen embedding table is loaded; the arguments
# describe the run's model.
def sampled_vocab(population_size: int = 5000):
  return lambda embedding, vocabulary, model_name: from_sampled_vocab(embedding, population_size)


def random_uniform(scale: float = 0.5):
  return lambda embedding, vocabulary, model_name: uniform(scale)


def class_labels(labels: Sequence[str]):
  return lambda embedding, vocabulary, model_name: from_class_labels(embedding, labels,
                                                                     vocabulary)


def text(value: str):
  return lambda embedding, vocabulary, model_name: from_string(embedding, value, vocabulary)


def model_signature(embedding, vocabulary, model_name: str):
  """The `prompt_files.ModelSignature` of a run's model from a factory's arguments."""
  from spot_jax.prompts import prompt_files
  return prompt_files.ModelSignature(model_name, int(np.shape(embedding)[1]),
                                     prompt_files.vocabulary_hash_of(vocabulary))


def prompt_file(path: str, allow_other_model: bool = False):
  return lambda embedding, vocabulary, model_name: from_file(
      path, model_signature(embedding, vocabulary, model_name),
      allow_other_model=allow_other_model)
