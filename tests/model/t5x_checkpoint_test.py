"""T5X checkpoint readers on the files T5X itself wrote (../shared/fixtures/t5x), plus layouts
written here the way T5X and Orbax write them."""
import os
from pathlib import Path

import ml_dtypes
import msgpack
import numpy as np
import pytest
import tensorstore as ts

from spot_jax.model import checkpoints
from spot_jax.model import t5x_checkpoint as tc
from spot_jax.model.config import get_config, param_shapes

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "t5x"
SINGLE_FILE = FIXTURES / "test_t5_tiny.checkpoint_0"
DIRECTORY = FIXTURES / "tiny_t5_checkpoint_1"
ORBAX = FIXTURES / "tiny_orbax" / "1"


def _shapes(tree):
  return {k: tuple(v.shape) for k, v in tc.flatten(tree).items()}


def _expected_shapes(config):
  return tc.flatten(param_shapes(config), is_leaf=lambda v: isinstance(v, tuple))


@pytest.fixture(scope="module")
def tiny_params():
  return tc.read_t5x_params(SINGLE_FILE)


def test_single_file_has_exactly_the_tiny_param_shapes(tiny_params):
  assert _shapes(tiny_params) == _expected_shapes(get_config("tiny"))
  assert all(v.dtype == np.float32 for v in tc.flatten(tiny_params).values())


def test_single_file_values(tiny_params):
  # First float of token_embedder/embedding in the file: bytes b3 2a 7d bf.
  first = np.frombuffer(b"\xb3*}\xbf", np.float32)[0]
  assert tiny_params["token_embedder"]["embedding"][0, 0] == first
  # T5X initialises the RMS norm scales to one.
  np.testing.assert_array_equal(tiny_params["encoder"]["encoder_norm"]["scale"], np.ones(8))
  assert np.std(tiny_params["decoder"]["logits_dense"]["kernel"]) > 0.1


def test_optimizer_state_is_not_read():
  names = tc.open_t5x_checkpoint(SINGLE_FILE)
  assert not [n for n in names if "param_states" in n or n.endswith(("/v_row", "/m"))]
  state = tc.read_t5x_params(SINGLE_FILE, subtree="optimizer/state/param_states")
  assert state["encoder"]["encoder_norm"]["scale"]["v"].shape == (8,)


def test_dtype_cast_on_read(tiny_params):
  bf16 = tc.read_t5x_params(SINGLE_FILE, dtype="bfloat16")
  emb = bf16["token_embedder"]["embedding"]
  assert emb.dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(emb, tiny_params["token_embedder"]["embedding"].astype(emb.dtype))


def test_read_one_variable(tiny_params):
  emb = tc.read_t5x_variable(SINGLE_FILE, "token_embedder/embedding")
  np.testing.assert_array_equal(emb, tiny_params["token_embedder"]["embedding"])
  with pytest.raises(tc.CheckpointKeyError, match="has no parameter 'encoder/layers_7/mlp'"):
    tc.read_t5x_variable(SINGLE_FILE, "encoder/layers_7/mlp")


def test_load_params_checks_single_file(tiny_params):
  params = checkpoints.load_params(SINGLE_FILE, get_config("tiny"), dtype="float32")
  np.testing.assert_array_equal(params["decoder"]["relpos_bias"]["rel_embedding"],
                                tiny_params["decoder"]["relpos_bias"]["rel_embedding"])
  assert checkpoints.checkpoint_format(SINGLE_FILE) == "t5x"


def test_directory_fixture_dense_layer():
  # T5X's directory fixture holds a dense layer under optimizer/state; its target is empty.
  with pytest.raises(tc.CheckpointFormatError, match="holds no model parameters: "
                     "'optimizer/target' is empty"):
    tc.open_t5x_checkpoint(DIRECTORY)
  arrays = tc.open_t5x_checkpoint(DIRECTORY, subtree="optimizer/state")
  assert isinstance(arrays["param_states/kernel"], tc.TensorStoreArray)
  assert arrays["param_states/kernel"].shape == (10, 5)
  values = tc.read_arrays(arrays)
  assert values["param_states/kernel"].dtype == np.float64
  np.testing.assert_array_equal(values["param_states/bias"], np.ones(5, np.float32))
  assert values["param_states/step"] == 1 and values["step"] == 1
  as_f32 = arrays["param_states/kernel"].read("float32")
  assert as_f32.dtype == np.float32
  np.testing.assert_allclose(as_f32, values["param_states/kernel"], rtol=1e-7)


