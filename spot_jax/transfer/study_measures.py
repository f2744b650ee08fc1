"""What a study computes from its runs: the results table (target x init: mean, interval
and relative error reduction over seeds), a target run's scores from its learning curve,
a task's majority-class and chance bars, similarity against transfer, and zero-shot
transfer grouped by how the source relates to the task. The study
(`spot_jax.transfer.study`) calls these; `study_report` draws and writes them.

Scores are validation scores in 0-100, higher is better. Relative error reduction follows
SPoT §3.1: RER = ((100 - base) - (100 - score)) / (100 - base), a fraction (0.25 = a
quarter of the baseline's error removed), None where base == 100.
"""
import math
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from scipy import stats as scipy_stats

from spot_jax.transfer import statistics
from spot_jax.transfer.study_config import (LABEL_CONTROL, OTHER_FAMILY, SAME_FAMILY,
                                            StudyConfig)


AVERAGE = "average over targets"
STD_DDOF = "ddof=1 (sample std) over seeds when n > 1; ddof=0 (so 0.0) when n == 1"
CI = "95% Student's t interval of the mean over seeds (none with one seed)"
_RESULT_KEYS = ("target", "init", "seed", "step", "score")


def relative_error_reduction(score: float, base: float) -> Optional[float]:
  """(score - base) / (100 - base): the share of the baseline's error removed; None at base 100."""
  if base >= 100.0:
    return None
  return (score - base) / (100.0 - base)


def _check_score(value: Any, what: str) -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
    raise ValueError(f"{what} must be a number, got {value!r}")
  value = float(value)
  if not math.isfinite(value) or not 0.0 <= value <= 100.0:
    raise ValueError(f"{what} must be a finite score in [0, 100], got {value!r}")
  return value


def _mean_std(scores: Sequence[float]):
  a = np.asarray(scores, np.float64)
  return float(a.mean()), float(a.std(ddof=1 if a.size > 1 else 0))


def results_table(results: Sequence[Mapping[str, Any]], baseline: str = "random_uniform",
                  *, check_steps: bool = True) -> Dict[str, Any]:
  """Target x init table: mean, std, n and RER vs `baseline` per cell, plus an average row.

  std uses ddof=1 (sample std) over seeds when a cell has n > 1 seeds, ddof=0 (0.0) for one.
  Methods and targets keep their order of first appearance. The average row holds, per
  method, the mean of the per-target means, the mean of the per-target RERs, and the std
  over seeds of the per-seed average over targets (None unless every target ran the same
  seeds for that method). With `check_steps`, all runs of one target must share one step
  budget, or the comparison is not at equal budgets and a ValueError names the steps.
  """
  methods: List[str] = []
  targets: List[str] = []
  runs: Dict[str, Dict[str, Dict[int, Dict[str, Any]]]] = {}
  for i, r in enumerate(results):
    missing = [k for k in _RESULT_KEYS if k not in r]
    if missing:
      raise ValueError(f"result {i} lacks {missing}: {dict(r)!r}")
    target, init, seed, step = str(r["target"]), str(r["init"]), int(r["seed"]), int(r["step"])
    score = _check_score(r["score"], f"result {i} ({target}, {init}, seed {seed}) score")
    if target not in runs:
      targets.append(target)
      runs[target] = {}
    if init not in methods:
      methods.append(init)
    cell = runs[target].setdefault(init, {})
    if seed in cell:
      raise ValueError(f"two results for target {target!r}, init {init!r}, seed {seed}: "
                       f"{cell[seed]['score']} and {score}")
    cell[seed] = {"step": step, "score": score}
  if not results:
    raise ValueError("no results to tabulate")
  if baseline not in methods:
    raise ValueError(f"baseline {baseline!r} has no results; methods present: {methods}")

  cells: Dict[str, Dict[str, Dict[str, Any]]] = {}
  for target in targets:
    steps = {m: sorted({v["step"] for v in runs[target][m].values()}) for m in runs[target]}
    if check_steps and len({s for ss in steps.values() for s in ss}) > 1:
      raise ValueError(f"target {target!r} mixes step budgets across runs: {steps}")
    base = runs[target].get(baseline)
    base_mean = _mean_std([v["score"] for v in base.values()])[0] if base else None
    cells[target] = {}
    for m in methods:
      if m not in runs[target]:
        continue
      seeds = sorted(runs[target][m])
      scores = [runs[target][m][s]["score"] for s in seeds]
      mean, std = _mean_std(scores)
      ci = statistics.interval(scores)
      cells[target][m] = {
          "mean": mean, "std": std, "ci95": ci["half_width"], "low": ci["low"],
          "high": ci["high"], "n": len(scores), "seeds": seeds, "scores": scores,
          "step": max(runs[target][m][s]["step"] for s in seeds),
          "rer": None if base_mean is None else relative_error_reduction(mean, base_mean)}

  average: Dict[str, Dict[str, Any]] = {}
  for m in methods:
    have = [t for t in targets if m in cells[t]]
    rers = [cells[t][m]["rer"] for t in have if cells[t][m]["rer"] is not None]
    seed_sets = {tuple(cells[t][m]["seeds"]) for t in have}
    std = ci = None
    if len(seed_sets) == 1:
      per_seed = np.mean([cells[t][m]["scores"] for t in have], axis=0)
      std = _mean_std(per_seed)[1]
      ci = statistics.interval(per_seed)["half_width"]
    average[m] = {
        "mean": float(np.mean([cells[t][m]["mean"] for t in have])), "std": std, "ci95": ci,
        "n": len(have), "targets": have,
        "rer": float(np.mean(rers)) if rers else None}
  return {"baseline": baseline, "std_ddof": STD_DDOF, "ci": CI, "methods": methods,
          "targets": targets,
          "cells": cells, "average": average}


