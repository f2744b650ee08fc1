"""Hugging Face T5 v1.1 checkpoints: transformers writes them, we read them and hand them back."""
import json

import ml_dtypes
import numpy as np
import pytest
import safetensors.numpy
import torch
import transformers

from spot_jax.model import checkpoints
from spot_jax.model import hf_checkpoint as hc
from spot_jax.model.config import param_shapes
from spot_jax.model.t5x_checkpoint import flatten

CONFIGS = [
    dict(vocab_size=101, d_model=16, d_kv=4, num_heads=3, d_ff=24, num_layers=2,
         num_decoder_layers=3, relative_attention_num_buckets=8,
         relative_attention_max_distance=20),
    dict(vocab_size=64, d_model=12, d_kv=6, num_heads=2, d_ff=10, num_layers=1,
         num_decoder_layers=1, relative_attention_num_buckets=32,
         relative_attention_max_distance=128, dropout_rate=0.0, layer_norm_epsilon=1e-5),
]


def _hf_model(seed=0, untie=True, **overrides):
  """A random T5 v1.1 model; transformers 5 ties lm_head whatever the config says."""
  kwargs = dict(CONFIGS[0], feed_forward_proj="gated-gelu", tie_word_embeddings=False,
                decoder_start_token_id=0)
  kwargs.update(overrides)
  torch.manual_seed(seed)
  model = transformers.T5ForConditionalGeneration(transformers.T5Config(**kwargs))
  if untie:
    model.lm_head.weight = torch.nn.Parameter(torch.randn(kwargs["vocab_size"], kwargs["d_model"]))
  return model.eval()


def _torch_state(model):
  return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def _save(model, directory, **kwargs):
  model.save_pretrained(directory, **kwargs)
  return directory


@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_round_trip_against_torch_state_dict(tmp_path, index):
  model = _hf_model(seed=index, **CONFIGS[index])
  path = _save(model, tmp_path / "hf")
  params, config = hc.read_hf_checkpoint(path)
  c = CONFIGS[index]
  assert (config.vocab_size, config.emb_dim, config.num_heads, config.head_dim, config.mlp_dim,
          config.num_encoder_layers, config.num_decoder_layers,
          config.relative_attention_num_buckets, config.relative_attention_max_distance) == (
              c["vocab_size"], c["d_model"], c["num_heads"], c["d_kv"], c["d_ff"],
              c["num_layers"], c["num_decoder_layers"], c["relative_attention_num_buckets"],
              c["relative_attention_max_distance"])
  assert config.dropout_rate == c.get("dropout_rate", 0.1)
  assert config.layer_norm_epsilon == c.get("layer_norm_epsilon", 1e-6)
  assert {k: v.shape for k, v in flatten(params).items()} == flatten(
      param_shapes(config), is_leaf=lambda v: isinstance(v, tuple))

  torch_state = _torch_state(model)
  # Spot checks of the mapping itself, independent of params_to_hf.
  flat = flatten(params)
  np.testing.assert_array_equal(flat["token_embedder/embedding"], torch_state["shared.weight"])
  np.testing.assert_array_equal(flat["decoder/logits_dense/kernel"],
                                torch_state["lm_head.weight"].T)
  np.testing.assert_array_equal(
      flat["encoder/layers_0/attention/query/kernel"],
      torch_state["encoder.block.0.layer.0.SelfAttention.q.weight"].T)
  np.testing.assert_array_equal(
      flat["decoder/relpos_bias/rel_embedding"],
      torch_state["decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"].T)
  last = c["num_decoder_layers"] - 1
  np.testing.assert_array_equal(
      flat[f"decoder/layers_{last}/mlp/wo/kernel"],
      torch_state[f"decoder.block.{last}.layer.2.DenseReluDense.wo.weight"].T)
  np.testing.assert_array_equal(
      flat[f"decoder/layers_{last}/pre_cross_attention_layer_norm/scale"],
      torch_state[f"decoder.block.{last}.layer.1.layer_norm.weight"])

  back = hc.params_to_hf(params, config)
  assert set(back) == set(torch_state)
  for name, value in torch_state.items():
    np.testing.assert_array_equal(back[name], value, err_msg=name)
  # And transformers accepts it strictly.
  fresh = _hf_model(seed=99, **CONFIGS[index])
  fresh.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in back.items()}, strict=True)
  np.testing.assert_array_equal(fresh.lm_head.weight.detach().numpy(),
                                torch_state["lm_head.weight"])


def test_load_params_detects_hf_and_casts(tmp_path):
  model = _hf_model()
  path = _save(model, tmp_path / "hf")
  assert checkpoints.checkpoint_format(path) == "hf"
  params, config = checkpoints.load_checkpoint(path, dtype="bfloat16")
  emb = params["token_embedder"]["embedding"]
  assert emb.dtype == ml_dtypes.bfloat16 and emb.shape == (101, 16)
  np.testing.assert_array_equal(
      emb, model.shared.weight.detach().numpy().astype(ml_dtypes.bfloat16))


