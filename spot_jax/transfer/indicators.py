r"""Which indicator predicts transfer (Su et al. 2022 §5; SPoT's Figure 4): the similarity
of a source prompt to a target task's own prompt, by each indicator, against how well the
source transfers to that target.

The command is `python -m spot_jax.cli.indicators` (on a zero-shot matrix).

Indicators are registered here, one `Indicator` each: the prompt-embedding similarities of
`similarity.METRICS` (cosine of average tokens, per-token cosine, flat cosine, Euclidean
forms) and, on the frozen model, the activated-neuron overlap ON over all layers
(`neurons`). The study, `python -m spot_jax.cli.indicators` and `python -m
spot_jax.cli.library rank --metric` read the registry. For each (source prompt, target
task) pair whose target has its own prompts (and is not the source's own task), an
indicator's value is its mean similarity to those prompts. Reported: Spearman and Pearson
correlation with the transfer values, with p-values (scipy), per target and pooled over all
pairs, as `indicators.json`, `indicators.md` and `indicators.png`.
"""
import dataclasses
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import numpy as np
from scipy import stats

from spot_jax.transfer import similarity

ON = "activated_neurons"
MIN_PAIRS = 3  # fewer pairs than this give no correlation

# `(target [P, D], library [N, P', D]) -> [N]`, higher is closer; or a `similarity.METRICS`
# name.
Metric = Any


@dataclasses.dataclass(frozen=True)
class FrozenModel:
  """The frozen model a model-bound indicator runs prompts through."""
  config: Any  # T5Config
  params: Any
  probe_token_id: Optional[int] = None  # None: T5's <extra_id_0>


@dataclasses.dataclass(frozen=True)
class Indicator:
  """One indicator of transfer: `metric(model)` gives its similarity metric; `model` is the
  frozen model (a `FrozenModel`) when `needs_model`, else None. `aliases`: other names a
  command line accepts for it."""
  name: str
  metric: Callable[[Optional[FrozenModel]], Metric]
  needs_model: bool = False
  aliases: Tuple[str, ...] = ()


_REGISTRY: Dict[str, Indicator] = {}


def register(indicator: Indicator, *, replace: bool = False) -> Indicator:
  """Adds an indicator (its name must be new unless `replace`); returns it."""
  taken = {a: i.name for i in _REGISTRY.values() for a in (i.name, *i.aliases)}
  for name in (indicator.name, *indicator.aliases):
    if name in taken and not (replace and taken[name] == indicator.name):
      raise ValueError(f"indicator {name!r} is registered already ({taken[name]!r})")
  _REGISTRY[indicator.name] = indicator
  return indicator


def unregister(name: str) -> None:
  _REGISTRY.pop(name, None)


def names() -> Tuple[str, ...]:
  """Registered indicators, in registration order."""
  return tuple(_REGISTRY)


def get(name: str) -> Indicator:
  for indicator in _REGISTRY.values():
    if name == indicator.name or name in indicator.aliases:
      return indicator
  known = sorted(a for i in _REGISTRY.values() for a in (i.name, *i.aliases))
  raise ValueError(f"unknown indicator {name!r}; known: {known}")


def metric(name: str, model: Optional[FrozenModel] = None) -> Metric:
  """The metric of one indicator (by name or alias); a model-bound one needs `model`."""
  indicator = get(name)
  if indicator.needs_model and model is None:
    raise ValueError(f"indicator {name!r} runs prompts through the frozen model: give the "
                     "model (a checkpoint and its size or config)")
  return indicator.metric(model if indicator.needs_model else None)


def metrics(model: Optional[FrozenModel] = None) -> Dict[str, Metric]:
  """Every registered indicator's metric, name -> metric; the model-bound ones only when
  `model` is given."""
  return {i.name: i.metric(model if i.needs_model else None) for i in _REGISTRY.values()
          if model is not None or not i.needs_model}


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


def _activated_neurons(model: FrozenModel) -> Metric:
  from spot_jax.transfer import neurons  # jax, only when the model is given
  return neurons.overlap_metric(model.config, model.params,
                                probe_token_id=model.probe_token_id)


for _name in similarity.METRICS:
  register(Indicator(_name, lambda _, name=_name: name))
register(Indicator(ON, _activated_neurons, needs_model=True, aliases=("on",)))
