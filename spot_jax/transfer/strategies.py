"""SPoT's target inits, one registered `Strategy` each: the study, `python -m spot_jax.spot`,
the configuration checks and the report all iterate over this registry.

A strategy says which runs a target needs (a run of its own from an init it builds, and/or
runs from the top-ranked sources' prompts, shared by every strategy that needs them), how
its score is picked from those runs, and which comparisons and claims of the report it takes
part in. A new strategy is one `Strategy(...)` and one `register(...)` line; see
`docs/extending.md`.

The built-in ones (Vu et al. 2022 §3 and §5):
  random_uniform          the prompt drawn uniformly (the baseline every init is compared to)
  class_labels            the embeddings of the target's label words
  spot_top1               the transfer prompt of the source whose task embedding is nearest
  best_of_top_k           the best of the top-k sources' transfer prompts, each tried
  top_k_weighted_average  the top-k prompts averaged, weighted by similarity
  top_k_mixture           a prompt trained on the top-k sources' multi-task mixture
  oracle                  the best of every source (an upper bound on retrieval)
"""
import dataclasses
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from spot_jax.prompts import initializers, prompt_files
from spot_jax.transfer import retrieval

BASELINE = "random_uniform"  # what every init is compared with
AVERAGE_SOURCE = "average_source"  # the mean over all sources' runs at a seed (a reference)
BASELINE_KIND, TRANSFER_KIND = "baseline", "transfer"  # needs no library / retrieves from it


@dataclasses.dataclass(frozen=True)
class TargetPlan:
  """What a strategy sees of one target when its runs are planned.

  `ranked` are the retrieval results (`retrieval.Ranked`, best first) over the study's
  sources; `k` the top-k (at most the number ranked); `prepared` what each strategy's
  `prepare` returned, by strategy name."""
  cfg: Any  # the StudyConfig
  target: str
  labels: Sequence[str]
  ranked: Sequence[Any]
  k: int
  library: Any = None  # the PromptLibrary
  query: Any = None  # the target embedding's ModelSignature
  embedding_metadata: Any = None  # the target embedding's PromptMetadata
  prepared: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)


