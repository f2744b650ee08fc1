"""Prompt files: round trip, atomic pair, shape and hash checks, no pickles."""
import hashlib
import json
import os

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
from spot_jax.prompts.prompt_files import PromptFileError, PromptMetadata


def _metadata(**overrides):
  fields = dict(task="rte", model_name="t5_1_1_lm100k_small", vocabulary_hash="ab" * 32,
                step=10_000, run="seed0", seed=0, metric_name="accuracy", metric_value=0.75,
                role="task_embedding")
  fields.update(overrides)
  return fields


def _prompt(p=5, d=8, seed=0):
  return np.random.default_rng(seed).normal(size=(p, d)).astype(np.float32)


def test_round_trip_fills_shape_hash_and_time(tmp_path):
  prompt = _prompt()
  path = prompt_files.save_prompt(tmp_path / "rte" / "step10000", prompt, _metadata())
  assert path == str(tmp_path / "rte" / "step10000.npy")
  array, meta = prompt_files.load_prompt(tmp_path / "rte" / "step10000")
  np.testing.assert_array_equal(array, prompt)
  assert array.dtype == np.float32
  assert (meta.prompt_length, meta.d_model) == (5, 8)
  assert meta.array_sha256 == prompt_files.array_sha256(prompt)
  assert meta.created and meta.task == "rte" and meta.metric_value == 0.75
  assert meta.run_key == "seed0"
  # The sidecar is plain, human-readable JSON; the directory holds no temporary files.
  with open(tmp_path / "rte" / "step10000.json") as f:
    assert json.load(f)["vocabulary_hash"] == "ab" * 32
  assert sorted(os.listdir(tmp_path / "rte")) == ["step10000.json", "step10000.npy"]


def test_any_suffix_names_the_same_pair(tmp_path):
  prompt_files.save_prompt(tmp_path / "p.npy", _prompt(), PromptMetadata(**_metadata()))
  for name in ("p", "p.npy", "p.json"):
    array, _ = prompt_files.load_prompt(tmp_path / name)
    assert array.shape == (5, 8)


def test_other_float_dtypes_are_stored_as_float32(tmp_path):
  import jax.numpy as jnp
  prompt = _prompt()
  prompt_files.save_prompt(tmp_path / "bf16", jnp.asarray(prompt, jnp.bfloat16), _metadata())
  array, _ = prompt_files.load_prompt(tmp_path / "bf16")
  assert array.dtype == np.float32
  np.testing.assert_allclose(array, prompt, rtol=1e-2, atol=1e-2)
  assert np.load(tmp_path / "bf16.npy").dtype == np.float32


def test_metadata_shape_must_match_the_array(tmp_path):
  with pytest.raises(ValueError, match=r"\[5, 8\] but \[100, \?\]"):
    prompt_files.save_prompt(tmp_path / "p", _prompt(), _metadata(prompt_length=100))
  assert not os.path.exists(tmp_path / "p.npy")


@pytest.mark.parametrize("bad", [np.zeros((3,), np.float32), np.zeros((2, 3, 4), np.float32),
                                 np.array([[1.0, np.nan]], np.float32),
                                 np.zeros((2, 2), np.int32)])
def test_bad_prompts_are_refused(tmp_path, bad):
  with pytest.raises(ValueError):
    prompt_files.save_prompt(tmp_path / "p", bad, _metadata())


@pytest.mark.parametrize("change", [dict(task=""), dict(step=-1), dict(role="best"),
                                    dict(metric_value=float("nan")), dict(vocabulary_hash=""),
                                    dict(stepp=3), dict(metric_name=None)])
def test_bad_metadata_is_refused(tmp_path, change):
  with pytest.raises(PromptFileError):
    prompt_files.save_prompt(tmp_path / "p", _prompt(), _metadata(**change))


def test_pickled_arrays_are_never_loaded(tmp_path):
  np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
  with pytest.raises(PromptFileError, match="not a plain numeric"):
    prompt_files.load_prompt(tmp_path / "evil", require_metadata=False)


def test_a_torn_pair_is_detected(tmp_path):
  prompt_files.save_prompt(tmp_path / "p", _prompt(seed=0), _metadata())
  np.save(tmp_path / "p.npy", _prompt(seed=1))  # new array, old sidecar
  with pytest.raises(PromptFileError, match="sha256"):
    prompt_files.load_prompt(tmp_path / "p")


def test_a_missing_sidecar_means_the_pair_is_incomplete(tmp_path):
  np.save(tmp_path / "bare.npy", _prompt())
  with pytest.raises(PromptFileError, match="sidecar"):
    prompt_files.load_prompt(tmp_path / "bare")
  array, meta = prompt_files.load_prompt(tmp_path / "bare", require_metadata=False)
  assert meta is None and array.shape == (5, 8)


def test_expected_shape_names_both_shapes(tmp_path):
  prompt_files.save_prompt(tmp_path / "p", _prompt(), _metadata())
  with pytest.raises(ValueError, match=r"shape \[5, 8\] but \[100, 512\]"):
    prompt_files.load_prompt(tmp_path / "p", expected_shape=(100, 512))
  prompt_files.load_prompt(tmp_path / "p", expected_shape=(None, 8))


def test_check_prompt_shape_accepts_arrays_and_tuples():
  prompt_files.check_prompt_shape((100, 512), (100, None))
  with pytest.raises(ValueError, match=r"\[100, 768\] but \[100, 512\]"):
    prompt_files.check_prompt_shape(np.zeros((100, 768)), (100, 512))


