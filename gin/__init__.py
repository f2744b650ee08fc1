"""Shipped gin configuration files (installed as spot_jax.gin; see README.md here).

Run from the repository root (`python -m spot_jax.train`, `python -m pytest`), this folder
sits on `sys.path` as a top-level `gin` and would shadow gin-config. Imported under that
name, it hands `import gin` over to gin-config instead.
"""
import os as _os
import sys as _sys

if __name__ == "gin":
  _root = _os.path.dirname(_os.path.dirname(_os.path.abspath(__file__)))
  _saved = list(_sys.path)
  _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or _os.curdir) != _root]
  del _sys.modules["gin"]
  try:
    import importlib as _importlib
    _sys.modules["gin"] = _importlib.import_module("gin")  # gin-config
  finally:
    _sys.path[:] = _saved