# (init name, source tasks whose runs it averages, extra row fields)
Pick = Tuple[str, Tuple[str, ...], Dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Strategy:
  """One init of the study's target runs.

  name: the init's name in configurations, result rows and the report.
  kind: BASELINE_KIND (needs no library) or TRANSFER_KIND.
  sweep: how many top-ranked sources the target is tuned from (each source one run,
    `from_<task>`, shared with the other strategies); 0 for none.
  init: the prompt-init factory of the strategy's own run for a target, or None for no run
    of its own (e.g. class labels of a task without label words).
  prepare: work before a target's runs (e.g. writing an averaged prompt); returns a mapping
    kept in `TargetPlan.prepared[name]`: `init_file` (a prompt file), `row` (fields added to
    the result row) and `source_run` (a run on sources to train before the target runs:
    stage (its name in the progress lines), model_dir, task, steps, done_file).
  pick: for strategies with a sweep, the rows it reports from the sweep's scores:
    `pick(sources in rank order, score by source, k) -> [(init, sources, fields)]`.
  source_runs: how many runs on sources `prepare` adds per target (for the progress count).
  comparisons: (a, b) pairs the report compares paired over seeds, against the baselines.
  checks: further (a, b) pairs the report compares (e.g. retrieval against the oracle).
  claims: (a, b, sentence): the report states the sentence held when a beats b.
  """
  name: str
  kind: str
  sweep: Callable[[Any], int] = lambda cfg: 0
  init: Optional[Callable[[TargetPlan], Optional[Callable]]] = None
  prepare: Optional[Callable[[TargetPlan], Mapping[str, Any]]] = None
  pick: Optional[Callable[[Sequence[str], Mapping[str, float], int], List[Pick]]] = None
  source_runs: int = 0
  comparisons: Tuple[Tuple[str, str], ...] = ()
  checks: Tuple[Tuple[str, str], ...] = ()
  claims: Tuple[Tuple[str, str, str], ...] = ()

  def __post_init__(self):
    if self.kind not in (BASELINE_KIND, TRANSFER_KIND):
      raise ValueError(f"strategy {self.name!r}: kind {self.kind!r} is not "
                       f"{BASELINE_KIND!r} or {TRANSFER_KIND!r}")
    if (self.init is None) == (self.pick is None):
      raise ValueError(f"strategy {self.name!r} needs either an init (a run of its own) or a "
                       "pick (a choice among the sweep's runs)")


_REGISTRY: Dict[str, Strategy] = {}


def register(strategy: Strategy, *, replace: bool = False) -> Strategy:
  """Adds `strategy` to the registry (after the ones before it, which sets report order)."""
  if strategy.name in _REGISTRY and not replace:
    raise ValueError(f"strategy {strategy.name!r} is already registered")
  if strategy.name == AVERAGE_SOURCE:
    raise ValueError(f"{AVERAGE_SOURCE!r} is the oracle's reference row, not a strategy name")
  _REGISTRY[strategy.name] = strategy
  return strategy


def unregister(name: str) -> None:
  _REGISTRY.pop(name)


def get(name: str) -> Strategy:
  if name not in _REGISTRY:
    raise KeyError(f"no strategy {name!r}; registered: {names()}")
  return _REGISTRY[name]


def names() -> Tuple[str, ...]:
  return tuple(_REGISTRY)


def selected(inits: Sequence[str]) -> List[Strategy]:
  """The registered strategies among `inits`, in registry order."""
  return [s for s in _REGISTRY.values() if s.name in inits]


def sweep_size(cfg) -> int:
  """How many top-ranked sources a target is tuned from for `cfg.inits`."""
  return min(max([s.sweep(cfg) for s in selected(cfg.inits)] + [0]), len(cfg.sources))


def comparisons(inits: Sequence[str]) -> Tuple[Tuple[str, str], ...]:
  """The report's (a, b) comparisons: transfer inits against the baselines, the baselines
  against each other, then the further checks; each strategy's in registry order."""
  chosen = selected(inits)
  return tuple(
      [p for s in chosen if s.kind == TRANSFER_KIND for p in s.comparisons]
      + [p for s in chosen if s.kind == BASELINE_KIND for p in s.comparisons]
      + [p for s in chosen for p in s.checks])


def claims(inits: Sequence[str] = ()) -> Tuple[Tuple[str, str, str], ...]:
  """The report's claims about inits, (a, b, sentence), in registry order (every registered
  strategy's when `inits` is empty; a claim is stated only where both a and b ran)."""
  chosen = selected(inits) if inits else list(_REGISTRY.values())
  return tuple(c for s in chosen for c in s.claims)


# --- the built-in strategies -----------------------------------------------------------------

def _weighted_average(plan: TargetPlan) -> Mapping[str, Any]:
  """Writes the top-k weighted-average prompt once, beside the target's runs."""
  avg = retrieval.top_k_weighted_average(plan.ranked, plan.k, plan.library, query=plan.query,
                                         positive_only=True)
  path = os.path.join(plan.cfg.out_dir, "targets", plan.target, "weighted_average_init")
  if not os.path.exists(path + prompt_files.JSON_SUFFIX):
    prompt_files.save_prompt(path, avg.prompt, plan.embedding_metadata.replace(
        task=plan.target, role=None, step=0, metric_name=None, metric_value=None, created="",
        array_sha256="", extra={"sources": [list(s) for s in avg.sources]}))
  return {"init_file": path}


def _mixture(plan: TargetPlan) -> Mapping[str, Any]:
  """Registers the top-k sources' multi-task mixture; its prompt is trained first."""
  from spot_jax.tasks import pipeline as task_pipeline  # pylint: disable=g-import-not-at-top
  spec = retrieval.multitask_mixture_spec(plan.ranked, plan.cfg.top_k, plan.target)
  task_pipeline.add_mixture(spec.name, spec.tasks, maximum=spec.examples_rate_limit)
  run_dir = os.path.join(plan.cfg.out_dir, "targets", plan.target, "mixture_source")
  final = os.path.join(run_dir, "prompts", "final")
  return {"init_file": final, "row": {"sources": list(spec.source_tasks)},
          "source_run": {"stage": "mixture sources", "model_dir": run_dir, "task": spec.name,
                         "steps": plan.cfg.mixture_steps or plan.cfg.source_steps,
                         "done_file": final + prompt_files.JSON_SUFFIX}}


def _from_prepared(name: str) -> Callable[[TargetPlan], Callable]:
  return lambda plan: initializers.prompt_file(plan.prepared[name]["init_file"])


def _top1(sources, score, k) -> List[Pick]:
  del score, k
  return [("spot_top1", (sources[0],), {"source": sources[0]})]


def _best_of_top_k(sources, score, k) -> List[Pick]:
  best = max(sources[:k], key=lambda t: score[t])
  return [("best_of_top_k", (best,), {"source": best})]


def _oracle(sources, score, k) -> List[Pick]:
  del k
  best = max(sources, key=lambda t: score[t])
  return [("oracle", (best,), {"source": best}), (AVERAGE_SOURCE, tuple(sources), {})]


register(Strategy("random_uniform", BASELINE_KIND,
                  init=lambda plan: initializers.random_uniform()))
register(Strategy("class_labels", BASELINE_KIND,
                  init=lambda plan: (initializers.class_labels(plan.labels) if plan.labels
                                     else None),
                  comparisons=(("class_labels", BASELINE),)))
register(Strategy("spot_top1", TRANSFER_KIND, sweep=lambda cfg: 1, pick=_top1,
                  comparisons=(("spot_top1", BASELINE), ("spot_top1", "class_labels")),
                  claims=(("spot_top1", BASELINE, "SPoT transfer (top-1) beats random init"),
                          ("spot_top1", "class_labels",
                           "SPoT transfer (top-1) beats class-label init"))))
register(Strategy("best_of_top_k", TRANSFER_KIND, sweep=lambda cfg: cfg.top_k,
                  pick=_best_of_top_k, comparisons=(("best_of_top_k", BASELINE),)))
register(Strategy("top_k_weighted_average", TRANSFER_KIND, prepare=_weighted_average,
                  init=_from_prepared("top_k_weighted_average"),
                  comparisons=(("top_k_weighted_average", BASELINE),
                               ("top_k_weighted_average", "class_labels")),
                  claims=(("top_k_weighted_average", BASELINE,
                           "top-k weighted average beats random init"),)))
register(Strategy("top_k_mixture", TRANSFER_KIND, prepare=_mixture,
                  init=_from_prepared("top_k_mixture"), source_runs=1,
                  comparisons=(("top_k_mixture", BASELINE),)))
register(Strategy("oracle", TRANSFER_KIND, sweep=lambda cfg: len(cfg.sources), pick=_oracle,
                  comparisons=(("oracle", BASELINE),),
                  checks=(("spot_top1", AVERAGE_SOURCE), ("oracle", "spot_top1")),
                  claims=(("spot_top1", AVERAGE_SOURCE,
                           "the top-1 retrieved source beats the average source"),)))
BUILT_IN = names()
