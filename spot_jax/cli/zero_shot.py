r"""Zero-shot cross-task transfer (Su et al. 2022, §4) from the command line: every prompt
of a library (or the files given), untrained, on every task (`spot_jax.transfer.zero_shot`).

  python -m spot_jax.cli.zero_shot --library /runs/library \
    --tasks spot_glue_rte_v200 spot_glue_mnli_v200 --checkpoint CKPT --size base \
    --task_feature_lengths inputs=512 targets=8 --out /runs/zero_shot

Writes `zero_shot.json`, `zero_shot.md` and `zero_shot_heatmap.png` to `--out`.
"""
import argparse
import json
import logging
import os
import sys
from typing import Any, Dict, Optional, Sequence

from spot_jax import paths, run_lock
from spot_jax.cli import convert, startup
from spot_jax.transfer import transfer_report, zero_shot


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  with startup.frozen_imports():
    from spot_jax.training import data  # pylint: disable=g-import-not-at-top  (seqio, TF)
  parser = argparse.ArgumentParser(prog="python -m spot_jax.cli.zero_shot",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--library", help="every transfer prompt of this library")
  source.add_argument("--prompts", nargs="+", help="prompt files (name=path or path)")
  parser.add_argument("--tasks", nargs="+", required=True)
  parser.add_argument("--checkpoint", help="the frozen model (none: random weights)")
  convert.model_args(parser, required=True)
  parser.add_argument("--task_feature_lengths", nargs=2, required=True,
                      metavar=("inputs=N", "targets=N"))
  parser.add_argument("--task_modules", nargs="+", default=list(data.DEFAULT_TASK_MODULES),
                      help="modules registering the tasks ('module' or 'module:function')")
  parser.add_argument("--split", default="validation")
  parser.add_argument("--num_examples", type=int)
  parser.add_argument("--batch_size", type=int, default=32)
  parser.add_argument("--metric", help="the metric to tabulate (default: each task's first)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  pairs = [item.partition("=") for item in args.task_feature_lengths]
  lengths = {k: int(v) for k, _, v in pairs if v.isdigit() and int(v) > 0}
  if set(lengths) != {"inputs", "targets"}:
    parser.error(f"--task_feature_lengths {' '.join(args.task_feature_lengths)}: expected "
                 "inputs=N targets=N with positive N")
  if args.library:
    prompts = zero_shot.library_prompts(args.library)
  else:
    prompts = dict(p.split("=", 1) if "=" in p else (os.path.basename(p), p)
                   for p in args.prompts)
  if not prompts:
    parser.error("no prompts to evaluate")
  try:
    with run_lock.hold(paths.absolute(args.out), "--out"):
      with startup.frozen_imports():
        data.prepare_tasks(modules=args.task_modules)
      result = zero_shot.zero_shot_matrix(prompts, args.tasks,
                                          model_config=convert.model_config(args),
                                          checkpoint_path=args.checkpoint,
                                          task_feature_lengths=lengths, split=args.split,
                                          num_examples=args.num_examples,
                                          batch_size=args.batch_size, metric=args.metric)
      files = transfer_report.write_zero_shot(result, args.out)
  except run_lock.DirectoryInUse as e:
    parser.error(str(e))
  print(json.dumps(files))
  return result


if __name__ == "__main__":
  sys.exit(0 if main() else 1)
