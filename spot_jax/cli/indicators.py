r"""Which indicator predicts transfer (Su et al. 2022 §5; SPoT's Figure 4), from the command
line, on a zero-shot matrix (`spot_jax.transfer.indicators`).

  python -m spot_jax.cli.indicators --zero_shot /runs/zero_shot/zero_shot.json \
    [--checkpoint CKPT --size base] --out /runs/indicators

Writes `indicators.json`, `indicators.md` and `indicators.png` to `--out`.
"""
import argparse
import json
import sys
from typing import Any, Dict, Optional, Sequence

import numpy as np

from spot_jax import paths, run_lock
from spot_jax.cli import convert
from spot_jax.prompts import prompt_files
from spot_jax.transfer import indicators, transfer_report


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
  parser = argparse.ArgumentParser(prog="python -m spot_jax.cli.indicators",
                                   description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--zero_shot", required=True,
                      help="zero_shot.json of `python -m spot_jax.cli.zero_shot`")
  parser.add_argument("--values", choices=("relative", "raw"), default="relative")
  parser.add_argument("--checkpoint", help="the frozen model, to add ON")
  convert.model_args(parser, required=False)
  parser.add_argument("--probe_token", type=int, help="ON's probe token (default <extra_id_0>)")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  try:
    with open(paths.absolute(args.zero_shot)) as f:
      result = json.load(f)
  except (OSError, ValueError) as e:
    parser.error(f"--zero_shot {args.zero_shot}: cannot be read as JSON ({e})")
  missing = [k for k in ("prompt_files", "prompt_tasks", "tasks", args.values)
             if not isinstance(result, dict) or k not in result]
  if missing:
    parser.error(f"--zero_shot {args.zero_shot}: not a zero_shot.json of `python -m "
                 f"spot_jax.cli.zero_shot` (no {', '.join(missing)})")
  prompts = np.stack([prompt_files.load_prompt(p, require_metadata=False)[0]
                      for p in result["prompt_files"]])
  model = None
  if args.checkpoint:
    if not (args.size or args.config):
      parser.error("--checkpoint needs --size or --config (the model ON runs on)")
    from spot_jax.model import checkpoints  # pylint: disable=g-import-not-at-top  (jax)
    config = convert.model_config(args)
    model = indicators.FrozenModel(
        config, checkpoints.load_params(paths.absolute(args.checkpoint), config),
        args.probe_token)
  values = np.array([[np.nan if v is None else v for v in row] for row in result[args.values]])
  table = indicators.indicator_table(values, prompts, result["prompt_tasks"], result["tasks"],
                                     indicators.metrics(model))
  table["values"] = args.values
  try:
    with run_lock.hold(paths.absolute(args.out), "--out"):
      print(json.dumps(transfer_report.write_indicators(table, args.out)))
  except run_lock.DirectoryInUse as e:
    parser.error(str(e))
  return table


if __name__ == "__main__":
  sys.exit(0 if main() else 1)
