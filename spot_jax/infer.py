r"""Decodes a task's split (or a text file, one input a line) with a saved prompt.

  python -m spot_jax.infer \
    --gin_file=models/t5_1_1_lm100k_base.gin --gin_file=runs/infer.gin \
    --gin.MIXTURE_OR_TASK_NAME="'spot_glue_rte_v200'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \
    --gin.PROMPT_FILE="'/tmp/run/prompts/best'" --gin.INFER_OUTPUT_DIR="'/tmp/run/infer_rte'"

Writes INFER_OUTPUT_DIR/predictions.jsonl: one `{task, input, target, prediction}` a line
(`--gin.INPUT_FILE="'inputs.txt'"` decodes the lines of a file instead of the split).
"""
from typing import Optional, Sequence

from spot_jax.cli import gin_flags


def main(argv: Optional[Sequence[str]] = None) -> int:
  count, output_dir = gin_flags.run_command(argv, __doc__, "INFER_OUTPUT_DIR", "infer")
  print(f"wrote {count} predictions to {output_dir}/predictions.jsonl", flush=True)
  return count

if __name__ == "__main__":
  main()
