"""Prompts in other tools' formats, in and out of spot_jax prompt files (`.npy` + `.json`).

* Hugging Face PEFT prompt tuning: an adapter directory with `adapter_config.json`
  (`peft_type` PROMPT_TUNING, `task_type` SEQ_2_SEQ_LM) and `adapter_model.safetensors`
  holding `prompt_embeddings` `[num_virtual_tokens * num_transformer_submodules, token_dim]`.
  SPoT prompts the encoder only: `num_transformer_submodules` 1. PEFT's seq2seq default (2)
  adds decoder rows that SPoT has no place for, so such adapters are refused.
* google-research/prompt-tuning: a bare `[P, D]` numpy file, written (without a `.npy`
  suffix) as `numpy_checkpoints/checkpoint_<step>/encoder.prompt.prompt.prompt`. It carries
  no metadata, so importing one needs the task, model and vocabulary.

Only safetensors and `.npy` headers are read: nothing is unpickled.
"""
import json
import os
from typing import Any, Dict, Optional

import numpy as np

from spot_jax import atomic_files
from spot_jax.prompts import prompt_files

PEFT_CONFIG = "adapter_config.json"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_KEY = "prompt_embeddings"
PROMPT_TUNING_NAME = "encoder.prompt.prompt.prompt"


class InterchangeError(ValueError):
  """A file of another tool that cannot be converted as asked."""


def peft_adapter_config(prompt: np.ndarray, *, num_heads: Optional[int] = None,
                        num_layers: Optional[int] = None,
                        base_model: Optional[str] = None) -> Dict[str, Any]:
  """The `adapter_config.json` PEFT writes for an encoder-only prompt `[P, D]` on T5."""
  return {
      "auto_mapping": None, "base_model_name_or_path": base_model, "inference_mode": True,
      "modules_to_save": None, "num_attention_heads": num_heads, "num_layers": num_layers,
      "num_transformer_submodules": 1, "num_virtual_tokens": int(prompt.shape[0]),
      "peft_type": "PROMPT_TUNING", "prompt_tuning_init": "RANDOM",
      "prompt_tuning_init_text": None, "revision": None, "task_type": "SEQ_2_SEQ_LM",
      "token_dim": int(prompt.shape[1]), "tokenizer_kwargs": None,
      "tokenizer_name_or_path": None,
  }


def export_peft(prompt_path: str, out_dir: str, *, num_heads: Optional[int] = None,
                num_layers: Optional[int] = None, base_model: Optional[str] = None) -> str:
  """Writes a spot_jax prompt file as a PEFT prompt-tuning adapter directory; returns it.

  `base_model` (e.g. the Hugging Face export of the model) goes into the config, as do the
  model's head and layer counts when given; the prompt's model name defaults `base_model`.
  """
  from safetensors.numpy import save_file
  prompt, meta = prompt_files.load_prompt(prompt_path, require_metadata=False)
  if base_model is None and meta is not None:
    base_model = meta.model_name
  config = peft_adapter_config(prompt, num_heads=num_heads, num_layers=num_layers,
                               base_model=base_model)
  with atomic_files.atomic_output(os.path.join(out_dir, PEFT_WEIGHTS)) as tmp:
    save_file({PEFT_KEY: np.ascontiguousarray(prompt, np.float32)}, tmp,
              metadata={"format": "pt"})
  atomic_files.write_atomically(os.path.join(out_dir, PEFT_CONFIG),
                                (json.dumps(config, indent=2, sort_keys=True) + "\n").encode())
  return out_dir


