"""QA: the MRQA datasets (SQuAD, NewsQA, TriviaQA, SearchQA, HotpotQA, NQ), DROP, RACE, and
closed-book NQ-Open (Su et al.)."""
import functools

import seqio
import tensorflow as tf

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import names
from spot_jax.tasks import pipeline


def _has_answer(x):
  return tf.logical_and(tf.size(x["answers"]) > 0,
                        tf.strings.length(tf.strings.strip(
                            tf.concat([x["answers"], [""]], 0)[0])) > 0)


def register(opts: pipeline.Options):
  mrqa = [pipeline.add_task(
      opts.name(name),
      source=seqio.TfdsDataSource(tfds_name=f"mrqa/{config}:1.0.0",
                                  tfds_data_dir=opts.tfds_data_dir),
      opts=opts, formatters=[formats.squad],
      text_fields=("question", "context"), predicate=_has_answer,
      postprocess_fn=postprocessors.qa, metric_fns=[metrics.squad])
          for config, name in [("squad", names.SQUAD)] + [
              (c, names.mrqa_task(c)) for c in names.MRQA_CONFIGS]]
  nq_open = pipeline.add_task(
      opts.name(names.NQ_OPEN),
      source=seqio.TfdsDataSource(tfds_name="natural_questions_open:1.0.0",
                                  tfds_data_dir=opts.tfds_data_dir),
      opts=opts, formatters=[formats.open_qa], text_fields=("question",),
      predicate=lambda x: _has_answer({"answers": x["answer"]}),
      postprocess_fn=postprocessors.qa, metric_fns=[metrics.squad])
  drop = pipeline.add_task(
      opts.name(names.DROP),
      source=seqio.TfdsDataSource(tfds_name="drop:2.0.0",
                                  tfds_data_dir=opts.tfds_data_dir,
                                  splits={"train": "train", "validation": "dev"}),
      opts=opts, formatters=[formats.drop],
      text_fields=("question", "passage", "answer"),
      postprocess_fn=postprocessors.qa, metric_fns=[metrics.squad])
  registered = [t.name for t in mrqa] + [drop.name, nq_open.name]
  for config, base in (("middle", names.RACE_MIDDLE), ("high", names.RACE_HIGH)):
    task = pipeline.add_task(
        opts.name(base),
        source=seqio.TfdsDataSource(tfds_name=f"race/{config}:2.0.0",
                                    tfds_data_dir=opts.tfds_data_dir,
                                    splits={"train": "train", "validation": "dev",
                                            "test": "test"}),
        opts=opts, formatters=[formats.race],
        text_fields=("article",), predicate=formats.race_row_is_well_formed,
        postprocess_fn=functools.partial(postprocessors.string_label_to_class_id,
                                         label_classes=formats.RACE_LETTERS),
        metric_fns=[metrics.accuracy, metrics.num_invalid])
    registered.append(task.name)
  return registered
