"""One entry point for model weights: detect the checkpoint format, read it, check it.

`load_params(path, config)` reads T5X (msgpack file, tensorstore directory, local or gs://),
Orbax and Hugging Face (safetensors) checkpoints and fails loudly, naming parameters and shapes,
when the result does not fit `config`: a model must never run on partly random weights.
`load_frozen_model` is what every run, evaluation and analysis reads its frozen model with.
"""
import logging
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from spot_jax import paths
from spot_jax.model import hf_checkpoint
from spot_jax.model import t5x_checkpoint
from spot_jax.model.config import T5Config, param_shapes
from spot_jax.model.t5x_checkpoint import DTypeLike, flatten

log = logging.getLogger("spot_jax.checkpoints")

_VOCAB_PARAMS = {"token_embedder/embedding": 0, "decoder/logits_dense/kernel": 1}


class ParamMismatchError(ValueError):
  """A parameter tree that does not fit the model config."""


def _shape(x: Any) -> Tuple[int, ...]:
  shape = getattr(x, "shape", None)  # arrays, ShapeDtypeStructs and lazy CheckpointArrays
  return tuple(shape) if shape is not None else tuple(np.shape(x))


def param_problems(params: Mapping[str, Any], config: T5Config) -> List[str]:
  """Every way `params` differs from `param_shapes(config)`, one message each."""
  expected = flatten(param_shapes(config), is_leaf=lambda v: isinstance(v, tuple))
  got = flatten(params)
  problems = []
  for name, axis in _VOCAB_PARAMS.items():
    if name in got and len(_shape(got[name])) == 2:
      have = _shape(got[name])[axis]
      if have != config.vocab_size:
        problems.append(f"vocabulary size mismatch: checkpoint has {have}, config has "
                        f"{config.vocab_size} ({name} {_shape(got[name])}, expected "
                        f"{expected[name]})")
        break
  missing = sorted(set(expected) - set(got))
  unexpected = sorted(set(got) - set(expected))
  if missing:
    problems.append(f"missing parameters ({len(missing)}): " + ", ".join(missing))
  if unexpected:
    problems.append(f"unexpected parameters ({len(unexpected)}): " + ", ".join(unexpected))
  for name in sorted(set(expected) & set(got)):
    shape = _shape(got[name])
    if shape != tuple(expected[name]):
      problems.append(f"shape mismatch for {name}: checkpoint has {shape}, config "
                      f"{config.name!r} expects {tuple(expected[name])}")
  return problems


def check_params(params: Mapping[str, Any], config: T5Config, source: str = "parameters") -> None:
  """Raises ParamMismatchError listing every missing, unexpected or misshapen parameter."""
  problems = param_problems(params, config)
  if problems:
    raise ParamMismatchError(f"{source} do not fit config {config.name!r}:\n  "
                             + "\n  ".join(problems))


def checkpoint_format(path: str) -> str:
  """'hf' (config.json directory), 't5x' (msgpack file or directory) or 'orbax'."""
  path = os.fspath(path)
  if not path.startswith("gs://"):
    if not os.path.exists(path):
      raise FileNotFoundError(f"checkpoint path does not exist: {path}")
    if hf_checkpoint.is_hf_checkpoint(path):
      return "hf"
  layout = t5x_checkpoint.checkpoint_layout(path)
  return "t5x" if layout == "msgpack" else layout


def load_checkpoint(path: str, config: Optional[T5Config] = None, dtype: DTypeLike = None
                    ) -> Tuple[Dict[str, Any], T5Config]:
  """(params, config) from any supported checkpoint, checked against the config.

  `config` is required for T5X/Orbax (their files carry no model config); for Hugging Face it
  defaults to the one built from config.json. `dtype` casts while reading (e.g. 'bfloat16').
  """
  path = paths.absolute(path)
  fmt = checkpoint_format(path)
  if fmt == "hf":
    params, config = hf_checkpoint.read_hf_checkpoint(path, dtype=dtype, config=config)
  else:
    if config is None:
      raise ValueError(f"{path} is a {fmt} checkpoint, which does not record the model shape: "
                       "pass `config` (e.g. get_config('base'))")
    like = t5x_checkpoint.unflatten({
        name: (shape, config.param_dtype) for name, shape in
        flatten(param_shapes(config), is_leaf=lambda v: isinstance(v, tuple)).items()})
    arrays = t5x_checkpoint.open_t5x_checkpoint(path, like=like)
    check_params(arrays, config, source=f"parameters of {path}")  # before reading any data
    return t5x_checkpoint.unflatten(t5x_checkpoint.read_arrays(arrays, dtype)), config
  check_params(params, config, source=f"parameters of {path}")
  return params, config


def load_params(path: str, config: Optional[T5Config] = None,
                dtype: DTypeLike = None) -> Dict[str, Any]:
  """The checked parameter tree of any supported checkpoint (see `load_checkpoint`)."""
  return load_checkpoint(path, config, dtype)[0]


def load_frozen_model(initial_checkpoint: Optional[str], config: T5Config, seed: int):
  """The model's weights from a checkpoint; random weights only when no path is given."""
  if initial_checkpoint:
    return load_params(initial_checkpoint, config, dtype=config.param_dtype)
  import jax  # pylint: disable=g-import-not-at-top  (reading a checkpoint needs no jax)
  from spot_jax.model.t5 import init_params  # pylint: disable=g-import-not-at-top
  log.warning("no initial checkpoint: the model starts from random weights")
  return jax.tree.map(np.asarray, init_params(config, jax.random.PRNGKey(seed)))
