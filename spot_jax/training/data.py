"""seqio datasets for training and evaluation, batched for the model (no packing, as in
prompt-tuning), and the vocabulary facts a run records."""
from typing import Mapping, Optional

import seqio
import tensorflow as tf

from spot_jax.prompts import prompt_files
from spot_jax.tasks import pipeline


def feature_converter() -> seqio.FeatureConverter:
  return seqio.EncDecFeatureConverter(pack=False)


def train_dataset(name: str, *, task_feature_lengths: Mapping[str, int], batch_size: int,
                  split: str = "train", seed: int = 0, shuffle: bool = True,
                  use_cached: bool = False) -> tf.data.Dataset:
  """An endless, seeded stream of `[batch_size, ...]` model features."""
  ds = seqio.get_dataset(name, task_feature_lengths=dict(task_feature_lengths),
                         dataset_split=split, shuffle=shuffle, num_epochs=None, seed=seed,
                         use_cached=use_cached, feature_converter=feature_converter())
  # No autotuning: its model thread can hold the iterator's destructor for ~10 s at the end
  # of every few runs (seen as a stall between back-to-back runs), and the fixed
  # prefetch below already overlaps input with the step.
  options = tf.data.Options()
  options.autotune.enabled = False
  return ds.batch(batch_size, drop_remainder=True).prefetch(2).with_options(options)


def output_vocabulary(name: str) -> seqio.Vocabulary:
  """The vocabulary of the task's (or mixture's) inputs; inputs and targets must share it."""
  provider = pipeline.get_task_or_mixture(name)
  features = provider.output_features
  vocab = features["inputs"].vocabulary
  if features["targets"].vocabulary != vocab:
    raise ValueError(f"{name}: inputs and targets use different vocabularies")
  return vocab


def vocabulary_hash(vocab: seqio.Vocabulary) -> str:
  """sha256 of the SentencePiece model file, or a name for vocabularies with no file."""
  if isinstance(vocab, seqio.SentencePieceVocabulary):
    return prompt_files.vocabulary_hash(vocab.sp_model)
  return f"{type(vocab).__name__}:{vocab.vocab_size}"


def check_vocabulary_fits(vocab: seqio.Vocabulary, model_vocab_size: int, name: str):
  """A task whose vocabulary has more pieces than the model's embedding is refused."""
  if vocab.vocab_size > model_vocab_size:
    raise ValueError(f"vocabulary size mismatch: task {name!r} has {vocab.vocab_size} pieces, "
                     f"the model's embedding has {model_vocab_size} rows")
