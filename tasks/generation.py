"""Generation sources of SPoT's Table 1: translation (WMT En-De, En-Fr, En-Ro) and
summarization (AESLC, BillSum, CNN/DailyMail, WikiLingua, Gigaword, Multi-News, Newsroom,
SAMSum, XSum), in T5's formats and scored as T5 scores them (sacrebleu BLEU, rouge-score
ROUGE-1/2/Lsum)."""
import functools

import seqio

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

# Datasets without a validation split are validated on their test split.
SPLITS = {"billsum:3.0.0": {"train": "train", "validation": "test", "test": "test"}}


def register(opts: pipeline.Options):
  registered = []
  for name, (tfds_name, source, target) in names.TRANSLATION.items():
    registered.append(pipeline.add_task(
        opts.name(name),
        source=seqio.TfdsDataSource(tfds_name=tfds_name, tfds_data_dir=opts.tfds_data_dir),
        opts=opts, formatters=[functools.partial(formats.translate, source=source,
                                                 target=target)],
        text_fields=(source, target), postprocess_fn=postprocessors.text,
        metric_fns=[metrics.bleu]).name)
  for name, (tfds_name, document, summary) in names.SUMMARIZATION.items():
    registered.append(pipeline.add_task(
        opts.name(name),
        source=seqio.TfdsDataSource(tfds_name=tfds_name, tfds_data_dir=opts.tfds_data_dir,
                                    splits=SPLITS.get(tfds_name)),
        opts=opts, formatters=[functools.partial(formats.summarize, document=document,
                                                 summary=summary)],
        text_fields=(document, summary), postprocess_fn=postprocessors.text,
        metric_fns=[metrics.rouge]).name)
  return registered
