"""seqio datasets for training and evaluation, batched for the model (no packing, as in
prompt-tuning), and the vocabulary facts a run records."""
import importlib
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence

import seqio
import tensorflow as tf

from spot_jax.prompts import prompt_files
from spot_jax.tasks import pipeline

log = logging.getLogger("spot_jax.data")
# The modules whose import registers the tasks commands may name (TASK_MODULES).
DEFAULT_TASK_MODULES = ("spot_jax.tasks.all",)
# How many examples per task and split `check_data` reads (in order) before a run.
DATA_CHECK_EXAMPLES = 50_000
_CHECKED: Dict[tuple, Dict[str, Any]] = {}


def feature_converter() -> seqio.FeatureConverter:
  """seqio's encoder-decoder features, unpacked. Without its length assertions: the task
  datasets it converts are already trimmed to the feature lengths (`seqio.get_dataset` and
  `seqio.Evaluator` both trim; `check_data` reports what was cut), so the assertions could
  never fire, and building them was a third of each training pipeline's build."""
  return seqio.EncDecFeatureConverter(pack=False, apply_length_check=False)


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
  return prompt_files.vocabulary_hash_of(vocab)


def check_vocabulary_fits(vocab: seqio.Vocabulary, model_vocab_size: int, name: str):
  """A task whose vocabulary has more pieces than the model's embedding is refused."""
  if vocab.vocab_size > model_vocab_size:
    raise ValueError(f"vocabulary size mismatch: task {name!r} has {vocab.vocab_size} pieces, "
                     f"the model's embedding has {model_vocab_size} rows")


def check_data(name: str, *, task_feature_lengths: Mapping[str, int], split: str,
               max_examples: Optional[int] = DATA_CHECK_EXAMPLES) -> List[Dict[str, Any]]:
  """Per task of `name` (each task of a mixture) that has `split`: how many of its first
  `max_examples` examples the feature lengths truncate, and how many rows its validation
  dropped (`tasks.pipeline.count_examples`). Logs a WARNING for each task with any; a
  task's result is reused within the process."""
  provider = pipeline.get_task_or_mixture(name)
  tasks = provider.tasks if isinstance(provider, seqio.Mixture) else [provider]
  lengths = {k: int(v) for k, v in task_feature_lengths.items()}
  reports = []
  for task in tasks:
    if split not in task.splits:
      continue
    key = (task.name, id(task), split, tuple(sorted(lengths.items())), max_examples)
    if key not in _CHECKED:
      _CHECKED[key] = report = pipeline.count_examples(task, lengths, split, max_examples)
      _warn(report, lengths)
    reports.append(dict(_CHECKED[key]))
  return reports


def _warn(report: Dict[str, Any], lengths: Mapping[str, int]) -> None:
  seen = f"{'' if report['complete'] else 'the first '}{report['examples']}"
  for key in ("inputs", "targets"):
    n = report[f"truncated_{key}"]
    if n:
      log.warning("%s (%s): %d of %s examples have %s longer than %d tokens (EOS included); "
                  "they are truncated. Raise TASK_FEATURE_LENGTHS['%s'] to keep them whole.",
                  report["task"], report["split"], n, seen, key, lengths[key], key)
  if report["rows_dropped"]:
    log.warning("%s (%s): %d empty or malformed rows were dropped while reading %s examples.",
                report["task"], report["split"], report["rows_dropped"], seen)


def prepare_tasks(*, modules: Sequence[str] = DEFAULT_TASK_MODULES,
                  mixture_or_task_name: Optional[str] = None,
                  vocabulary_file: Optional[str] = None) -> None:
  """Registers tasks by importing `modules` ('pkg.mod', or 'pkg.mod:fn' to also call fn()),
  then checks the task's SentencePiece file is the model's `vocabulary_file`."""
  if isinstance(modules, str):
    modules = [modules]
  for entry in modules:
    name, _, fn = entry.partition(":")
    try:
      module = importlib.import_module(name)
    except ImportError as e:
      raise ImportError(f"task module {name!r} (from TASK_MODULES {list(modules)}) could not "
                        f"be imported: {e}") from e
    if fn:
      getattr(module, fn)()
  if mixture_or_task_name and vocabulary_file:
    check_task_vocabulary(mixture_or_task_name, vocabulary_file)


def check_task_vocabulary(mixture_or_task_name: str, vocabulary_file: str) -> None:
  """The task must tokenize with the model's SentencePiece model: same path, or same bytes
  (a local copy, e.g. SPOT_JAX_VOCAB, is read and compared with the model's file)."""
  vocab = output_vocabulary(mixture_or_task_name)
  if not isinstance(vocab, seqio.SentencePieceVocabulary):
    raise ValueError(f"task {mixture_or_task_name!r} uses {type(vocab).__name__}, but the model "
                     f"expects the SentencePiece model {vocabulary_file}")
  task_file = vocab.sentencepiece_model_file
  if task_file == vocabulary_file:
    return
  hashes = []
  for path in (task_file, vocabulary_file):
    with tf.io.gfile.GFile(path, "rb") as f:
      hashes.append(prompt_files.vocabulary_hash(f.read()))
  if hashes[0] != hashes[1]:
    raise ValueError(f"vocabulary mismatch: task {mixture_or_task_name!r} tokenizes with "
                     f"{task_file}, the model was trained with {vocabulary_file}")
