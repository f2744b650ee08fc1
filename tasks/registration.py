"""`register_all`: every SPoT / GLUE / SuperGLUE task and mixture, parameterised."""
from typing import Dict, List, Optional

import seqio

from spot_jax.tasks import c4
from spot_jax.tasks import commonsense
from spot_jax.tasks import generation
from spot_jax.tasks import glue
from spot_jax.tasks import labels
from spot_jax.tasks import local_files
from spot_jax.tasks import metadata
from spot_jax.tasks import mixtures
from spot_jax.tasks import names
from spot_jax.tasks import nli
from spot_jax.tasks import pipeline
from spot_jax.tasks import qa
from spot_jax.tasks import sentiment
from spot_jax.tasks import super_glue

FAMILIES = (glue, super_glue, nli, sentiment, qa, commonsense, local_files, c4, generation)


def register_all(vocabulary: Optional[seqio.Vocabulary] = None, *,
                 prefix: str = "",
                 tfds_data_dir: Optional[str] = None,
                 cr_dir: Optional[str] = None,
                 cxc_dir: Optional[str] = None,
                 local_dirs: Optional[Dict[str, str]] = None,
                 c4_tfds_name: str = names.C4_TFDS_NAME,
                 shuffle_buffer_size: int = seqio.SHUFFLE_BUFFER_SIZE) -> List[str]:
  """Registers all tasks, then the mixtures; returns the names (prefix included).

  `shuffle_buffer_size` is each task's training shuffle buffer (`pipeline.Options`).

  Calling it again with the same prefix re-registers (e.g. with another vocabulary).
  """
  opts = pipeline.Options(
      vocabulary=vocabulary or pipeline.default_vocabulary(), prefix=prefix,
      tfds_data_dir=tfds_data_dir, cr_dir=cr_dir, cxc_dir=cxc_dir, local_dirs=local_dirs,
      c4_tfds_name=c4_tfds_name, shuffle_buffer_size=shuffle_buffer_size)
  registered = []
  for family in FAMILIES:
    registered += family.register(opts)
  registered += mixtures.register(opts)
  for name in registered:  # what a study reads of each task: its family and label words
    base = name[len(prefix):] if prefix and name.startswith(prefix) else name
    metadata.describe(name, family=metadata.family(base),
                      labels=labels.task_labels(name, prefix=prefix))
  return registered