def read_peft(adapter_dir: str, *, d_model: Optional[int] = None) -> np.ndarray:
  """The `[P, D]` encoder prompt of a PEFT prompt-tuning adapter, after refusing adapters
  of another kind, prompts on the decoder too, or a width other than `d_model`."""
  from safetensors import safe_open
  config_path = os.path.join(adapter_dir, PEFT_CONFIG)
  try:
    with open(config_path) as f:
      config = json.load(f)
  except FileNotFoundError:
    raise InterchangeError(f"{adapter_dir} is not a PEFT adapter: no {PEFT_CONFIG}") from None
  except json.JSONDecodeError as e:
    raise InterchangeError(f"{config_path} is not valid JSON: {e}") from None
  if config.get("peft_type") != "PROMPT_TUNING":
    raise InterchangeError(f"{config_path}: peft_type is {config.get('peft_type')!r}; only "
                           "PROMPT_TUNING adapters hold a soft prompt to convert")
  if config.get("task_type") not in ("SEQ_2_SEQ_LM", None):
    raise InterchangeError(f"{config_path}: task_type is {config.get('task_type')!r}; a T5 "
                           "prompt is a SEQ_2_SEQ_LM adapter")
  submodules = config.get("num_transformer_submodules")
  if submodules != 1:
    raise InterchangeError(
        f"{config_path}: num_transformer_submodules is {submodules!r}; SPoT prompts the encoder "
        "only (1). With 2 (PEFT's seq2seq default) the adapter also holds decoder rows, which "
        "spot_jax's model has no place for; train it with num_transformer_submodules=1")
  weights = os.path.join(adapter_dir, PEFT_WEIGHTS)
  if not os.path.isfile(weights):
    found = [n for n in ("adapter_model.bin",) if os.path.exists(os.path.join(adapter_dir, n))]
    raise InterchangeError(f"no {PEFT_WEIGHTS} in {adapter_dir}" + (
        f" (only {found}: pickled weights are never loaded; re-save the adapter with "
        "safe_serialization=True)" if found else ""))
  from safetensors import SafetensorError
  try:
    with safe_open(weights, framework="np") as f:
      if PEFT_KEY not in f.keys():
        raise InterchangeError(f"{weights} has no {PEFT_KEY!r} tensor (keys: {list(f.keys())})")
      prompt = f.get_tensor(PEFT_KEY)
  except SafetensorError as e:
    raise InterchangeError(f"{weights} is not a readable safetensors file ({e}); it may be "
                           "truncated or not an adapter's weights: save the adapter again "
                           "with PEFT's save_pretrained") from None
  tokens, width = config.get("num_virtual_tokens"), config.get("token_dim")
  if prompt.ndim != 2 or (tokens, width) != tuple(prompt.shape):
    raise InterchangeError(f"{weights}: {PEFT_KEY} has shape {list(prompt.shape)}, but the "
                           f"config says [{tokens}, {width}] (num_virtual_tokens, token_dim)")
  if d_model is not None and width != d_model:
    raise InterchangeError(f"{adapter_dir}: the prompt is {width} wide (token_dim) but the "
                           f"model's width is {d_model}; prompts are never truncated or "
                           "padded across models")
  try:
    return prompt_files.as_prompt_array(prompt)
  except ValueError as e:
    raise InterchangeError(f"{weights}: {e}") from None


def read_prompt_tuning_npy(path: str, *, d_model: Optional[int] = None) -> np.ndarray:
  """A `[P, D]` prompt as prompt-tuning saves it (a numpy file, with or without `.npy`)."""
  prompt = prompt_files.read_npy(path)
  if d_model is not None and prompt.shape[1] != d_model:
    raise InterchangeError(f"{path}: the prompt is {prompt.shape[1]} wide but the model's "
                           f"width is {d_model}")
  return prompt


def write_prompt_tuning_npy(prompt_path: str, out: str) -> str:
  """Writes a spot_jax prompt as prompt-tuning's bare numpy file. `out` is the file, or a
  directory that receives `numpy_checkpoints/checkpoint_<step>/encoder.prompt.prompt.prompt`
  (prompt-tuning's layout; the step from the prompt's metadata, else 0)."""
  prompt, meta = prompt_files.load_prompt(prompt_path, require_metadata=False)
  if os.path.isdir(out):
    step = meta.step if meta is not None else 0
    out = os.path.join(out, "numpy_checkpoints", f"checkpoint_{step}", PROMPT_TUNING_NAME)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  atomic_files.write_atomically(out, prompt_files.npy_bytes(prompt))
  return out


def save_imported(prompt: np.ndarray, out_path: str, *, task: str, model_name: str,
                  vocabulary_hash: str, source: str, step: int = 0) -> str:
  """A prompt read from another tool's file as a spot_jax prompt file, with the metadata
  the caller supplies and where it came from (`extra.imported_from`)."""
  meta = prompt_files.PromptMetadata(task=task, model_name=model_name,
                                     vocabulary_hash=vocabulary_hash, step=step,
                                     extra={"imported_from": os.path.abspath(source)})
  return prompt_files.save_prompt(out_path, prompt, meta)
