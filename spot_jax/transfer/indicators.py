r"""Which indicator predicts transfer (Su et al. 2022 §5; SPoT's Figure 4): the similarity
of a source prompt to a target task's own prompt, by each indicator, against how well the
source transfers to that target.

The command is `python -m spot_jax.cli.indicators` (on a zero-shot matrix).

Indicators: the prompt-embedding similarities of `similarity.METRICS` (cosine of average
tokens, per-token cosine, flat cosine, Euclidean forms) and, given the frozen model, the
activated-neuron overlap ON over all layers (`neurons`). For each (source prompt, target
task) pair whose target has its own prompts (and is not the source's own task), an
indicator's value is its mean similarity to those prompts. Reported: Spearman and Pearson
correlation with the transfer values, with p-values (scipy), per target and pooled over all
pairs, as `indicators.json`, `indicators.md` and `indicators.png`.
"""
from typing import Any, Callable, Dict, Mapping, Optional, Sequence

import numpy as np
from scipy import stats

from spot_jax.transfer import similarity

ON = "activated_neurons"
MIN_PAIRS = 3  # fewer pairs than this give no correlation


def _correlation(x: Sequence[float], y: Sequence[float]) -> Dict[str, Any]:
  x, y = np.asarray(x, float), np.asarray(y, float)
  out: Dict[str, Any] = {"n": int(len(x))}
  if len(x) < MIN_PAIRS or np.ptp(x) == 0 or np.ptp(y) == 0:
    return dict(out, spearman=None, spearman_p=None, pearson=None, pearson_p=None)
  rho, rho_p = stats.spearmanr(x, y)
  r, r_p = stats.pearsonr(x, y)
  return dict(out, spearman=float(rho), spearman_p=float(rho_p), pearson=float(r),
              pearson_p=float(r_p))


def indicator_table(values: np.ndarray, prompts: np.ndarray, prompt_tasks: Sequence[str],
                    tasks: Sequence[str], metrics: Mapping[str, Any]) -> Dict[str, Any]:
  """Correlations of each indicator with transfer.

  `values [K, T]`: how well prompt k transfers to task t (NaN where unknown); `prompts
  [K, P, D]`, each trained on `prompt_tasks[k]`; a task's own prompts are those trained on
  it. `metrics`: indicator name -> a `similarity.score` metric (name or function).
  """
  values = np.asarray(values, float)
  own = {t: [k for k, pt in enumerate(prompt_tasks) if pt == t] for t in tasks}
  pairs = [(k, t) for t, task in enumerate(tasks) if own[task]
           for k in range(len(prompts)) if prompt_tasks[k] != task
           and not np.isnan(values[k, t])]
  if not pairs:
    raise ValueError("no (source prompt, target task) pair has a transfer value and a target "
                     "with its own prompts")
  table: Dict[str, Any] = {"tasks": list(tasks), "indicators": list(metrics), "pairs": [],
                           "per_target": {}, "pooled": {}}
  sims = {name: {} for name in metrics}
  for name, metric in metrics.items():
    for t, task in enumerate(tasks):
      if own[task]:
        scores = np.stack([similarity.score(prompts[o], prompts, metric) for o in own[task]])
        sims[name][t] = scores.mean(axis=0)  # [K]: mean similarity to the target's prompts
  for k, t in pairs:
    table["pairs"].append({"source": int(k), "source_task": prompt_tasks[k], "target": tasks[t],
                           "value": float(values[k, t]),
                           **{name: float(sims[name][t][k]) for name in metrics}})
  for name in metrics:
    table["pooled"][name] = _correlation([p[name] for p in table["pairs"]],
                                         [p["value"] for p in table["pairs"]])
    for task in tasks:
      sel = [p for p in table["pairs"] if p["target"] == task]
      if sel:
        table["per_target"].setdefault(task, {})[name] = _correlation(
            [p[name] for p in sel], [p["value"] for p in sel])
  return table


def default_metrics(on_metric: Optional[Callable] = None) -> Dict[str, Any]:
  """Every embedding similarity, plus ON when a model-bound metric is given."""
  metrics: Dict[str, Any] = {name: name for name in similarity.METRICS}
  if on_metric is not None:
    metrics[ON] = on_metric
  return metrics
