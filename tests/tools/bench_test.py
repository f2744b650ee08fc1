"""tools/bench.py runs end to end on the tiny model and prints one parseable JSON line."""
import json
import pathlib
import subprocess
import sys

import pytest

BENCH = pathlib.Path(__file__).resolve().parents[2] / "tools" / "bench.py"


def _bench(*flags):
  proc = subprocess.run([sys.executable, str(BENCH), "--size", "tiny", "--steps", "2",
                         "--batch", "4", "--inputs", "16", "--targets", "4", *flags],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [l for l in proc.stdout.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stdout
  return json.loads(lines[0])


@pytest.mark.parametrize("flags", [("--mode", "forward", "--mesh", "2x1"),
                                   ("--mode", "prompt", "--prompt_length", "3",
                                    "--microbatches", "2")])
def test_bench_prints_one_json_line(flags):
  out = _bench(*flags)
  for key in ("examples_per_s", "tokens_per_s", "gflops_per_s", "compile_s", "peak_rss_gb"):
    assert isinstance(out[key], float) and out[key] > 0, (key, out[key])
  assert out["mode"] == flags[1] and out["size"] == "tiny" and out["reference"] == "jax"
  if out["mode"] == "prompt":
    assert out["prompt_length"] == 3 and out["microbatches"] == 2
    assert out["final_loss"] == out["final_loss"]  # not NaN
  else:
    assert out["num_devices"] == 2


def test_flop_count_matches_hand_count():
  """Small at the issue's shape: 2,257 GFLOP per prompt-tuning step (issue 6, section 10)."""
  sys.path.insert(0, str(BENCH.parent))
  import bench
  from spot_jax.model.config import get_config
  c = get_config("small")
  assert bench.step_flops("prompt", c, 32, 612, 16) / 1e9 == pytest.approx(2257, abs=1)
  fwd = bench.step_flops("forward", c, 32, 612, 16)
  assert bench.step_flops("model", c, 32, 612, 16) == pytest.approx(3 * fwd)
