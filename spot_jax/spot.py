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
from typing import Optional, Sequence

from spot_jax.cli import gin_flags


def main(argv: Optional[Sequence[str]] = None) -> dict:
  summary, _ = gin_flags.run_command(argv, __doc__, "SPOT_DIR", "run_spot", train="train")
  print(json.dumps({"best": summary["best"], "ranking": summary["ranking"]}, default=str),
        flush=True)
  return summary

if __name__ == "__main__":
  main()
