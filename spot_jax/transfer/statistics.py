"""What a study's numbers support: 95% intervals over seeds, paired differences between
prompt inits, and conclusions written from those intervals (never by hand).

Scores are validation scores in 0-100 from runs that differ only in their seed. A cell's
interval is Student's t interval of the mean over its seeds. Two inits are compared on the
seeds both ran (the same seed means the same data order, so the runs are paired): the mean
of the per-seed differences with its t interval, per target and pooled over every
(target, seed) pair. A difference "holds" when its interval excludes 0.

Pure functions over plain Python data; scipy supplies the t quantiles.
"""
import math
import warnings
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Dict[str, Any]:
  """Mean and Student's t interval of the mean: {"mean", "low", "high", "half_width", "n"}.

  With one value the interval is undefined (low = high = half_width = None).
  """
  a = np.asarray(values, np.float64)
  if a.ndim != 1 or a.size == 0:
    raise ValueError(f"an interval needs a non-empty list of numbers, got {values!r}")
  if not np.all(np.isfinite(a)):
    raise ValueError(f"an interval needs finite numbers, got {a.tolist()}")
  mean = float(a.mean())
  if a.size < 2:
    return {"mean": mean, "low": None, "high": None, "half_width": None, "n": 1}
  sem = float(a.std(ddof=1)) / math.sqrt(a.size)
  half = float(scipy_stats.t.ppf(0.5 + confidence / 2, a.size - 1)) * sem
  return {"mean": mean, "low": mean - half, "high": mean + half, "half_width": half,
          "n": int(a.size)}


def verdict(ci: Mapping[str, Any]) -> str:
  """"better" / "worse" when the interval of a difference excludes 0, else "unclear"."""
  if ci["low"] is None:
    return "unclear"
  if ci["low"] > 0:
    return "better"
  if ci["high"] < 0:
    return "worse"
  return "unclear"


def _scores(results: Sequence[Mapping[str, Any]]) -> Dict[Tuple[str, str], Dict[int, float]]:
  out: Dict[Tuple[str, str], Dict[int, float]] = {}
  for r in results:
    out.setdefault((str(r["target"]), str(r["init"])), {})[int(r["seed"])] = float(r["score"])
  return out


def paired_difference(results: Sequence[Mapping[str, Any]], a: str, b: str,
                      targets: Sequence[str]) -> Dict[str, Any]:
  """Init `a` minus init `b`, paired by seed: per target and pooled over (target, seed).

  Targets where either init has no run are left out (listed under "missing").
  """
  scores = _scores(results)
  per_target, pooled, missing = {}, [], []
  for t in targets:
    sa, sb = scores.get((t, a)), scores.get((t, b))
    seeds = sorted(set(sa or ()) & set(sb or ()))
    if not seeds:
      missing.append(t)
      continue
    diffs = [sa[s] - sb[s] for s in seeds]
    ci = interval(diffs)
    per_target[t] = dict(ci, seeds=seeds, verdict=verdict(ci))
    pooled += diffs
  out = {"a": a, "b": b, "per_target": per_target, "missing": missing, "pooled": None}
  if pooled:
    ci = interval(pooled)
    out["pooled"] = dict(ci, verdict=verdict(ci))
  return out


def _names(targets: Sequence[str]) -> str:
  return ", ".join(targets)


