"""Prompt files out of a `t5x.train` run: the same `MODEL_DIR/prompts/` that spot_jax's own
trainer writes (`step_<N>` task embeddings, `best` by validation, `final`), so the library,
retrieval and `spot_jax.cli.library` read runs of either trainer.

Both are T5X actions (`train.actions`), which t5x.train runs on process 0 after each stretch
of training (`TRAIN`) and after each inference evaluation (`INFER_EVAL`); they need
`train.concurrent_metrics = False`. The training stretches end at the checkpoint steps, so
the recipes make `PROMPT_SAVE_STEPS` checkpoint steps.
"""
import logging
import os
from typing import Any, Mapping, Optional, Sequence

import numpy as np
from t5x import trainer as t5x_trainer

from spot_jax.prompts import prompt_files
from spot_jax.t5x_integration.module import PROMPT_PARAM

log = logging.getLogger("spot_jax.t5x")


def local_prompt(train_state) -> np.ndarray:
  """The `[P, D]` prompt as numpy on this process (it is replicated on every device)."""
  x = train_state.params[PROMPT_PARAM]
  if getattr(x, "is_fully_addressable", True):
    return np.asarray(x, np.float32)
  if not x.is_fully_replicated:
    raise ValueError("the prompt must be replicated to be exported; add ('prompt', None) to "
                     "the partitioner's logical axis rules")
  return np.asarray(x.addressable_data(0), np.float32)


def metric_value(value: Any) -> float:
  """A seqio / clu metric value (`Scalar`, a clu `Metric`, an array or a number) as a float."""
  if hasattr(value, "compute"):
    value = value.compute()
  value = getattr(value, "value", value)
  return float(np.asarray(value))


class _PromptWriter:
  """The metadata every prompt of a run shares; writes `MODEL_DIR/prompts/<name>`."""

  def __init__(self, *, model_dir: str, task: str, model_name: str, vocabulary,
               seed: Optional[int] = None, run: Optional[str] = None):
    from spot_jax import paths
    self.prompt_dir = os.path.join(paths.absolute(model_dir), "prompts")
    self.meta = dict(task=task, model_name=model_name,
                     vocabulary_hash=prompt_files.vocabulary_hash_of(vocabulary), seed=seed,
                     run=run or os.path.basename(os.path.normpath(model_dir)))

  def write(self, name: str, prompt: np.ndarray, step: int, role: Optional[str],
            metric: Optional[Sequence] = None) -> str:
    extra = {} if metric is None else {"metric_name": metric[0], "metric_value": metric[1]}
    path = prompt_files.save_prompt(os.path.join(self.prompt_dir, name), prompt,
                                    dict(self.meta, step=step, role=role, **extra))
    log.info("wrote prompt %s (step %d)", path, step)
    return path


class ExportPrompts(t5x_trainer.BaseAction):
  """TRAIN action: `prompts/step_<N>` (a task embedding) at each of `save_steps`, and
  `prompts/final` at `final_step`."""

  def __init__(self, *, save_steps: Sequence[int] = (), final_step: int, **writer_kwargs):
    self._writer = _PromptWriter(**writer_kwargs)
    self._save_steps = {int(s) for s in (save_steps or ())}
    self._final_step = int(final_step)

  def run(self, train_state, metrics_by_task) -> bool:
    del metrics_by_task
    step = int(np.asarray(train_state.step))
    if step in self._save_steps or step == self._final_step:
      prompt = local_prompt(train_state)
      if step in self._save_steps:
        self._writer.write(f"step_{step}", prompt, step, prompt_files.TASK_EMBEDDING)
      if step == self._final_step:
        best = prompt_files.prompt_exists(os.path.join(self._writer.prompt_dir, "best"))
        self._writer.write("final", prompt, step, None if best else prompt_files.TRANSFER)
    return False


class ExportBestPrompt(t5x_trainer.BaseAction):
  """INFER_EVAL action: `prompts/best` whenever the validation score beats the best so far
  (recorded in `best.json`, so a resumed run keeps it). `best_metric` as in spot_jax.train:
  'task/metric', a metric averaged over tasks, or None for the mean of each task's first
  metric."""

  def __init__(self, *, best_metric: Optional[str] = None, **writer_kwargs):
    self._writer = _PromptWriter(**writer_kwargs)
    self._best_metric = best_metric

  def _best_so_far(self) -> Optional[float]:
    try:
      return prompt_files.load_metadata(os.path.join(self._writer.prompt_dir, "best")
                                        ).metric_value
    except (FileNotFoundError, prompt_files.PromptFileError):
      return None

  def run(self, train_state, metrics_by_task: Mapping[str, Mapping[str, Any]]) -> bool:
    from spot_jax.training.evaluator import select_metric
    scores = {task: {name: metric_value(v) for name, v in metrics.items()}
              for task, metrics in metrics_by_task.items()}
    name, value = select_metric(scores, self._best_metric)
    best = self._best_so_far()
    step = int(np.asarray(train_state.step))
    if best is None or value > best:
      self._writer.write("best", local_prompt(train_state), step, prompt_files.TRANSFER,
                         (name, value))
    log.info("step %d validation %s = %.4f (best %s)", step, name, value,
             "this" if best is None or value > best else f"{best:.4f}")
    return False
