"""Files that are either written whole or not at all: the project's one atomic write.

Every file spot_jax writes that a later run or another tool reads (prompt files, the prompt
library's manifest, checkpoints' file lists, reports, exported checkpoints and adapters)
goes through here: the bytes go to a temporary name in the destination's directory, are
flushed and fsynced, and `os.replace` puts them in place, then the directory is fsynced.
A crash leaves the old file or the new one, plus at most a temporary `.NAME.<hex>.tmp`
beside it. On a bucket (`gs://...`, any filesystem TensorFlow's gfile serves, as T5X runs
use) a temporary object is written and renamed over the destination.
"""
import contextlib
import os
import uuid
from typing import Callable, Iterator, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def is_uri(path: PathLike) -> bool:
  """`gs://...` and other filesystems TensorFlow's gfile serves (T5X runs write to buckets)."""
  return "://" in os.fspath(path)


def gfile():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only for gs:// and such)
  return tf.io.gfile


def fsync_dir(directory: str) -> None:
  """Makes a rename in `directory` durable; a filesystem that cannot is left as it is."""
  try:
    fd = os.open(directory, os.O_RDONLY)
  except OSError:
    return
  try:
    os.fsync(fd)
  except OSError:
    pass
  finally:
    os.close(fd)


def temporary_name(path: PathLike) -> str:
  """The temporary file a write of `path` goes through: `.NAME.<hex>.tmp` beside it."""
  path = os.path.abspath(os.fspath(path))
  return os.path.join(os.path.dirname(path),
                      f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")


@contextlib.contextmanager
def atomic_output(path: PathLike, *,
                  before_commit: Optional[Callable[[], None]] = None) -> Iterator[str]:
  """Yields a temporary path to write `path`'s content to (for writers that want a file
  name, e.g. safetensors); on a clean exit it is fsynced and renamed onto `path`, on an
  error it is removed and `path` is left as it was. `before_commit` runs between the two
  (tests use it to crash there). Missing parent directories are created."""
  path = os.fspath(path)
  if is_uri(path):
    tmp = f"{path}.{uuid.uuid4().hex}.tmp"
    try:
      yield tmp
      if before_commit is not None:
        before_commit()
      gfile().rename(tmp, path, overwrite=True)
    except BaseException:
      if gfile().exists(tmp):
        gfile().remove(tmp)
      raise
    return
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  tmp = temporary_name(path)
  try:
    yield tmp
    with open(tmp, "rb+") as f:
      os.fsync(f.fileno())
    if before_commit is not None:
      before_commit()
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  fsync_dir(directory)


def write_atomically(path: PathLike, data: Union[bytes, str], *,
                     before_commit: Optional[Callable[[], None]] = None) -> str:
  """Writes `data` (text is UTF-8 encoded) to `path` atomically; returns `path`."""
  if isinstance(data, str):
    data = data.encode("utf-8")
  with atomic_output(path, before_commit=before_commit) as tmp:
    if is_uri(tmp):
      with gfile().GFile(tmp, "wb") as f:
        f.write(data)
    else:
      with open(tmp, "wb") as f:
        f.write(data)
  return os.fspath(path)
