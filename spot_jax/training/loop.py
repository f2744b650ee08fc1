"""The training loop every run goes through, one run or N packed runs.

`trainer.train` (one run over a mesh: prompt, model or projector tuning, `python -m
spot_jax.train`) and `multi_prompt.train_prompts` (N prompt runs in one step over one frozen
model, the study's stages) build their state, data and step, and hand the loop a `Runs`:
what differs between them. The loop owns what every run does the same way: the step
schedule, logging, TensorBoard scalars and history, prompt files at `prompt_save_steps`, at
the best validation score and at the end, validation and best tracking, checkpoints, the
finiteness check before anything is written, and SIGTERM (save, exit for an exact rerun).
"""
import dataclasses
import logging
import os
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from clu import metric_writers

from spot_jax.prompts import prompt_files
from spot_jax.training import evaluator, preemption
from spot_jax.training.evaluator import select_metric

log = logging.getLogger("spot_jax.train")


def read_best(model_dir: str) -> Optional[Dict[str, Any]]:
  """The best validation score recorded by an earlier (interrupted) run of this directory."""
  try:
    m = prompt_files.load_metadata(os.path.join(model_dir, "prompts", "best"))
  except (FileNotFoundError, prompt_files.PromptFileError):
    return None
  return {"step": m.step, "metric_name": m.metric_name, "metric_value": m.metric_value}


def fmt_eta(seconds: float) -> str:
  seconds = int(max(seconds, 0))
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Runs:
  """What a loop drives: N >= 1 runs that step together. Subclasses implement the methods;
  `model_dirs` and `metas` (each run's prompt-file metadata) are set by them."""
  model_dirs: Sequence[str]
  metas: Sequence[Dict[str, Any]]
  packed: bool = False  # log as a packed group (one line for all runs)
  validates: bool = False

  def step(self) -> Any:
    """Fetches the next batch, takes one update, returns its metrics (device arrays)."""
    raise NotImplementedError

  def current_step(self) -> int:
    raise NotImplementedError

  def check_finite(self) -> None:
    """Raises FloatingPointError, naming the run and step, if an update was refused."""
    raise NotImplementedError

  def metric_rows(self, metrics) -> List[Dict[str, float]]:
    """Each run's scalars from a step's metrics."""
    raise NotImplementedError

  def prompt(self, i: int) -> Optional[np.ndarray]:
    """Run i's `[P, D]` prompt now; None when the run trains no prompt (model tuning)."""
    raise NotImplementedError

  def validate(self, step: int) -> List[Dict[str, Dict[str, float]]]:
    """Each run's validation results, `{task: {metric: value}}`."""
    raise NotImplementedError

  def save_checkpoints(self, step: int) -> None:
    raise NotImplementedError

  def close(self) -> None:
    """Closes the checkpointers (waits for their writes)."""
    raise NotImplementedError


@dataclasses.dataclass
class Outcome:
  """What the loop leaves of each run: final step, best score, history, wall time."""
  final_step: int
  best: List[Optional[Dict[str, Any]]]
  histories: List[List[Dict[str, Any]]]
  wall_seconds: float


def run(runs: Runs, *, train_steps: int, batch_size: int, log_period: int, eval_period: int,
        checkpoint_period: int, prompt_save_steps: Sequence[int],
        best_metric: Optional[str]) -> Outcome:
  """Trains `runs` to `train_steps` (from the step they resumed at); see the module doc."""
  dirs = list(runs.model_dirs)
  n = len(dirs)
  writers = [metric_writers.create_default_writer(os.path.join(d, "train"),
                                                  just_logging=_not_lead())
             for d in dirs]
  eval_writers = [metric_writers.create_default_writer(os.path.join(d, "eval"),
                                                       just_logging=_not_lead())
                  for d in dirs]
  best = [read_best(d) for d in dirs]
  step = runs.current_step()
  histories = [evaluator.load_history(d, step) for d in dirs]  # a resumed run's earlier ones

  def save(i, name, at, role, metric=None):
    prompt = runs.prompt(i)
    if prompt is None:
      return
    extra = {} if metric is None else {"metric_name": metric[0], "metric_value": metric[1]}
    prompt_files.save_prompt(os.path.join(dirs[i], "prompts", name), np.asarray(prompt),
                             dict(runs.metas[i], step=at, role=role, **extra))

  def flush_and_close():
    for w in writers + eval_writers:
      w.flush()
    runs.close()

  if step == 0 and 0 in prompt_save_steps:  # the init, e.g. to see how far training moved it
    for i in range(n):
      save(i, "step_0", 0, None)
  t_start = t_last = time.time()
  step_last = step
  with preemption.sigterm_requests() as stop_requested:
    while step < train_steps:
      metrics = runs.step()
      step += 1
      if step % log_period == 0 or step == train_steps:
        runs.check_finite()
        rows = runs.metric_rows(metrics)
        now = time.time()
        sps = (step - step_last) / max(now - t_last, 1e-9)
        for i, row in enumerate(rows):
          row.update(steps_per_sec=sps, examples_per_sec=sps * batch_size)
          writers[i].write_scalars(step, row)
          histories[i].append({"step": step, **row})
        if runs.packed:
          log.info("step %d/%d, %d packed runs: loss %s  %.2f steps/s  %.1f examples/s", step,
                   train_steps, n, [round(r["loss"], 3) for r in rows], sps,
                   sps * batch_size * n)
        else:
          log.info("step %d/%d loss %.4f acc %.3f  %.2f steps/s  %.1f examples/s  ETA %s",
                   step, train_steps, rows[0]["loss"], rows[0]["accuracy"], sps,
                   sps * batch_size, fmt_eta((train_steps - step) / max(sps, 1e-9)))
        t_last, step_last = now, step
      if step in prompt_save_steps:
        runs.check_finite()
        for i in range(n):
          save(i, f"step_{step}", step, prompt_files.TASK_EMBEDDING)
      if runs.validates and (step % eval_period == 0 or step == train_steps):
        runs.check_finite()
        for i, results in enumerate(runs.validate(step)):
          name, value = select_metric(results, best_metric)
          eval_writers[i].write_scalars(step, {f"{t}/{k}": v for t, mm in results.items()
                                               for k, v in mm.items()})
          log.info("%sstep %d validation %s: %s = %.4f",
                   f"{dirs[i]} " if runs.packed else "", step, results, name, value)
          histories[i].append({"step": step, "eval": results, name: value})
          evaluator.save_history(dirs[i], histories[i])
          if best[i] is None or value > best[i]["metric_value"]:
            best[i] = {"step": step, "metric_name": name, "metric_value": value}
            save(i, "best", step, prompt_files.TRANSFER, (name, value))
      saved = (checkpoint_period and step % checkpoint_period == 0) or step == train_steps
      if saved:
        runs.check_finite()
        runs.save_checkpoints(step)
      if stop_requested():  # also at the last step: the rerun finishes the runs' outputs
        runs.check_finite()
        if not saved:
          runs.save_checkpoints(step)
        flush_and_close()
        raise preemption.Preempted(", ".join(dirs), step)
  runs.check_finite()
  for i in range(n):
    save(i, "final", step, prompt_files.TRANSFER if best[i] is None else None)
  flush_and_close()
  return Outcome(final_step=step, best=best, histories=histories,
                 wall_seconds=time.time() - t_start)


def _not_lead() -> bool:
  import jax  # pylint: disable=g-import-not-at-top
  return jax.process_index() > 0
