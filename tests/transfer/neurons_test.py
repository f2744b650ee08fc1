"""Activated neurons (Su et al.'s ON): the captured patterns equal ones computed by hand
from flax's own `capture_intermediates`, the similarity is the cosine of binary vectors
(scipy), and the library ranks by it from the command line."""
import json

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.spatial import distance

from spot_jax.model import t5, t5x_export
from spot_jax.model.config import get_config
from spot_jax.prompts import prompt_files
from spot_jax.prompts.prompt import prefix_prompt
from spot_jax.cli import library as library_cli
from spot_jax.transfer import neurons, similarity

CONFIG = get_config("tiny", vocab_size=40, emb_dim=16, num_heads=2, head_dim=8, mlp_dim=24,
                    num_encoder_layers=2, num_decoder_layers=3, dropout_rate=0.0,
                    name="neurons_tiny")
PROBE = 39


@pytest.fixture(scope="module")
def params():
  return t5.init_params(CONFIG, jax.random.PRNGKey(0))


def _prompts(n=3, p=4, seed=1):
  return np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (n, p, CONFIG.emb_dim)))


def _by_hand(params, prompts):
  """The hidden state feeding `wo`, from the outputs of wi_0 and wi_1 as flax captures them."""
  model = t5.T5(CONFIG)
  b, p = prompts.shape[:2]
  tokens = jnp.tile(jnp.array([[PROBE, 1]]), (b, 1))
  x = model.apply({"params": params}, tokens, method=t5.T5.embed)
  x, mask = prefix_prompt(jnp.asarray(prompts), x, tokens > 0)
  only_dense = lambda mdl, _: mdl.name in ("wi_0", "wi_1")
  encoded, enc = model.apply({"params": params}, x, mask, method=t5.T5.encode,
                             capture_intermediates=only_dense)
  _, dec = model.apply({"params": params}, encoded, mask, jnp.zeros((b, 1), jnp.int32),
                       method=t5.T5.decode, capture_intermediates=only_dense)
  rows = []
  for stack, n, pos in ((enc, CONFIG.num_encoder_layers, p),
                        (dec, CONFIG.num_decoder_layers, 0)):
    tree = stack["intermediates"]["encoder" if stack is enc else "decoder"]
    for i in range(n):
      mlp = tree[f"layers_{i}"]["mlp"]
      hidden = nn.gelu(mlp["wi_0"]["__call__"][0], approximate=True) * mlp["wi_1"]["__call__"][0]
      rows.append(np.asarray(hidden[:, pos]))
  return np.stack(rows, axis=1)


@pytest.mark.slow
def test_patterns_equal_the_hidden_state_computed_by_hand(params):
  prompts = _prompts()
  patterns = neurons.activation_patterns(CONFIG, params, prompts, probe_token_id=PROBE,
                                         batch_size=2)  # two calls, the second padded
  hidden = _by_hand(params, prompts)
  assert patterns.shape == (3, 5, CONFIG.mlp_dim) and patterns.dtype == bool
  clear = np.abs(hidden) > 1e-6  # leave out values at float32 noise around 0
  np.testing.assert_array_equal(patterns[clear], (hidden > 0)[clear])
  assert 0.2 < patterns.mean() < 0.8, "a gated GELU switches on part of its neurons"
  np.testing.assert_array_equal(neurons.activation_patterns(
      CONFIG, params, prompts[1], probe_token_id=PROBE), patterns[1])


def test_similarity_is_the_cosine_of_binary_vectors():
  rng = np.random.default_rng(0)
  target = rng.random((6, 10)) > 0.5
  library = rng.random((4, 6, 10)) > 0.5
  library[3] = False  # nothing active: similarity 0, not NaN
  for layers in neurons.layer_windows(6):
    got = neurons.pattern_similarity(target, library, layers)
    want = [1 - distance.cosine(target[layers].ravel().astype(float),
                                lib[layers].ravel().astype(float))
            for lib in library[:3]]
    np.testing.assert_allclose(got[:3], want, rtol=1e-6)
    assert got[3] == 0.0
  assert [(w.start, w.stop) for w in neurons.layer_windows(5)] == [(0, 3), (1, 4), (2, 5), (0, 5)]


def test_overlap_metric_ranks_a_prompt_first_against_itself(params):
  prompts = _prompts(4)
  metric = neurons.overlap_metric(CONFIG, params, probe_token_id=PROBE)
  scores = similarity.score(prompts[2], prompts, metric)
  assert scores.shape == (4,) and scores[2] == pytest.approx(1.0) and scores.argmax() == 2


def test_library_cli_ranks_by_activated_neurons(params, tmp_path, capsys):
  path = tmp_path / "model.msgpack"
  t5x_export.write_t5x_msgpack(jax.device_get(params), str(path))
  (tmp_path / "config.json").write_text(json.dumps({"config": {
      k: getattr(CONFIG, k) for k in ("vocab_size", "emb_dim", "num_heads", "head_dim",
                                      "mlp_dim", "num_encoder_layers", "num_decoder_layers",
                                      "dropout_rate", "name")}}))
  prompts = _prompts(3, seed=5)
  lib = str(tmp_path / "lib")
  meta = dict(run="seed0", step=10, model_name=CONFIG.name, vocabulary_hash="ab" * 32)
  for task, prompt in zip(("a", "b"), prompts[:2]):
    for role in ("task_embedding", "transfer"):
      f = prompt_files.save_prompt(tmp_path / f"{task}_{role}", prompt,
                                   dict(meta, task=task, role=role))
      assert library_cli.main(["add", lib, f]) == 0
  target = prompt_files.save_prompt(tmp_path / "target", prompts[1] + 0.01,
                                    dict(meta, task="t"))
  capsys.readouterr()
  assert library_cli.main(["rank", lib, target, "--metric", "on", "--checkpoint", str(path),
                           "--config", str(tmp_path / "config.json"), "--probe-token",
                           str(PROBE), "--json"]) == 0
  ranking = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["task"] for r in ranking] == ["b", "a"] and ranking[0]["score"] > 0.9
  assert library_cli.main(["rank", lib, target, "--metric", "on"]) == 2
  assert "give --checkpoint and --size (or --config)" in capsys.readouterr().err


def test_capture_keeps_no_layers_full_activation():
  """XLA's scratch memory does not grow with depth: each layer's `[B, L, mlp]` activation is
  dropped once its position is taken (measured at Base: 131 MB for 6 to 24 layers)."""
  temp = {}
  for layers in (2, 8):
    c = get_config("tiny", vocab_size=40, emb_dim=32, num_heads=2, head_dim=16, mlp_dim=512,
                   num_encoder_layers=layers, dropout_rate=0.0, name=f"deep{layers}")
    params = jax.eval_shape(lambda c=c: t5.init_params(c, jax.random.PRNGKey(0)))
    prompts = jax.ShapeDtypeStruct((16, 100, c.emb_dim), np.float32)
    compiled = neurons._capture_fn(c, PROBE).lower(params, prompts).compile()  # pylint: disable=protected-access
    temp[layers] = compiled.memory_analysis().temp_size_in_bytes
  one_layer = 16 * 102 * 512 * 4
  assert temp[8] - temp[2] < one_layer, (temp, one_layer)