def similarity_transfer_stats(transfer_pairs: Sequence[Mapping[str, Any]]) -> Dict[str, Any]:
  """RER per pair and Pearson/Spearman correlations of similarity with it (NaN when undefined).

  Pairs whose baseline is 100 have no RER and are left out (counted in "excluded"). The
  correlations need at least 3 pairs and non-constant similarity and RER; otherwise they are
  NaN and "note" says why.
  """
  xs, ys, kept, excluded = [], [], [], 0
  for i, p in enumerate(transfer_pairs):
    for k in ("source", "target", "similarity", "score", "baseline"):
      if k not in p:
        raise ValueError(f"transfer pair {i} lacks {k!r}: {dict(p)!r}")
    sim = float(p["similarity"])
    if not math.isfinite(sim):
      raise ValueError(f"transfer pair {i} ({p['source']} -> {p['target']}) similarity is {sim}")
    score = _check_score(p["score"], f"transfer pair {i} score")
    base = _check_score(p["baseline"], f"transfer pair {i} baseline")
    rer = relative_error_reduction(score, base)
    if rer is None:
      excluded += 1
      continue
    xs.append(sim)
    ys.append(rer)
    kept.append(i)
  nan = float("nan")
  out = {"n": len(xs), "excluded": excluded, "pearson_r": nan, "pearson_p": nan,
         "spearman_rho": nan, "spearman_p": nan, "note": None,
         "similarity": xs, "rer": ys, "pair_index": kept}
  if len(xs) < 3:
    out["note"] = f"fewer than 3 pairs, n = {len(xs)}"
  elif np.ptp(xs) == 0.0:
    out["note"] = "constant similarity"
  elif np.ptp(ys) == 0.0:
    out["note"] = "constant relative error reduction"
  else:
    pr, sr = scipy_stats.pearsonr(xs, ys), scipy_stats.spearmanr(xs, ys)
    out.update(pearson_r=float(pr[0]), pearson_p=float(pr[1]),
               spearman_rho=float(sr[0]), spearman_p=float(sr[1]))
  return out


def chance_score(labels: Optional[Sequence[str]]) -> Optional[float]:
  """Accuracy of guessing uniformly among a classification task's labels (100 / #labels);
  None for tasks without label words (generation, extractive QA)."""
  return 100.0 / len(labels) if labels else None

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
