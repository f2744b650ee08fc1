r"""Zero-shot cross-task transfer (Su et al. 2022, §4): every prompt evaluated, untrained, on
every task, with the task's own metrics.

`write_matrix` writes `zero_shot.json` (raw scores, relative scores, each task's metric, the
prompts), `zero_shot.md` and `zero_shot_heatmap.png`; the command is
`python -m spot_jax.cli.zero_shot`. A prompt's score on a task is the
task's first metric (or `--metric`); its relative score is that divided by the mean score of
the task's own prompts (those trained on it), Su et al.'s relative performance. Each batch
decodes examples of several prompts at once (one compilation for any mix).
"""
import logging
import os
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from spot_jax import paths
from spot_jax.prompts import prompt_files
from spot_jax.transfer import study_report

log = logging.getLogger("spot_jax.zero_shot")


def zero_shot_matrix(prompts: Mapping[str, str], tasks: Sequence[str], *, model_config,
                     checkpoint_path: Optional[str], task_feature_lengths: Mapping[str, int],
                     split: str = "validation", num_examples: Optional[int] = None,
                     batch_size: int = 32, metric: Optional[str] = None) -> Dict[str, Any]:
  """`{prompts, prompt_tasks, tasks, metrics, raw [K][T], relative [K][T]}` for prompt files
  `{name: path}` on registered tasks. Every prompt must fit the model's width and each
  task's vocabulary."""
  import seqio
  from spot_jax.training import data, evaluator
  from spot_jax.model import checkpoints
  names = list(prompts)
  arrays, metas = [], []
  for name in names:
    array, meta = prompt_files.load_prompt(paths.absolute(prompts[name]),
                                           expected_shape=(None, model_config.emb_dim),
                                           require_metadata=False)
    arrays.append(array)
    metas.append(meta)
  lengths = {a.shape[0] for a in arrays}
  if len(lengths) != 1:
    raise ValueError(f"the prompts have different lengths {sorted(lengths)}; one table holds "
                     "prompts of one length")
  table = np.stack(arrays)
  params = checkpoints.load_frozen_model(paths.absolute(checkpoint_path), model_config, 0)
  decode_fn = evaluator.make_decode_fn(model_config, max_length=task_feature_lengths["targets"])
  prompt_tasks = [m.task if m is not None else None for m in metas]
  raw = np.full((len(names), len(tasks)), np.nan)
  chosen = {}
  for t, task in enumerate(tasks):
    vocab = data.output_vocabulary(task)
    want = data.vocabulary_hash(vocab)
    for name, meta in zip(names, metas):
      if meta is not None and meta.vocabulary_hash != want:
        raise ValueError(f"prompt {name!r} was trained with vocabulary "
                         f"{meta.vocabulary_hash[:12]}, task {task!r} tokenizes with "
                         f"{want[:12]}")
    ev = seqio.Evaluator(task, feature_converter=data.feature_converter(), eval_split=split,
                         sequence_length=dict(task_feature_lengths), num_examples=num_examples,
                         logger_cls=())
    predictor = evaluator.MixedPromptPredictor(decode_fn, params, table, batch_size)
    for k, name in enumerate(names):
      future, _ = ev.evaluate(compute_metrics=True, predict_fn=predictor.for_prompt(k))
      scores = {m: float(evaluator._scalar(v)) for m, v in future.result()[task].items()}  # pylint: disable=protected-access
      chosen[task] = metric if metric else next(iter(scores))
      if chosen[task] not in scores:
        raise KeyError(f"task {task!r} has no metric {chosen[task]!r}; it has {sorted(scores)}")
      raw[k, t] = scores[chosen[task]]
    log.info("%s: %s", task, {n: round(float(s), 2) for n, s in zip(names, raw[:, t])})
  relative = np.full_like(raw, np.nan)
  for t, task in enumerate(tasks):
    own = [k for k, pt in enumerate(prompt_tasks) if pt == task]
    base = float(np.mean(raw[own, t])) if own else 0.0
    if own and base > 0:
      relative[:, t] = raw[:, t] / base
  nan_to_none = lambda m: [[None if np.isnan(v) else float(v) for v in row] for row in m]
  return {"prompts": names, "prompt_files": [paths.absolute(prompts[n]) for n in names],
          "prompt_tasks": prompt_tasks, "tasks": list(tasks),
          "metrics": [chosen[t] for t in tasks], "split": split,
          "num_examples": num_examples, "raw": nan_to_none(raw),
          "relative": nan_to_none(relative)}


def matrix_markdown(result: Mapping[str, Any]) -> str:
  """Raw scores, with the relative score (to the task's own prompts) in brackets."""
  tasks = result["tasks"]
  lines = ["Zero-shot transfer: each prompt (row) evaluated untrained on each task (column); "
           f"{result['split']} split, metric per task: "
           + ", ".join(f"{t} {m}" for t, m in zip(tasks, result["metrics"]))
           + ". In brackets: relative to the task's own prompts (1.00 = as good).", "",
           "| prompt (trained on) | " + " | ".join(tasks) + " |",
           "|---|" + "---|" * len(tasks)]
  for name, task, raw, rel in zip(result["prompts"], result["prompt_tasks"], result["raw"],
                                  result["relative"]):
    cells = [f"{r:.2f}" + (f" ({q:.2f})" if q is not None else "") for r, q in zip(raw, rel)]
    lines.append(f"| {name} ({task or '?'}) | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot_matrix(result: Mapping[str, Any], path: str) -> str:
  """Heatmap of relative scores where the task has own prompts, raw scores elsewhere."""
  from matplotlib.figure import Figure
  rel = np.array([[np.nan if v is None else v for v in row] for row in result["relative"]])
  use_rel = not np.all(np.isnan(rel))
  values = rel if use_rel else np.array(result["raw"], float)
  fig = Figure(figsize=(1.0 * len(result["tasks"]) + 4, 0.45 * len(result["prompts"]) + 2))
  ax = fig.add_subplot()
  im = ax.imshow(np.nan_to_num(values), cmap="viridis", aspect="auto")
  fig.colorbar(im, ax=ax, label="relative score" if use_rel else "score")
  ax.set_xticks(range(len(result["tasks"])), result["tasks"], rotation=90, fontsize=8)
  ax.set_yticks(range(len(result["prompts"])), result["prompts"], fontsize=8)
  for i, row in enumerate(values):
    for j, v in enumerate(row):
      ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
              color="white")
  ax.set_title("Zero-shot transfer (rows: prompts, columns: tasks)")
  return study_report.save_png(fig, path)


def write_matrix(result: Mapping[str, Any], out_dir: str) -> Dict[str, str]:
  out_dir = paths.absolute(out_dir)
  files = study_report.write_report(out_dir, "zero_shot", result, matrix_markdown(result))
  files["heatmap"] = plot_matrix(result, os.path.join(out_dir, "zero_shot_heatmap.png"))
  return files


def library_prompts(library_dir: str) -> Dict[str, str]:
  """`{task/run: path}` of a library's transfer prompts."""
  from spot_jax.transfer.prompt_library import PromptLibrary
  library = PromptLibrary(paths.absolute(library_dir))
  return {f"{e.task}/{e.run or e.id}": library.path(e)
          for e in library.entries(role=prompt_files.TRANSFER)}