def conclusion(diff: Mapping[str, Any]) -> str:
  """One sentence from a paired difference: where `a` beats `b`, loses, and no difference."""
  a, b = diff["a"], diff["b"]
  groups = {"better": [], "worse": [], "unclear": []}
  for t, d in diff["per_target"].items():
    groups[d["verdict"]].append(t)
  parts = []
  if groups["better"]:
    parts.append(f"{a} beats {b} on {_names(groups['better'])}")
  if groups["worse"]:
    parts.append(f"{b} beats {a} on {_names(groups['worse'])}")
  if groups["unclear"]:
    parts.append(f"no difference shown on {_names(groups['unclear'])}")
  pooled = diff["pooled"]
  if pooled is not None:
    ci = (f"{pooled['mean']:+.1f} points, 95% CI [{pooled['low']:+.1f}, {pooled['high']:+.1f}],"
          f" n = {pooled['n']}" if pooled["low"] is not None else
          f"{pooled['mean']:+.1f} points, one pair (no interval)")
    word = {"better": f"{a} better", "worse": f"{b} better",
            "unclear": "no difference shown"}[pooled["verdict"]]
    parts.append(f"over all (target, seed) pairs: {word} ({ci})")
  if diff["missing"]:
    parts.append(f"not compared on {_names(diff['missing'])} (a run is missing)")
  return f"{a} vs {b}: " + "; ".join(parts) + "."


def group_difference(within: Sequence[float], across: Sequence[float]
                     ) -> Dict[str, Any]:
  """Welch's t interval of mean(within) - mean(across), e.g. same-family minus
  cross-family similarity; "better" when same-family pairs are clearly more similar."""
  x, y = np.asarray(within, np.float64), np.asarray(across, np.float64)
  out: Dict[str, Any] = {"within_mean": float(x.mean()) if x.size else None,
                         "across_mean": float(y.mean()) if y.size else None,
                         "n_within": int(x.size), "n_across": int(y.size)}
  if x.size < 2 or y.size < 2:
    return dict(out, mean=None, low=None, high=None, verdict="unclear")
  vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
  se = math.sqrt(vx + vy)
  diff = float(x.mean() - y.mean())
  if se == 0:
    return dict(out, mean=diff, low=diff, high=diff,
                verdict="better" if diff > 0 else "worse" if diff < 0 else "unclear")
  dof = (vx + vy) ** 2 / ((vx ** 2 / (x.size - 1)) + (vy ** 2 / (y.size - 1)))
  half = float(scipy_stats.t.ppf(0.5 + CONFIDENCE / 2, dof)) * se
  ci = dict(out, mean=diff, low=diff - half, high=diff + half)
  return dict(ci, verdict=verdict(ci))


def fmt_interval(ci: Optional[Mapping[str, Any]], digits: int = 1) -> str:
  """"m [lo, hi]" (or "m" with one value) for tables."""
  if ci is None:
    return "n/a"
  if ci.get("low") is None:
    return f"{ci['mean']:.{digits}f}"
  return f"{ci['mean']:.{digits}f} [{ci['low']:.{digits}f}, {ci['high']:.{digits}f}]"


def comparisons(results: Sequence[Mapping[str, Any]], targets: Sequence[str],
                pairs: Sequence[Tuple[str, str]]) -> List[Dict[str, Any]]:
  """`paired_difference` for each (a, b) in `pairs` whose inits both ran, with its sentence."""
  present = {str(r["init"]) for r in results}
  out = []
  for a, b in pairs:
    if a in present and b in present:
      diff = paired_difference(results, a, b, targets)
      out.append(dict(diff, conclusion=conclusion(diff)))
  return out


