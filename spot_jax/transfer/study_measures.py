"""What a study measures beyond the runs' own scores: a target run's scores from its
learning curve, a task's majority-class bar, and zero-shot transfer grouped by how the
source relates to the task. The study (`spot_jax.transfer.study`) calls these."""
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np

from spot_jax.transfer import statistics
from spot_jax.transfer.study_config import (LABEL_CONTROL, OTHER_FAMILY, SAME_FAMILY,
                                            StudyConfig)


def learning_curve_scores(curve: Sequence[Sequence[float]]) -> Dict[str, float]:
  """A target run's scores from its validation curve `[[step, score], ...]`: the best (SPoT's
  reported checkpoint), the final, and the area under the curve as the mean score over its
  evenly spaced points."""
  if not curve:
    raise ValueError("a learning curve needs at least one validation")
  values = [float(v) for _, v in curve]
  return {"best": max(values), "final": values[-1], "auc": float(np.mean(values))}


def majority_score(task: str, lengths: Optional[Mapping[str, int]], num_examples: Optional[int],
                   split: str = "validation") -> float:
  """Accuracy of always answering a task's most frequent target on the validation examples
  its runs are scored on (the first `num_examples`, unshuffled, as seqio's Evaluator takes
  them): the bar a classifier must clear, beside uniform chance."""
  import seqio
  ds = seqio.get_mixture_or_task(task).get_dataset(
      dict(lengths) if lengths else None, split=split, shuffle=False, use_cached=False)
  if num_examples:
    ds = ds.take(num_examples)
  targets = [bytes(ex["targets_pretokenized"]).decode() for ex in ds.as_numpy_iterator()]
  if not targets:
    raise ValueError(f"{task}: no {split} examples to take a majority class from")
  counts: Dict[str, int] = {}
  for t in targets:
    counts[t] = counts.get(t, 0) + 1
  return 100.0 * max(counts.values()) / len(targets)


def neuron_indicator() -> str:
  from spot_jax.transfer import indicators
  return indicators.ON


def zero_shot_by_relation(matrix: Mapping[str, Any], cfg: StudyConfig) -> Dict[str, Any]:
  """Zero-shot scores of source prompts on other tasks, grouped by the pair's relation, and
  within-family against other-family (and against the label control) with Welch intervals."""
  groups: Dict[str, List[float]] = {}
  for k, row in enumerate(matrix["raw"]):
    source = matrix["prompts"][k].split("/")[0]
    for t, value in enumerate(row):
      task = matrix["tasks"][t]
      relation = cfg.relation(source, task)
      if value is None or task == source or relation is None:
        continue
      groups.setdefault(relation, []).append(float(value))
  same = groups.get(SAME_FAMILY, [])
  out = {"groups": groups,
         "means": {g: float(np.mean(v)) for g, v in groups.items()},
         "same_minus_other_family": None, "same_minus_label_control": None}
  for key, other in (("same_minus_other_family", OTHER_FAMILY),
                     ("same_minus_label_control", LABEL_CONTROL)):
    if len(same) >= 2 and len(groups.get(other, [])) >= 2:
      out[key] = statistics.group_difference(same, groups[other])
  return out
