r"""Trains a prompt (or the whole model) from gin files, with t5x.train's flags.

  python -m spot_jax.train \
    --gin_file=models/t5_1_1_lm100k_base.gin --gin_file=prompts/from_class_labels.gin \
    --gin_file=runs/prompt_tuning.gin --gin.MODEL_DIR="'/tmp/run'" \
    --gin.MIXTURE_OR_TASK_NAME="'spot_glue_rte_v200'" \
    --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" --gin.TRAIN_STEPS=30000 \
    --gin.CLASS_LABELS="['entailment', 'not_entailment']"

`MODEL_DIR` receives config.gin (as parsed) at the start, operative_config.gin at the end.
"""
import json
from typing import Optional, Sequence

from spot_jax.cli import gin_flags


def main(argv: Optional[Sequence[str]] = None) -> dict:
  summary, _ = gin_flags.run_command(argv, __doc__, "MODEL_DIR", "train")
  print(json.dumps({"model_dir": summary["model_dir"], "final_step": summary["final_step"],
                    "best": summary["best"], "data": summary["data"],
                    "wall_seconds": round(summary["wall_seconds"], 1)}), flush=True)
  return summary

if __name__ == "__main__":
  main()
