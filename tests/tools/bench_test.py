"""tools/bench.py runs end to end on the tiny model and prints one parseable JSON line."""
import json
import pathlib
import subprocess
import sys

import pytest

from spot_jax.model.config import get_config

BENCH = pathlib.Path(__file__).resolve().parents[2] / "tools" / "bench.py"


# As on the GPU machine, whose image has neither: the timed steps import without them.
WITHOUT_TF = ("import os, runpy, sys; sys.modules.update(tensorflow=None, seqio=None); "
              "sys.argv = sys.argv[1:]; sys.path.insert(0, os.path.dirname(sys.argv[0])); "
              "runpy.run_path(sys.argv[0], run_name='__main__')")


def _bench(*flags):
  proc = subprocess.run([sys.executable, "-c", WITHOUT_TF, str(BENCH), "--size", "tiny",
                         "--steps", "2", "--batch", "4", "--inputs", "16", "--targets", "4",
                         "--roofline_n", "256", *flags],
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [l for l in proc.stdout.splitlines() if l.strip()]
  assert len(lines) == 1, proc.stdout
  return json.loads(lines[0])


@pytest.mark.slow
@pytest.mark.parametrize("flags", [("--mode", "forward", "--mesh", "2x1"),
                                   ("--mode", "prompt", "--prompt_length", "3",
                                    "--microbatches", "2", "--runs", "3")])
def test_bench_prints_one_json_line(flags):
  out = _bench(*flags)
  for key in ("examples_per_s", "tokens_per_s", "gflops_per_s", "compile_s", "peak_rss_gb"):
    assert isinstance(out[key], float) and out[key] > 0, (key, out[key])
  assert out["mode"] == flags[1] and out["size"] == "tiny" and out["reference"] == "jax"
  # The roofline, measured first: the machine's 256-cubed matmul rate, and the step's share.
  assert out["matmul_gflops_per_s"] > 0
  assert out["mfu"] == pytest.approx(out["gflops_per_s"] / out["matmul_gflops_per_s"])
  if out["mode"] == "prompt":
    assert out["prompt_length"] == 3 and out["microbatches"] == 2
    assert out["final_loss"] == out["final_loss"]  # not NaN
    # 3 runs packed as the study packs a stage, against one run alone at the same shapes.
    assert out["runs"] == 3 and out["gflop_per_step"] == pytest.approx(
        3 * bench_module().step_flops("prompt", get_config("tiny"), 4, 16 + 3, 4) / 1e9)
    assert out["single_run_examples_per_s"] > 0 and out["single_run_microbatches"] == 2
    assert out["packing_speedup"] == pytest.approx(
        out["examples_per_s"] / out["single_run_examples_per_s"])
  else:
    assert out["num_devices"] == 2


def bench_module():
  sys.path.insert(0, str(BENCH.parent))
  import bench  # pylint: disable=g-import-not-at-top  (tools/)
  return bench


def test_flop_count_matches_hand_count():
  """Small at the issue's shape: 2,257 GFLOP per prompt-tuning step (issue 6, section 10)."""
  bench = bench_module()
  c = get_config("small")
  assert bench.step_flops("prompt", c, 32, 612, 16) / 1e9 == pytest.approx(2257, abs=1)
  fwd = bench.step_flops("forward", c, 32, 612, 16)
  assert bench.step_flops("model", c, 32, 612, 16) == pytest.approx(3 * fwd)


@pytest.mark.slow
def test_side_by_side_with_peft_s_best_setting():
  """`--pairs 1`: PEFT at each candidate microbatch count (each its own process), then
  spot_jax's default and PEFT's fastest alternated; the verdict from their means."""
  proc = subprocess.run([sys.executable, str(BENCH), "--size", "tiny", "--steps", "1",
                         "--warmup", "0", "--batch", "4", "--inputs", "16", "--targets", "4",
                         "--mode", "prompt", "--prompt_length", "3", "--roofline_n", "128",
                         "--pairs", "1"], capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  lines = [json.loads(l) for l in proc.stdout.splitlines() if l.strip()]
  jax_run, peft_run, verdict = lines
  assert (jax_run["reference"], peft_run["reference"]) == ("jax", "peft")
  tried = {s["microbatches"]: s["examples_per_s"] for s in verdict["peft_settings"]}
  assert len(tried) >= 2 and all(4 % m == 0 for m in tried)
  assert verdict["peft_microbatches"] == max(tried, key=tried.get)
  assert peft_run["microbatches"] == verdict["peft_microbatches"]
  assert verdict["speedup_over_peft"] == pytest.approx(
      jax_run["examples_per_s"] / peft_run["examples_per_s"])
  # The roofline before and after the runs; MFU against the higher of the two.
  rates = verdict["matmul_gflops_per_s"]
  for ref in ("jax", "peft"):
    start, end = (verdict[f"matmul_gflops_per_s_{w}"][ref] for w in ("start", "end"))
    assert start > 0 and end > 0 and rates[ref] == max(start, end)
  assert jax_run["mfu"] == pytest.approx(jax_run["gflops_per_s"] /
                                         verdict["matmul_gflops_per_s_start"]["jax"])
  assert verdict["spot_jax_mfu"] == pytest.approx(jax_run["gflops_per_s"] / rates["jax"])
  assert verdict["peft_mfu"] == pytest.approx(peft_run["gflops_per_s"] / rates["peft"])


def test_packed_runs_and_the_main_jobs_model_are_checked_flags(capsys):
  bench = bench_module()
  from spot_jax import embedded
  args = bench.parse_args(["--size", "embedded", "--mode", "prompt", "--runs", "14"])
  assert bench.model_config(args) == embedded.backbone_config()
  for flags, message in [(["--runs", "0"], "--runs 0: expected a positive integer"),
                         (["--mode", "prompt", "--runs", "2", "--mesh", "2x1"],
                          "--runs 2: packed runs are spot_jax's prompt tuning on one device"),
                         (["--mode", "forward", "--runs", "2"], "--runs 2: packed runs")]:
    with pytest.raises(SystemExit):
      bench.parse_args(flags)
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_default_path_times_the_trainers_candidate_splits(monkeypatch, capsys):
  """Without --microbatches or a budget, bench takes spot_jax.train's split as the trainer
  does on CPU: each candidate's step timed (microbatch_probe), the fastest kept and printed
  with the times. (The CPU budget is shrunk so the tiny model needs splitting: 2 examples of 4
  per microbatch fit it; the probe times that and 1.)"""
  bench = bench_module()
  from spot_jax.training import microbatching
  per_example = microbatching.activation_bytes_per_example(get_config("tiny"), 16 + 3, 4)
  monkeypatch.setattr(microbatching, "CPU_BUDGET_GB", 2.5 * per_example / 2**30)
  out = bench.main(["--size", "tiny", "--steps", "1", "--warmup", "0", "--batch", "4",
                    "--inputs", "16", "--targets", "4", "--mode", "prompt",
                    "--prompt_length", "3", "--roofline_n", "0"])
  seconds = {int(k): v for k, v in out["microbatch_probe_s"].items()}
  assert set(seconds) == {2, 4} and all(v > 0 for v in seconds.values())
  assert out["microbatches"] == microbatching.fastest(seconds, 2)  # 2: the budget's split
  assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == out
  # A split or a budget given: nothing to measure.
  out = bench.main(["--size", "tiny", "--steps", "1", "--warmup", "0", "--batch", "4",
                    "--inputs", "16", "--targets", "4", "--mode", "prompt",
                    "--prompt_length", "3", "--roofline_n", "0", "--microbatches", "2"])
  assert out["microbatch_probe_s"] is None and out["microbatches"] == 2
