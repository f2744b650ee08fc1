"""The embedded default: everything the offline main job runs on, in one package.

- `language.py`: the synthetic language (invented words, four rules a reader infers).
- `tasks.py`: its seqio tasks (the bundled suite: 9 sources, 4 targets, a label control,
  the backbone's corpus), registered with `tasks.register()`.
- `build.py`: builds the two assets below (`tools/build_synthetic_vocab.py`,
  `tools/build_backbone.py` are its command lines).
- `assets/`: the shipped SentencePiece vocabulary and tiny frozen backbone.

This module reads the assets (no download). TensorFlow is only imported by
`synthetic_vocabulary()`.
"""
import hashlib
import json
import os

VOCAB_FILE = "synthetic_spm.model"
BACKBONE_DIR = "backbone"
BACKBONE_CHECKPOINT = "backbone.msgpack"
BACKBONE_CONFIG = "config.json"
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")

_TOOL = {VOCAB_FILE: "tools/build_synthetic_vocab.py",
         BACKBONE_CHECKPOINT: "tools/build_backbone.py",
         BACKBONE_CONFIG: "tools/build_backbone.py"}


def _asset(*parts: str) -> str:
  path = os.path.join(ASSETS_DIR, *parts)
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


def probe_token_id() -> int:
  """The id of the piece '.': the probe of activated neurons on the shipped vocabulary, which
  has no sentinel like T5's <extra_id_0> (Su et al.'s probe)."""
  import sentencepiece as spm
  piece = spm.SentencePieceProcessor(model_file=vocabulary_path()).piece_to_id("\u2581.")
  if piece == 2:  # unk
    raise ValueError(f"{vocabulary_path()} has no piece for '.'; rebuild it with "
                     "tools/build_synthetic_vocab.py")
  return piece


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


def salient_accuracy(params, config, *, split: str = "validation",
                     num_examples: int = 200, batch_size: int = 100) -> dict:
  """How well a backbone knows the synthetic language's rules: per family, the share of
  held-out corpus documents whose salient word (the verdict, topic, judgement or sameness a
  reader infers) the model ranks first among that family's words, scored by its logits at
  the first decoder position after the document's prefix. The build's acceptance check,
  recorded in the backbone's config.json and re-run by the tests."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  import sentencepiece as spm
  from spot_jax.model.t5 import T5
  from spot_jax.embedded import language as lang
  sp = spm.SentencePieceProcessor(model_file=vocabulary_path())
  model = T5(config)
  logits_fn = jax.jit(lambda p, enc, dec: model.apply({"params": p}, enc, dec)[:, 0])
  out = {}
  for family, words in lang.SALIENT_WORDS.items():
    ids = [sp.encode(w) for w in words]
    if any(len(i) != 1 for i in ids):
      raise ValueError(f"{vocabulary_path()}: the {family} words {words} are not one piece "
                       f"each ({ids}); rebuild it with tools/build_synthetic_vocab.py")
    candidates = np.array([i[0] for i in ids])
    examples = lang.salient_examples(split, family, num_examples)
    correct = 0
    for start in range(0, len(examples), batch_size):
      chunk = examples[start:start + batch_size]
      rows = [sp.encode(prefix) + [1] for prefix, _ in chunk]
      enc = np.zeros((len(rows), max(map(len, rows))), np.int32)
      for i, r in enumerate(rows):
        enc[i, :len(r)] = r
      logits = np.asarray(logits_fn(params, jnp.asarray(enc),
                                    jnp.zeros((len(rows), 1), jnp.int32)))
      pred = np.argmax(logits[:, candidates], axis=-1)
      correct += int(np.sum(pred == np.array([words.index(w) for _, w in chunk])))
    out[family] = round(100.0 * correct / len(examples), 2)
  return out
