"""The freed host heap goes back to the system: after a release (and after each XLA compile,
once installed) the resident set no longer holds what was freed."""
import jax
import jax.numpy as jnp
import pytest

from spot_jax.training import host_memory

MB = 2**20


def _resident_bytes() -> int:
  with open("/proc/self/status") as f:
    for line in f:
      if line.startswith("VmRSS:"):
        return int(line.split()[1]) * 1024
  raise AssertionError("no VmRSS in /proc/self/status")


def test_a_release_returns_freed_heap_to_the_system():
  if not host_memory.release_freed_heap():
    pytest.skip("this C library has no malloc_trim")
  # 256 MB in 64 KB blocks: below glibc's mmap threshold, so they come from the heap; a
  # block allocated after them keeps the heap's top from shrinking by itself.
  blocks = [bytearray(64 * 1024) for _ in range(4096)]
  pin = bytearray(64 * 1024)
  held = _resident_bytes()
  del blocks
  freed = _resident_bytes()
  host_memory.release_freed_heap()
  released = _resident_bytes()
  assert held - freed < 64 * MB, "glibc returned the blocks by itself: nothing to test here"
  assert freed - released > 192 * MB, (held, freed, released)
  del pin


def test_each_compile_is_followed_by_a_release(monkeypatch):
  host_memory.release_after_each_compile()
  calls = []
  monkeypatch.setattr(host_memory, "release_freed_heap", lambda: calls.append(1) or True)
  jax.jit(lambda x: jnp.sin(x) * 3.25 + 0.5)(jnp.ones((7, 3)))  # a program not compiled yet
  assert calls
