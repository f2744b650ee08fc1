"""Evaluating and decoding with a saved prompt (or a model-tuned checkpoint): the library
side of `python -m spot_jax.eval` and `python -m spot_jax.infer`."""
import json
import logging
import os
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from spot_jax import atomic_files, paths, settings
from spot_jax.model import checkpoints as model_checkpoints
from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5, logical_axes
from spot_jax.prompts import prompt_files
from spot_jax.tasks import pipeline
from spot_jax.training import data, partitioning
from spot_jax.training.evaluator import Validator, make_decode_fn, predict_batches

log = logging.getLogger("spot_jax.inference")


def _check_settings(function: str, *, batch_size, num_examples, beam_size,
                    task_feature_lengths) -> None:
  settings.integer(function, "batch_size", batch_size, minimum=1)
  settings.integer(function, "beam_size", beam_size, minimum=1)
  settings.integer(function, "num_examples", num_examples, minimum=1, optional=True)
  settings.feature_lengths(function, "task_feature_lengths", task_feature_lengths)


def load_prompt_for_model(prompt_file: Optional[str], config: T5Config, vocab
                          ) -> Tuple[Optional[jax.Array], Optional[prompt_files.PromptMetadata]]:
  """The `[P, D]` prompt, checked against the model's width and the task's vocabulary.

  A bare `.npy` (no metadata, e.g. a released prompt) loads with metadata None.
  """
  if not prompt_file:
    return None, None
  array, meta = prompt_files.load_prompt(prompt_file, expected_shape=(None, config.emb_dim),
                                         require_metadata=False)
  if meta is not None:
    want = data.vocabulary_hash(vocab)
    if meta.vocabulary_hash != want:
      raise ValueError(f"{prompt_file} was trained with vocabulary {meta.vocabulary_hash}, the "
                       f"task tokenizes with {want}")
    if meta.model_name != config.name:
      log.warning("%s was trained on model %r; evaluating on %r", prompt_file, meta.model_name,
                  config.name)
  return jnp.asarray(array, jnp.float32), meta


def _load(mixture_or_task_name, model_config, checkpoint_path, prompt_file, seed, mesh_shape):
  """Validates task, vocabulary and prompt before reading the model, which is placed on the
  mesh by its logical axes (sharded on 'model', as in training)."""
  vocab = data.output_vocabulary(mixture_or_task_name)
  data.check_vocabulary_fits(vocab, model_config.vocab_size, mixture_or_task_name)
  prompt, meta = load_prompt_for_model(prompt_file, model_config, vocab)
  mesh = partitioning.make_mesh(*mesh_shape)
  params = jax.device_put(model_checkpoints.load_frozen_model(checkpoint_path, model_config, seed),
                          partitioning.logical_to_sharding(logical_axes(model_config), mesh))
  if prompt is not None:
    prompt = jax.device_put(prompt, partitioning.replicated(mesh))
  return vocab, prompt, meta, params


def evaluate(*, mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
             model_config: T5Config, checkpoint_path: Optional[str],
             prompt_file: Optional[str] = None, split: str = "validation",
             batch_size: int = 32, num_examples: Optional[int] = None, beam_size: int = 1,
             use_cached: bool = False, output_dir: Optional[str] = None,
             seed: int = 0, mesh_shape: Tuple[int, int] = (-1, 1)
             ) -> Dict[str, Dict[str, float]]:
  """`{task: {metric: value}}` of a prompt on a task's (or mixture's) split.

  With no `prompt_file` the model is scored alone (a model-tuned checkpoint). In
  `output_dir`: `metrics.json` and seqio's per-example inference logs.
  """
  _check_settings("evaluate", batch_size=batch_size, num_examples=num_examples,
                  beam_size=beam_size, task_feature_lengths=task_feature_lengths)
  checkpoint_path, prompt_file, output_dir = map(paths.absolute,
                                                 (checkpoint_path, prompt_file, output_dir))
  _, prompt, meta, params = _load(mixture_or_task_name, model_config, checkpoint_path,
                                  prompt_file, seed, mesh_shape)
  step = meta.step if meta is not None else 0
  validator = Validator(mixture_or_task_name, model=T5(model_config),
                        task_feature_lengths=task_feature_lengths, split=split,
                        batch_size=batch_size, num_examples=num_examples,
                        use_cached=use_cached, beam_size=beam_size, log_dir=output_dir)
  metrics = validator(params, prompt, step)
  if output_dir:
    report = {"mixture_or_task_name": mixture_or_task_name, "split": split,
              "checkpoint_path": checkpoint_path, "prompt_file": prompt_file, "step": step,
              "num_examples": num_examples, "metrics": metrics}
    path = os.path.join(output_dir, "metrics.json")
    atomic_files.write_atomically(path, (json.dumps(report, indent=2) + "\n").encode())
    log.info("wrote %s", path)
  return metrics


