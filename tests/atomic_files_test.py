"""The one atomic write: whole or not at all, on disk and on a bucket."""
import os

import pytest

from spot_jax import atomic_files


def test_a_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
  path = tmp_path / "new" / "dir" / "report.md"
  assert atomic_files.write_atomically(path, "first\n") == os.fspath(path)
  atomic_files.write_atomically(path, b"second\n")
  assert path.read_bytes() == b"second\n"
  assert os.listdir(path.parent) == ["report.md"]


def test_a_failure_before_the_commit_leaves_the_old_file_and_no_debris(tmp_path):
  path = tmp_path / "manifest.jsonl"
  path.write_text("old\n")

  def crash():
    assert [n for n in os.listdir(tmp_path) if n.endswith(".tmp")], "temporary not written"
    raise OSError("disk full")
  with pytest.raises(OSError, match="disk full"):
    atomic_files.write_atomically(path, "new\n", before_commit=crash)
  assert path.read_text() == "old\n" and os.listdir(tmp_path) == ["manifest.jsonl"]


def test_a_writer_that_wants_a_file_name_gets_the_temporary(tmp_path):
  path = tmp_path / "model.safetensors"
  with atomic_files.atomic_output(path) as tmp:
    assert os.path.basename(tmp).startswith(".model.safetensors.") and tmp.endswith(".tmp")
    with open(tmp, "wb") as f:
      f.write(b"weights")
    assert not path.exists()
  assert path.read_bytes() == b"weights"
  with pytest.raises(ValueError):
    with atomic_files.atomic_output(path) as tmp:
      with open(tmp, "wb") as f:
        f.write(b"half")
      raise ValueError("writer failed")
  assert path.read_bytes() == b"weights" and os.listdir(tmp_path) == ["model.safetensors"]


def test_a_bucket_path_goes_through_gfile():
  """T5X runs keep MODEL_DIR in a bucket; TensorFlow's ram:// filesystem stands in for it."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  path = "ram://atomic_bucket/run/history.json"
  atomic_files.write_atomically(path, "{}\n")
  with tf.io.gfile.GFile(path, "rb") as f:
    assert f.read() == b"{}\n"
  assert tf.io.gfile.listdir("ram://atomic_bucket/run") == ["history.json"]
