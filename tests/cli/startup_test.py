"""A command's imports run with the garbage collector paused, and what they built is frozen
(`spot_jax.cli.startup`); garbage from before is collected, not kept."""
import gc
import weakref

import pytest

from spot_jax.cli import startup


class _Node:
  pass


def _garbage_cycle():
  node = _Node()
  node.self = node  # only the collector frees a cycle
  return weakref.ref(node)


def test_the_block_runs_paused_then_its_objects_are_frozen():
  garbage = _garbage_cycle()
  frozen_before = gc.get_freeze_count()
  with startup.frozen_imports():
    assert not gc.isenabled()
    assert garbage() is None, "garbage from before the block is collected, not frozen"
    built = [[i] for i in range(1000)]  # what an import builds: tracked containers
  assert gc.isenabled()
  assert gc.get_freeze_count() >= frozen_before + len(built)
  later = _garbage_cycle()
  gc.collect()
  assert later() is None, "the collector works again after the block"


def test_the_collectors_state_is_restored_when_the_block_raises():
  with pytest.raises(ImportError):
    with startup.frozen_imports():
      raise ImportError("a missing module")
  assert gc.isenabled()
  gc.disable()  # a caller that had paused it itself keeps it paused
  try:
    with startup.frozen_imports():
      pass
    assert not gc.isenabled()
  finally:
    gc.enable()
