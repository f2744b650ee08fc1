"""Hugging Face T5 v1.1 checkpoints (`config.json` + safetensors) to and from our parameter tree.

Only safetensors are read, so no pickle is ever executed. HF stores torch `nn.Linear` weights as
[out, in]; T5X kernels are [in, out], hence the transposes. The relative position table is
[buckets, H] in HF and [H, buckets] in T5X.
"""
import json
import os
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

from spot_jax import atomic_files
from spot_jax.model.config import T5Config
from spot_jax.model.t5x_checkpoint import DTypeLike, as_dtype, flatten, unflatten

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
_PICKLE_FILES = ("pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
                 "flax_model.msgpack")
# Copies of `shared.weight` that HF keeps for the encoder and decoder embeddings.
TIED_EMBEDDINGS = ("encoder.embed_tokens.weight", "decoder.embed_tokens.weight")


class HFCheckpointError(ValueError):
  """A Hugging Face checkpoint this reader cannot or must not load."""


def is_hf_checkpoint(path: str) -> bool:
  return os.path.isdir(path) and os.path.isfile(os.path.join(path, CONFIG_FILE))


def config_from_hf(hf: Mapping[str, Any], **overrides: Any) -> T5Config:
  """T5Config from a HF T5 `config.json` dict; only T5 v1.1 (gated-GELU) passes.

  `tie_word_embeddings` is not trusted: transformers 5 writes `true` even for untied models.
  Whether the output layer is untied is judged from the weights (`hf_to_params`).
  """
  if hf.get("model_type", "t5") != "t5":
    raise HFCheckpointError(f"expected a T5 config (model_type 't5'), got {hf.get('model_type')!r}")
  ffn = hf.get("feed_forward_proj", "relu")
  if ffn != "gated-gelu":
    raise HFCheckpointError(
        f"feed_forward_proj is {ffn!r}: only T5 v1.1 / LM-adapted models ('gated-gelu') are "
        "supported (the original T5 uses 'relu')")
  try:
    num_layers = hf["num_layers"]
    fields = dict(
        vocab_size=hf["vocab_size"], emb_dim=hf["d_model"], num_heads=hf["num_heads"],
        head_dim=hf["d_kv"], mlp_dim=hf["d_ff"], num_encoder_layers=num_layers,
        num_decoder_layers=hf.get("num_decoder_layers") or num_layers,
        relative_attention_num_buckets=hf.get("relative_attention_num_buckets", 32),
        relative_attention_max_distance=hf.get("relative_attention_max_distance", 128),
        dropout_rate=float(hf.get("dropout_rate", 0.1)),
        layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-6)),
        name=str(hf.get("_name_or_path") or "hf"))
  except KeyError as e:
    raise HFCheckpointError(f"config.json lacks {e.args[0]!r}") from None
  fields.update(overrides)
  return T5Config(**fields)


def scales_decoder_outputs(hf: Mapping[str, Any]) -> bool:
  """Whether transformers multiplies the decoder output by d_model**-0.5 before `lm_head`
  for this `config.json` (its T5Config rule): `scale_decoder_outputs` where the file has it,
  else unless `tie_word_embeddings` is false (the original T5 scales, T5 v1.1 files say
  false). transformers 5 writes `scale_decoder_outputs: true` for any T5Config built
  without `tie_word_embeddings=False`."""
  if "scale_decoder_outputs" in hf:
    return bool(hf["scale_decoder_outputs"])
  return hf.get("tie_word_embeddings", True) is not False


