"""What every SPoT task shares: vocabulary, output features, bad-row and truncation
accounting (in a separate read of the data, so training pipelines stay checkpointable), the example-proportional rate with a clear not-prepared error, and name
lookup with suggestions.
"""
import collections
import contextlib
import contextvars
import dataclasses
import difflib
import functools
import os
import threading
from typing import Any, Callable, Dict, Iterable, Mapping, Optional, Sequence

from absl import logging
import numpy as np
import seqio
import tensorflow as tf

from spot_jax.tasks import names

DEFAULT_VOCAB_PATH = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
VOCAB_ENV = "SPOT_JAX_VOCAB"  # a local copy of the SentencePiece model, if set


def default_vocabulary() -> seqio.SentencePieceVocabulary:
  """T5's 32k SentencePiece vocabulary; the model file is only read on first use."""
  return seqio.SentencePieceVocabulary(os.environ.get(VOCAB_ENV, DEFAULT_VOCAB_PATH))


def output_features(vocabulary: seqio.Vocabulary) -> Dict[str, seqio.Feature]:
  """T5's DEFAULT_OUTPUT_FEATURES with the given vocabulary (both end in EOS)."""
  return {
      "inputs": seqio.Feature(vocabulary=vocabulary, add_eos=True, required=False),
      "targets": seqio.Feature(vocabulary=vocabulary, add_eos=True),
  }


@dataclasses.dataclass(frozen=True)
class Options:
  """Everything a registration depends on; `register_all` takes the same fields."""
  vocabulary: seqio.Vocabulary
  prefix: str = ""
  tfds_data_dir: Optional[str] = None
  cr_dir: Optional[str] = None
  cxc_dir: Optional[str] = None
  # Directories of the other local-file tasks, by task name without prefix (else each
  # task's SPOT_JAX_<NAME>_DIR environment variable; see tasks/local_files.py).
  local_dirs: Optional[Mapping[str, str]] = None
  c4_tfds_name: str = names.C4_TFDS_NAME
  # Examples each task's training stream shuffles over (seqio's and T5's default, 1000). The
  # buffer fills before the first batch and is saved whole in every checkpoint of the data
  # iterator, so a smaller one starts and checkpoints faster and shuffles less.
  shuffle_buffer_size: int = seqio.SHUFFLE_BUFFER_SIZE

  def __post_init__(self):
    size = self.shuffle_buffer_size
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
      raise ValueError(f"shuffle_buffer_size={size!r}: expected a positive integer, the "
                       f"examples each task's training stream shuffles over (seqio's "
                       f"default is {seqio.SHUFFLE_BUFFER_SIZE})")

  def name(self, base: str) -> str:
    return self.prefix + base

  @property
  def features(self) -> Dict[str, seqio.Feature]:
    return output_features(self.vocabulary)


# ------------------------------------------------------------------ accounting


class DataStats:
  """Per-task counters fed from inside tf.data while a dataset is read under `accounting()`."""

  def __init__(self):
    self._lock = threading.Lock()
    self._counts = collections.defaultdict(collections.Counter)

  def add(self, task: str, key: str, n: int = 1) -> int:
    with self._lock:
      self._counts[task][key] += n
      return self._counts[task][key]

  def get(self, task: str) -> Dict[str, int]:
    with self._lock:
      return dict(self._counts.get(task, {}))

  def reset(self, task: Optional[str] = None):
    with self._lock:
      if task is None:
        self._counts.clear()
      else:
        self._counts.pop(task, None)


STATS = DataStats()
# Set while `count_examples` builds a dataset. Training and evaluation pipelines are built
# without it and hold no stateful op (a `tf.py_function` makes a tf.data iterator
# impossible to checkpoint), so the counting happens in a separate read of the data.
_ACCOUNTING = contextvars.ContextVar("spot_jax_data_accounting", default=False)
TRUNCATED = {"inputs": "_truncated_inputs", "targets": "_truncated_targets"}
_COUNT_BATCH = 4096  # examples per batch when counting truncation


@contextlib.contextmanager
def accounting():
  """Datasets built inside count dropped rows (in STATS) and flag truncated examples."""
  token = _ACCOUNTING.set(True)
  try:
    yield
  finally:
    _ACCOUNTING.reset(token)


