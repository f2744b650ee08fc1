"""SuperGLUE (`super_glue/*:1.0.2`) in T5's format and with T5's metrics."""
import functools

import seqio

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
    "axb": ("sentence1", "sentence2"),
    "axg": ("hypothesis", "premise"),
}
# T5's explicit field orders; every other config joins its text fields sorted.
FEATURE_NAMES = {
    "multirc": ("question", "answer", "paragraph"),
    "wic": ("sentence1", "sentence2", "word"),  # start/end offsets are ignored
}
TFDS_CONFIG = {"wsc": "wsc.fixed"}


def _classification(config: str, opts: pipeline.Options, name: str, source):
  # The diagnostics AX-b / AX-g are cast as RTE, like T5.
  benchmark = "rte" if config in ("axb", "axg") else config
  if config in ("axb", "axg"):
    metric_fns = []
  elif config == "cb":
    metric_fns = [metrics.mean_multiclass_f1(num_classes=3), metrics.accuracy]
  else:
    metric_fns = [metrics.accuracy]
  return pipeline.add_task(
      name, source=source, opts=opts,
      formatters=[functools.partial(formats.glue, benchmark_name=benchmark,
                                    label_names=LABELS[config],
                                    feature_names=FEATURE_NAMES.get(config))],
      text_fields=TEXT_FIELDS[config],
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=LABELS[config]),
      metric_fns=metric_fns + [metrics.num_invalid])


def register_config(config: str, opts: pipeline.Options) -> seqio.Task:
  name = opts.name(names.super_glue_task(config))
  source = seqio.TfdsDataSource(
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
        name, source=source, opts=opts, formatters=[formats.wsc],
        text_fields=TEXT_FIELDS[config],
        postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                         label_classes=LABELS[config]),
        metric_fns=[metrics.accuracy, metrics.num_invalid])
  return _classification(config, opts, name, source)


def register(opts: pipeline.Options):
  return [register_config(c, opts).name
          for c in names.SUPER_GLUE_CONFIGS + names.SUPER_GLUE_EXTRA_CONFIGS]
