"""NLI sources beyond GLUE: DocNLI (`doc_nli:1.0.0`), ANLI rounds 1-3 (`anli/r<n>:0.1.0`),
SNLI (`snli:1.1.0`)."""
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
  registered = [task.name]
  nli3 = functools.partial(postprocessors.string_label_to_class_id, label_classes=labels.NLI3)
  has_label = lambda x: x["label"] >= 0  # SNLI marks rows without a gold label with -1
  for round_name in names.ANLI_ROUNDS:
    registered.append(pipeline.add_task(
        opts.name(names.anli_task(round_name)),
        source=seqio.TfdsDataSource(tfds_name=f"anli/{round_name}:0.1.0",
                                    tfds_data_dir=opts.tfds_data_dir),
        opts=opts,
        formatters=[functools.partial(formats.rekey, key_map={
            "premise": "context", "hypothesis": "hypothesis", "label": "label"}),
                    functools.partial(formats.text_classification, task_prefix="anli",
                                      text_keys=("premise", "hypothesis"),
                                      label_names=labels.NLI3)],
        text_fields=("context", "hypothesis"), postprocess_fn=nli3,
        metric_fns=[metrics.accuracy, metrics.num_invalid]).name)
  registered.append(pipeline.add_task(
      opts.name(names.SNLI),
      source=seqio.TfdsDataSource(tfds_name="snli:1.1.0", tfds_data_dir=opts.tfds_data_dir),
      opts=opts,
      formatters=[functools.partial(formats.text_classification, task_prefix="snli",
                                    text_keys=("premise", "hypothesis"),
                                    label_names=labels.NLI3)],
      text_fields=("premise", "hypothesis"), predicate=has_label, postprocess_fn=nli3,
      metric_fns=[metrics.accuracy, metrics.num_invalid]).name)
  return registered