def _is_log_point(count: int) -> bool:
  return count > 0 and (count % 100_000 == 0 or
                        str(count).rstrip("0") == "1")


def filter_and_count(dataset: tf.data.Dataset, keep_fn: Callable[[dict], tf.Tensor],
                     *, task_name: str) -> tf.data.Dataset:
  """`dataset.filter(keep_fn)`; under `accounting()` every dropped row is also counted for
  the task and logged at 1, 10, 100, ... rows."""
  if not _ACCOUNTING.get():
    return dataset.filter(keep_fn)

  def record_drop():
    n = STATS.add(task_name, "rows_dropped")
    if _is_log_point(n):
      logging.warning("%s: dropped %d empty or malformed rows so far.", task_name, n)
    return False

  def keep(x):
    return tf.cond(keep_fn(x), lambda: tf.constant(True),
                   lambda: tf.ensure_shape(
                       tf.py_function(record_drop, [], tf.bool), []))

  return dataset.filter(keep)


def validate_rows(dataset: tf.data.Dataset, *, task_name: str,
                  text_fields: Sequence[str] = (),
                  predicate: Optional[Callable[[dict], tf.Tensor]] = None
                  ) -> tf.data.Dataset:
  """Drops rows with an empty text field or failing `predicate`."""

  def keep(x):
    ok = tf.constant(True)
    for field in text_fields:
      ok = tf.logical_and(ok, tf.strings.length(tf.strings.strip(x[field])) > 0)
    if predicate is not None:
      ok = tf.logical_and(ok, predicate(x))
    return ok

  return filter_and_count(dataset, keep, task_name=task_name)


def drop_empty_targets(dataset: tf.data.Dataset, *, task_name: str) -> tf.data.Dataset:
  """After formatting: a row whose target text came out empty cannot be trained on."""
  return filter_and_count(
      dataset, lambda x: tf.strings.length(tf.strings.strip(x["targets"])) > 0,
      task_name=task_name)


def flag_truncation(dataset: tf.data.Dataset,
                    sequence_length: Optional[Dict[str, int]] = None,
                    output_features: Optional[Dict[str, seqio.Feature]] = None
                    ) -> tf.data.Dataset:
  """Under `accounting()`: marks each example whose inputs/targets exceed the feature
  length (EOS included) with a boolean feature per key (`TRUNCATED`). Placed right before
  `append_eos_after_trim`, which does the truncation and keeps the EOS. Otherwise a no-op."""
  if not sequence_length or not _ACCOUNTING.get():
    return dataset
  keys = [k for k in TRUNCATED
          if sequence_length.get(k) and (output_features is None or k in output_features)]
  eos = {k: int(output_features[k].add_eos) if output_features else 1 for k in keys}

  def mark(x):
    x = dict(x)
    for k in keys:
      if k in x:
        x[TRUNCATED[k]] = tf.size(x[k]) + eos[k] > sequence_length[k]
    return x

  return dataset.map(mark, num_parallel_calls=tf.data.AUTOTUNE)


def count_examples(task: seqio.Task, sequence_length: Mapping[str, int], split: str,
                   max_examples: Optional[int] = None) -> Dict[str, Any]:
  """Reads up to `max_examples` of a task's split in order, counting what the training
  pipeline would truncate and what its validation drops. Returns
  `{task, split, examples, complete, truncated_inputs, truncated_targets, rows_dropped}`;
  `complete` is False when the split has more examples than were read. Only the truncation
  flags reach Python, in batches (a split of 50,000 examples is read in seconds)."""
  STATS.reset(task.name)
  with accounting():
    ds = task.get_dataset(dict(sequence_length), split=split, shuffle=False, num_epochs=1)
  if max_examples:
    ds = ds.take(max_examples + 1)  # one more tells whether the split has more

  def flags(ex):
    return {key: ex[flag] if flag in ex else tf.constant(False)
            for key, flag in TRUNCATED.items()}

  read = {key: [] for key in TRUNCATED}
  for batch in ds.map(flags).batch(_COUNT_BATCH).as_numpy_iterator():
    for key in TRUNCATED:
      read[key].append(batch[key])
  read = {key: np.concatenate(v) if v else np.zeros(0, bool) for key, v in read.items()}
  examples = len(read["inputs"])
  more = bool(max_examples) and examples > max_examples
  if more:
    examples = max_examples
  return {"task": task.name, "split": split, "examples": examples, "complete": not more,
          "truncated_inputs": int(read["inputs"][:examples].sum()),
          "truncated_targets": int(read["targets"][:examples].sum()),
          "rows_dropped": STATS.get(task.name).get("rows_dropped", 0)}


