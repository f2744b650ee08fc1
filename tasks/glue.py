"""GLUE (`glue/*:2.0.0`) in T5's format and with T5's metrics."""
import functools

import seqio

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import labels
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

LABELS = labels.GLUE
# Text fields of each config (an empty one drops the row).
TEXT_FIELDS = {
    "cola": ("sentence",),
    "sst2": ("sentence",),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "mnli": ("hypothesis", "premise"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
    "ax": ("hypothesis", "premise"),
}
# MNLI has no plain "validation"/"test": matched is the default, mismatched is extra.
MNLI_SPLITS = {
    "train": "train",
    "validation": "validation_matched",
    "validation_mismatched": "validation_mismatched",
    "test": "test_matched",
    "test_mismatched": "test_mismatched",
}


def classification_metrics(config: str):
  """T5's GLUE_METRICS plus a count of out-of-label-set predictions."""
  if config == "cola":
    fns = [metrics.matthews_corrcoef]
  elif config in ("mrpc", "qqp"):
    fns = [metrics.f1_score_with_invalid, metrics.accuracy]
  elif config == "ax":
    fns = []  # test split only
  else:
    fns = [metrics.accuracy]
  return fns + [metrics.num_invalid]


def register_config(config: str, opts: pipeline.Options) -> seqio.Task:
  name = opts.name(names.glue_task(config))
  source = seqio.TfdsDataSource(
      tfds_name=f"glue/{config}:{names.GLUE_VERSION}",
      tfds_data_dir=opts.tfds_data_dir,
      splits=MNLI_SPLITS if config == "mnli" else None)
  if config == "stsb":
    return pipeline.add_task(
        name, source=source, opts=opts, formatters=[formats.stsb],
        text_fields=TEXT_FIELDS[config],
        postprocess_fn=postprocessors.string_to_float,
        metric_fns=[metrics.pearson_corrcoef, metrics.spearman_corrcoef,
                    metrics.num_invalid_in_range(0.0, 5.0)])
  # AX is the MNLI diagnostic: cast as MNLI, like T5.
  benchmark = "mnli" if config == "ax" else config
  return pipeline.add_task(
      name, source=source, opts=opts,
      formatters=[functools.partial(formats.glue, benchmark_name=benchmark,
                                    label_names=LABELS[config])],
      text_fields=TEXT_FIELDS[config],
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=LABELS[config]),
      metric_fns=classification_metrics(config))


def register(opts: pipeline.Options):
  return [register_config(c, opts).name
          for c in names.GLUE_CONFIGS + names.GLUE_EXTRA_CONFIGS]