def test_vocabulary_hash_is_the_sha256_of_the_model_file(tmp_path):
  data = b"\x0a\x05hello sentencepiece"
  (tmp_path / "spm.model").write_bytes(data)
  assert prompt_files.vocabulary_hash(data) == hashlib.sha256(data).hexdigest()
  assert prompt_files.vocabulary_hash(tmp_path / "spm.model") == hashlib.sha256(data).hexdigest()
  assert prompt_files.vocabulary_hash(str(tmp_path / "spm.model")) != (
      prompt_files.vocabulary_hash(data + b"!"))


def test_overwrite_replaces_the_pair(tmp_path):
  prompt_files.save_prompt(tmp_path / "p", _prompt(seed=0), _metadata(step=1))
  prompt_files.save_prompt(tmp_path / "p", _prompt(seed=1), _metadata(step=2))
  array, meta = prompt_files.load_prompt(tmp_path / "p")
  np.testing.assert_array_equal(array, _prompt(seed=1))
  assert meta.step == 2


def test_numpy_and_jax_scalars_from_a_trainer_are_stored_as_json_numbers(tmp_path):
  import jax.numpy as jnp
  meta = _metadata(step=np.int64(500), seed=np.int32(3), metric_value=jnp.float32(0.5))
  prompt_files.save_prompt(tmp_path / "p", _prompt(), meta)
  _, loaded = prompt_files.load_prompt(tmp_path / "p")
  assert (loaded.step, loaded.seed, loaded.metric_value) == (500, 3, 0.5)
  assert type(loaded.step) is int and type(loaded.metric_value) is float


def test_random_bytes_named_npy_are_not_called_a_pickle(tmp_path):
  (tmp_path / "noise.npy").write_bytes(os.urandom(256).replace(b"\x93", b"x"))
  with pytest.raises(PromptFileError, match=r"noise.npy is not a .npy file: it does not start "
                                            r"with numpy's header") as e:
    prompt_files.load_prompt(tmp_path / "noise", require_metadata=False)
  assert "pickle" not in str(e.value)


# --- A prompt file as a run's init (prompts/from_file.gin) is checked at the door ---------------

class _Vocab:
  sp_model = b"the model's sentencepiece bytes"
  vocab_size = 32


def _factory_init(path, **kwargs):
  from spot_jax.prompts import initializers
  embedding = np.zeros((32, 8), np.float32)
  init = initializers.prompt_file(str(path), **kwargs)(embedding, _Vocab(), "t5_1_1_lm100k_small")
  return np.asarray(init(None, (5, 8)))


def _model_metadata(**overrides):
  return _metadata(vocabulary_hash=prompt_files.vocabulary_hash(_Vocab.sp_model), **overrides)


def test_prompt_file_init_takes_a_file_of_the_same_model(tmp_path):
  prompt_files.save_prompt(tmp_path / "p", _prompt(), _model_metadata())
  np.testing.assert_array_equal(_factory_init(tmp_path / "p"), _prompt())


@pytest.mark.parametrize("change,differs", [
    (dict(model_name="t5_1_1_lm100k_base"), "model name differ"),
    (dict(vocabulary_hash="cd" * 32), "vocabulary differ"),
])
def test_prompt_file_init_refuses_another_model(tmp_path, change, differs):
  meta = _model_metadata()
  meta.update(change)
  prompt_files.save_prompt(tmp_path / "p", _prompt(), meta)
  with pytest.raises(prompt_files.ModelMismatchError,
                     match=rf"prompt file {tmp_path}/p.npy comes from model .* but this run is "
                           rf"for model 't5_1_1_lm100k_small'.*\({differs}\)"):
    _factory_init(tmp_path / "p")


def test_prompt_file_init_may_allow_another_model_name_only(tmp_path, caplog):
  prompt_files.save_prompt(tmp_path / "p", _prompt(), _model_metadata(model_name="mine"))
  np.testing.assert_array_equal(_factory_init(tmp_path / "p", allow_other_model=True), _prompt())
  assert "comes from model 'mine'" in caplog.text


def test_prompt_file_init_refuses_an_array_that_no_longer_matches_its_sha256(tmp_path):
  prompt_files.save_prompt(tmp_path / "p", _prompt(seed=0), _model_metadata())
  np.save(tmp_path / "p.npy", _prompt(seed=1))
  with pytest.raises(PromptFileError, match="does not match the sha256"):
    _factory_init(tmp_path / "p")


def test_prompt_file_init_accepts_a_bare_npy_with_a_warning(tmp_path, caplog):
  np.save(tmp_path / "bare.npy", _prompt())
  np.testing.assert_array_equal(_factory_init(tmp_path / "bare"), _prompt())
  assert "bare.npy has no .json sidecar" in caplog.text


def test_prompt_files_on_a_bucket_go_through_gfile():
  """T5X runs keep MODEL_DIR in a bucket (gs://); TensorFlow's in-memory ram:// filesystem
  stands in for it here: the same write, read, hash check and pickle refusal."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = "ram://bucket/run/prompts/best"
  array = np.arange(6, dtype=np.float32).reshape(2, 3)
  prompt_files.save_prompt(path, array, _metadata())
  assert sorted(tf.io.gfile.listdir("ram://bucket/run/prompts")) == ["best.json", "best.npy"]
  loaded, meta = prompt_files.load_prompt(path)
  np.testing.assert_array_equal(loaded, array)
  assert meta.step == 10_000 and prompt_files.prompt_exists(path)
  assert not prompt_files.prompt_exists("ram://bucket/run/prompts/final")
  with tf.io.gfile.GFile("ram://bucket/pickle", "wb") as f:  # ram:// appends on rewrite
    f.write(b"\x80\x04pickle")
  tf.io.gfile.rename("ram://bucket/pickle", "ram://bucket/run/prompts/best.npy", overwrite=True)
  with pytest.raises(PromptFileError, match="not a .npy file"):
    prompt_files.load_prompt(path)
