"""tools/gpu_check.py, the prepared accelerator run, dry-run on the CPU at tiny size: the
matmul rate, one bench process per size, MFU and the speed ratio over PEFT."""
import json
import pathlib
import subprocess
import sys

import pytest


TOOL = pathlib.Path(__file__).resolve().parents[2] / "tools" / "gpu_check.py"


@pytest.mark.slow
def test_dry_run_on_cpu_writes_every_measurement(tmp_path):
  out = tmp_path / "gpu.json"
  proc = subprocess.run([sys.executable, str(TOOL), "--sizes", "tiny", "--peft_sizes",
                         "--batch", "2", "--inputs", "16", "--targets", "4",
                         "--prompt_length", "4", "--matmul_n", "256", "--steps", "1",
                         "--warmup", "0", "--dtype", "float32", "--param_dtype", "float32",
                         "--out", str(out)], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  data = json.loads(out.read_text())
  assert data["matmul"]["gflops_per_s"] > 0 and data["matmul"]["platform"] == "cpu"
  [run] = data["runs"]
  assert run["size"] == "tiny" and run["reference"] == "jax" and run["examples_per_s"] > 0
  assert "| jax | tiny |" in proc.stdout and "%" in proc.stdout


def test_a_spent_budget_records_the_runs_left_and_still_writes_the_table(tmp_path):
  out = tmp_path / "gpu.json"
  proc = subprocess.run([sys.executable, str(TOOL), "--sizes", "tiny", "small", "--peft_sizes",
                         "tiny", "--matmul_n", "64", "--dtype", "float32", "--budget_s", "0",
                         "--out", str(out)], capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  runs = json.loads(out.read_text())["runs"]
  assert [(r["size"], r["reference"]) for r in runs] == [
      ("tiny", "jax"), ("tiny", "peft"), ("small", "jax")]
  assert all(r["error"] == "not run: budget spent" for r in runs)
  assert "| peft | tiny | failed: not run: budget spent" in proc.stdout


def test_table_reports_mfu_and_the_ratio_over_peft():
  sys.path.insert(0, str(TOOL.parent))
  import gpu_check
  rate = {"n": 8192, "device_kind": "H200", "gflops_per_s": 800_000.0}
  rows = [{"reference": "jax", "size": "base", "examples_per_s": 300.0,
           "gflops_per_s": 400_000.0, "device_peak_gb": 12.5},
          {"reference": "peft", "size": "base", "examples_per_s": 200.0,
           "gflops_per_s": 250_000.0, "device_peak_gb": 20.0},
          {"reference": "jax", "size": "xxl", "error": "RESOURCE_EXHAUSTED: out of memory"}]
  text = gpu_check.table(rate, rows)
  assert "| jax | base | 300.0 | 50% | 12.5 | 1.50x |" in text
  assert "| peft | base | 200.0 | 31% | 20.0 |  |" in text
  assert "| jax | xxl | failed: RESOURCE_EXHAUSTED: out of memory" in text
  assert text.startswith("bf16 matmul rate (8192^3, H200): 800.0 TFLOP/s")
