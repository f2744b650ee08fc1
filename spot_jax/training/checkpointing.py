"""Run checkpoints with orbax: the train state and the tf.data iterator position, saved
together so a restarted run continues exactly. Orbax writes each step into a temporary
directory and renames it when complete, so a crash never leaves a corrupt latest step."""
import dataclasses
import os
from typing import Any, Optional

import jax
import orbax.checkpoint as ocp
import tensorflow as tf
from etils import epath


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


class RunCheckpointer:
  """Keeps the last `keep` checkpoints of a run under `<model_dir>/checkpoints/<step>`."""

  def __init__(self, model_dir: str, keep: Optional[int] = 1):
    self.manager = ocp.CheckpointManager(
        os.path.join(os.fspath(model_dir), "checkpoints"),
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=False))

  def latest_step(self) -> Optional[int]:
    return self.manager.latest_step()

  def save(self, step: int, state, iterator=None):
    items = {"state": ocp.args.StandardSave(state)}
    if iterator is not None:
      items["dataset"] = DatasetIteratorArgs(iterator)
    self.manager.save(step, args=ocp.args.Composite(**items), force=True)
    self.manager.wait_until_finished()

  def restore(self, step: int, abstract_state, iterator=None):
    """Restores onto `abstract_state` (a tree of `jax.ShapeDtypeStruct` with shardings)."""
    items = {"state": ocp.args.StandardRestore(abstract_state)}
    if iterator is not None:
      items["dataset"] = DatasetIteratorArgs(iterator)
    restored = self.manager.restore(step, args=ocp.args.Composite(**items))
    return restored["state"]

  def close(self):
    self.manager.close()
