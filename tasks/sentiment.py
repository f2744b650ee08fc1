"""Sentiment: Yelp-2, Sentiment140 and GoEmotions (SPoT's family), IMDB and movie rationales
(Su et al.). CR is in local_files."""
import functools

import seqio
import tensorflow as tf

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
  registered = [task.name]
  test_as_validation = {"train": "train", "validation": "test", "test": "test"}
  # Sentiment140's polarity is 0, 2 or 4 (negative, neutral, positive); others are dropped.
  polarity_known = lambda x: tf.reduce_any(tf.equal(tf.cast(x["polarity"], tf.int64),
                                                    [0, 2, 4]))
  for name, tfds_name, prefix, text_key, splits, label_names, label_fn, predicate in (
      (names.SENTIMENT140, "sentiment140:1.0.0", "sentiment140", "text", test_as_validation,
       labels.SENTIMENT140, lambda x: tf.cast(x["polarity"], tf.int64) // 2,
       polarity_known),
      (names.IMDB, "imdb_reviews:1.0.0", "imdb", "text", test_as_validation,
       labels.SENTIMENT, None, None),
      (names.MOVIE_RATIONALES, "movie_rationales:0.1.0", "movie_rationales", "review", None,
       labels.SENTIMENT, None, None)):
    label_step = ([functools.partial(formats.with_label, label_fn=label_fn)]
                  if label_fn else [])
    registered.append(pipeline.add_task(
        opts.name(name),
        source=seqio.TfdsDataSource(tfds_name=tfds_name, tfds_data_dir=opts.tfds_data_dir,
                                    splits=splits),
        opts=opts,
        formatters=label_step + [functools.partial(
            formats.text_classification, task_prefix=prefix, text_keys=(text_key,),
            label_names=label_names)],
        text_fields=(text_key,), predicate=predicate,
        postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                         label_classes=label_names),
        metric_fns=[metrics.accuracy, metrics.num_invalid]).name)
  registered.append(pipeline.add_task(
      opts.name(names.GOEMOTIONS),
      source=seqio.TfdsDataSource(tfds_name="goemotions:0.1.0",
                                  tfds_data_dir=opts.tfds_data_dir),
      opts=opts,
      formatters=[functools.partial(formats.multi_label_classification,
                                    task_prefix="goemotions", text_key="comment_text",
                                    label_names=labels.GOEMOTIONS)],
      text_fields=("comment_text",), postprocess_fn=postprocessors.label_set,
      metric_fns=[metrics.accuracy]).name)
  return registered
