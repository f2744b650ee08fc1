"""Parity with transformers' T5ForConditionalGeneration (PyTorch, CPU) on the same weights.

Logits, relative-position buckets and greedy tokens are compared against someone else's T5.
Our float32 logits are compared with HF's in float32 and in float64 (the latter is nearly exact,
so it says whose rounding a difference is). Run with `-s` to see the measured maxima.

What the 1e-5 bound rests on (jax 0.10.2, torch 2.13, transformers 5.23, AVX-512 CPU):
* Fed the same input, each attention and MLP block of ours is within 2e-7..5e-7 of HF's float64
  block, HF's own float32 blocks within 3e-7..6e-7: no numerics choice differs. XLA's CPU tanh
  is less exact than torch's (4.7 vs 0.6 ulp), but an exp-based gelu changed nothing at the model
  level, and 'highest' matmul precision changes nothing on CPU (already full float32).
* What remains is float32 rounding amplified by the model. In the tiny T5X fixture the decoder's
  residual stream has RMS ~0.3 at some positions, so each RMS norm magnifies absolute errors ~3x.
  Over 36 random padded fixture batches ours was at most 1.7e-5 from HF float64 (median 2.3e-6),
  HF float32 up to 9.1e-6 from it, ours vs HF float32 up to 1.6e-5 (median 3.4e-6). The batches
  here measure <= 3.4e-6 (fixture) and <= 3.2e-6 (random configs); a new batch may need 2e-5.
"""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers

from spot_jax.model import checkpoints, decoding, layers, t5
from spot_jax.model.config import T5Config, get_config
from spot_jax.model.hf_checkpoint import params_to_hf

FIXTURE = "t5x/test_t5_tiny.checkpoint_0"
# The bar; see the module docstring for the measured margins.
LOGIT_ATOL = 1e-5


def _hf_model(params, c: T5Config, dtype=torch.float32):
  """transformers' T5 v1.1 holding exactly `params`, in eval mode (no dropout)."""
  hf_config = transformers.T5Config(
      vocab_size=c.vocab_size, d_model=c.emb_dim, d_kv=c.head_dim, num_heads=c.num_heads,
      d_ff=c.mlp_dim, num_layers=c.num_encoder_layers, num_decoder_layers=c.num_decoder_layers,
      relative_attention_num_buckets=c.relative_attention_num_buckets,
      relative_attention_max_distance=c.relative_attention_max_distance,
      layer_norm_epsilon=c.layer_norm_epsilon, feed_forward_proj="gated-gelu",
      tie_word_embeddings=False, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
      dropout_rate=0.0)
  model = transformers.T5ForConditionalGeneration(hf_config)
  # transformers 5 ties lm_head to `shared` whatever the config says: give it its own tensor.
  model.lm_head.weight = torch.nn.Parameter(torch.zeros(c.vocab_size, c.emb_dim))
  state = {k: torch.from_numpy(np.array(v, np.float32)) for k, v in params_to_hf(params, c).items()}
  model.load_state_dict(state, strict=True)
  assert model.lm_head.weight.data_ptr() != model.shared.weight.data_ptr()
  return model.to(dtype).eval()


def _batch(seed, vocab, enc_lengths, dec_lengths, pad_to=(None, None)):
  """Token ids with padding (0) after each row's length; decoder inputs start with 0."""
  rng = np.random.RandomState(seed)
  el = pad_to[0] or max(enc_lengths)
  tl = pad_to[1] or max(dec_lengths)
  enc = np.zeros((len(enc_lengths), el), np.int64)
  tgt = np.zeros((len(dec_lengths), tl), np.int64)
  for i, (n, m) in enumerate(zip(enc_lengths, dec_lengths)):
    enc[i, :n] = rng.randint(2, vocab, n)
    tgt[i, :m] = rng.randint(2, vocab, m)
  dec_in = np.concatenate([np.zeros_like(tgt[:, :1]), tgt[:, :-1]], axis=1)
  return enc, dec_in, tgt


