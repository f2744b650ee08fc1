"""Generation sources of SPoT's Table 1: translation (WMT En-De, En-Fr, En-Ro),
summarization (AESLC, BillSum, CNN/DailyMail, WikiLingua, Gigaword, Multi-News, Newsroom,
SAMSum, XSum) and GEM (CommonGen, DART, E2E, SGD, WebNLG, WikiAuto, XSum, WikiLingua), in
T5's formats where T5 has them and scored as T5 scores them (sacrebleu BLEU, rouge-score
ROUGE-1/2/Lsum)."""
import functools

import seqio

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors
from spot_jax.tasks import formats
from spot_jax.tasks import names
from spot_jax.tasks import pipeline

# GEM config -> (input prefix, input fields); targets are GEM's `target` text.
GEM_INPUTS = {
    "common_gen": ("common_gen", ("concepts",)),
    "dart": ("dart", ("tripleset",)),
    "e2e_nlg": ("e2e_nlg", ("meaning_representation",)),
    "schema_guided_dialog": ("schema_guided_dialog", ("service", "prompt")),
    "web_nlg_en": ("web_nlg", ("input",)),
    "wiki_auto_asset_turk": ("wiki_auto", ("source",)),
}
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
  for config in names.GEM_CONFIGS:
    if config == "xsum":
      formatter = functools.partial(formats.summarize, document="document", summary="target")
    else:
      prefix, keys = GEM_INPUTS[config]
      formatter = functools.partial(formats.data_to_text, task_prefix=prefix, input_keys=keys)
    registered.append(pipeline.add_task(
        opts.name(names.gem_task(config)),
        source=seqio.TfdsDataSource(tfds_name=f"gem/{config}:1.1.0",
                                    tfds_data_dir=opts.tfds_data_dir),
        opts=opts, formatters=[formatter], text_fields=("target",),
        postprocess_fn=postprocessors.text, metric_fns=[metrics.bleu, metrics.rouge]).name)
  return registered
