"""Tasks read from local TSV files: CR and CxC, which TFDS does not carry.

Layout (the prompt-tuning SPoT registrations' files): a directory holding
`train.tsv`, `validation.tsv` and optionally `test.tsv`, tab-separated, one header
line, columns
  CR:  index  text  label            (label 0 = negative, 1 = positive)
  CxC: index  sentence1  sentence2  label   (label: similarity score in [0, 5])
The directory is `register_all(cr_dir=..., cxc_dir=...)` or the environment
variables SPOT_JAX_CR_DIR / SPOT_JAX_CXC_DIR, read when the data is first needed.
"""
import functools
import os
from typing import Dict, Optional, Sequence

import seqio
import tensorflow as tf

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import labels
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

SPLITS = ("train", "validation", "test")
INTEGER = r"-?[0-9]+"
NUMBER = r"-?[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?"


class TsvDataSource(seqio.FunctionDataSource):
  """`<dir>/<split>.tsv` with a header; rows with the wrong shape are dropped, counted."""

  def __init__(self, *, directory: Optional[str], env_var: str, task_name: str,
               field_names: Sequence[str], patterns: Dict[str, str],
               numeric: Dict[str, tf.DType]):
    self._directory = directory
    self._env_var = env_var
    self._task_name = task_name
    self._fields = tuple(field_names)
    self._patterns = dict(patterns)
    self._numeric = dict(numeric)
    self._sizes: Dict[str, int] = {}
    super().__init__(dataset_fn=self._read, splits=SPLITS)

  @property
  def splits(self):
    """The splits whose file exists (all three while the directory is not set)."""
    directory = self._directory or os.environ.get(self._env_var)
    if not directory:
      return SPLITS
    present = tuple(s for s in SPLITS
                    if tf.io.gfile.exists(os.path.join(directory, f"{s}.tsv")))
    return present or SPLITS

  def path(self, split: str) -> str:
    directory = self._directory or os.environ.get(self._env_var)
    if not directory:
      raise ValueError(
          f"Task '{self._task_name}' reads local files: pass its directory to "
          f"register_all() or set ${self._env_var}. Expected <dir>/{split}.tsv with "
          f"a header and columns {' '.join(self._fields)}.")
    path = os.path.join(directory, f"{split}.tsv")
    if not tf.io.gfile.exists(path):
      raise FileNotFoundError(
          f"Task '{self._task_name}': {path} not found. Expected tab-separated "
          f"columns {' '.join(self._fields)} after one header line.")
    return path

  def num_input_examples(self, split: str) -> int:
    if split not in self._sizes:
      with tf.io.gfile.GFile(self.path(split)) as f:
        self._sizes[split] = max(0, sum(1 for line in f if line.strip()) - 1)
    return self._sizes[split]

  def _read(self, split: str, shuffle_files: bool = False, seed: Optional[int] = None):
    del shuffle_files, seed
    lines = tf.data.TextLineDataset(self.path(split)).skip(1)
    n = len(self._fields)

    def well_formed(line):
      parts = tf.strings.split(line, "\t")
      ok = tf.equal(tf.size(parts), n)
      padded = tf.concat([parts, tf.fill([n], "")], axis=0)  # short rows stay indexable
      for i, field in enumerate(self._fields):
        if field in self._patterns:
          value = tf.strings.strip(padded[i])
          ok = tf.logical_and(ok, tf.strings.regex_full_match(value, self._patterns[field]))
      return ok

    def parse(line):
      parts = tf.strings.split(line, "\t")
      row = {}
      for i, field in enumerate(self._fields):
        value = tf.strings.strip(parts[i])
        if field in self._numeric:
          value = tf.strings.to_number(value, self._numeric[field])
        row[field] = value
      return row

    return pipeline.filter_and_count(lines, well_formed, task_name=self._task_name).map(
        parse, num_parallel_calls=tf.data.AUTOTUNE)


def register(opts: pipeline.Options):
  cr = opts.name(names.CR)
  cr_task = pipeline.add_task(
      cr,
      source=TsvDataSource(directory=opts.cr_dir, env_var="SPOT_JAX_CR_DIR", task_name=cr,
                           field_names=("index", "text", "label"),
                           patterns={"label": "[01]"}, numeric={"label": tf.int64}),
      opts=opts,
      formatters=[functools.partial(formats.text_classification, task_prefix="cr",
                                    text_keys=("text",),
                                    label_names=labels.SENTIMENT)],
      text_fields=("text",),
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=labels.SENTIMENT),
      metric_fns=[metrics.accuracy, metrics.num_invalid])
  cxc = opts.name(names.CXC)
  cxc_task = pipeline.add_task(
      cxc,
      source=TsvDataSource(directory=opts.cxc_dir, env_var="SPOT_JAX_CXC_DIR",
                           task_name=cxc,
                           field_names=("index", "sentence1", "sentence2", "label"),
                           patterns={"label": NUMBER}, numeric={"label": tf.float32}),
      opts=opts,
      formatters=[functools.partial(formats.text_similarity, task_prefix="cxc")],
      text_fields=("sentence1", "sentence2"),
      postprocess_fn=postprocessors.string_to_float,
      metric_fns=[metrics.pearson_corrcoef, metrics.spearman_corrcoef,
                  metrics.num_invalid_in_range(0.0, 5.0)])
  return [cr_task.name, cxc_task.name]
