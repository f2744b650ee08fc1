"""T5 v1.1 size configurations and the parameter tree they imply.

Parameter names follow T5X's checkpoints (`token_embedder/embedding`,
`encoder/layers_0/attention/query/kernel`, ...), so a T5X checkpoint loads as is.
Attention kernels are stored with joined heads, `[D, H*K]`, as T5X writes them.
"""
import dataclasses
from typing import Any, Dict, Tuple

import numpy as np


@dataclasses.dataclass(frozen=True)
class T5Config:
  """Shapes and numerics of a T5 v1.1 encoder-decoder."""
  vocab_size: int = 32128
  emb_dim: int = 512
  num_heads: int = 6
  head_dim: int = 64
  mlp_dim: int = 1024
  num_encoder_layers: int = 8
  num_decoder_layers: int = 8
  relative_attention_num_buckets: int = 32
  relative_attention_max_distance: int = 128
  dropout_rate: float = 0.1
  layer_norm_epsilon: float = 1e-6
  dtype: str = "float32"        # compute dtype of activations
  param_dtype: str = "float32"  # storage dtype of parameters
  name: str = "custom"
  remat: bool = False  # recompute each layer's activations in the backward pass

  def __post_init__(self):
    for field in ("vocab_size", "emb_dim", "num_heads", "head_dim", "mlp_dim",
                  "num_encoder_layers", "num_decoder_layers",
                  "relative_attention_num_buckets", "relative_attention_max_distance"):
      value = getattr(self, field)
      if not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"T5Config.{field} must be a positive integer, got {value!r}")
    if self.relative_attention_max_distance <= self.relative_attention_num_buckets // 2:
      # The decoder's log-spaced buckets start at num_buckets // 2; below that the bucket
      # formula divides by log(max_distance / max_exact) <= 0.
      raise ValueError(f"T5Config.relative_attention_max_distance "
                       f"({self.relative_attention_max_distance}) must exceed half of "
                       f"relative_attention_num_buckets ({self.relative_attention_num_buckets})")
    for field in ("dtype", "param_dtype"):
      if getattr(self, field) not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"T5Config.{field} must be float32, bfloat16 or float16, "
                         f"got {getattr(self, field)!r}")

  def replace(self, **kwargs) -> "T5Config":
    return dataclasses.replace(self, **kwargs)


# Published T5 v1.1 shapes (t5x/prompt-tuning configs/models/sizes/*.gin); the
# LM-adapted (lm100k) checkpoints share them.
SIZES: Dict[str, T5Config] = {
    # T5X's "T5.1.1 tiny" test model; ../shared/fixtures/t5x/test_t5_tiny.checkpoint_0 has it.
    "tiny": T5Config(emb_dim=8, num_heads=4, head_dim=3, mlp_dim=16,
                     num_encoder_layers=2, num_decoder_layers=2, name="tiny"),
    "small": T5Config(emb_dim=512, num_heads=6, head_dim=64, mlp_dim=1024,
                      num_encoder_layers=8, num_decoder_layers=8, name="small"),
    "base": T5Config(emb_dim=768, num_heads=12, head_dim=64, mlp_dim=2048,
                     num_encoder_layers=12, num_decoder_layers=12, name="base"),
    "large": T5Config(emb_dim=1024, num_heads=16, head_dim=64, mlp_dim=2816,
                      num_encoder_layers=24, num_decoder_layers=24, name="large"),
    "xl": T5Config(emb_dim=2048, num_heads=32, head_dim=64, mlp_dim=5120,
                   num_encoder_layers=24, num_decoder_layers=24, name="xl"),
    "xxl": T5Config(emb_dim=4096, num_heads=64, head_dim=64, mlp_dim=10240,
                    num_encoder_layers=24, num_decoder_layers=24, name="xxl"),
}


def get_config(size: str, **overrides: Any) -> T5Config:
  """The named size config, with field overrides (e.g. dtype='bfloat16')."""
  if size not in SIZES:
    raise ValueError(f"Unknown model size {size!r}; known sizes: {sorted(SIZES)}")
  return SIZES[size].replace(**overrides)


def config_from_json(path: str) -> T5Config:
  """A T5Config from a JSON file of its fields, or one that nests them under "config" (the
  shipped backbone's `config.json`, written by tools/build_backbone.py)."""
  import json  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    fields = json.load(f)
  fields = fields.get("config", fields)
  known = {f.name for f in dataclasses.fields(T5Config)}
  unknown = sorted(set(fields) - known)
  if unknown:
    raise ValueError(f"{path}: unknown T5Config fields {unknown}; known: {sorted(known)}")
  return T5Config(**fields)


def _attention_shapes(c: T5Config) -> Dict[str, Dict[str, Tuple[int, ...]]]:
  hk = c.num_heads * c.head_dim
  return {"query": {"kernel": (c.emb_dim, hk)}, "key": {"kernel": (c.emb_dim, hk)},
          "value": {"kernel": (c.emb_dim, hk)}, "out": {"kernel": (hk, c.emb_dim)}}


def _mlp_shapes(c: T5Config) -> Dict[str, Dict[str, Tuple[int, ...]]]:
  return {"wi_0": {"kernel": (c.emb_dim, c.mlp_dim)}, "wi_1": {"kernel": (c.emb_dim, c.mlp_dim)},
          "wo": {"kernel": (c.mlp_dim, c.emb_dim)}}


def param_shapes(c: T5Config) -> Dict[str, Any]:
  """The nested dict of parameter shapes a checkpoint for `c` must provide."""
  norm = {"scale": (c.emb_dim,)}
  relpos = {"rel_embedding": (c.num_heads, c.relative_attention_num_buckets)}
  encoder = {f"layers_{i}": {"pre_attention_layer_norm": dict(norm),
                             "attention": _attention_shapes(c),
                             "pre_mlp_layer_norm": dict(norm),
                             "mlp": _mlp_shapes(c)}
             for i in range(c.num_encoder_layers)}
  encoder["encoder_norm"] = dict(norm)
  encoder["relpos_bias"] = dict(relpos)
  decoder = {f"layers_{i}": {"pre_self_attention_layer_norm": dict(norm),
                             "self_attention": _attention_shapes(c),
                             "pre_cross_attention_layer_norm": dict(norm),
                             "encoder_decoder_attention": _attention_shapes(c),
                             "pre_mlp_layer_norm": dict(norm),
                             "mlp": _mlp_shapes(c)}
             for i in range(c.num_decoder_layers)}
  decoder["decoder_norm"] = dict(norm)
  decoder["relpos_bias"] = dict(relpos)
  decoder["logits_dense"] = {"kernel": (c.emb_dim, c.vocab_size)}
  return {"token_embedder": {"embedding": (c.vocab_size, c.emb_dim)},
          "encoder": encoder, "decoder": decoder}
