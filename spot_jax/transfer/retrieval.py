"""SPoT retrieval (§3.3): rank source tasks for a target's task embedding, then transfer.

The target's embedding is its prompt after a short tuning run (SPoT: 10K steps);
the library's keys are the sources' `task_embedding` prompts at the same step, and
what gets transferred is each source's `transfer` prompt (its best checkpoint).

Several runs per source task (SPoT keeps 3) are aggregated into one task score:
`mean` (default; the task's expected similarity, robust to one odd run), `max`
(the closest run), or `none` (rank every run on its own, as 48 separate prompts).

Strategies, each one function here and one command in `spot_jax.cli.library`:
- best of top-k: `best_of_top_k` plans k target runs; `run_plans` runs them
  through a trainer callable `run_target(init_prompt_path) -> validation score`.
- top-k weighted average: `top_k_weighted_average`, alpha_r = sim_r / sum_l sim_l.
- top-k multi-task mixture: `multitask_mixture_spec` names the tasks to mix; the
  seqio registration (examples-proportional, K = 2^19) belongs to `tasks/`.
- oracle: `oracle_plans` lists every transfer prompt; `oracle` picks the best result.
Validation scores are taken as higher-is-better (accuracy, F1, correlation).
"""
import dataclasses
import math
from typing import Callable, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from spot_jax.prompts.prompt_files import TASK_EMBEDDING, TRANSFER
from spot_jax.transfer import similarity
from spot_jax.transfer.prompt_library import (LibraryEntry, LibraryError, ModelSignature,
                                              PromptLibrary, check_same_model)

AGGREGATES = ("mean", "max", "none")


@dataclasses.dataclass(frozen=True)
class RankedSource:
  """A source task's similarity to the target, aggregated over its runs.

  `run_scores` lists (run, similarity) best first; `run` is set only when ranking
  runs separately (`aggregate="none"`).
  """
  task: str
  score: float
  run_scores: Tuple[Tuple[str, float], ...]
  run: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class TargetRunPlan:
  """One target run to launch: initialise from `prompt_path` (a source's transfer prompt)."""
  source_task: str
  similarity: Optional[float]
  entry: LibraryEntry
  prompt_path: str


@dataclasses.dataclass(frozen=True)
class WeightedAverageInit:
  """A target initialisation sum_r alpha_r * prompt_r and where each term came from."""
  prompt: np.ndarray                              # [P, D]
  sources: Tuple[Tuple[str, float, str], ...]     # (task, alpha_r, library entry id)


@dataclasses.dataclass(frozen=True)
class MixtureSpec:
  """The top-k multi-task mixture to register: sources plus the target, examples-proportional."""
  name: str
  source_tasks: Tuple[str, ...]
  target_task: str
  examples_rate_limit: int = 2**19  # SPoT's artificial dataset-size limit K.

  @property
  def tasks(self) -> Tuple[str, ...]:
    return self.source_tasks + (self.target_task,)


def rank_sources(target: np.ndarray, entries: Sequence[LibraryEntry], prompts: np.ndarray, *,
                 metric: str = similarity.DEFAULT_METRIC, aggregate: str = "mean",
                 exclude_tasks: Iterable[str] = ()) -> List[RankedSource]:
  """Ranks source tasks, most similar first, from their embeddings `prompts` `[N, P, D]`.

  `entries[i]` describes `prompts[i]`; ties are broken by task name, then run.
  """
  if aggregate not in AGGREGATES:
    raise ValueError(f"unknown aggregate {aggregate!r}; known: {AGGREGATES}")
  if len(entries) != len(prompts):
    raise ValueError(f"{len(entries)} entries but {len(prompts)} prompts")
  excluded = set(exclude_tasks)
  keep = [i for i, e in enumerate(entries) if e.task not in excluded]
  if not keep:
    return []
  prompts = np.asarray(prompts)
  scores = similarity.score(target, prompts if len(keep) == len(prompts) else prompts[keep],
                            metric)  # Index only when needed: the library may be large.
  per_task = {}
  for i, s in zip(keep, scores):
    per_task.setdefault(entries[i].task, []).append((entries[i].run, float(s)))
  ranked = []
  for task, runs in per_task.items():
    runs = sorted(runs, key=lambda rs: (-rs[1], rs[0]))
    if aggregate == "none":
      ranked += [RankedSource(task, s, ((run, s),), run=run) for run, s in runs]
    else:
      values = [s for _, s in runs]
      value = float(np.mean(values)) if aggregate == "mean" else max(values)
      ranked.append(RankedSource(task, value, tuple(runs)))
  return sorted(ranked, key=lambda r: (-r.score, r.task, r.run or ""))


