"""The embedded default: the bundled SentencePiece vocabulary and tiny frozen backbone.

Both are built by the project (`tools/build_synthetic_vocab.py`, `tools/build_backbone.py`)
and shipped in `spot_jax/assets/`, so the offline suite (`spot_jax.tasks.synthetic`) runs
with no download. TensorFlow is only imported by `synthetic_vocabulary()`.
"""
import hashlib
import importlib.resources
import json
import os

VOCAB_FILE = "synthetic_spm.model"
BACKBONE_DIR = "backbone"
BACKBONE_CHECKPOINT = "backbone.msgpack"
BACKBONE_CONFIG = "config.json"

_TOOL = {VOCAB_FILE: "tools/build_synthetic_vocab.py",
         BACKBONE_CHECKPOINT: "tools/build_backbone.py",
         BACKBONE_CONFIG: "tools/build_backbone.py"}


def _asset(*parts: str) -> str:
  path = os.fspath(importlib.resources.files("spot_jax").joinpath("assets", *parts))
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"embedded asset {path} is missing; build it with `python {_TOOL[parts[-1]]}` from "
        "the repository root (or reinstall spot_jax with its package data)")
  return path


def vocabulary_path() -> str:
  """The shipped SentencePiece model of the synthetic language (pad 0, eos 1, unk 2)."""
  return _asset(VOCAB_FILE)


def vocabulary_sha256() -> str:
  with open(vocabulary_path(), "rb") as f:
    return hashlib.sha256(f.read()).hexdigest()


def synthetic_vocabulary():
  """`seqio.SentencePieceVocabulary` over the shipped model (no extra ids)."""
  import seqio
  return seqio.SentencePieceVocabulary(vocabulary_path())


def backbone_path() -> str:
  """The frozen backbone, a T5X msgpack checkpoint `load_params` reads."""
  return _asset(BACKBONE_DIR, BACKBONE_CHECKPOINT)


def backbone_metadata() -> dict:
  """The JSON written beside the checkpoint: `config`, `vocabulary_sha256`, how it was built."""
  with open(_asset(BACKBONE_DIR, BACKBONE_CONFIG)) as f:
    return json.load(f)


def backbone_config():
  """The backbone's `T5Config`, rebuilt from the shipped JSON."""
  from spot_jax.model.config import T5Config
  return T5Config(**backbone_metadata()["config"])
