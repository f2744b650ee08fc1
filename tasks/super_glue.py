"""SuperGLUE (`super_glue/*:1.0.2`) in T5's format and with T5's metrics."""
import functools

import seqio
import tensorflow as tf

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import labels
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

LABELS = labels.SUPER_GLUE
TEXT_FIELDS = {
    "boolq": ("passage", "question"),
    "cb": ("hypothesis", "premise"),
    "copa": ("choice1", "choice2", "premise", "question"),
    "multirc": ("question", "answer", "paragraph"),
    "record": ("passage", "query"),
    "rte": ("hypothesis", "premise"),
    "wic": ("sentence1", "sentence2", "word"),
    "wsc": ("text", "span1_text", "span2_text"),
    "wsc_bool": ("text", "span1_text", "span2_text"),
    "axb": ("sentence1", "sentence2"),
    "axg": ("hypothesis", "premise"),
}
# T5's explicit field orders; every other config joins its text fields sorted.
FEATURE_NAMES = {
    "multirc": ("question", "answer", "paragraph"),
    "wic": ("sentence1", "sentence2", "word"),  # start/end offsets are ignored
}
TFDS_CONFIG = {"wsc": "wsc.fixed", "wsc_bool": "wsc.fixed"}
# T5 registers AX-b with its sentences renamed to RTE's fields, then formats it as RTE.
AXB_AS_RTE = {"premise": "sentence1", "hypothesis": "sentence2", "label": "label", "idx": "idx"}


class TrainOnCorrectReferents(seqio.TfdsDataSource):
  """WSC's TFDS rows; in the train split only those whose span1 is the pronoun's referent
  (T5's `wsc_simple(correct_referent_only=True)` for `super_glue_wsc_v102_simple_train`),
  every row in the others (T5's `..._simple_eval`). One task, T5's two in one."""

  def get_dataset(self, split=None, shuffle=True, seed=None, shard_info=None, **kwargs):
    ds = super().get_dataset(split, shuffle, seed, shard_info, **kwargs)
    if (split or "train") == "train":
      ds = ds.filter(lambda x: tf.equal(tf.cast(x["label"], tf.int64), 1))
    return ds


def _classification(config: str, opts: pipeline.Options, name: str, source):
  # The diagnostics AX-b / AX-g are cast as RTE, like T5.
  benchmark = "rte" if config in ("axb", "axg") else config
  if config in ("axb", "axg"):
    metric_fns = []
  elif config == "cb":
    metric_fns = [metrics.mean_multiclass_f1(num_classes=3), metrics.accuracy]
  else:
    metric_fns = [metrics.accuracy]
  rekey = [functools.partial(formats.rekey, key_map=AXB_AS_RTE)] if config == "axb" else []
  return pipeline.add_task(
      name, source=source, opts=opts,
      formatters=rekey + [functools.partial(formats.glue, benchmark_name=benchmark,
                                            label_names=LABELS[config],
                                            feature_names=FEATURE_NAMES.get(config))],
      text_fields=TEXT_FIELDS[config],
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=LABELS[config]),
      metric_fns=metric_fns + [metrics.num_invalid])


def register_config(config: str, opts: pipeline.Options) -> seqio.Task:
  name = opts.name(names.super_glue_task(config))
  source = (TrainOnCorrectReferents if config == "wsc" else seqio.TfdsDataSource)(
      tfds_name=f"super_glue/{TFDS_CONFIG.get(config, config)}:{names.SUPER_GLUE_VERSION}",
      tfds_data_dir=opts.tfds_data_dir)
  if config == "record":
    return pipeline.add_task(
        name, source=source, opts=opts, formatters=[formats.record],
        text_fields=TEXT_FIELDS[config],
        postprocess_fn=postprocessors.record, metric_fns=[metrics.record_squad])
  if config == "multirc":
    return pipeline.add_task(
        name, source=source, opts=opts,
        formatters=[functools.partial(formats.glue, benchmark_name="multirc",
                                      label_names=LABELS[config],
                                      feature_names=FEATURE_NAMES[config])],
        text_fields=TEXT_FIELDS[config],
        postprocess_fn=postprocessors.multirc,
        metric_fns=[metrics.multirc_f1_over_all_answers, metrics.multirc_exact_match,
                    metrics.num_invalid])
  if config == "wsc":
    return pipeline.add_task(
        name, source=source, opts=opts, formatters=[formats.wsc_simple],
        text_fields=TEXT_FIELDS[config], predicate=formats.wsc_row_is_well_formed,
        postprocess_fn=postprocessors.wsc_simple, metric_fns=[metrics.accuracy])
  if config == "wsc_bool":
    return pipeline.add_task(
        name, source=source, opts=opts, formatters=[formats.wsc],
        text_fields=TEXT_FIELDS[config],
        postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                         label_classes=LABELS[config]),
        metric_fns=[metrics.accuracy, metrics.num_invalid])
  return _classification(config, opts, name, source)


def register(opts: pipeline.Options):
  return [register_config(c, opts).name
          for c in names.SUPER_GLUE_CONFIGS + names.SUPER_GLUE_EXTRA_CONFIGS + ("wsc_bool",)]
