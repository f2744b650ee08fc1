"""Paths as users give them: a relative path means the working directory at the moment it
is handed in, so every entry point (command lines, gin-configured functions, the library)
turns it into an absolute one before anything stores or passes it on (orbax, for one,
refuses relative paths)."""
import os
from typing import Optional, Union

PathLike = Union[str, "os.PathLike[str]"]


def absolute(path: Optional[PathLike]) -> Optional[str]:
  """`path` made absolute against the working directory (with `~` expanded); URIs such as
  `gs://bucket/dir` and None pass unchanged."""
  if path is None:
    return None
  path = os.fspath(path)
  if not path or "://" in path:
    return path
  return os.path.abspath(os.path.expanduser(path))
