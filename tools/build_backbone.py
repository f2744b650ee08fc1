"""Builds the embedded tiny frozen backbone: a T5 v1.1 model-tuned on the synthetic corpus.

  python tools/build_backbone.py                 # the shipped build (see config.json)
  python tools/build_backbone.py --steps 100 --out /tmp/bb   # a quick smoke build

The build itself is `spot_jax.embedded.build.build_backbone` (what it trains on, what it
writes and the acceptance check are described there); this command exits 1 when a family
falls short of the acceptance check.
"""
import argparse
import json
import logging

from spot_jax.embedded import build


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=build.DEFAULT_BACKBONE_OUT)
  parser.add_argument("--steps", type=int, default=build.STEPS)
  parser.add_argument("--learning_rate", type=float, default=build.LEARNING_RATE)
  parser.add_argument("--model_dir", default=None,
                      help="keep the training run (checkpoints, TensorBoard) here")
  parser.add_argument("--seed", type=int, default=build.SEED)
  args = parser.parse_args()
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  for noisy in ("absl", "jax", "orbax", "tensorflow", "seqio"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  meta = build.build_backbone(args.out, args.steps, args.learning_rate, args.model_dir,
                              args.seed)
  print(json.dumps(meta, indent=2))
  if not meta["acceptance"]["passed"]:
    print(f"acceptance check FAILED: salient-word accuracy {meta['salient_accuracy']}, "
          f"expected at least {build.ACCEPTANCE} per family")
    raise SystemExit(1)


if __name__ == "__main__":
  main()
