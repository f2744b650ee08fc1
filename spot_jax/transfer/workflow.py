"""SPoT's steps on top of the trainer and the prompt library (Vu et al. 2022, §3): register
a source run, embed a task, and initialise a prompt from a library query. The study that
strings them together (retrieval and every target init) is `spot_jax.transfer.study`."""
import os
from typing import Any, Callable, Dict, List, Optional

from spot_jax import paths
from spot_jax.prompts import initializers, prompt_files
from spot_jax.transfer import retrieval, similarity
from spot_jax.transfer.prompt_library import LibraryEntry, ModelSignature, PromptLibrary

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