def _our_logits(c, params, enc, dec_in, tgt):
  fn = jax.jit(lambda p, e, d, t: t5.T5(c).apply({"params": p}, e, d, t))
  return np.asarray(fn(params, jnp.asarray(enc, jnp.int32), jnp.asarray(dec_in, jnp.int32),
                       jnp.asarray(tgt, jnp.int32)))


def _hf_logits(model, enc, dec_in, tgt):
  with torch.no_grad():
    out = model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                decoder_input_ids=torch.tensor(dec_in),
                decoder_attention_mask=torch.tensor(tgt > 0).long(), use_cache=False)
  return out.logits.double().numpy()


def _compare(name, c, params, batch, record_property, hf32=None, hf64=None):
  """Max |Δlogit| at real target positions, ours (float32) vs HF float32 and float64."""
  hf32 = hf32 or _hf_model(params, c)
  hf64 = hf64 or _hf_model(params, c, torch.float64)
  enc, dec_in, tgt = batch
  ours = _our_logits(c, params, enc, dec_in, tgt)
  ref32, ref64 = _hf_logits(hf32, *batch), _hf_logits(hf64, *batch)
  real = tgt > 0
  assert 0 < real.sum() < real.size and (enc == 0).any(), "the batch must have padding"
  d32 = float(np.abs(ours - ref32)[real].max())
  d64 = float(np.abs(ours - ref64)[real].max())
  hf_own = float(np.abs(ref32 - ref64)[real].max())
  scale = float(np.abs(ref64[real]).max())
  print(f"\n[parity] {name}: max|ours-hf32| {d32:.2e}  max|ours-hf64| {d64:.2e}  "
        f"(hf32 vs hf64 {hf_own:.2e}; max|logit| {scale:.2f})")
  record_property(f"{name}_max_abs_diff_hf32", d32)
  record_property(f"{name}_max_abs_diff_hf64", d64)
  assert scale > 0.1, "logits too small for the comparison to mean anything"
  assert d64 <= LOGIT_ATOL, f"{name}: ours vs HF float64 {d64:.3e} > {LOGIT_ATOL}"
  assert d32 <= LOGIT_ATOL, f"{name}: ours vs HF float32 {d32:.3e} > {LOGIT_ATOL}"
  return ours


@pytest.fixture(scope="module")
def fixture_model(fixtures_dir):
  c = get_config("tiny")
  params = checkpoints.load_params(fixtures_dir / FIXTURE, c)
  return c, params, _hf_model(params, c), _hf_model(params, c, torch.float64)


def test_fixture_logits_match_transformers(fixture_model, record_property):
  c, params, hf32, hf64 = fixture_model
  # Padding in inputs and targets; 150 > max_distance 128, so the log buckets are used.
  batch = _batch(0, c.vocab_size, enc_lengths=[150, 97, 20, 5], dec_lengths=[16, 9, 16, 3])
  ours = _compare("fixture", c, params, batch, record_property, hf32, hf64)
  # The output layer really is the checkpoint's untied one.
  kernel = params["decoder"]["logits_dense"]["kernel"]
  assert not np.allclose(kernel.T, params["token_embedder"]["embedding"])
  assert np.isfinite(ours).all()


def test_fixture_logits_other_batch(fixture_model, record_property):
  c, params, hf32, hf64 = fixture_model
  batch = _batch(1, c.vocab_size, enc_lengths=[64, 1, 33], dec_lengths=[1, 24, 7])
  _compare("fixture_batch2", c, params, batch, record_property, hf32, hf64)


