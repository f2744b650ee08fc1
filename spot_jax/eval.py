r"""Scores a saved prompt (or a model-tuned checkpoint) on a task's split with its metrics.

  python -m spot_jax.eval \
    --gin_file=models/t5_1_1_lm100k_base.gin --gin_file=runs/eval.gin \
    --gin.MIXTURE_OR_TASK_NAME="'spot_glue_rte_v200'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.PROMPT_FILE="'/tmp/run/prompts/best'" --gin.EVAL_OUTPUT_DIR="'/tmp/run/eval_rte'"

Prints `{task: {metric: value}}` as JSON and writes it to EVAL_OUTPUT_DIR/metrics.json.
"""
import json
import sys
from typing import Optional, Sequence

from spot_jax import gin_utils


def main(argv: Optional[Sequence[str]] = None) -> dict:
  gin_utils.setup_logging()
  gin_utils.parse_command_line(sys.argv[1:] if argv is None else argv, __doc__)
  output_dir = gin_utils.output_dir("EVAL_OUTPUT_DIR")
  gin_utils.write_config(output_dir, "config.gin")
  configurables = gin_utils.register_configurables()
  configurables["prepare_tasks"]()
  metrics = configurables["evaluate"]()
  gin_utils.write_config(output_dir, "operative_config.gin", operative=True)
  print(json.dumps(metrics), flush=True)
  return metrics


if __name__ == "__main__":
  main()
