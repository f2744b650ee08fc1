"""Run checkpoints with orbax: the train state and the tf.data iterator position, saved
together so a restarted run continues exactly.

Orbax writes each step into a temporary directory and renames it when complete, so a crash
never leaves a half-written latest step. Beyond that, each finished step gets a list of its
files with their sizes and sha256 (`spot_jax_files.json`), written only after the step is
read back whole; older steps are deleted only then. A restore checks the list first and
falls back to the newest step that checks and restores, with a WARNING naming what was
wrong; the bad step is moved aside to `<model_dir>/corrupt_checkpoints/`, never deleted.
When no step restores, nothing is moved and the error says so.
"""
import dataclasses
import hashlib
import json
import logging
import os
import time
from typing import Any, Dict, Optional

import orbax.checkpoint as ocp
import tensorflow as tf
from etils import epath

from spot_jax import atomic_files

log = logging.getLogger("spot_jax.checkpoint")
FILE_LIST = "spot_jax_files.json"
CORRUPT_DIR = "corrupt_checkpoints"


class CheckpointError(RuntimeError):
  """No checkpoint of a run can be restored."""


class DatasetIteratorHandler(ocp.CheckpointHandler):
  """Saves a tf.data iterator (shuffle buffers and position) with `tf.train.Checkpoint`."""

  def save(self, directory: epath.Path, args: "DatasetIteratorArgs"):
    tf.train.Checkpoint(iterator=args.iterator).write(os.fspath(directory / "iterator"))

  def restore(self, directory: epath.Path, args: "DatasetIteratorArgs"):
    tf.train.Checkpoint(iterator=args.iterator).read(
        os.fspath(directory / "iterator")).assert_consumed()
    return args.iterator


@ocp.args.register_with_handler(DatasetIteratorHandler, for_save=True, for_restore=True)
@dataclasses.dataclass
class DatasetIteratorArgs(ocp.args.CheckpointArgs):
  iterator: Any


def _walk(step_dir: str):
  for root, _, files in tf.io.gfile.walk(step_dir):
    for name in files:
      path = os.path.join(root, name)
      rel = os.path.relpath(path, step_dir)
      if rel != FILE_LIST:
        yield rel, path


def _sha256(path: str) -> str:
  digest = hashlib.sha256()
  with tf.io.gfile.GFile(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def file_list(step_dir: str) -> Dict[str, Any]:
  """`{relative path: [size, sha256]}` of a checkpoint step's files."""
  return {rel: [tf.io.gfile.stat(path).length, _sha256(path)] for rel, path in _walk(step_dir)}


def check_files(step_dir: str) -> Optional[str]:
  """What is wrong with a step's files against its recorded list (None: nothing, or no list,
  as in checkpoints written before the lists or by other tools)."""
  listed = os.path.join(step_dir, FILE_LIST)
  if not tf.io.gfile.exists(listed):
    return None
  try:
    with tf.io.gfile.GFile(listed, "r") as f:
      expected = json.load(f)
  except (ValueError, tf.errors.OpError) as e:
    return f"{listed} is unreadable ({e})"
  for rel, (size, sha) in sorted(expected.items()):
    path = os.path.join(step_dir, rel)
    if not tf.io.gfile.exists(path):
      return f"{path} is missing"
    actual = tf.io.gfile.stat(path).length
    if actual != size:
      return f"{path} has {actual} bytes, {size} were written"
    if _sha256(path) != sha:
      return f"{path} differs from what was written (sha256)"
  return None


class RunCheckpointer:
  """Keeps the last `keep` verified checkpoints of a run under `<model_dir>/checkpoints/<step>`
  (and, while a new one is being verified, the one before it)."""

  def __init__(self, model_dir: str, keep: Optional[int] = 2):
    self.model_dir = os.fspath(model_dir)
    self.root = os.path.join(self.model_dir, "checkpoints")
    self.keep = keep
    # Orbax keeps everything; older steps are deleted here, once the new one is verified.
    self.manager = ocp.CheckpointManager(
        self.root, options=ocp.CheckpointManagerOptions(max_to_keep=None, create=True,
                                                        enable_async_checkpointing=False))

  def _step_dir(self, step: int) -> str:
    return os.path.join(self.root, str(step))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state, iterator=None):
    items = {"state": ocp.args.StandardSave(state)}
    if iterator is not None:
      items["dataset"] = DatasetIteratorArgs(iterator)
    self.manager.save(step, args=ocp.args.Composite(**items), force=True)
    self.manager.wait_until_finished()
    step_dir = self._step_dir(step)
    listing = file_list(step_dir)  # reads every byte back
    if not listing:
      raise CheckpointError(f"checkpoint {step_dir} was written empty")
    atomic_files.write_atomically(os.path.join(step_dir, FILE_LIST),
                                  json.dumps(listing, sort_keys=True).encode())
    if self.keep:
      older = sorted(s for s in self.manager.all_steps() if s < step)
      for old in older[:max(len(older) - (self.keep - 1), 0)]:
        self.manager.delete(old)

  def _set_aside(self, step: int, why: str) -> str:
    dest = os.path.join(self.model_dir, CORRUPT_DIR, f"{step}-{time.strftime('%Y%m%d-%H%M%S')}")
    tf.io.gfile.makedirs(os.path.dirname(dest))
    tf.io.gfile.rename(self._step_dir(step), dest)
    with tf.io.gfile.GFile(os.path.join(dest, "WHY.txt"), "w") as f:
      f.write(why + "\n")
    self.manager.reload()
    return dest

  def restore(self, step: Optional[int], abstract_state, iterator=None):
    """Restores onto `abstract_state` (a tree of `jax.ShapeDtypeStruct` with shardings) from
    `step` (None: the latest), falling back to the newest older step that checks and
    restores. Returns (state, step restored)."""
    steps = sorted(self.manager.all_steps(), reverse=True)
    if step is not None:
      steps = [s for s in steps if s <= step]
    bad = []  # (step, what is wrong), newest first
    for candidate in steps:
      step_dir = self._step_dir(candidate)
      wrong = check_files(step_dir)
      if wrong is None:
        items = {"state": ocp.args.StandardRestore(abstract_state)}
        if iterator is not None:
          items["dataset"] = DatasetIteratorArgs(iterator)
        try:
          restored = self.manager.restore(candidate, args=ocp.args.Composite(**items))
        except Exception as e:  # pylint: disable=broad-except
          wrong = f"{step_dir} cannot be restored ({type(e).__name__}: {str(e)[:300]})"
        else:
          for s, why in bad:  # newer than what resumes: would block the run's next saves
            dest = self._set_aside(s, why)
            log.warning("checkpoint %s is unusable: %s; moved it to %s and resuming from "
                        "step %d", self._step_dir(s), why, dest, candidate)
          return restored["state"], candidate
      bad.append((candidate, wrong))
    raise CheckpointError(
        f"no checkpoint of {self.model_dir} can be restored: "
        + "; ".join(f"step {s}: {why}" for s, why in bad)
        + f". Nothing was changed; to start the run again from step 0, delete {self.model_dir} "
        "or choose another directory.")

  def close(self):
    self.manager.close()
