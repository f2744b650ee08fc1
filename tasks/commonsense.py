"""Commonsense multiple choice: WinoGrande, HellaSwag, CosmosQA, PIQA (target = choice key)."""
import functools

import seqio
import tensorflow as tf

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import names
from spot_jax.tasks import pipeline


def _choice_task(name, *, tfds_name, splits, formatter, text_fields, labels, opts,
                 predicate=None):
  return pipeline.add_task(
      opts.name(name),
      source=seqio.TfdsDataSource(tfds_name=tfds_name, tfds_data_dir=opts.tfds_data_dir,
                                  splits=splits),
      opts=opts, formatters=[formatter], text_fields=text_fields, predicate=predicate,
      postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                       label_classes=tuple(labels)),
      metric_fns=[metrics.accuracy, metrics.num_invalid])


def _four_endings(x):
  endings = x["endings"]
  return tf.logical_and(
      tf.equal(tf.size(endings), 4),
      tf.reduce_all(tf.strings.length(tf.strings.strip(
          tf.concat([endings, ["", "", "", ""]], 0)[:4])) > 0))


def register(opts: pipeline.Options):
  tasks = [
      # SPoT trains on the largest WinoGrande training size, XL (40K).
      _choice_task(names.WINOGRANDE, tfds_name="winogrande:1.2.0",
                   splits={"train": "train_xl", "validation": "validation",
                           "test": "test"},
                   formatter=formats.winogrande,
                   text_fields=("sentence", "option1", "option2"),
                   labels=formats.choice_names("option", 2, start=1), opts=opts),
      _choice_task(names.HELLASWAG, tfds_name="hellaswag:1.1.0",
                   splits={"train": "train", "validation": "validation", "test": "test"},
                   formatter=formats.hellaswag, text_fields=("context",),
                   labels=formats.choice_names("ending", 4), opts=opts,
                   predicate=_four_endings),
      _choice_task(names.COSMOS_QA, tfds_name="cosmos_qa:1.0.0", splits=None,
                   formatter=formats.cosmos_qa,
                   text_fields=("context", "question", "answer0", "answer1", "answer2",
                                "answer3"),
                   labels=formats.choice_names("answer", 4), opts=opts),
      _choice_task(names.PIQA, tfds_name="piqa:1.0.0", splits=None, formatter=formats.piqa,
                   text_fields=("goal", "sol1", "sol2"), labels=("sol1", "sol2"), opts=opts),
  ]
  return [t.name for t in tasks]
