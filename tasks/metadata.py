"""What a task says about itself beyond seqio: its family (the kind of skill it asks for) and
its label words (the strings its targets are drawn from; None for generation and QA).

A task module records them when it registers a task (`describe`); SPoT's own task tables
(the Table 1 family mixtures in `names`, the label strings in `labels`) answer for the
SPoT / GLUE / SuperGLUE tasks before they are registered, so a study's settings can be
checked without building a pipeline. The study, the class-label init and the report ask
here (`family`, `label_words`), never a particular task module. A study's `families` and
`labels` settings override both, per task.
"""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

from spot_jax.tasks import labels as label_tables
from spot_jax.tasks import names


@dataclasses.dataclass(frozen=True)
class Description:
  family: Optional[str] = None
  labels: Optional[Tuple[str, ...]] = None


_DESCRIBED: Dict[str, Description] = {}


def describe(name: str, *, family: Optional[str] = None,
             labels: Optional[Sequence[str]] = None) -> None:
  """Records task `name`'s family and label words (called where the task is registered)."""
  _DESCRIBED[name] = Description(family=family,
                                 labels=tuple(labels) if labels is not None else None)


def family(name: str) -> Optional[str]:
  """The task's family: as described at registration, else the SPoT Table 1 family mixture
  (NLI, paraphrase, sentiment, MRQA, ...) it belongs to; None when it has none."""
  described = _DESCRIBED.get(name)
  if described is not None and described.family is not None:
    return described.family
  for mixture, members in names.FAMILY_MIXTURES.items():
    if mixture != "spot_all_mix" and name in members:
      return mixture[len("spot_"):-len("_mix")]
  return None


def label_words(name: str) -> Optional[Tuple[str, ...]]:
  """The task's label words, as described at registration or in SPoT's label tables."""
  described = _DESCRIBED.get(name)
  if described is not None and described.labels is not None:
    return described.labels
  found = label_tables.task_labels(name)
  return tuple(found) if found else None
