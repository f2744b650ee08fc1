r"""SPoT in one command: source prompts, library registration, the target's task
embedding, retrieval and the target stage, configured by gin like `spot_jax.train`.

  python -m spot_jax.spot --gin_file=models/t5_1_1_lm100k_base.gin \
    --gin_file=runs/spot.gin --gin.SPOT_DIR="'/runs/spot_boolq'" \
    --gin.SOURCE_TASKS="['spot_glue_mnli_v200', 'spot_mrqa_squad_v100']" \
    --gin.TARGET_TASK="'spot_super_glue_boolq_v102'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}"

Writes `SPOT_DIR/sources/<task>/seed<s>`, `SPOT_DIR/library`, `SPOT_DIR/target_embedding`,
`SPOT_DIR/target/...` and `SPOT_DIR/spot_result.json`; rerun to resume.
"""
import json
import sys
from typing import Optional, Sequence

from spot_jax import gin_utils


def main(argv: Optional[Sequence[str]] = None) -> dict:
  gin_utils.setup_logging()
  gin_utils.parse_command_line(sys.argv[1:] if argv is None else argv, __doc__)
  out_dir = gin_utils.output_dir("SPOT_DIR")
  gin_utils.write_config(out_dir, "config.gin")
  configurables = gin_utils.register_configurables()
  configurables["prepare_tasks"]()
  summary = configurables["run_spot"](train=configurables["train"])
  gin_utils.write_config(out_dir, "operative_config.gin", operative=True)
  print(json.dumps({"best": summary["best"], "ranking": summary["ranking"]}, default=str),
        flush=True)
  return summary


if __name__ == "__main__":
  main()