def read_hf_json(path: str) -> Dict[str, Any]:
  """The `config.json` of a Hugging Face checkpoint directory, as a dict."""
  file = os.path.join(path, CONFIG_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint path does not exist: {path}")
  if not os.path.isfile(file):
    raise FileNotFoundError(f"no {CONFIG_FILE} in Hugging Face checkpoint directory {path}")
  with open(file) as f:
    return json.load(f)


def read_hf_config(path: str, **overrides: Any) -> T5Config:
  """T5Config from `path/config.json`."""
  return config_from_hf(read_hf_json(path), **overrides)


def _safetensors_files(path: str) -> list:
  index = os.path.join(path, SAFETENSORS_INDEX)
  if os.path.isfile(index):
    with open(index) as f:
      weight_map = json.load(f)["weight_map"]
    return [os.path.join(path, name) for name in sorted(set(weight_map.values()))]
  single = os.path.join(path, SAFETENSORS_FILE)
  if os.path.isfile(single):
    return [single]
  pickles = [name for name in _PICKLE_FILES if os.path.exists(os.path.join(path, name))]
  if pickles:
    raise HFCheckpointError(
        f"{path} has only {pickles}, not {SAFETENSORS_FILE}: refusing to load pickled weights, "
        "which can execute arbitrary code. Convert the checkpoint to safetensors first "
        "(e.g. `model.save_pretrained(dir, safe_serialization=True)` where it is trusted).")
  raise FileNotFoundError(f"no {SAFETENSORS_FILE} or {SAFETENSORS_INDEX} in {path}")


def read_hf_state_dict(path: str, dtype: DTypeLike = None) -> Dict[str, np.ndarray]:
  """HF parameter name -> numpy array, from single or sharded safetensors (read per tensor)."""
  from safetensors import safe_open  # pylint: disable=g-import-not-at-top
  dtype = as_dtype(dtype)
  state = {}
  for file in _safetensors_files(path):
    if not os.path.isfile(file):
      raise FileNotFoundError(f"safetensors shard listed in the index is missing: {file}")
    with safe_open(file, framework="np") as f:
      for name in f.keys():
        value = f.get_tensor(name)
        state[name] = value if dtype is None or value.dtype == dtype else value.astype(dtype)
  return state


def _pairs(c: T5Config):
  """(HF name, T5X name, transpose) for every parameter of `c` except the tied embeddings."""
  attn = (("q", "query"), ("k", "key"), ("v", "value"), ("o", "out"))
  mlp = ("wi_0", "wi_1", "wo")
  yield "shared.weight", "token_embedder/embedding", False
  yield "lm_head.weight", "decoder/logits_dense/kernel", True
  for stack, n, ours in (("encoder", c.num_encoder_layers, "encoder"),
                         ("decoder", c.num_decoder_layers, "decoder")):
    yield (f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
           f"{ours}/relpos_bias/rel_embedding", True)
    yield f"{stack}.final_layer_norm.weight", f"{ours}/{ours}_norm/scale", False
    for i in range(n):
      hf, t5x = f"{stack}.block.{i}.layer", f"{ours}/layers_{i}"
      self_attn = "attention" if stack == "encoder" else "self_attention"
      pre_self = ("pre_attention_layer_norm" if stack == "encoder"
                  else "pre_self_attention_layer_norm")
      yield f"{hf}.0.layer_norm.weight", f"{t5x}/{pre_self}/scale", False
      for a, b in attn:
        yield f"{hf}.0.SelfAttention.{a}.weight", f"{t5x}/{self_attn}/{b}/kernel", True
      ffn = 1
      if stack == "decoder":
        ffn = 2
        yield f"{hf}.1.layer_norm.weight", f"{t5x}/pre_cross_attention_layer_norm/scale", False
        for a, b in attn:
          yield (f"{hf}.1.EncDecAttention.{a}.weight",
                 f"{t5x}/encoder_decoder_attention/{b}/kernel", True)
      yield f"{hf}.{ffn}.layer_norm.weight", f"{t5x}/pre_mlp_layer_norm/scale", False
      for w in mlp:
        yield f"{hf}.{ffn}.DenseReluDense.{w}.weight", f"{t5x}/mlp/{w}/kernel", True


def hf_to_params(state: Mapping[str, np.ndarray], config: T5Config,
                 output_scale: float = 1.0) -> Dict[str, Any]:
  """Our nested parameter tree from a HF T5 v1.1 state dict; every HF tensor must be used.

  `output_scale` is the factor transformers applies to the decoder output before `lm_head`
  (d_model**-0.5 where `scales_decoder_outputs`); our model has no such step, so it is
  folded into the output kernel (the logits are linear in it)."""
  state = dict(state)
  if "lm_head.weight" not in state:
    raise HFCheckpointError("the checkpoint has no lm_head.weight: its output layer is tied to "
                            "the embeddings (original T5), but T5 v1.1 needs an untied one")
  shared = state.get("shared.weight")
  for name in TIED_EMBEDDINGS:
    if name in state:
      if shared is None or state[name].shape != shared.shape or not np.array_equal(
          state[name], shared):
        raise HFCheckpointError(f"{name} differs from shared.weight: separate encoder/decoder "
                                "embeddings are not supported")
      del state[name]
  flat, missing = {}, []
  for hf, ours, transpose in _pairs(config):
    if hf not in state:
      missing.append(hf)
      continue
    value = state.pop(hf)
    flat[ours] = np.ascontiguousarray(value.T) if transpose else value
  problems = []
  if missing:
    problems.append(f"missing parameters ({len(missing)}): {missing}")
  if state:
    problems.append(f"unexpected parameters ({len(state)}): {sorted(state)}")
  if problems:
    raise HFCheckpointError("Hugging Face checkpoint does not match the config "
                            f"({config.num_encoder_layers}+{config.num_decoder_layers} layers): "
                            + "; ".join(problems))
  if output_scale != 1.0:
    kernel = flat["decoder/logits_dense/kernel"]
    flat["decoder/logits_dense/kernel"] = (
        kernel.astype(np.float32) * np.float32(output_scale)).astype(kernel.dtype)
  return unflatten(flat)


def params_to_hf(params: Mapping[str, Any], config: T5Config,
                 include_tied: bool = True) -> Dict[str, np.ndarray]:
  """HF state dict (numpy) from our tree, e.g. for `T5ForConditionalGeneration.load_state_dict`
  of a model whose config does not scale decoder outputs (`tie_word_embeddings=False`).

  `include_tied` adds the encoder/decoder copies of the embedding that HF's state dict lists.
  """
  flat = flatten(params)
  state = {}
  for hf, ours, transpose in _pairs(config):
    if ours not in flat:
      raise KeyError(f"parameter tree lacks {ours}")
    value = np.asarray(flat[ours])
    state[hf] = np.ascontiguousarray(value.T) if transpose else value
  if include_tied:
    for name in TIED_EMBEDDINGS:
      state[name] = state["shared.weight"]
  return state


def read_hf_checkpoint(path: str, dtype: DTypeLike = None,
                       config: Optional[T5Config] = None) -> Tuple[Dict[str, Any], T5Config]:
  """(params, config) from a HF T5 v1.1 directory; `config` defaults to its config.json.
  A config that scales the decoder output (`scales_decoder_outputs`) is honoured."""
  path = os.fspath(path)
  hf = read_hf_json(path)
  config = config or config_from_hf(hf)
  scale = config.emb_dim ** -0.5 if scales_decoder_outputs(hf) else 1.0
  return hf_to_params(read_hf_state_dict(path, dtype), config, output_scale=scale), config


def hf_config_dict(config: T5Config) -> Dict[str, Any]:
  """The `config.json` of a T5 v1.1 model for transformers: gated-GELU, untied output layer,
  decoder outputs not scaled (T5X's convention, which `params_to_hf` keeps)."""
  return {
      "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
      "vocab_size": config.vocab_size, "d_model": config.emb_dim, "d_kv": config.head_dim,
      "d_ff": config.mlp_dim, "num_heads": config.num_heads,
      "num_layers": config.num_encoder_layers, "num_decoder_layers": config.num_decoder_layers,
      "relative_attention_num_buckets": config.relative_attention_num_buckets,
      "relative_attention_max_distance": config.relative_attention_max_distance,
      "dropout_rate": config.dropout_rate, "layer_norm_epsilon": config.layer_norm_epsilon,
      "feed_forward_proj": "gated-gelu", "is_encoder_decoder": True,
      "tie_word_embeddings": False, "scale_decoder_outputs": False,
      "decoder_start_token_id": 0, "pad_token_id": 0, "eos_token_id": 1,
      "_name_or_path": config.name,
  }


def write_hf_checkpoint(params: Mapping[str, Any], config: T5Config, out_dir: str) -> str:
  """Writes `params` as a Hugging Face directory (`config.json` + `model.safetensors`, float32)
  that `T5ForConditionalGeneration.from_pretrained` loads; returns the directory."""
  from safetensors.numpy import save_file  # pylint: disable=g-import-not-at-top
  state = {k: np.ascontiguousarray(np.asarray(v, np.float32))
           for k, v in params_to_hf(params, config, include_tied=False).items()}
  with atomic_files.atomic_output(os.path.join(out_dir, SAFETENSORS_FILE)) as tmp:
    save_file(state, tmp, metadata={"format": "pt"})
  atomic_files.write_atomically(
      os.path.join(out_dir, CONFIG_FILE),
      json.dumps(hf_config_dict(config), indent=2, sort_keys=True) + "\n")
  return out_dir
