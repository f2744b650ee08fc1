r"""Scores a saved prompt (or a model-tuned checkpoint) on a task's split with its metrics.

  python -m spot_jax.eval \
    --gin_file=models/t5_1_1_lm100k_base.gin --gin_file=runs/eval.gin \
    --gin.MIXTURE_OR_TASK_NAME="'spot_glue_rte_v200'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.PROMPT_FILE="'/tmp/run/prompts/best'" --gin.EVAL_OUTPUT_DIR="'/tmp/run/eval_rte'"

Prints `{task: {metric: value}}` as JSON and writes it to EVAL_OUTPUT_DIR/metrics.json.
"""
import json
from typing import Optional, Sequence

from spot_jax.cli import gin_flags


def main(argv: Optional[Sequence[str]] = None) -> dict:
  metrics, _ = gin_flags.run_command(argv, __doc__, "EVAL_OUTPUT_DIR", "evaluate")
  print(json.dumps(metrics), flush=True)
  return metrics

if __name__ == "__main__":
  main()