# Head counts, d_kv, layer counts, bucket counts and max distances that differ from T5's; each
# batch is longer than max_distance in the encoder, and the first also in the decoder.
RANDOM_CONFIGS = [
    (dict(vocab_size=97, d_model=16, d_kv=4, num_heads=3, d_ff=24, num_layers=2,
          num_decoder_layers=3, relative_attention_num_buckets=8,
          relative_attention_max_distance=20), (48, 24)),
    (dict(vocab_size=64, d_model=32, d_kv=8, num_heads=4, d_ff=40, num_layers=1,
          num_decoder_layers=2, relative_attention_num_buckets=16,
          relative_attention_max_distance=32), (80, 12)),
    (dict(vocab_size=128, d_model=24, d_kv=12, num_heads=2, d_ff=16, num_layers=3,
          num_decoder_layers=1, relative_attention_num_buckets=32,
          relative_attention_max_distance=128), (160, 16)),
    (dict(vocab_size=50, d_model=12, d_kv=5, num_heads=1, d_ff=20, num_layers=2,
          num_decoder_layers=2, relative_attention_num_buckets=7,
          relative_attention_max_distance=10, layer_norm_epsilon=1e-5), (30, 20)),
]


def _random_hf_checkpoint(hf_kwargs, seed, directory, scale_decoder_outputs=False):
  """A random HF T5 v1.1, saved with save_pretrained (safetensors). With
  `scale_decoder_outputs` its config is transformers 5's default one, which multiplies the
  decoder output by d_model**-0.5 before the (here untied) lm_head."""
  torch.manual_seed(seed)
  untied = {} if scale_decoder_outputs else {"tie_word_embeddings": False}
  cfg = transformers.T5Config(feed_forward_proj="gated-gelu", decoder_start_token_id=0,
                              **untied, **hf_kwargs)
  assert cfg.scale_decoder_outputs == scale_decoder_outputs
  model = transformers.T5ForConditionalGeneration(cfg)
  # Output weights scaled so the logits are O(1..5), as in the fixture, not O(sqrt(d_model)).
  model.lm_head.weight = torch.nn.Parameter(
      torch.randn(cfg.vocab_size, cfg.d_model) * cfg.d_model ** -0.5)
  with torch.no_grad():  # position tables at T5X's scale, so wrong buckets would show
    for stack in (model.encoder, model.decoder):
      stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0.0, 1.0)
  model.save_pretrained(directory)
  assert (directory / "model.safetensors").exists()
  return directory