def test_orbax_fixture_agrees_with_directory_fixture():
  dense = tc.read_arrays(tc.open_t5x_checkpoint(DIRECTORY, subtree="optimizer/state"))
  # The legacy Orbax folders carry no .zarray, so shapes and dtypes come from `like`.
  with pytest.raises(tc.CheckpointFormatError, match=r"\.zarray is missing"):
    tc.open_t5x_checkpoint(ORBAX, subtree="_optimizer/state")
  like = {"param_states": {"kernel": ((10, 5), "float64"), "bias": ((5,), "float32"),
                           "step": ((), "int32")}, "step": ((), "int32")}
  orbax = tc.read_t5x_params(ORBAX, subtree="_optimizer/state", like=like)
  assert orbax["param_states"]["kernel"].dtype == np.float64
  np.testing.assert_array_equal(orbax["param_states"]["kernel"], dense["param_states/kernel"])
  np.testing.assert_array_equal(orbax["param_states"]["bias"], dense["param_states/bias"])
  assert orbax["step"] == 1
  with pytest.raises(tc.CheckpointFormatError, match="'_optimizer/target' is empty"):
    tc.open_t5x_checkpoint(ORBAX)


def _write_t5x_directory(directory: Path, params, version=3, store_as=None):
  """A checkpoint laid out as T5X writes it: zarr folders `target.a.b/`, relative gfile paths."""
  directory.mkdir()
  specs = {}
  for name, value in tc.flatten(params).items():
    folder = "target." + name.replace("/", ".")
    value = value if store_as is None else value.astype(store_as).view(np.uint16)
    spec = {"driver": "zarr", "dtype": ts.dtype(value.dtype.name).name,
            "kvstore": {"driver": "file", "path": str(directory / folder)},
            "metadata": {"chunks": list(value.shape), "compressor": {"id": "gzip", "level": 1},
                         "shape": list(value.shape)}}
    ts.open(spec, create=True).result().write(value).result()
    spec["kvstore"] = {"driver": "gfile", "path": folder}
    specs[name] = spec
  state = {"version": version, "optimizer": {"target": tc.unflatten(specs),
                                            "state": {"step": 7}}}
  (directory / "checkpoint").write_bytes(msgpack.packb(state))


def test_directory_layout_of_the_official_checkpoints(tmp_path, tiny_params):
  _write_t5x_directory(tmp_path / "checkpoint_1100000", tiny_params)
  params = checkpoints.load_params(tmp_path / "checkpoint_1100000", get_config("tiny"))
  for name, value in tc.flatten(tiny_params).items():
    np.testing.assert_array_equal(tc.flatten(params)[name], value, err_msg=name)
  bf16 = tc.read_t5x_variable(tmp_path / "checkpoint_1100000", "token_embedder/embedding",
                              dtype="bfloat16")
  assert bf16.dtype == ml_dtypes.bfloat16 and bf16.shape == (32128, 8)
  # The msgpack file can be named directly too.
  assert tc.checkpoint_layout(tmp_path / "checkpoint_1100000" / "checkpoint") == "msgpack"


def test_version_2_bfloat16_stored_as_uint16(tmp_path, tiny_params):
  _write_t5x_directory(tmp_path / "ckpt", tiny_params, version=2, store_as=ml_dtypes.bfloat16)
  emb = tc.read_t5x_variable(tmp_path / "ckpt", "token_embedder/embedding")
  assert emb.dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(emb, tiny_params["token_embedder"]["embedding"].astype(emb.dtype))