def test_sharded_safetensors(tmp_path):
  model = _hf_model()
  path = _save(model, tmp_path / "hf", max_shard_size="20KB")
  assert (path / hc.SAFETENSORS_INDEX).exists() and not (path / hc.SAFETENSORS_FILE).exists()
  params, config = hc.read_hf_checkpoint(path)
  back = hc.params_to_hf(params, config)
  for name, value in _torch_state(model).items():
    np.testing.assert_array_equal(back[name], value, err_msg=name)


def test_refuses_pickles(tmp_path):
  model = _hf_model()
  path = _save(model, tmp_path / "hf")
  (path / hc.SAFETENSORS_FILE).unlink()
  (path / "pytorch_model.bin").write_bytes(b"not even read")
  with pytest.raises(hc.HFCheckpointError, match="refusing to load pickled weights"):
    hc.read_hf_checkpoint(path)


def test_refuses_original_t5(tmp_path):
  model = _hf_model(feed_forward_proj="relu")
  path = _save(model, tmp_path / "hf")
  with pytest.raises(hc.HFCheckpointError, match="feed_forward_proj is 'relu'"):
    hc.read_hf_checkpoint(path)


def test_refuses_tied_output_layer(tmp_path):
  path = _save(_hf_model(untie=False), tmp_path / "hf")
  with pytest.raises(hc.HFCheckpointError, match="no lm_head.weight: its output layer is tied"):
    hc.read_hf_checkpoint(path)


def test_missing_files_are_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"checkpoint path does not exist: {tmp_path}/x"):
    hc.read_hf_checkpoint(tmp_path / "x")
  with pytest.raises(FileNotFoundError, match=f"checkpoint path does not exist: {tmp_path}/x"):
    checkpoints.load_params(tmp_path / "x")
  tmp_path.joinpath("cfg_only").mkdir()
  tmp_path.joinpath("cfg_only", "config.json").write_text(json.dumps(
      dict(CONFIGS[0], model_type="t5", feed_forward_proj="gated-gelu")))
  with pytest.raises(FileNotFoundError, match="no model.safetensors"):
    hc.read_hf_checkpoint(tmp_path / "cfg_only")
  with pytest.raises(hc.HFCheckpointError, match="config.json lacks 'vocab_size'"):
    hc.config_from_hf({"feed_forward_proj": "gated-gelu", "num_layers": 2})


def test_missing_and_unexpected_tensors_are_listed(tmp_path):
  path = _save(_hf_model(), tmp_path / "hf")
  state = safetensors.numpy.load_file(path / hc.SAFETENSORS_FILE)
  del state["encoder.block.1.layer.1.DenseReluDense.wi_1.weight"]
  state["encoder.block.1.layer.1.DenseReluDense.wi.weight"] = np.zeros((24, 16), np.float32)
  safetensors.numpy.save_file(state, path / hc.SAFETENSORS_FILE)
  with pytest.raises(hc.HFCheckpointError) as e:
    hc.read_hf_checkpoint(path)
  assert "missing parameters (1): ['encoder.block.1.layer.1.DenseReluDense.wi_1.weight']" in str(
      e.value)
  assert "unexpected parameters (1): ['encoder.block.1.layer.1.DenseReluDense.wi.weight']" in str(
      e.value)


def test_config_with_other_layer_count_fails(tmp_path):
  path = _save(_hf_model(), tmp_path / "hf")
  config = hc.read_hf_config(path).replace(num_encoder_layers=3)
  with pytest.raises(hc.HFCheckpointError, match=r"missing parameters \(\d+\): \['encoder.block.2"):
    checkpoints.load_params(path, config)


def test_vocabulary_mismatch_says_both_sizes(tmp_path):
  path = _save(_hf_model(), tmp_path / "hf")
  config = hc.read_hf_config(path).replace(vocab_size=128)
  with pytest.raises(checkpoints.ParamMismatchError,
                     match="vocabulary size mismatch: checkpoint has 101, config has 128"):
    checkpoints.load_params(path, config)


def test_untied_copies_of_the_embedding_are_refused():
  model = _hf_model()
  state = _torch_state(model)
  config = hc.config_from_hf(dict(CONFIGS[0], feed_forward_proj="gated-gelu"))
  hc.hf_to_params(state, config)  # identical copies are fine
  state["decoder.embed_tokens.weight"] = state["decoder.embed_tokens.weight"] + 1
  with pytest.raises(hc.HFCheckpointError, match="decoder.embed_tokens.weight differs"):
    hc.hf_to_params(state, config)
