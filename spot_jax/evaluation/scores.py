"""One number per task from its metrics dict, as GLUE/SuperGLUE (and T5) average them.

Used to pick the best checkpoint and to average a benchmark; keyed on the metric names
the tasks emit, so it needs no task name.
"""
from typing import Mapping, Sequence, Tuple

import numpy as np

# First match wins: (metric keys present) -> keys averaged.
_RULES: Sequence[Tuple[Tuple[str, ...], Tuple[str, ...]]] = (
    (("matthews_corrcoef",), ("matthews_corrcoef",)),                 # CoLA
    (("pearson_corrcoef", "spearman_corrcoef"),
     ("pearson_corrcoef", "spearman_corrcoef")),                      # STS-B, CxC
    (("mean_3class_f1", "accuracy"), ("mean_3class_f1", "accuracy")),  # CB
    (("f1", "accuracy"), ("f1", "accuracy")),                         # MRPC, QQP
    (("f1", "exact_match"), ("f1", "exact_match")),                   # MultiRC F1a/EM
    (("em", "f1"), ("em", "f1")),                                     # ReCoRD, SQuAD, DROP
    (("accuracy",), ("accuracy",)),
)


def task_score(metrics: Mapping[str, float]) -> float:
  """The task's headline score (0-100); raises if no known metric is present."""
  for present, averaged in _RULES:
    if all(k in metrics for k in present):
      return float(np.mean([float(metrics[k]) for k in averaged]))
  raise ValueError(f"no headline metric among {sorted(metrics)}")


def benchmark_average(scores: Mapping[str, float]) -> float:
  """Unweighted mean over tasks, as the GLUE/SuperGLUE averages are taken."""
  if not scores:
    raise ValueError("no task scores to average")
  return float(np.mean(list(scores.values())))
