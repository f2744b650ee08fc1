"""Prompts and models cross to PyTorch and back: the files PEFT, transformers and
google-research/prompt-tuning read and write, checked with those libraries themselves."""
import io
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import peft
import pytest
import torch
import transformers

from spot_jax.model import t5
from spot_jax.model.config import get_config
from spot_jax.prompts import interchange, prompt_files
from spot_jax.training import train_step
from spot_jax.cli import convert

VOCAB_HASH = "ab" * 32
CONFIG = get_config("tiny", vocab_size=64, emb_dim=32, num_heads=4, head_dim=8, mlp_dim=48,
                    dropout_rate=0.0, name="convert_tiny")


def _prompt(p=5, d=32, seed=0, scale=1.0):
  return (np.random.default_rng(seed).normal(size=(p, d)) * scale).astype(np.float32)


def _save(path, prompt, **meta):
  fields = dict(task="rte", model_name=CONFIG.name, vocabulary_hash=VOCAB_HASH, step=300)
  fields.update(meta)
  return prompt_files.save_prompt(path, prompt, fields)


def _import_flags(out, **extra):
  flags = [str(out), "--task", "rte", "--model-name", CONFIG.name, "--vocabulary-hash", VOCAB_HASH]
  for k, v in extra.items():
    flags += [f"--{k.replace('_', '-')}", str(v)]
  return flags


def test_peft_round_trip_keeps_the_prompt(tmp_path):
  prompt = _prompt()
  src = _save(tmp_path / "src", prompt)
  assert convert.main(["to-peft", src, str(tmp_path / "adapter"), "--num-heads", "4",
                       "--num-layers", "2"]) == 0
  config = json.loads((tmp_path / "adapter" / interchange.PEFT_CONFIG).read_text())
  assert (config["peft_type"], config["task_type"], config["num_virtual_tokens"],
          config["num_transformer_submodules"], config["token_dim"]) == (
              "PROMPT_TUNING", "SEQ_2_SEQ_LM", 5, 1, 32)
  assert convert.main(["from-peft", str(tmp_path / "adapter"),
                       *_import_flags(tmp_path / "back", d_model=32, step=300)]) == 0
  back, meta = prompt_files.load_prompt(tmp_path / "back")
  np.testing.assert_array_equal(back, prompt)
  assert (meta.task, meta.model_name, meta.vocabulary_hash, meta.step) == (
      "rte", CONFIG.name, VOCAB_HASH, 300)
  assert meta.extra["imported_from"] == str(tmp_path / "adapter")


def _hf_base(hf_dir):
  return transformers.T5ForConditionalGeneration.from_pretrained(hf_dir).eval()


def _peft_adapter(hf_dir, out, **config):
  """An adapter PEFT itself writes (trained weights are irrelevant to the refusals)."""
  model = peft.get_peft_model(_hf_base(hf_dir), config.pop("cls", peft.PromptTuningConfig)(
      task_type="SEQ_2_SEQ_LM", **config))
  model.save_pretrained(out)
  return str(out)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
  """A random tiny spot_jax model, saved as T5X msgpack and exported to a HF directory with
  `model-to-hf`; (params, msgpack path, HF directory)."""
  from spot_jax.model import t5x_export
  d = tmp_path_factory.mktemp("model")
  params = jax.device_get(t5.init_params(CONFIG, jax.random.PRNGKey(3)))
  t5x_export.write_t5x_msgpack(params, str(d / "model.msgpack"))
  (d / "config.json").write_text(json.dumps({"config": {
      k: getattr(CONFIG, k) for k in ("vocab_size", "emb_dim", "num_heads", "head_dim",
                                      "mlp_dim", "num_encoder_layers", "num_decoder_layers",
                                      "dropout_rate", "name")}}))
  assert convert.main(["model-to-hf", str(d / "model.msgpack"), str(d / "hf"),
                       "--config", str(d / "config.json")]) == 0
  return params, str(d / "model.msgpack"), str(d / "hf")


def _batch(seed=0):
  rng = np.random.RandomState(seed)
  enc = rng.randint(2, CONFIG.vocab_size, (3, 11))
  enc[1, 7:] = 0
  enc[2, 3:] = 0
  tgt = rng.randint(2, CONFIG.vocab_size, (3, 6))
  tgt[2, 4:] = 0
  dec_in = np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)
  return enc, dec_in, tgt


def _ours(params, prompt, batch):
  enc, dec_in, tgt = batch
  feats = {"encoder_input_tokens": jnp.asarray(enc, jnp.int32),
           "decoder_input_tokens": jnp.asarray(dec_in, jnp.int32),
           "decoder_target_tokens": jnp.asarray(tgt, jnp.int32)}
  prompt = None if prompt is None else jnp.asarray(prompt)
  return np.asarray(train_step.compute_logits(t5.T5(CONFIG), params, prompt, feats))


def _theirs(model, batch):
  enc, dec_in, tgt = batch
  with torch.no_grad():
    out = model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                decoder_input_ids=torch.tensor(dec_in),
                decoder_attention_mask=torch.tensor(tgt > 0).long())
  return out.logits.numpy()


@pytest.mark.slow
def test_exported_model_loads_in_transformers_with_our_logits(exported):
  params, _, hf_dir = exported
  model = _hf_base(hf_dir)
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  assert not model.config.scale_decoder_outputs
  batch = _batch(0)
  real = batch[2] > 0
  np.testing.assert_allclose(_theirs(model, batch)[real], _ours(params, None, batch)[real],
                             atol=1e-5, rtol=0)


