"""The toy backbone the tests share: a tiny T5 model-tuned from scratch on the prefixed toy
skills (`toy_tasks`), exported as a T5X msgpack checkpoint, with the train() result as JSON
and its final parameters in an .npz file. Built once per run of the suite (the
`toy_backbone` fixture of tests/conftest.py); `tests/training/trainer_test.py` checks what the build
learned and exported.

A full run under pytest-xdist starts the build in the background as the run starts
(`python tests/toy_backbone.py ROOT`, from tests/conftest.py), so the worker that first
needs it finds it done or nearly done instead of building while the others wait.
"""
import fcntl
import json
import os
import pathlib
import shutil
import sys

NAME = "toy_backbone"
LENGTHS = {"inputs": 16, "targets": 8}
ONE_DEVICE = (1, 1)  # see tests/conftest.py
STEPS = 400


def config():
  from spot_jax.model import config as config_lib
  return config_lib.get_config("tiny", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
                               mlp_dim=128, dropout_rate=0.0, name="toy")


def built_once(root: pathlib.Path, name: str, build):
  """`build(folder)` once for the whole run, its JSON result returned to every caller: the
  first caller builds into `root / name` holding a lock there, the others wait on the lock
  and read what it wrote. A build that fails leaves no result, so the next caller builds
  again."""
  folder, done = root / name, root / f"{name}.json"
  with open(root / f"{name}.lock", "a") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.is_file():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      result = build(folder)
      tmp = done.with_suffix(".tmp")
      tmp.write_text(json.dumps(result))
      os.replace(tmp, done)
  return json.loads(done.read_text())


def build(d: pathlib.Path):
  from spot_jax.cli import startup
  with startup.frozen_imports():  # as a command line imports (a process of its own in CI)
    import jax
    import numpy as np
    import toy_tasks
    from spot_jax.training import optimizer, trainer
    toy_tasks.register()
  out = trainer.train(model_dir=str(d / "run"), mixture_or_task_name="toy_mt_mixture",
                      task_feature_lengths=LENGTHS, model_config=config(),
                      initial_checkpoint=None, train_steps=STEPS, mode="model",
                      tx=optimizer.model_tuning_optimizer(learning_rate=1e-2), batch_size=32,
                      eval_period=STEPS, checkpoint_period=STEPS, log_period=100,
                      export_params_path=str(d / "backbone.msgpack"), mesh_shape=ONE_DEVICE)
  final = jax.tree_util.tree_flatten_with_path(out.pop("final_state").params)[0]
  np.savez(d / "final_params.npz", **{jax.tree_util.keystr(k): np.asarray(v) for k, v in final})
  out["final_params"] = str(d / "final_params.npz")  # {keystr(path): array}, no pickle
  return {"path": str(d / "backbone.msgpack"),
          "result": json.loads(json.dumps(out, default=float))}


if __name__ == "__main__":
  built_once(pathlib.Path(sys.argv[1]), NAME, build)
