"""Writing model parameters as a T5X single-file msgpack checkpoint (what model tuning
hands to prompt tuning as its frozen backbone); never a pickle."""
import os

import numpy as np
from flax import serialization

from spot_jax.atomic_files import write_atomically


def write_t5x_msgpack(params, path: str):
  """`params` (our T5X-named tree) -> `path`, laid out as T5X's `optimizer/target`."""
  tree = {"optimizer": {"target": _to_numpy(params)}, "version": 3}
  write_atomically(os.fspath(path), serialization.msgpack_serialize(tree))


def _to_numpy(tree):
  if isinstance(tree, dict):
    return {k: _to_numpy(v) for k, v in tree.items()}
  return np.asarray(tree)
