"""Imported by the top-level recipes (`gin/spot_*.gin`), so that one recipe runs under
either trainer with the same macros:

    python -m spot_jax.train --gin_file=gin/spot_source.gin --gin.MODEL_DIR="'/runs/src'"
    python -m t5x.train      --gin_file=gin/spot_source.gin --gin.MODEL_DIR="'/runs/src'"

A recipe includes `runs/prompt_tuning.gin`. spot_jax's commands put the shipped `gin/`
folder on gin's search path before parsing, so that include is spot_jax's own trainer
layer. Under t5x.train, this import puts `gin/t5x/` (T5X's `train()` with spot_jax's
prompted T5, `spot_jax.t5x_integration`) ahead of `gin/`. Either way it registers the
configurables the shared layers (models/, prompts/) name. It never imports t5x.
"""
import os

import gin

from spot_jax.cli import gin_flags

T5X_LAYER = "t5x"  # the folder under gin/ whose files shadow gin/'s under t5x.train


def _setup() -> None:
  gin_flags.register_components()
  gin_flags.harden_gin_file_readers()
  root = gin_flags.gin_dir()
  for folder in (os.path.join(root, T5X_LAYER), root):
    gin_flags.add_search_path(folder)


_setup()
