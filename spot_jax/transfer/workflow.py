"""SPoT's workflow on top of the trainer and the prompt library (Vu et al. 2022, §3):
register source runs, embed a target task, retrieve sources, and tune the target from
them with one of the four strategies (best of top-k, top-k weighted average, top-k
multi-task mixture, oracle)."""
import dataclasses
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from spot_jax.prompts import initializers, prompt_files
from spot_jax.transfer import retrieval, similarity
from spot_jax.transfer.prompt_library import LibraryEntry, ModelSignature, PromptLibrary

STRATEGIES = ("best_of_top_k", "top_k_weighted_average", "top_k_mixture", "oracle")


def register_run(library: PromptLibrary, run_dir: str, *, embedding_step: int,
                 run: Optional[str] = None) -> List[LibraryEntry]:
  """Adds a finished source run: its prompt at `embedding_step` as the task's key
  (`task_embedding`) and its best-validation prompt (else its final one) as the value."""
  prompts = os.path.join(run_dir, "prompts")
  overrides = {"run": run} if run else {}
  key = library.add_file(os.path.join(prompts, f"step_{embedding_step}"),
                         role=prompt_files.TASK_EMBEDDING, **overrides)
  best = os.path.join(prompts, "best")
  value_path = best if os.path.exists(best + prompt_files.JSON_SUFFIX) else \
      os.path.join(prompts, "final")
  value = library.add_file(value_path, role=prompt_files.TRANSFER, **overrides)
  return [key, value]


def embed_task(*, model_dir: str, embedding_step: int, train: Callable[..., Dict[str, Any]],
               **train_kwargs) -> str:
  """Prompt-tunes a task for `embedding_step` steps (SPoT: 10,000) and returns the path of
  that prompt, the task's embedding. `train` is `spot_jax.training.trainer.train`."""
  train_kwargs = dict(train_kwargs, eval_period=0, prompt_save_steps=(embedding_step,))
  train(model_dir=model_dir, train_steps=embedding_step, **train_kwargs)
  return os.path.join(model_dir, "prompts", f"step_{embedding_step}")


@dataclasses.dataclass
class TransferResult:
  """What a strategy did: the ranking it used, each target run's init and best score."""
  strategy: str
  ranked: List[retrieval.RankedSource]
  runs: List[Dict[str, Any]]
  best: Dict[str, Any]


def transfer(strategy: str, library: PromptLibrary, target_embedding: str, *, target_task: str,
             out_dir: str, run_target: Callable[[str, str], float], k: int = 1,
             metric: str = similarity.DEFAULT_METRIC, aggregate: str = "mean",
             run_mixture_source: Optional[Callable[[str, str], str]] = None
             ) -> TransferResult:
  """Runs one SPoT strategy for a target.

  `run_target(init_prompt_path, run_dir) -> best validation score` tunes the target from a
  prompt file; `run_mixture_source(mixture_name, run_dir) -> prompt path` tunes a source
  prompt on a registered mixture (only for `top_k_mixture`). The target's own task is
  never a source. A library prompt of another model is refused, never reshaped.
  """
  if strategy not in STRATEGIES:
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
  emb, meta = prompt_files.load_prompt(target_embedding)
  query = ModelSignature.of(meta)
  ranked = retrieval.rank_library(emb, library, query=query, metric=metric, aggregate=aggregate,
                                  exclude_tasks=[target_task], step=meta.step)
  runs = []

  def tune(init_path, name, **info):
    run_dir = os.path.join(out_dir, name)
    score = float(run_target(init_path, run_dir))
    runs.append(dict(info, init=init_path, run_dir=run_dir, score=score))

  if strategy in ("best_of_top_k", "oracle"):
    plans = (retrieval.best_of_top_k(ranked, k, library, query=query) if strategy ==
             "best_of_top_k" else retrieval.oracle_plans(library, query=query,
                                                         exclude_tasks=[target_task]))
    for i, plan in enumerate(plans):
      tune(plan.prompt_path, f"{strategy}_{i}_{plan.source_task}", source=plan.source_task,
           similarity=plan.similarity, entry=plan.entry.id)
  elif strategy == "top_k_weighted_average":
    avg = retrieval.top_k_weighted_average(ranked, k, library, query=query)
    path = prompt_files.save_prompt(
        os.path.join(out_dir, "weighted_average_init"), avg.prompt,
        meta.replace(task=target_task, role=None, step=0, metric_name=None, metric_value=None,
                     created="", array_sha256="", extra={"sources": [list(s) for s in
                                                                     avg.sources]}))
    tune(path, "top_k_weighted_average", sources=[list(s) for s in avg.sources])
  else:
    if run_mixture_source is None:
      raise ValueError("top_k_mixture needs run_mixture_source to tune on the mixture")
    from spot_jax.tasks import pipeline
    spec = retrieval.multitask_mixture_spec(ranked, k, target_task)
    pipeline.add_mixture(spec.name, spec.tasks, maximum=spec.examples_rate_limit)
    source_prompt = run_mixture_source(spec.name, os.path.join(out_dir, "mixture_source"))
    tune(source_prompt, "top_k_mixture", mixture=spec.name, sources=list(spec.source_tasks))
  best = max(runs, key=lambda r: r["score"])
  return TransferResult(strategy, ranked, runs, best)
