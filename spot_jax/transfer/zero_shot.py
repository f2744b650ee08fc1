r"""Zero-shot cross-task transfer (Su et al. 2022, §4): every prompt evaluated, untrained, on
every task, with the task's own metrics.

`transfer_report.write_zero_shot` writes it as `zero_shot.json` (raw scores, relative scores,
each task's metric, the prompts), `zero_shot.md` and `zero_shot_heatmap.png`; the command is
`python -m spot_jax.cli.zero_shot`. A prompt's score on a task is the
task's first metric (or `--metric`); its relative score is that divided by the mean score of
the task's own prompts (those trained on it), Su et al.'s relative performance. Each batch
decodes examples of several prompts at once (one compilation for any mix).
"""
import logging
from typing import Any, Dict, Mapping, Optional, Sequence

import numpy as np

from spot_jax import paths
from spot_jax.prompts import prompt_files

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


def library_prompts(library_dir: str) -> Dict[str, str]:
  """`{task/run: path}` of a library's transfer prompts."""
  from spot_jax.transfer.prompt_library import PromptLibrary
  library = PromptLibrary(paths.absolute(library_dir))
  return {f"{e.task}/{e.run or e.id}": library.path(e)
          for e in library.entries(role=prompt_files.TRANSFER)}