def test_peft_loads_the_exported_adapter_with_our_logits(exported, tmp_path):
  params, _, hf_dir = exported
  prompt = _prompt(p=4, seed=1, scale=0.5)
  src = _save(tmp_path / "p", prompt)
  assert convert.main(["to-peft", src, str(tmp_path / "adapter"), "--base-model", hf_dir]) == 0
  model = peft.PeftModel.from_pretrained(_hf_base(hf_dir), str(tmp_path / "adapter")).eval()
  np.testing.assert_array_equal(
      model.get_prompt_embedding_to_save("default").numpy(), prompt)
  batch = _batch(1)
  real = batch[2] > 0
  ours, theirs = _ours(params, prompt, batch), _theirs(model, batch)
  assert np.abs(ours[real]).max() > 0.1
  np.testing.assert_allclose(theirs[real], ours[real], atol=1e-5, rtol=0)
  # The prompt matters: without it the logits differ.
  assert np.abs(_ours(params, None, batch)[real] - ours[real]).max() > 1e-3


def test_adapters_peft_writes_are_imported_or_refused(exported, tmp_path):
  _, _, hf_dir = exported
  good = _peft_adapter(hf_dir, tmp_path / "good", num_virtual_tokens=3,
                       num_transformer_submodules=1)
  assert convert.main(["from-peft", good, *_import_flags(tmp_path / "in", d_model=32)]) == 0
  assert prompt_files.load_prompt(tmp_path / "in")[0].shape == (3, 32)
  cases = [
      (_peft_adapter(hf_dir, tmp_path / "both", num_virtual_tokens=3),
       "num_transformer_submodules is 2; SPoT prompts the encoder only"),
      (_peft_adapter(hf_dir, tmp_path / "lora", cls=peft.LoraConfig, r=2,
                     target_modules=["q", "v"]),
       "peft_type is 'LORA'; only PROMPT_TUNING adapters"),
      (good, "the prompt is 32 wide (token_dim) but the model's width is 48"),
  ]
  for adapter, message in cases:
    with pytest.raises(interchange.InterchangeError, match=message.replace("(", r"\(").replace(
        ")", r"\)")):
      interchange.read_peft(adapter, d_model=48)


def test_prompt_tuning_numpy_in_and_out(tmp_path):
  prompt = _prompt(seed=2)
  released = tmp_path / "released" / interchange.PROMPT_TUNING_NAME
  released.parent.mkdir()
  with open(released, "wb") as f:  # as prompt-tuning's save_numpy writes: no .npy suffix
    np.save(f, prompt)
  assert convert.main(["from-npy", str(released),
                       *_import_flags(tmp_path / "imported", d_model=32, step=1100)]) == 0
  array, meta = prompt_files.load_prompt(tmp_path / "imported")
  np.testing.assert_array_equal(array, prompt)
  assert meta.step == 1100 and meta.task == "rte"
  (tmp_path / "export").mkdir()
  assert convert.main(["to-npy", str(tmp_path / "imported"), str(tmp_path / "export")]) == 0
  written = (tmp_path / "export" / "numpy_checkpoints" / "checkpoint_1100" /
             interchange.PROMPT_TUNING_NAME)
  np.testing.assert_array_equal(np.load(written, allow_pickle=False), prompt)
  assert convert.main(["to-npy", str(tmp_path / "imported"), str(tmp_path / "one.npy")]) == 0
  np.testing.assert_array_equal(np.load(tmp_path / "one.npy"), prompt)


def test_bad_imports_name_the_file_and_what_was_expected(tmp_path, capsys):
  (tmp_path / "noise").write_bytes(b"not numpy at all")
  assert convert.main(["from-npy", str(tmp_path / "noise"), *_import_flags(tmp_path / "x")]) == 2
  assert "noise is not a .npy file" in capsys.readouterr().err
  buffer = io.BytesIO()
  np.save(buffer, _prompt(d=16))
  (tmp_path / "narrow").write_bytes(buffer.getvalue())
  assert convert.main(["from-npy", str(tmp_path / "narrow"),
                       *_import_flags(tmp_path / "x", d_model=32)]) == 2
  assert "the prompt is 16 wide but the model's width is 32" in capsys.readouterr().err
  assert convert.main(["from-peft", str(tmp_path), *_import_flags(tmp_path / "x")]) == 2
  assert "is not a PEFT adapter: no adapter_config.json" in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "x.npy")


def test_a_damaged_peft_weights_file_is_named(exported, tmp_path, capsys):
  """Random bytes and a truncated copy in place of adapter_model.safetensors: the command
  names the file, with no safetensors traceback."""
  _, _, hf_dir = exported
  good = _peft_adapter(hf_dir, tmp_path / "good", num_virtual_tokens=3,
                       num_transformer_submodules=1)
  weights = os.path.join(good, interchange.PEFT_WEIGHTS)
  whole = open(weights, "rb").read()
  for damaged in (np.random.RandomState(0).bytes(len(whole)), whole[:len(whole) // 2]):
    with open(weights, "wb") as f:
      f.write(damaged)
    assert convert.main(["from-peft", good, *_import_flags(tmp_path / "x", d_model=32)]) == 2
    err = capsys.readouterr().err
    assert f"{weights} is not a readable safetensors file" in err, err
    assert "Traceback" not in err
  assert not os.path.exists(tmp_path / "x.npy")