def rank_library(target: np.ndarray, library: PromptLibrary, *, query: ModelSignature,
                 metric: str = similarity.DEFAULT_METRIC, aggregate: str = "mean",
                 exclude_tasks: Iterable[str] = (), step: Optional[int] = None,
                 model_name: Optional[str] = None) -> List[RankedSource]:
  """Ranks the library's source tasks by their `task_embedding` prompts against `target` `[P, D]`.

  Every candidate must come from the query's model (else ModelMismatchError naming
  both); `model_name` selects a subset explicitly. Embeddings must share one step
  (SPoT compares prompts at the same step): pass `step` if the library holds several.
  """
  target = np.asarray(target, dtype=np.float32)
  if target.ndim != 2 or target.shape[1] != query.d_model:
    raise ValueError(f"the target embedding has shape {list(target.shape)} but the query's "
                     f"{query.describe()} needs [P, {query.d_model}]")
  entries = [e for e in library.entries(role=TASK_EMBEDDING, model_name=model_name)
             if step is None or e.step == step]
  steps = sorted({e.step for e in entries})
  if len(steps) > 1:
    raise ValueError(f"the library's task embeddings come from steps {steps}; pass step= "
                     f"to compare the target with embeddings from one step")
  prompts = library.load_stack(entries, query=query)
  return rank_sources(target, entries, prompts, metric=metric, aggregate=aggregate,
                      exclude_tasks=exclude_tasks)


def top_k(ranked: Sequence[RankedSource], k: int) -> List[RankedSource]:
  """The first k ranked sources; k beyond the ranking is an error naming both numbers."""
  if not isinstance(k, int) or k < 1:
    raise ValueError(f"k must be a positive integer, got {k!r}")
  if k > len(ranked):
    raise ValueError(f"k={k} but only {len(ranked)} ranked sources are available")
  return list(ranked[:k])


def transfer_entry(library: PromptLibrary, source: RankedSource, *,
                   query: ModelSignature) -> LibraryEntry:
  """The `transfer` prompt to initialise from for a ranked source.

  The same run when the source is a single run; otherwise the run with the best
  recorded validation metric (entries without one come last, then by step).
  """
  candidates = library.entries(task=source.task, role=TRANSFER, model_name=query.model_name)
  if source.run is not None:
    candidates = [e for e in candidates if e.run == source.run]
  if not candidates:
    run = f" run {source.run!r}" if source.run is not None else ""
    raise LibraryError(f"source task {source.task!r}{run} has no transfer prompt for "
                       f"{query.describe()} in {library.root}")
  best = max(candidates, key=lambda e: (
      e.metadata.metric_value if e.metadata.metric_value is not None else -math.inf, e.step))
  check_same_model(best.signature, query, what=f"library prompt {best.describe()}")
  return best


def best_of_top_k(ranked: Sequence[RankedSource], k: int, library: PromptLibrary, *,
                  query: ModelSignature) -> List[TargetRunPlan]:
  """SPoT's BEST OF TOP-k: one target run per top-k source, each from its transfer prompt."""
  return [TargetRunPlan(s.task, s.score, e, library.path(e))
          for s in top_k(ranked, k) for e in [transfer_entry(library, s, query=query)]]


def oracle_plans(library: PromptLibrary, *, query: ModelSignature,
                 exclude_tasks: Iterable[str] = ()) -> List[TargetRunPlan]:
  """Every transfer prompt of the query's model: the brute-force search the oracle runs."""
  excluded = set(exclude_tasks)
  plans = []
  for entry in library.entries(role=TRANSFER, model_name=query.model_name):
    if entry.task in excluded:
      continue
    check_same_model(entry.signature, query, what=f"library prompt {entry.describe()}")
    plans.append(TargetRunPlan(entry.task, None, entry, library.path(entry)))
  return plans


