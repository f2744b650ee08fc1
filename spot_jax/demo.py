"""The quick-start job: the prompt-tuning pipeline end to end, offline, in about a minute.

1. Model-tune a tiny T5 v1.1 from scratch on prefixed toy skills (`toy_mt_mixture`) and
   export it as a T5X checkpoint: the frozen backbone.
2. Prompt-tune that frozen backbone on `toy_parity`, the parity skill with its prefix
   removed, so only a learned prompt can ask for it; evaluate with the task's metric.
Everything lands in `--out` (checkpoints, prompt files, TensorBoard logs, summary.json).
"""
import argparse
import json
import logging
import os
import time

from spot_jax.model import config as config_lib
from spot_jax.tasks import toy
from spot_jax.training import optimizer, trainer

CONFIG = config_lib.get_config("tiny", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
                               mlp_dim=128, dropout_rate=0.0, name="toy")
LENGTHS = {"inputs": 16, "targets": 8}


def run(out: str, backbone_steps: int = 400, prompt_steps: int = 300, seed: int = 0):
  toy.register()
  t0 = time.time()
  backbone_path = os.path.join(out, "backbone", "backbone.msgpack")
  mt = trainer.train(model_dir=os.path.join(out, "backbone"), mixture_or_task_name="toy_mt_mixture",
                     task_feature_lengths=LENGTHS, model_config=CONFIG, initial_checkpoint=None,
                     train_steps=backbone_steps, mode="model", seed=seed,
                     tx=optimizer.model_tuning_optimizer(learning_rate=1e-2), batch_size=32,
                     eval_period=backbone_steps, checkpoint_period=backbone_steps,
                     log_period=100, export_params_path=backbone_path)
  pt = trainer.train(model_dir=os.path.join(out, "prompt_toy_parity"),
                     mixture_or_task_name="toy_parity", task_feature_lengths=LENGTHS,
                     model_config=CONFIG, initial_checkpoint=backbone_path, seed=seed,
                     train_steps=prompt_steps, prompt_length=8, batch_size=32,
                     eval_period=max(prompt_steps // 2, 1), checkpoint_period=max(prompt_steps // 2, 1),
                     log_period=50, prompt_save_steps=(min(100, prompt_steps),))
  summary = {"backbone": mt["best"], "prompt_tuning": pt["best"],
             "wall_seconds": round(time.time() - t0, 1), "out": out}
  with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="spot_jax_demo")
  parser.add_argument("--backbone_steps", type=int, default=400)
  parser.add_argument("--prompt_steps", type=int, default=300)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  for noisy in ("absl", "jax", "orbax", "tensorflow", "seqio"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  print(json.dumps(run(args.out, args.backbone_steps, args.prompt_steps, args.seed)))


if __name__ == "__main__":
  main()