@pytest.mark.parametrize("index", range(len(RANDOM_CONFIGS)))
def test_random_hf_configs_through_safetensors(tmp_path, index, record_property):
  hf_kwargs, (enc_len, dec_len) = RANDOM_CONFIGS[index]
  path = _random_hf_checkpoint(hf_kwargs, seed=index, directory=tmp_path / "hf")
  params, c = checkpoints.load_checkpoint(path)
  assert (c.num_heads, c.head_dim, c.relative_attention_num_buckets,
          c.relative_attention_max_distance) == (
              hf_kwargs["num_heads"], hf_kwargs["d_kv"],
              hf_kwargs["relative_attention_num_buckets"],
              hf_kwargs["relative_attention_max_distance"])
  assert enc_len > c.relative_attention_max_distance
  batch = _batch(10 + index, c.vocab_size,
                 enc_lengths=[enc_len, enc_len // 2, 3], dec_lengths=[dec_len, 2, dec_len - 5])
  _compare(f"random_config_{index}", c, params, batch, record_property)


@pytest.mark.parametrize("scale", [False, True])
def test_decoder_output_scaling_of_hf_configs(tmp_path, scale, record_property):
  """Logits of the checkpoint as transformers itself loads it (`from_pretrained`), with and
  without `scale_decoder_outputs` in its config.json."""
  hf_kwargs, (enc_len, dec_len) = RANDOM_CONFIGS[1]
  path = _random_hf_checkpoint(hf_kwargs, seed=7, directory=tmp_path / "hf",
                               scale_decoder_outputs=scale)
  params, c = checkpoints.load_checkpoint(path)
  theirs = [transformers.T5ForConditionalGeneration.from_pretrained(path).to(dtype).eval()
            for dtype in (torch.float32, torch.float64)]
  assert all(m.config.scale_decoder_outputs == scale for m in theirs)
  batch = _batch(30, c.vocab_size, enc_lengths=[enc_len, 9, 3], dec_lengths=[dec_len, 2, 7])
  _compare(f"scale_decoder_outputs_{scale}", c, params, batch, record_property, *theirs)


@pytest.mark.parametrize("num_buckets,max_distance",
                         [(32, 128), (8, 20), (16, 32), (7, 10), (64, 256), (128, 1000),
                          (6, 6), (32, 24)])
def test_relative_position_bucket_matches_transformers(num_buckets, max_distance):
  rel = np.arange(-2000, 2001)
  for bidirectional in (True, False):
    exact = (num_buckets // 2 if bidirectional else num_buckets) // 2
    if exact == 0:
      continue
    ours = layers.relative_position_bucket(rel, bidirectional, num_buckets, max_distance)
    theirs = transformers.models.t5.modeling_t5.T5Attention._relative_position_bucket(
        torch.tensor(rel), bidirectional=bidirectional, num_buckets=num_buckets,
        max_distance=max_distance).numpy()
    diff = np.flatnonzero(ours != theirs)
    assert diff.size == 0, (f"bidirectional={bidirectional}: relative positions "
                            f"{rel[diff][:10].tolist()} -> ours {ours[diff][:10].tolist()}, "
                            f"transformers {theirs[diff][:10].tolist()}")
    assert len(np.unique(ours)) > exact  # the log-spaced buckets were reached


def _greedy_both(c, params, enc, max_length):
  model = t5.T5(c)

  @jax.jit
  def ours_fn(params, tokens):
    mask = tokens > 0
    embedded = model.apply({"params": params}, tokens, method=t5.T5.embed)
    encoded = model.apply({"params": params}, embedded, mask, method=t5.T5.encode)
    return decoding.greedy_decode(model, params, encoded, mask, max_length=max_length)

  ours = np.asarray(ours_fn(params, jnp.asarray(enc, jnp.int32)))
  hf = _hf_model(params, c)
  with torch.no_grad():
    out = hf.generate(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0).long(),
                      num_beams=1, do_sample=False, max_new_tokens=max_length, min_new_tokens=0,
                      decoder_start_token_id=0, eos_token_id=1, pad_token_id=0).numpy()
  assert (out[:, 0] == 0).all()
  theirs = np.zeros_like(ours)
  theirs[:, :out.shape[1] - 1] = out[:, 1:]
  return ours, theirs


def test_greedy_matches_generate_on_fixture(fixture_model):
  c, params, _, _ = fixture_model
  enc, _, _ = _batch(3, c.vocab_size, enc_lengths=[40, 12, 3], dec_lengths=[1, 1, 1])
  ours, theirs = _greedy_both(c, params, enc, max_length=12)
  np.testing.assert_array_equal(ours, theirs)
  assert len(np.unique(ours)) > 3  # not one token repeated


def test_greedy_matches_generate_with_eos():
  """A small vocabulary so that EOS (1) comes early in some rows, not in others."""
  c = get_config("tiny", vocab_size=8, emb_dim=16, mlp_dim=32, num_heads=2, head_dim=8,
                 dropout_rate=0.0)
  params = t5.init_params(c, jax.random.PRNGKey(5))
  enc, _, _ = _batch(20, c.vocab_size, enc_lengths=[9, 4, 6, 2, 1, 7, 3, 5, 8, 2, 6, 4],
                     dec_lengths=[1] * 12)
  rows, theirs = _greedy_both(c, params, enc, max_length=10)
  np.testing.assert_array_equal(rows, theirs)
  ended = (rows == 1).any(axis=1)
  assert ended.any() and not ended.all(), "want rows that end with EOS and rows that do not"
