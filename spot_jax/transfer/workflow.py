"""SPoT's workflow on top of the trainer and the prompt library (Vu et al. 2022, §3):
register source runs, embed a target task, retrieve sources, and tune the target from
them with one of the four strategies (best of top-k, top-k weighted average, top-k
multi-task mixture, oracle)."""
import dataclasses
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

from spot_jax import paths
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


def retrieved_prompt(library_dir: str, target_embedding: str, *, target_task: str,
                     strategy: str = "best_of_top_k", k: int = 1, rank: int = 0,
                     metric: str = similarity.DEFAULT_METRIC, aggregate: str = "mean",
                     model: Optional[ModelSignature] = None):
  """The `[P, D]` init a library query gives a target: the transfer prompt of the source at
  `rank` (best of top-k runs rank = 0..k-1), or the top-k weighted average. Given the run's
  `model`, the target embedding must come from it (and so must every source)."""
  library = PromptLibrary(paths.absolute(library_dir))
  emb, meta = prompt_files.load_prompt(paths.absolute(target_embedding))
  query = ModelSignature.of(meta)
  if model is not None:
    prompt_files.check_same_model(query, model, what=f"target embedding {target_embedding}",
                                  wanted_by="this run")
  ranked = retrieval.rank_library(emb, library, query=query, metric=metric, aggregate=aggregate,
                                  exclude_tasks=[target_task], step=meta.step)
  if strategy == "top_k_weighted_average":
    return retrieval.top_k_weighted_average(ranked, k, library, query=query).prompt
  if strategy != "best_of_top_k":
    raise ValueError(f"a library query initialises from 'best_of_top_k' or "
                     f"'top_k_weighted_average', not {strategy!r}")
  if not 0 <= rank < k:
    raise ValueError(f"rank {rank} is not among the top k={k}")
  plan = retrieval.best_of_top_k(ranked, k, library, query=query)[rank]
  return library.load(plan.entry)


def library_prompt(library_dir: str, target_embedding: str, *, target_task: str,
                   strategy: str = "best_of_top_k", k: int = 1, rank: int = 0,
                   metric: str = similarity.DEFAULT_METRIC, aggregate: str = "mean"):
  """A prompt-init factory (for gin: `prompts.library_prompt`) from a library query."""
  def factory(embedding, vocabulary, model_name):
    return initializers.from_array(retrieved_prompt(
        library_dir, target_embedding, target_task=target_task, strategy=strategy, k=k,
        rank=rank, metric=metric, aggregate=aggregate,
        model=initializers.model_signature(embedding, vocabulary, model_name)))
  return factory


def run_spot(*, train: Callable[..., Dict[str, Any]], out_dir: str, source_tasks: Sequence[str],
             target_task: str, library_dir: Optional[str] = None, seeds: Sequence[int] = (0,),
             embedding_step: int = 10000, source_steps: int = 262144,
             target_steps: int = 100000, strategy: str = "best_of_top_k", k: int = 1,
             metric: str = similarity.DEFAULT_METRIC) -> Dict[str, Any]:
  """SPoT in sequence: source prompts (one run per task and seed), library registration,
  the target's embedding, retrieval and the target stage. `train` is a configured
  `trainer.train` whose keyword arguments here override its configuration. Finished
  source runs already in the library are not run again."""
  out_dir, library_dir = paths.absolute(out_dir), paths.absolute(library_dir)
  library = PromptLibrary(library_dir or os.path.join(out_dir, "library"), create=True)
  for task in source_tasks:
    for seed in seeds:
      run = f"seed{seed}"
      if library.entries(task=task, run=run):
        continue
      run_dir = os.path.join(out_dir, "sources", task, run)
      train(model_dir=run_dir, mixture_or_task_name=task, train_steps=source_steps, seed=seed,
            prompt_init=None, prompt_save_steps=(embedding_step,), run_name=run)
      register_run(library, run_dir, embedding_step=embedding_step, run=run)
  embedding = embed_task(model_dir=os.path.join(out_dir, "target_embedding"),
                         embedding_step=embedding_step, train=train,
                         mixture_or_task_name=target_task, prompt_init=None)

  def run_target(init_path, run_dir):
    out = train(model_dir=run_dir, mixture_or_task_name=target_task, train_steps=target_steps,
                prompt_init=initializers.prompt_file(init_path), prompt_save_steps=())
    if out["best"] is None:
      raise ValueError("the target stage needs validation (eval_period > 0) to report a score")
    return out["best"]["metric_value"]

  def run_mixture_source(mixture, run_dir):
    train(model_dir=run_dir, mixture_or_task_name=mixture, train_steps=source_steps,
          prompt_init=None, prompt_save_steps=())
    return os.path.join(run_dir, "prompts", "final")

  result = transfer(strategy, library, embedding, target_task=target_task,
                    out_dir=os.path.join(out_dir, "target"), run_target=run_target, k=k,
                    metric=metric, run_mixture_source=run_mixture_source)
  summary = {"target_task": target_task, "strategy": strategy, "k": k, "metric": metric,
             "ranking": [{"task": r.task, "similarity": r.score} for r in result.ranked],
             "runs": result.runs, "best": result.best, "library": library.root}
  with open(os.path.join(out_dir, "spot_result.json"), "w") as f:
    json.dump(summary, f, indent=2, default=str)
  return summary
