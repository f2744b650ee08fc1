"""Tiny offline seqio tasks over byte tokens, for the trainer and command-line tests (test
only: `tests/conftest.py` puts this folder on the path of the tests and the commands they
start, `TASK_MODULES = ['toy_tasks:register']`).

`toy_mt_mixture` teaches a fresh model several prefixed skills over digit strings;
`toy_parity` then asks for one of those skills with the prefix removed, so a prompt can
only solve it by standing in for the prefix — and the answer depends on the input.
"""
import functools
import zlib

import numpy as np
import seqio
import tensorflow as tf

from spot_jax.tasks import pipeline

VOCAB = seqio.ByteVocabulary()
FEATURES = {"inputs": seqio.Feature(VOCAB, add_eos=True),
            "targets": seqio.Feature(VOCAB, add_eos=True)}
SIZES = {"train": 4000, "validation": 64}


def _digits(rng):
  return [int(d) for d in rng.randint(0, 10, size=4)]


def _parity(ds):
  return "even" if ds[0] % 2 == 0 else "odd"


def _rows(kind, rng):
  ds = _digits(rng)
  text = " ".join(map(str, ds))
  if kind == "parity_prefixed":
    return "parity: " + text, _parity(ds)
  if kind == "first_prefixed":
    return "first: " + text, str(ds[0])
  if kind == "last_prefixed":
    return "last: " + text, str(ds[-1])
  if kind == "parity":
    return text, _parity(ds)
  if kind == "first":
    return text, str(ds[0])
  if kind == "last":
    return text, str(ds[-1])
  raise ValueError(kind)


def _dataset_fn(kind, split, shuffle_files, seed=None):
  del shuffle_files, seed
  # crc32, not hash(): str hashes change between processes.
  rng = np.random.RandomState(zlib.crc32(f"{kind}/{split}".encode()))
  rows = [_rows(kind, rng) for _ in range(SIZES[split])]
  return tf.data.Dataset.from_tensor_slices(
      {"inputs": [r[0] for r in rows], "targets": [r[1] for r in rows]})


def accuracy(targets, predictions):
  return {"accuracy": 100.0 * float(np.mean([t == p for t, p in zip(targets, predictions)]))}


def register():
  for kind in ("parity_prefixed", "first_prefixed", "last_prefixed", "parity", "first", "last"):
    name = f"toy_{kind}"
    if name in seqio.TaskRegistry.names():
      continue
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(functools.partial(_dataset_fn, kind),
                                        splits=list(SIZES), num_input_examples=dict(SIZES)),
        preprocessors=[seqio.preprocessors.tokenize, pipeline.flag_truncation,
                       seqio.preprocessors.append_eos_after_trim],
        output_features=FEATURES, metric_fns=[accuracy])
  if "toy_mt_mixture" not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add("toy_mt_mixture", ["toy_parity_prefixed", "toy_first_prefixed",
                                                 "toy_last_prefixed"], default_rate=1.0)