# ------------------------------------------------------------------ registration


def add_task(name: str, *, source: seqio.DataSource, opts: Options,
             formatters: Iterable[Callable],
             text_fields: Sequence[str] = (),
             predicate: Optional[Callable] = None,
             token_preprocessors: Iterable[Callable] = (),
             postprocess_fn: Optional[Callable] = None,
             metric_fns: Sequence[Callable] = (),
             output_features: Optional[Dict[str, seqio.Feature]] = None) -> seqio.Task:
  """Registers (or re-registers) a Task with the shared validation/EOS pipeline."""
  preprocessors = [
      functools.partial(validate_rows, task_name=name, text_fields=tuple(text_fields),
                        predicate=predicate),
      *formatters,
      functools.partial(drop_empty_targets, task_name=name),
      seqio.preprocessors.tokenize,
      seqio.CacheDatasetPlaceholder(),
      *token_preprocessors,
      flag_truncation,
      seqio.preprocessors.append_eos_after_trim,
  ]
  if name in seqio.TaskRegistry.names():
    seqio.TaskRegistry.remove(name)
  return seqio.TaskRegistry.add(
      name,
      source=source,
      preprocessors=preprocessors,
      output_features=output_features or opts.features,
      postprocess_fn=postprocess_fn,
      metric_fns=list(metric_fns),
      shuffle_buffer_size=opts.shuffle_buffer_size)


class DataNotPreparedError(ValueError):
  """A mixture rate needs split sizes that only a prepared dataset has."""


def capped_num_examples_rate(task: seqio.Task,
                             maximum: int = names.MIXING_RATE_MAXIMUM,
                             split: str = "train") -> float:
  """Example-proportional rate min(n, K) (T5/SPoT), with a clear error if n is unknown."""
  try:
    rate = seqio.mixing_rate_num_examples(task, maximum=maximum, split=split)
  except (KeyError, TypeError, FileNotFoundError, tf.errors.NotFoundError) as e:
    source = getattr(task.source, "tfds_dataset", None)
    where = (f"TFDS dataset '{source.name}' (data_dir={source.data_dir})"
             if source is not None else f"source {task.source!r}")
    raise DataNotPreparedError(
        f"Cannot compute the mixing rate of task '{task.name}': the number of "
        f"'{split}' examples of {where} is unknown. Prepare the data first (e.g. "
        f"`tfds build` or tfds.builder(...).download_and_prepare()), or pass "
        f"tfds_data_dir= where it is prepared. Cause: {e}") from e
  if rate is None:
    raise DataNotPreparedError(
        f"Task '{task.name}' reports no '{split}' size; cannot compute its rate.")
  return float(rate)


def add_mixture(name: str, task_names: Sequence[str],
                maximum: int = names.MIXING_RATE_MAXIMUM) -> seqio.Mixture:
  """Example-proportional mixture with rates min(n_train, maximum); re-registers."""
  if name in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.remove(name)
  return seqio.MixtureRegistry.add(
      name, list(task_names),
      default_rate=functools.partial(capped_num_examples_rate, maximum=maximum))


def get_task_or_mixture(name: str):
  """seqio's lookup, but the error names the closest registered tasks and mixtures."""
  try:
    return seqio.get_mixture_or_task(name)
  except ValueError as e:
    known = list(seqio.TaskRegistry.names()) + list(seqio.MixtureRegistry.names())
    close = difflib.get_close_matches(name, known, n=5, cutoff=0.5)
    hint = f" Closest registered names: {', '.join(close)}." if close else ""
    raise ValueError(f"{e}{hint} Did you import spot_jax.tasks.all?") from e