def test_current_orbax_layout_restores_only_target(tmp_path, tiny_params):
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  state = {"target": tiny_params, "state": {"step": np.int32(3),
                                            "param_states": {"v": np.zeros((4, 4))}}}
  ocp.PyTreeCheckpointer().save(tmp_path / "1", state)
  assert checkpoints.checkpoint_format(tmp_path / "1") == "orbax"
  arrays = tc.open_t5x_checkpoint(tmp_path / "1")
  assert isinstance(arrays["token_embedder/embedding"], tc.OrbaxArray)
  params = checkpoints.load_params(tmp_path / "1", get_config("tiny"), dtype="bfloat16")
  assert _shapes(params) == _expected_shapes(get_config("tiny"))
  emb = params["token_embedder"]["embedding"]
  assert emb.dtype == ml_dtypes.bfloat16
  np.testing.assert_array_equal(emb, tiny_params["token_embedder"]["embedding"].astype(emb.dtype))
  one = tc.read_t5x_variable(tmp_path / "1", "encoder/layers_1/mlp/wo/kernel")
  np.testing.assert_array_equal(one, tiny_params["encoder"]["layers_1"]["mlp"]["wo"]["kernel"])


def test_gcs_paths_go_through_tensorstore_gcs_driver():
  base = "gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_base/checkpoint_1100000"
  assert tc.kvstore_spec(base, "target.token_embedder.embedding/") == {
      "driver": "gcs", "bucket": "t5-data",
      "path": "pretrained_models/t5x/t5_1_1_lm100k_base/checkpoint_1100000/"
              "target.token_embedder.embedding/"}
  stored = {"driver": "zarr", "dtype": "float32",
            "kvstore": {"driver": "gcs", "bucket": "t5x-dummy-bucket",
                        "path": "target.token_embedder.embedding"},
            "metadata": {"chunks": [4016, 768], "compressor": {"id": "gzip", "level": 1},
                         "shape": [32128, 768]}}
  array = tc.spec_array(stored, base)
  assert array.spec["kvstore"] == {
      "driver": "gcs", "bucket": "t5-data",
      "path": "pretrained_models/t5x/t5_1_1_lm100k_base/checkpoint_1100000/"
              "target.token_embedder.embedding"}
  assert array.shape == (32128, 768) and array.dtype == np.float32
  assert tc.kvstore_spec("/ckpt/checkpoint_1", "target.x/") == {
      "driver": "file", "path": "/ckpt/checkpoint_1/target.x/"}


def test_missing_path_is_named(tmp_path):
  with pytest.raises(FileNotFoundError, match=f"checkpoint path does not exist: {tmp_path}/nope"):
    tc.read_t5x_params(tmp_path / "nope")
  with pytest.raises(FileNotFoundError, match=f"checkpoint path does not exist: {tmp_path}/nope"):
    checkpoints.load_params(tmp_path / "nope", get_config("tiny"))
  with pytest.raises(FileNotFoundError, match="without a T5X `checkpoint` file"):
    tc.open_t5x_checkpoint(tmp_path)


def test_missing_array_folder_is_named(tmp_path, tiny_params):
  _write_t5x_directory(tmp_path / "ckpt", tiny_params)
  folder = tmp_path / "ckpt" / "target.encoder.encoder_norm.scale"
  for f in os.listdir(folder):
    os.remove(folder / f)
  os.rmdir(folder)
  with pytest.raises(FileNotFoundError, match=r"cannot read array .*encoder/encoder_norm/scale"):
    tc.read_t5x_params(tmp_path / "ckpt")
  # A lost chunk beside intact zarr metadata fails too, instead of reading as zeros.
  os.remove(tmp_path / "ckpt" / "target.decoder.decoder_norm.scale" / "0")
  with pytest.raises(FileNotFoundError, match=r"decoder/decoder_norm/scale.*is missing"):
    tc.read_t5x_variable(tmp_path / "ckpt", "decoder/decoder_norm/scale")


def test_not_a_checkpoint(tmp_path):
  (tmp_path / "junk").write_bytes(b"\x00\x01 not msgpack at all")
  with pytest.raises(tc.CheckpointFormatError, match="is not a T5X msgpack checkpoint"):
    tc.read_t5x_params(tmp_path / "junk")
  (tmp_path / "other").write_bytes(msgpack.packb({"weights": {"w": 1}}))
  with pytest.raises(tc.CheckpointFormatError, match="has no parameter tree .*'weights'"):
    tc.read_t5x_params(tmp_path / "other")
  with pytest.raises(tc.CheckpointKeyError, match="has no subtree 'optimizer/nothing'"):
    tc.read_t5x_params(SINGLE_FILE, subtree="optimizer/nothing")


def test_t5x_checkpoint_needs_a_config():
  with pytest.raises(ValueError, match="pass `config`"):
    checkpoints.load_params(SINGLE_FILE)