class _Rows:
  """Already-featurized examples in the form `predict_batches` reads."""

  def __init__(self, rows: List[Dict[str, np.ndarray]]):
    self.rows = rows

  def as_numpy_iterator(self) -> Iterator[Tuple[int, Dict[str, np.ndarray]]]:
    return iter(enumerate(self.rows))


def _pad(ids, length: int) -> np.ndarray:
  ids = np.asarray(ids, np.int32)[:length]
  return np.pad(ids, (0, length - len(ids)))


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _split_examples(mixture_or_task_name: str, split: str, lengths: Mapping[str, int],
                    num_examples: Optional[int], use_cached: bool):
  """(task, example) pairs of every task of the mixture, in order, unshuffled."""
  import seqio
  provider = pipeline.get_task_or_mixture(mixture_or_task_name)
  tasks = provider.tasks if isinstance(provider, seqio.Mixture) else [provider]
  for task in tasks:
    ds = task.get_dataset(dict(lengths), split=split, shuffle=False, num_epochs=1,
                          use_cached=use_cached)
    if num_examples:
      ds = ds.take(num_examples)
    for ex in ds.as_numpy_iterator():
      yield task.name, ex


def infer(*, mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
          model_config: T5Config, checkpoint_path: Optional[str], output_dir: str,
          prompt_file: Optional[str] = None, split: str = "validation",
          input_file: Optional[str] = None, batch_size: int = 32,
          num_examples: Optional[int] = None, beam_size: int = 1, use_cached: bool = False,
          seed: int = 0, mesh_shape: Tuple[int, int] = (-1, 1)) -> int:
  """Decodes a split (or each line of `input_file`, tokenized with the task's vocabulary)
  and writes JSON lines `{task, input, target, prediction}` to
  `output_dir/predictions.jsonl`; returns how many."""
  _check_settings("infer", batch_size=batch_size, num_examples=num_examples,
                  beam_size=beam_size, task_feature_lengths=task_feature_lengths)
  checkpoint_path, prompt_file, output_dir, input_file = map(
      paths.absolute, (checkpoint_path, prompt_file, output_dir, input_file))
  vocab, prompt, _, params = _load(mixture_or_task_name, model_config, checkpoint_path,
                                   prompt_file, seed, mesh_shape)
  length = task_feature_lengths["inputs"]
  records: List[Dict[str, Any]] = []
  rows = []
  if input_file:
    with open(input_file) as f:
      lines = [line.rstrip("\n") for line in f if line.strip()]
    if num_examples:
      lines = lines[:num_examples]
    eos = getattr(vocab, "eos_id", 1)
    for line in lines:
      ids = list(vocab.encode(line))[:length - 1] + [eos]
      rows.append({"encoder_input_tokens": _pad(ids, length)})
      records.append({"task": mixture_or_task_name, "input": line})
  else:
    for task, ex in _split_examples(mixture_or_task_name, split, task_feature_lengths,
                                    num_examples, use_cached):
      rows.append({"encoder_input_tokens": _pad(ex["inputs"], length)})
      record = {"task": task,
                "input": _text(ex["inputs_pretokenized"]) if "inputs_pretokenized" in ex
                else vocab.decode(ex["inputs"].tolist())}
      if "targets_pretokenized" in ex:
        record["target"] = _text(ex["targets_pretokenized"])
      records.append(record)
  decode_fn = make_decode_fn(model_config, max_length=task_feature_lengths["targets"],
                             beam_size=beam_size)
  for index, tokens in predict_batches(decode_fn, params, prompt, _Rows(rows), batch_size):
    records[index]["prediction"] = vocab.decode(tokens.tolist())
  os.makedirs(output_dir, exist_ok=True)
  output_path = os.path.join(output_dir, "predictions.jsonl")
  body = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
  atomic_files.write_atomically(output_path, body.encode("utf-8"))
  log.info("wrote %d predictions to %s", len(records), output_path)
  return len(records)