def run_plans(plans: Sequence[TargetRunPlan], run_target: Callable[[str], float]
              ) -> List[Tuple[TargetRunPlan, float]]:
  """Runs each plan with the trainer's `run_target(init_prompt_path) -> validation score`."""
  results = []
  for plan in plans:
    value = float(run_target(plan.prompt_path))
    if not math.isfinite(value):
      raise ValueError(f"run_target returned {value} for source {plan.source_task!r} "
                       f"({plan.prompt_path})")
    results.append((plan, value))
  return results


def oracle(results: Sequence[Tuple[TargetRunPlan, float]]) -> Tuple[TargetRunPlan, float]:
  """The best (plan, score) among scored runs; ties go to the earlier (higher-ranked) plan."""
  if not results:
    raise ValueError("no scored runs to choose from")
  best = 0
  for i, (_, value) in enumerate(results):
    if value > results[best][1]:
      best = i
  return results[best]


def weighted_average_init(prompts: np.ndarray, sims: Sequence[float]) -> np.ndarray:
  """sum_r alpha_r * prompts[r] with alpha_r = sims[r] / sum(sims): `[k, P, D] -> [P, D]`.

  Negative similarities are refused: they would turn the average into a difference.
  """
  prompts = np.asarray(prompts, dtype=np.float32)
  sims = np.asarray(sims, dtype=np.float64)
  if prompts.ndim != 3 or sims.shape != (prompts.shape[0],):
    raise ValueError(f"need prompts [k, P, D] and sims [k], got {list(prompts.shape)} and "
                     f"{list(sims.shape)}")
  if prompts.shape[0] == 0:
    raise ValueError("no prompts to average")
  if not np.all(np.isfinite(sims)) or np.any(sims < 0) or sims.sum() <= 0:
    raise ValueError(f"weights alpha_r = sim_r / sum(sims) need finite, non-negative "
                     f"similarities with a positive sum, got {sims.tolist()}")
  alphas = sims / sims.sum()
  return np.einsum("k,kpd->pd", alphas, prompts.astype(np.float64)).astype(np.float32)


def top_k_weighted_average(ranked: Sequence[RankedSource], k: int, library: PromptLibrary, *,
                           query: ModelSignature, positive_only: bool = False
                           ) -> WeightedAverageInit:
  """SPoT's TOP-k WEIGHTED AVERAGE of the top-k sources' transfer prompts.

  alpha_r = sim_r / sum(sims) needs non-negative similarities. Per-token cosines near 0
  can dip below; with `positive_only` the average takes the top-k sources with a positive
  similarity, and the top-1 prompt alone (alpha = 1) when none is positive.
  """
  chosen = top_k(ranked, k)
  if positive_only:
    positive = [s for s in chosen if s.score > 0]
    if not positive:
      entry = transfer_entry(library, chosen[0], query=query)
      return WeightedAverageInit(library.load(entry),
                                 ((chosen[0].task, 1.0, entry.id),))
    chosen = positive
  entries = [transfer_entry(library, s, query=query) for s in chosen]
  sims = [s.score for s in chosen]
  prompt = weighted_average_init(library.load_stack(entries, query=query), sims)
  total = float(sum(sims))
  return WeightedAverageInit(
      prompt, tuple((s.task, s.score / total, e.id) for s, e in zip(chosen, entries)))


def multitask_mixture_spec(ranked: Sequence[RankedSource], k: int, target_task: str, *,
                           name: Optional[str] = None) -> MixtureSpec:
  """The tasks of SPoT's TOP-k MULTI-TASK MIXTURE: the top-k distinct source tasks + target.

  Library task names are taken to be seqio task names. Registering the mixture
  (seqio, examples-proportional with K = 2^19) is `tasks/`'s job; this is its input.
  """
  sources = []
  for source in ranked:
    if source.task != target_task and source.task not in sources:
      sources.append(source.task)
  if k < 1 or k > len(sources):
    raise ValueError(f"k={k} but {len(sources)} distinct source tasks are ranked")
  sources = tuple(sources[:k])
  return MixtureSpec(name or f"spot_top{k}_mixture_for_{target_task}", sources, target_task)
