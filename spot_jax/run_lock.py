"""One process per output directory: an exclusive `fcntl.flock` on `<dir>/.spot_jax.lock`,
held while a command writes there, so a second command on the same directory stops with a
clear error instead of mixing its checkpoints and configs with the first one's.

The lock is re-entrant within a process (the `train` command locks MODEL_DIR, then the
trainer locks the same directory again) and the kernel releases it when the process ends,
however it ends, so a killed run never leaves a stale lock. The file records who holds it,
for the message. URIs (`gs://...`) are not locked: flock needs a local file system.
"""
import contextlib
import fcntl
import json
import os
import sys
import threading
import time
from typing import Dict, Iterator, List, Optional

LOCK_FILE = ".spot_jax.lock"

_HELD: Dict[str, List[int]] = {}  # real path -> [file descriptor, depth]
_GUARD = threading.Lock()


class DirectoryInUse(RuntimeError):
  """Another process holds the directory's lock."""


def _holder(path: str) -> str:
  try:
    with open(path, encoding="utf-8") as f:
      info = json.load(f)
    return (f"pid {info['pid']}, `{info['command']}`, since "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(info['since']))}")
  except (OSError, ValueError, KeyError, TypeError):
    return "another process"


@contextlib.contextmanager
def hold(directory: str, flag: Optional[str] = None) -> Iterator[None]:
  """Holds `directory`'s lock (creating the directory) for the `with` block; raises
  DirectoryInUse at once, naming the holder and `flag` (how the user set the directory),
  when another process holds it."""
  if "://" in directory:
    yield
    return
  os.makedirs(directory, exist_ok=True)
  key = os.path.realpath(directory)
  with _GUARD:
    if key in _HELD:
      _HELD[key][1] += 1
    else:
      path = os.path.join(key, LOCK_FILE)
      fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
      except BlockingIOError:
        os.close(fd)
        name = f"{flag} {directory}" if flag else directory
        raise DirectoryInUse(
            f"{name} is in use by {_holder(path)}: two runs writing one directory would mix "
            "their checkpoints, prompts and configs. Wait for it to finish, or choose another "
            "directory.") from None
      info = {"pid": os.getpid(), "command": " ".join(sys.argv)[:300], "since": time.time()}
      os.ftruncate(fd, 0)
      os.write(fd, json.dumps(info).encode())
      _HELD[key] = [fd, 1]
  try:
    yield
  finally:
    with _GUARD:
      entry = _HELD[key]
      entry[1] -= 1
      if entry[1] == 0:
        del _HELD[key]
        os.close(entry[0])  # closing the descriptor releases the lock
