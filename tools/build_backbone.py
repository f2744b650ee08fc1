"""Builds the embedded tiny frozen backbone: a T5 v1.1 model-tuned on the synthetic corpus.

  python tools/build_backbone.py                 # the shipped build (see config.json)
  python tools/build_backbone.py --steps 100 --out /tmp/bb   # a quick smoke build

Trains from scratch with `trainer.train(mode='model')` on `synth_backbone`, a prefix-LM
over generated documents of the synthetic language (reviews with verdicts, facts with
claims, restatements and recalls), never the suite's tasks; then writes into `--out`:
`backbone.msgpack` (T5X msgpack), `config.json` (`T5Config` fields, the vocabulary's
sha256, steps, final loss, wall time and the acceptance check). Data and initialisation are
seeded, but float reductions may differ across machines and XLA versions, so the built file
is shipped (the embedded default) rather than rebuilt on first use.

The acceptance check (`spot_jax.embedded.salient_accuracy`): on held-out corpus documents,
the salient word of each rule (verdict, topic, judgement, sameness) must be ranked first
among its family's words at least ACCEPTANCE percent of the time, per family; the tool
exits 1 when a family falls short.
"""
import argparse
import dataclasses
import json
import logging
import os
import shutil
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "spot_jax", "assets", "backbone")
STEPS = 3600
LEARNING_RATE = 1e-2
BATCH_SIZE = 64
SEED = 0
ACCEPTANCE = 90.0  # percent, per family


def backbone_config(vocab_size: int):
  """emb 128, 4 heads x 32, mlp 512, 4 encoder + 2 decoder layers (~1.8M parameters; the
  rules are read by the encoder, the targets are a word or three); vocab padded to 128."""
  from spot_jax.model.config import T5Config
  return T5Config(vocab_size=-(-vocab_size // 128) * 128, emb_dim=128, num_heads=4,
                  head_dim=32, mlp_dim=512, num_encoder_layers=4, num_decoder_layers=2,
                  dropout_rate=0.0, name="synthetic_backbone")


def build(out: str, steps: int = STEPS, learning_rate: float = LEARNING_RATE,
          model_dir: str = None, seed: int = SEED) -> dict:
  from spot_jax import embedded
  from spot_jax.tasks import synthetic
  from spot_jax.training import optimizer, trainer
  synthetic.register()
  vocab = embedded.synthetic_vocabulary()
  config = backbone_config(vocab.vocab_size)
  t0 = time.time()
  work = model_dir or tempfile.mkdtemp(prefix="spot_jax_backbone_")
  os.makedirs(out, exist_ok=True)
  ckpt = os.path.join(out, embedded.BACKBONE_CHECKPOINT)
  result = trainer.train(
      model_dir=work, mixture_or_task_name=synthetic.BACKBONE_MIXTURE,
      task_feature_lengths=synthetic.BACKBONE_FEATURE_LENGTHS, model_config=config,
      initial_checkpoint=None, train_steps=steps, mode="model", seed=seed,
      tx=optimizer.model_tuning_optimizer(learning_rate=learning_rate), batch_size=BATCH_SIZE,
      eval_period=steps, checkpoint_period=steps, log_period=max(steps // 20, 1),
      num_eval_examples=256, export_params_path=ckpt)
  from spot_jax.model import checkpoints
  salient = embedded.salient_accuracy(checkpoints.load_params(ckpt, config), config)
  train_logs = [h for h in result["history"] if "loss" in h]
  meta = {
      "config": dataclasses.asdict(config),
      "vocabulary_sha256": embedded.vocabulary_sha256(),
      "vocabulary_file": embedded.VOCAB_FILE,
      "mixture": synthetic.BACKBONE_MIXTURE,
      "task_feature_lengths": synthetic.BACKBONE_FEATURE_LENGTHS,
      "train_steps": steps, "batch_size": BATCH_SIZE, "learning_rate": learning_rate,
      "seed": seed,
      "final_train_loss": train_logs[-1]["loss"] if train_logs else None,
      "final_train_token_accuracy": train_logs[-1]["accuracy"] if train_logs else None,
      "validation": result["best"],
      "wall_seconds": round(time.time() - t0, 1),
      "salient_accuracy": salient,
      "acceptance": {"threshold": ACCEPTANCE,
                     "passed": all(v >= ACCEPTANCE for v in salient.values())},
  }
  with open(os.path.join(out, embedded.BACKBONE_CONFIG), "w") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
    f.write("\n")
  if model_dir is None:
    shutil.rmtree(work, ignore_errors=True)
  return meta


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=DEFAULT_OUT)
  parser.add_argument("--steps", type=int, default=STEPS)
  parser.add_argument("--learning_rate", type=float, default=LEARNING_RATE)
  parser.add_argument("--model_dir", default=None,
                      help="keep the training run (checkpoints, TensorBoard) here")
  parser.add_argument("--seed", type=int, default=SEED)
  args = parser.parse_args()
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  for noisy in ("absl", "jax", "orbax", "tensorflow", "seqio"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  meta = build(args.out, args.steps, args.learning_rate, args.model_dir, args.seed)
  print(json.dumps(meta, indent=2))
  if not meta["acceptance"]["passed"]:
    print(f"acceptance check FAILED: salient-word accuracy {meta['salient_accuracy']}, "
          f"expected at least {ACCEPTANCE} per family")
    raise SystemExit(1)


if __name__ == "__main__":
  main()
