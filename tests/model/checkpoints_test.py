"""Parameter checks at the door: every mismatch is named, loading never falls back to random."""
import copy
from pathlib import Path

import numpy as np
import pytest

from spot_jax.model import checkpoints
from spot_jax.model.config import get_config, param_shapes
from spot_jax.model.t5x_checkpoint import flatten, unflatten

SINGLE_FILE = (Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "t5x"
               / "test_t5_tiny.checkpoint_0")


def _zeros(config):
  shapes = flatten(param_shapes(config), is_leaf=lambda v: isinstance(v, tuple))
  return unflatten({k: np.zeros(s, np.float32) for k, s in shapes.items()})


def test_matching_tree_passes():
  config = get_config("tiny")
  checkpoints.check_params(_zeros(config), config)
  assert checkpoints.param_problems(_zeros(config), config) == []


def test_missing_and_unexpected_are_listed_by_path():
  config = get_config("tiny")
  params = _zeros(config)
  del params["encoder"]["layers_1"]["mlp"]["wo"]
  del params["decoder"]["decoder_norm"]
  params["decoder"]["layers_0"]["mlp"]["wi"] = {"kernel": np.zeros((8, 16))}
  with pytest.raises(checkpoints.ParamMismatchError) as e:
    checkpoints.check_params(params, config)
  message = str(e.value)
  assert ("missing parameters (2): decoder/decoder_norm/scale, encoder/layers_1/mlp/wo/kernel"
          in message)
  assert "unexpected parameters (1): decoder/layers_0/mlp/wi/kernel" in message


def test_shape_mismatch_names_parameter_and_both_shapes():
  config = get_config("tiny")
  params = _zeros(config)
  params["encoder"]["layers_0"]["attention"]["out"]["kernel"] = np.zeros((8, 12))
  with pytest.raises(checkpoints.ParamMismatchError,
                     match=r"shape mismatch for encoder/layers_0/attention/out/kernel: "
                           r"checkpoint has \(8, 12\), config 'tiny' expects \(12, 8\)"):
    checkpoints.check_params(params, config)


@pytest.mark.parametrize("name", ["token_embedder/embedding", "decoder/logits_dense/kernel"])
def test_vocabulary_mismatch_says_both_sizes(name):
  config = get_config("tiny")
  flat = flatten(_zeros(config))
  flat[name] = np.zeros((32000, 8) if name.startswith("token") else (8, 32000))
  with pytest.raises(checkpoints.ParamMismatchError,
                     match="vocabulary size mismatch: checkpoint has 32000, config has 32128"):
    checkpoints.check_params(unflatten(flat), config)


def test_fixture_against_wrong_configs():
  with pytest.raises(checkpoints.ParamMismatchError,
                     match="vocabulary size mismatch: checkpoint has 32128, config has 32000"):
    checkpoints.load_params(SINGLE_FILE, get_config("tiny", vocab_size=32000))
  with pytest.raises(checkpoints.ParamMismatchError,
                     match=r"missing parameters \(\d+\): decoder/layers_2/"):
    checkpoints.load_params(SINGLE_FILE, get_config("tiny", num_decoder_layers=3))
  with pytest.raises(checkpoints.ParamMismatchError,
                     match=r"shape mismatch for decoder/decoder_norm/scale: checkpoint has \(8,\)"):
    checkpoints.load_params(SINGLE_FILE, get_config("small"))


def test_check_accepts_lazy_arrays_and_shape_structs():
  import jax  # pylint: disable=g-import-not-at-top
  config = get_config("tiny")
  structs = {k: jax.ShapeDtypeStruct(v.shape, v.dtype) for k, v in flatten(_zeros(config)).items()}
  checkpoints.check_params(unflatten(structs), config)
  shapes = copy.deepcopy(structs)
  shapes["encoder/encoder_norm/scale"] = jax.ShapeDtypeStruct((9,), np.float32)
  with pytest.raises(checkpoints.ParamMismatchError, match=r"encoder/encoder_norm/scale"):
    checkpoints.check_params(shapes, config)


def test_config_refuses_a_max_distance_the_buckets_cannot_use():
  with pytest.raises(ValueError, match=r"relative_attention_max_distance \(16\) must exceed "
                                       r"half of relative_attention_num_buckets \(32\)"):
    get_config("tiny", relative_attention_max_distance=16)
