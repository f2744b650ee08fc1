"""Sentiment sources: Yelp-2 (`yelp_polarity_reviews:0.2.0`). CR is in local_files."""
import functools

import seqio

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import labels
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

# TFDS class names are "1" (negative) and "2" (positive).
YELP_LABELS = labels.SENTIMENT


def register(opts: pipeline.Options):
  task = pipeline.add_task(
      opts.name(names.YELP_POLARITY),
      # TFDS has no validation split: SPoT-style evaluation uses the test split.
      source=seqio.TfdsDataSource(tfds_name="yelp_polarity_reviews:0.2.0",
                                  tfds_data_dir=opts.tfds_data_dir,
                                  splits={"train": "train", "validation": "test",
                                          "test": "test"}),
      opts=opts,
      formatters=[functools.partial(formats.text_classification,
                                    task_prefix="yelp_polarity_reviews",
                                    text_keys=("text",), label_names=YELP_LABELS)],
      text_fields=("text",),
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=YELP_LABELS),
      metric_fns=[metrics.accuracy, metrics.num_invalid])
  return [task.name]
