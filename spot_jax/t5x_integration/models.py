"""spot_jax's prompted T5 as a T5X model: what `python -m t5x.train` needs to train a soft
prompt on a frozen T5 v1.1 checkpoint.

- `PromptEncoderDecoderModel`: T5X's `EncoderDecoderModel` over `PromptedT5`, whose
  logical axis names (Flax boxes) it hands to T5X as the `params_axes` collection.
- `prompt_only`: T5X's `MultiOptimizer` over the prompt alone, so the frozen weights get no
  optimizer state and are never written.
- `prompt_initializer`: a prompt scheme of `spot_jax.prompts.initializers` bound to the
  frozen checkpoint's embedding table (read only if the scheme uses it).
- `task_vocabulary`: registers the task modules and returns the task's vocabulary, checked
  against the model's SentencePiece file.

Gin files reach these through `from __gin__ import dynamic_registration`.
"""
import functools
from typing import Any, Callable, Mapping, Optional, Sequence

import flax
import flax.linen as nn
import numpy as np
from flax import traverse_util
from flax.linen import partitioning as flax_partitioning
from t5x import models as t5x_models
from t5x import optimizers

from spot_jax.t5x_integration.module import PROMPT_PARAM

PROMPT_AXIS_RULES = (("prompt", None),)  # append to T5X's standard logical axis rules


def _axes_collection(boxed: Mapping[str, Any]) -> dict:
  """Flax `LogicallyPartitioned` boxes -> T5X's `params_axes` tree (`<name>_axes` leaves)."""
  flat = traverse_util.flatten_dict(flax.core.unfreeze(boxed),
                                    is_leaf=lambda _, v: isinstance(v, nn.Partitioned))
  axes = {}
  for path, leaf in flat.items():
    if not isinstance(leaf, nn.Partitioned):
      raise ValueError(f"parameter {'/'.join(path)} has no logical axis names")
    axes[path[:-1] + (path[-1] + "_axes",)] = flax_partitioning.AxisMetadata(names=leaf.names)
  return traverse_util.unflatten_dict(axes)


class PromptEncoderDecoderModel(t5x_models.EncoderDecoderModel):
  """T5X's encoder-decoder model for `PromptedT5` (teacher forcing, scoring, decoding)."""

  def get_initial_variables(self, rng, input_shapes, input_types=None):
    variables = flax.core.unfreeze(super().get_initial_variables(rng, input_shapes,
                                                                 input_types))
    boxed = variables.pop("params")
    variables["params"] = nn.meta.unbox(boxed)
    variables["params_axes"] = _axes_collection(boxed)
    return flax.core.freeze(variables)


def is_prompt(path: str, unused_value=None) -> bool:
  """`ModelParamTraversal` filter: the prompt parameter (T5X paths are '/'-joined)."""
  return path.strip("/").split("/")[-1] == PROMPT_PARAM


def prompt_only(optimizer: optimizers.OptimizerDef) -> optimizers.MultiOptimizer:
  """`optimizer` on the prompt; every other parameter frozen, with no optimizer state."""
  return optimizers.MultiOptimizer(((traverse_util.ModelParamTraversal(is_prompt), optimizer),))


class CheckpointEmbedding:
  """The frozen checkpoint's `[V, D]` embedding table, read on first use (`np.asarray`).

  `shape` is known without reading, so schemes that do not look at the table (uniform, a
  prompt file) never load it."""

  def __init__(self, checkpoint_path: Optional[str], shape: Sequence[int]):
    self.checkpoint_path = checkpoint_path
    self.shape = tuple(int(s) for s in shape)
    self.ndim = len(self.shape)

  def __array__(self, dtype=None, copy=None):
    if not self.checkpoint_path:
      raise ValueError("this prompt initializer reads the frozen embedding table, but "
                       "INITIAL_CHECKPOINT_PATH is None")
    table = _read_embedding(self.checkpoint_path)
    if table.shape != self.shape:
      raise ValueError(f"{self.checkpoint_path}: token_embedder/embedding has shape "
                       f"{table.shape}, the model config expects {self.shape}")
    return table if dtype is None else table.astype(dtype)


@functools.lru_cache(maxsize=2)
def _read_embedding(checkpoint_path: str) -> np.ndarray:
  from spot_jax import paths
  from spot_jax.model import t5x_checkpoint
  return t5x_checkpoint.read_t5x_variable(paths.absolute(checkpoint_path),
                                          "token_embedder/embedding", np.float32)


def prompt_initializer(*, scheme: Optional[Callable], checkpoint_path: Optional[str],
                       vocabulary, model_name: str, config) -> Callable:
  """`(rng, (P, D)) -> [P, D]` for `PromptedT5.prompt_init`.

  `scheme` is a factory of `spot_jax.prompts.initializers` (`sampled_vocab()`,
  `class_labels(...)`, `prompt_file(...)`, ...; None: sampled vocabulary), given the frozen
  checkpoint's embedding table, the task's vocabulary and the model's name."""
  from spot_jax.prompts import initializers
  scheme = scheme or initializers.sampled_vocab()
  embedding = CheckpointEmbedding(checkpoint_path, (config.vocab_size, config.emb_dim))
  return scheme(embedding, vocabulary, model_name)


def task_vocabulary(*, mixture_or_task_name: str, modules: Sequence[str],
                    vocabulary_file: Optional[str]):
  """Imports the task modules, checks the task tokenizes with `vocabulary_file` (the model's
  SentencePiece model) and returns the task's output vocabulary for the T5X model."""
  from spot_jax.training import data
  data.prepare_tasks(modules=modules, mixture_or_task_name=mixture_or_task_name,
                          vocabulary_file=vocabulary_file)
  return data.output_vocabulary(mixture_or_task_name)


def registered_task(*, mixture_or_task_name: str, modules: Sequence[str]) -> str:
  """`mixture_or_task_name`, after importing the task modules that register it."""
  from spot_jax.training import data
  data.prepare_tasks(modules=modules)
  return mixture_or_task_name


def prompt_file_length(*, path: str, prompt_length: Optional[int] = None) -> int:
  """The prompt length of the prompt file at `path`; `prompt_length`, if given, must agree."""
  from spot_jax.prompts import prompt_files
  found = int(prompt_files.load_prompt_array(path).shape[0])
  if prompt_length is not None and int(prompt_length) != found:
    raise ValueError(f"PROMPT_LENGTH={prompt_length} but the prompt file {path} has "
                     f"{found} rows")
  return found


def decode_fn(*, beam_size: int = 1, alpha: float = 0.6) -> Callable:
  """T5X's decoder: greedy (temperature 0) for `beam_size == 1`, else beam search with the
  brevity penalty `alpha` (T5X's and spot_jax's ((5 + length) / 6) ** alpha)."""
  from t5x import decoding
  if int(beam_size) < 1:
    raise ValueError(f"BEAM_SIZE must be a positive integer, got {beam_size!r}")
  if int(beam_size) == 1:
    return functools.partial(decoding.temperature_sample, temperature=0.0)
  return functools.partial(decoding.beam_search, alpha=alpha)
