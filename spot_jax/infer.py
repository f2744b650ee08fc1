r"""Decodes a task's split (or a text file, one input a line) with a saved prompt.

  python -m spot_jax.infer \
    --gin_file=models/t5_1_1_lm100k_base.gin --gin_file=runs/infer.gin \
    --gin.MIXTURE_OR_TASK_NAME="'spot_glue_rte_v200'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.PROMPT_FILE="'/tmp/run/prompts/best'" --gin.INFER_OUTPUT_DIR="'/tmp/run/infer_rte'"

Writes INFER_OUTPUT_DIR/predictions.jsonl: one `{task, input, target, prediction}` a line
(`--gin.INPUT_FILE="'inputs.txt'"` decodes the lines of a file instead of the split).
"""
import sys
from typing import Optional, Sequence

from spot_jax import gin_utils


def main(argv: Optional[Sequence[str]] = None) -> int:
  gin_utils.setup_logging()
  gin_utils.parse_command_line(sys.argv[1:] if argv is None else argv, __doc__)
  output_dir = gin_utils.output_dir("INFER_OUTPUT_DIR")
  gin_utils.write_config(output_dir, "config.gin")
  configurables = gin_utils.register_configurables()
  configurables["prepare_tasks"]()
  count = configurables["infer"]()
  gin_utils.write_config(output_dir, "operative_config.gin", operative=True)
  print(f"wrote {count} predictions to {output_dir}/predictions.jsonl", flush=True)
  return count


if __name__ == "__main__":
  main()
