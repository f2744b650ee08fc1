"""A `('data', 'model')` device mesh and T5X-style logical axis rules.

The batch splits on `data`; frozen weights may split on `model` (heads, mlp, vocab);
the prompt is replicated (prompt-tuning's `("prompt", None), ("prompt_embed", None)`).
"""
from typing import Optional, Sequence, Tuple

import flax.linen as nn
import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

AXIS_RULES: Tuple[Tuple[str, Optional[str]], ...] = (
    ("batch", "data"),
    ("vocab", "model"),
    ("embed", None),
    ("mlp", "model"),
    ("heads", "model"),
    ("kv", None),
    ("joined_kv", "model"),
    ("length", None),
    ("relpos_buckets", None),
    ("prompt", None),
    ("prompt_embed", None),
)


def make_mesh(data: int = -1, model: int = 1, devices: Optional[Sequence] = None) -> Mesh:
  """A mesh of `data x model` devices; `data=-1` takes all devices left over.

  Explicit sizes may use fewer devices than there are (the first `data * model`).
  """
  devices = list(devices if devices is not None else jax.devices())
  if model <= 0 or len(devices) % model:
    raise ValueError(f"model-parallel size {model} does not divide {len(devices)} devices")
  if data == -1:
    data = len(devices) // model
  if data <= 0 or data * model > len(devices):
    raise ValueError(f"mesh {data}x{model} needs {data * model} devices, have {len(devices)}")
  # Auto axis types: jax 0.10's make_mesh defaults to Explicit, where the logical
  # sharding constraints of T5X-style code raise.
  return Mesh(np.asarray(devices[:data * model]).reshape(data, model), ("data", "model"))


def logical_to_sharding(logical_specs, mesh: Mesh, rules=AXIS_RULES):
  """A tree of logical `PartitionSpec`s -> a tree of `NamedSharding`s on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, list(rules))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Leading (batch) axis on `data`, the rest replicated."""
  return NamedSharding(mesh, P("data"))


def check_batch_divides(batch_size: int, mesh: Mesh):
  n = mesh.shape["data"]
  if batch_size % n:
    raise ValueError(f"batch size {batch_size} does not divide the mesh's data axis of size {n}")
