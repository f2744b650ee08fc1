"""Validation with the task's own seqio metrics: decode, postprocess, score."""
import functools
import json
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np
import seqio

from spot_jax import atomic_files
from spot_jax.model import decoding
from spot_jax.model.t5 import T5
from spot_jax.prompts.prompt import gather_prompts, prefix_prompt
from spot_jax.training import data


@functools.lru_cache(maxsize=16)  # shared by every run of the same model and lengths
def make_decode_fn(config, *, max_length: int, eos_id: int = 1, beam_size: int = 1,
                   alpha: float = 0.6):
  """A jitted `(model_params, prompt, encoder_tokens [B, L]) -> [B, max_length]` decoder."""
  model = T5(config)

  def decode(model_params, prompt, tokens):
    mask = tokens > 0
    x = model.apply({"params": model_params}, tokens, method=T5.embed)
    if prompt is not None:
      x, mask = prefix_prompt(prompt, x, mask)
    encoded = model.apply({"params": model_params}, x, mask, method=T5.encode)
    if beam_size == 1:
      return decoding.greedy_decode(model, model_params, encoded, mask, max_length=max_length,
                                    eos_id=eos_id)
    seqs, _ = decoding.beam_search(model, model_params, encoded, mask, max_length=max_length,
                                   beam_size=beam_size, alpha=alpha, eos_id=eos_id)
    return seqs[:, 0]

  return jax.jit(decode)


def predict_batches(decode_fn, model_params, prompt, ds, batch_size: int):
  """Runs `decode_fn` over an enumerated seqio eval dataset -> [(index, tokens)]."""
  results = []
  pending = []

  def flush():
    idx = [i for i, _ in pending]
    tokens = np.stack([ex["encoder_input_tokens"] for _, ex in pending])
    n = len(pending)
    if n < batch_size:  # pad the last batch so one compiled shape serves all
      tokens = np.concatenate([tokens, np.zeros((batch_size - n,) + tokens.shape[1:],
                                                tokens.dtype)])
    out = np.asarray(decode_fn(model_params, prompt, jnp.asarray(tokens)))[:n]
    # Fixed-length rows, zero after EOS: seqio stacks them and its vocabularies stop at EOS.
    results.extend((i, row) for i, row in zip(idx, out))
    pending.clear()

  for index, ex in ds.as_numpy_iterator():
    pending.append((int(index), ex))
    if len(pending) == batch_size:
      flush()
  if pending:
    flush()
  return results


class Validator:
  """Scores a prompt (or model) on a task's or mixture's split with the task metrics."""

  def __init__(self, mixture_or_task_name: str, *, model: T5,
               task_feature_lengths: Dict[str, int], split: str = "validation",
               batch_size: int = 32, num_examples: Optional[int] = None,
               use_cached: bool = False, beam_size: int = 1, log_dir: Optional[str] = None):
    if log_dir:
      import os
      os.makedirs(log_dir, exist_ok=True)
    self.evaluator = seqio.Evaluator(
        mixture_or_task_name, feature_converter=data.feature_converter(), eval_split=split,
        use_cached=use_cached, sequence_length=dict(task_feature_lengths),
        num_examples=num_examples, log_dir=log_dir,
        logger_cls=(seqio.JSONLogger,) if log_dir else ())
    self.batch_size = batch_size
    self.decode_fn = make_decode_fn(model.config, max_length=task_feature_lengths["targets"],
                                    beam_size=beam_size)

  def __call__(self, model_params, prompt, step: Optional[int] = None, *,
               predict_fn: Optional[Callable] = None) -> Dict[str, Dict[str, float]]:
    """`{task: {metric: value}}` for every task of the mixture; `predict_fn` replaces the
    decoding of `prompt` (e.g. a `MixedPromptPredictor`'s, which decoded several at once)."""
    if predict_fn is None:
      predict_fn = lambda ds: predict_batches(self.decode_fn, model_params, prompt, ds,
                                              self.batch_size)
    future, _ = self.evaluator.evaluate(compute_metrics=True, step=step, predict_fn=predict_fn)
    metrics = future.result()
    return {task: {name: float(_scalar(v)) for name, v in m.items()}
            for task, m in metrics.items()}


def _scalar(value: Any) -> float:
  if hasattr(value, "value"):  # clu / seqio metric values
    value = value.value
  return float(np.asarray(value))


def select_metric(metrics: Dict[str, Dict[str, float]], name: Optional[str]
                  ) -> Tuple[str, float]:
  """The metric a run optimises: `task/metric`, a metric name averaged over tasks, or by
  default the mean of every task's first metric."""
  if name and "/" in name:
    task, metric = name.split("/", 1)
    return name, metrics[task][metric]
  if name:
    values = [m[name] for m in metrics.values() if name in m]
    if not values:
      raise KeyError(f"metric {name!r} not among {sorted({k for m in metrics.values() for k in m})}")
    return name, float(np.mean(values))
  firsts = [next(iter(m.values())) for m in metrics.values() if m]
  return "mean_first_metric", float(np.mean(firsts))


class MixedPromptPredictor:
  """seqio `predict_fn`s for K prompts that decode all K x examples in mixed batches once,
  on the first call, and hand each prompt's predictions out from that."""

  def __init__(self, decode_fn, model_params, table: np.ndarray, batch_size: int):
    self.decode_fn, self.params, self.batch_size = decode_fn, model_params, batch_size
    self.table = table
    self.cache: Optional[Dict[int, List]] = None

  def _decode_all(self, ds) -> Dict[int, List]:
    rows = list(ds.as_numpy_iterator())
    grid = [(k, i) for k in range(len(self.table)) for i in range(len(rows))]
    out: Dict[int, List] = {k: [] for k in range(len(self.table))}
    table = jnp.asarray(self.table)
    for start in range(0, len(grid), self.batch_size):
      cells = grid[start:start + self.batch_size]
      pad = self.batch_size - len(cells)
      prompt_index = np.array([k for k, _ in cells] + [0] * pad, np.int32)
      tokens = np.stack([rows[i][1]["encoder_input_tokens"] for _, i in cells])
      tokens = np.concatenate([tokens, np.zeros((pad,) + tokens.shape[1:], tokens.dtype)])
      decoded = np.asarray(self.decode_fn(self.params, gather_prompts(table, prompt_index),
                                          jnp.asarray(tokens)))
      for (k, i), row in zip(cells, decoded):
        out[k].append((int(rows[i][0]), row))
    return out

  def for_prompt(self, k: int):
    def predict_fn(ds):
      if self.cache is None:
        self.cache = self._decode_all(ds)
      return self.cache[k]
    return predict_fn


HISTORY_FILE = "validation_history.json"


def load_history(model_dir: str, upto_step: int) -> List[Dict[str, Any]]:
  """The validations a run recorded before it was interrupted, up to the step it resumes
  from (later ones are done again), so a resumed run's learning curve is whole."""
  path = os.path.join(model_dir, HISTORY_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      entries = json.load(f)
  except FileNotFoundError:
    return []
  except ValueError as e:
    raise ValueError(f"{path} is not valid JSON ({e}); it holds the run's validation scores "
                     "so far: restore it or start the run again in a new directory") from None
  return [h for h in entries if h["step"] <= upto_step]


def save_history(model_dir: str, history: Sequence[Mapping[str, Any]]) -> None:
  """Writes a run's validations (the `eval` entries of its history) atomically."""
  evals = [dict(h) for h in history if "eval" in h]
  atomic_files.write_atomically(os.path.join(model_dir, HISTORY_FILE),
                                json.dumps(evals, indent=1).encode())
