"""Times scoring one target prompt against a library of N prompts; prints one JSON line.

  python tools/bench_retrieval.py [--num_prompts 1000] [--prompt_length 100] [--d_model 512]

Reports the median wall time over `--repeats` runs of every similarity metric on
float32 numpy arrays already in memory, and of `rank_sources` (scoring plus the
per-task aggregation over 3 runs per task). Reading prompts from disk is not timed.
"""
import argparse
import json
import os
import platform
import statistics
import time

import numpy as np

from spot_jax.prompts.prompt_files import PromptMetadata
from spot_jax.transfer import retrieval
from spot_jax.transfer import similarity
from spot_jax.transfer.prompt_library import LibraryEntry


def _median_seconds(fn, repeats: int) -> float:
  fn()  # warm-up: first-touch page faults, BLAS thread start
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return statistics.median(times)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--num_prompts", type=int, default=1000)
  parser.add_argument("--prompt_length", type=int, default=100)
  parser.add_argument("--d_model", type=int, default=512)
  parser.add_argument("--repeats", type=int, default=5)
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args()

  rng = np.random.default_rng(args.seed)
  shape = (args.num_prompts, args.prompt_length, args.d_model)
  library = rng.uniform(-0.5, 0.5, size=shape).astype(np.float32)
  target = rng.uniform(-0.5, 0.5, size=shape[1:]).astype(np.float32)
  entries = [LibraryEntry(str(i), f"prompts/{i}", PromptMetadata(
      task=f"task{i // 3}", run=f"seed{i % 3}", model_name="bench", vocabulary_hash="0",
      step=10_000, d_model=args.d_model, prompt_length=args.prompt_length,
      role="task_embedding")) for i in range(args.num_prompts)]

  result = {"num_prompts": args.num_prompts, "prompt_length": args.prompt_length,
            "d_model": args.d_model, "repeats": args.repeats,
            "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "numpy": np.__version__, "seconds": {}}
  for metric in similarity.METRICS:
    result["seconds"][metric] = round(_median_seconds(
        lambda m=metric: similarity.score(target, library, m), args.repeats), 4)
  result["seconds"]["rank_sources(cosine_per_token, mean)"] = round(_median_seconds(
      lambda: retrieval.rank_sources(target, entries, library), args.repeats), 4)
  print(json.dumps(result))


if __name__ == "__main__":
  main()
