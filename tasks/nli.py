"""NLI sources beyond GLUE: DocNLI (`doc_nli:1.0.0`)."""
import functools

import seqio

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import labels
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

DOC_NLI_LABELS = labels.DOC_NLI


def register(opts: pipeline.Options):
  task = pipeline.add_task(
      opts.name(names.DOC_NLI),
      source=seqio.TfdsDataSource(tfds_name="doc_nli:1.0.0",
                                  tfds_data_dir=opts.tfds_data_dir),
      opts=opts,
      formatters=[functools.partial(formats.text_classification, task_prefix="doc_nli",
                                    text_keys=("premise", "hypothesis"),
                                    label_names=DOC_NLI_LABELS)],
      text_fields=("premise", "hypothesis"),
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=DOC_NLI_LABELS),
      metric_fns=[metrics.accuracy, metrics.num_invalid])
  return [task.name]
