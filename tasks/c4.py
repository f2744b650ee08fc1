"""C4 with the prefix-LM objective (the LM adaptation SPoT's frozen models were trained on)."""
import seqio

from spot_jax.tasks import formats
from spot_jax.tasks import names
from spot_jax.tasks import pipeline


def register(opts: pipeline.Options):
  task = pipeline.add_task(
      opts.name(names.C4),
      source=seqio.TfdsDataSource(tfds_name=opts.c4_tfds_name,
                                  tfds_data_dir=opts.tfds_data_dir),
      opts=opts, formatters=[formats.text_to_targets], text_fields=("text",),
      token_preprocessors=[formats.prefix_lm], metric_fns=[])
  return [task.name]
