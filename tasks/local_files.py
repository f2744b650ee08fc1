"""Tasks read from local TSV files, for datasets TFDS does not carry.

Layout: a directory holding `train.tsv`, `validation.tsv` and optionally `test.tsv`,
tab-separated, one header line, the columns of `SPECS` (docs/tasks.md lists them with
where each dataset comes from). The directory is `register_all(cr_dir=..., cxc_dir=...,
local_dirs={task: dir})` or the task's environment variable (`env_var`, e.g.
SPOT_JAX_CR_DIR), read when the data is first needed.
"""
import dataclasses
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


@dataclasses.dataclass(frozen=True)
class LocalTask:
  """A classification task over a TSV: its columns, the class-id column's pattern (ids
  0..n-1 name `label_names`; `label_offset` for files counting from 1), input prefix."""
  prefix: str
  fields: Sequence[str]
  text_fields: Sequence[str]
  label_names: Sequence[str]
  env_var: str
  label_offset: int = 0

  @property
  def label_pattern(self) -> str:
    return "[" + "".join(str(i + self.label_offset) for i in range(len(self.label_names))) + "]"


SPECS = {
    names.CR: LocalTask("cr", ("index", "text", "label"), ("text",), labels.SENTIMENT,
                        "SPOT_JAX_CR_DIR"),
    names.ART: LocalTask("art", ("index", "obs1", "obs2", "hyp1", "hyp2", "label"),
                         ("obs1", "obs2", "hyp1", "hyp2"), ("hyp1", "hyp2"),
                         "SPOT_JAX_ART_DIR", label_offset=1),
    names.SOCIAL_IQA: LocalTask(
        "social_iqa", ("index", "context", "question", "answerA", "answerB", "answerC",
                       "label"), ("context", "question", "answerA", "answerB", "answerC"),
        ("answerA", "answerB", "answerC"), "SPOT_JAX_SOCIAL_IQA_DIR", label_offset=1),
    names.LAPTOP: LocalTask("laptop", ("index", "sentence", "aspect", "label"),
                            ("sentence", "aspect"), labels.SENTIMENT3,
                            "SPOT_JAX_LAPTOP_DIR"),
    names.RESTAURANT: LocalTask("restaurant", ("index", "sentence", "aspect", "label"),
                                ("sentence", "aspect"), labels.SENTIMENT3,
                                "SPOT_JAX_RESTAURANT_DIR"),
    names.TWEET_EVAL: LocalTask("tweet_eval_sentiment", ("index", "text", "label"),
                                ("text",), labels.SENTIMENT3, "SPOT_JAX_TWEET_EVAL_DIR"),
    names.ETHICS_DEONTOLOGY: LocalTask(
        "ethics_deontology", ("index", "scenario", "excuse", "label"),
        ("scenario", "excuse"), labels.ETHICS, "SPOT_JAX_ETHICS_DEONTOLOGY_DIR"),
    names.ETHICS_JUSTICE: LocalTask("ethics_justice", ("index", "scenario", "label"),
                                    ("scenario",), labels.ETHICS,
                                    "SPOT_JAX_ETHICS_JUSTICE_DIR"),
}


def _directory(opts: pipeline.Options, base: str) -> Optional[str]:
  return {names.CR: opts.cr_dir, names.CXC: opts.cxc_dir}.get(base) or (
      opts.local_dirs or {}).get(base)


def register(opts: pipeline.Options):
  registered = []
  for base, spec in SPECS.items():
    name = opts.name(base)
    to_id = [] if not spec.label_offset else [functools.partial(
        formats.with_label, label_fn=lambda x, o=spec.label_offset: x["label"] - o)]
    registered.append(pipeline.add_task(
        name,
        source=TsvDataSource(directory=_directory(opts, base), env_var=spec.env_var,
                             task_name=name, field_names=spec.fields,
                             patterns={"label": spec.label_pattern},
                             numeric={"label": tf.int64}),
        opts=opts,
        formatters=to_id + [functools.partial(
            formats.text_classification, task_prefix=spec.prefix,
            text_keys=spec.text_fields, label_names=spec.label_names)],
        text_fields=spec.text_fields,
        postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                         label_classes=tuple(spec.label_names)),
        metric_fns=[metrics.accuracy, metrics.num_invalid]).name)
  cxc = opts.name(names.CXC)
  registered.append(pipeline.add_task(
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
                  metrics.num_invalid_in_range(0.0, 5.0)]).name)
  return registered