def relation_differences(source_scores: Sequence[Mapping[str, Any]],
                         keys: Sequence[str] = ("score", "auc")) -> Dict[str, Any]:
  """Transfer by the source's relation to the target, paired by (target, seed): for each
  pair the mean score over its same-family sources minus the mean over its other-family
  sources (and minus its label-control sources: another family with the target's label
  words), with Student's t interval over the pairs. Per score key (final/best and AUC)."""
  from spot_jax.transfer.study_config import LABEL_CONTROL, OTHER_FAMILY, SAME_FAMILY
  out: Dict[str, Any] = {}
  for key in keys:
    cells: Dict[Tuple[str, int], Dict[str, List[float]]] = {}
    for s in source_scores:
      if s.get("relation") is None or s.get(key) is None:
        continue
      cells.setdefault((str(s["target"]), int(s["seed"])), {}).setdefault(
          s["relation"], []).append(float(s[key]))
    means: Dict[str, List[float]] = {}
    for groups in cells.values():
      for relation, values in groups.items():
        means.setdefault(relation, []).append(float(np.mean(values)))
    result: Dict[str, Any] = {"mean_by_relation": {r: float(np.mean(v))
                                                   for r, v in means.items()}}
    for name, other in (("same_minus_other_family", OTHER_FAMILY),
                        ("same_minus_label_control", LABEL_CONTROL)):
      diffs = [float(np.mean(g[SAME_FAMILY]) - np.mean(g[other]))
               for g in cells.values() if SAME_FAMILY in g and other in g]
      targets = sorted({t for (t, _), g in cells.items() if SAME_FAMILY in g and other in g})
      if diffs:
        ci = interval(diffs)
        result[name] = dict(ci, verdict=verdict(ci), targets=targets)
      else:
        result[name] = None
    out[key] = result
  return out


def spearman_rows(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
  """Spearman's rho along `axis` for a whole stack of vectors at once: Pearson's r of their
  average ranks, as `scipy.stats.spearmanr` computes it for two vectors; NaN where either is
  constant. scipy's bootstrap calling spearmanr once per resample took 2.4 s of CPU for
  2000 resamples, in every study's report."""
  with warnings.catch_warnings():  # a constant vector: rho undefined (NaN)
    warnings.simplefilter("ignore", scipy_stats.ConstantInputWarning)
    return scipy_stats.pearsonr(scipy_stats.rankdata(x, axis=axis),
                                scipy_stats.rankdata(y, axis=axis), axis=axis).statistic


def indicator_comparison(pairs: Sequence[Mapping[str, Any]], indicators: Sequence[str],
                         neuron_indicator: str, n_resamples: int = 2000
                         ) -> Optional[Dict[str, Any]]:
  """Which indicator predicts transfer best (Su et al. §5): each indicator's Spearman rho
  with the pairs' transfer values, and the activated-neuron indicator's rho minus the best
  embedding similarity's, with a paired bootstrap 95% interval over the pairs (scipy)."""
  if len(pairs) < 4:
    return None
  y = np.array([p["value"] for p in pairs], np.float64)
  if np.ptp(y) == 0:
    return {"spearman": {}, "best": None, "note": "constant transfer values"}
  rho = {}
  for name in indicators:
    x = np.array([p[name] for p in pairs], np.float64)
    rho[name] = None if np.ptp(x) == 0 else float(scipy_stats.spearmanr(x, y)[0])
  ranked = [n for n in indicators if rho[n] is not None]
  out: Dict[str, Any] = {"spearman": rho, "best": max(ranked, key=rho.get) if ranked else None,
                         "n": len(pairs), "neurons_minus_best_embedding": None, "note": None}
  embeddings = [n for n in ranked if n != neuron_indicator]
  if neuron_indicator in ranked and embeddings:
    best_embedding = max(embeddings, key=rho.get)
    a = np.array([p[neuron_indicator] for p in pairs], np.float64)
    b = np.array([p[best_embedding] for p in pairs], np.float64)

    def statistic(a, b, y, axis=-1):  # every resample at once (a resample is a row)
      ra, rb = spearman_rows(a, y, axis), spearman_rows(b, y, axis)
      return np.nan_to_num(ra) - np.nan_to_num(rb)  # a constant resample: rho undefined, 0

    boot = scipy_stats.bootstrap((a, b, y), statistic, paired=True, vectorized=True,
                                 n_resamples=n_resamples, method="percentile",
                                 random_state=np.random.default_rng(0))
    ci = {"mean": float(rho[neuron_indicator] - rho[best_embedding]),
          "low": float(boot.confidence_interval.low),
          "high": float(boot.confidence_interval.high)}
    out["neurons_minus_best_embedding"] = dict(ci, verdict=verdict(ci),
                                               embedding=best_embedding)
  return out
