"""tools/plan_scale.py compiles the real partitioned prompt-tuning step from abstract shapes
(of T5X's tiny test model here: Small's three compiles cost 30 s more and pin nothing else)
on emulated meshes (the suite's 8 CPU devices): per-device bytes follow the mesh,
XLA's peak is its buffer assignment, and microbatches are added until the accelerators fit."""
import json
import pathlib
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"
sys.path.insert(0, str(TOOLS))
import plan_scale  # noqa: E402  (tools/)

SHAPES = ["--batch", "4", "--inputs", "32", "--targets", "4", "--prompt_length", "4"]


@pytest.mark.slow
def test_one_and_eight_devices(monkeypatch, capsys):
  # Two pretend accelerators: one roomy, one no step fits; the search stops at 2 microbatches.
  monkeypatch.setattr(plan_scale, "DEVICES", {"roomy": 64 * 2 ** 30, "tiny": 1})
  plans = plan_scale.main(["--sizes", "tiny", "--meshes", "1x1", "4x2",
                           "--max_microbatches", "2", *SHAPES])
  out = capsys.readouterr().out
  rows = {(p["mesh"], r["num_microbatches"]): r for p in plans for r in p["rows"]}
  assert sorted(rows) == [("1x1", 1), ("1x1", 2), ("4x2", 1)]
  for p in plans:
    assert p["microbatches_to_fit"] == {"roomy": 1, "tiny": None}
  one, sharded = rows[("1x1", 1)], rows[("4x2", 1)]
  weights = lambda r: r["per_device_bytes"]["frozen_weights"]
  # The frozen weights: whole on one device; model parallelism over 2 splits most of them.
  assert weights(one) == 4 * one["parameters"]
  assert 0.45 * weights(one) < weights(sharded) < 0.55 * weights(one)
  assert (one["per_device_batch"], sharded["per_device_batch"]) == (4, 1)
  for r in rows.values():
    xla = r["per_device_bytes"]["xla"]
    assert xla["peak"] == xla["arguments"] + xla["outputs"] - xla["aliased"] + xla["temporaries"]
    assert xla["arguments"] >= r["per_device_bytes"]["frozen_weights"]
    assert r["gflop_per_step"] == rows[("1x1", 1)]["gflop_per_step"] > 0
  # Two microbatches keep about half the activations alive.
  temps = lambda mesh: [rows[(mesh, k)]["per_device_bytes"]["xla"]["temporaries"] for k in (1, 2)]
  assert temps("1x1")[1] < temps("1x1")[0]
  # One JSON line per compiled step, then the table with the verdicts.
  lines = [json.loads(l) for l in out.splitlines() if l.startswith("{")]
  assert len(lines) == 3
  assert "| tiny | 1x1 | 2 |" in out and out.rstrip().endswith("| 1 | no |")


def test_bad_flags_are_named(capsys):
  with pytest.raises(SystemExit):
    plan_scale.parse_args(["--meshes", "8by1"])
  assert "--meshes '8by1': expected DATAxMODEL" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    plan_scale.parse_args(["--meshes", "3x1", "--batch", "32"])
  assert "--batch 32 does not split over 3 data-parallel devices" in capsys.readouterr().err
  assert plan_scale.microbatch_counts(12) == [1, 2, 4]
  assert plan_scale.microbatch_counts(32, limit=8) == [1, 2, 4, 8]
  assert plan_scale.microbatch_counts(32, limit=8, start=2) == [2, 4, 8]


def test_the_table_warns_that_cpu_bf16_temporaries_overstate():
  row = {"size": "xxl", "mesh": "1x1", "num_microbatches": 8, "dtype": "bfloat16",
         "param_dtype": "bfloat16", "gflop_per_step": 451740.2,
         "per_device_bytes": {"frozen_weights": 2 ** 30, "prompt_and_optimizer_state": 2 ** 20,
                              "activations_estimate": 2 ** 30,
                              "xla": {"temporaries": 2 ** 31, "peak": 2 ** 32}}}
  plan = {"rows": [row], "microbatches_to_fit": {d: 8 for d in plan_scale.DEVICES}}
  text = plan_scale.table([plan], 0.9)
  assert "| xxl | 1x1 | 8 | 1.00 | 1.00 | 1.00 | 2.00 | 4.00 | 451740 | 8 | 8 | 8 | 8 |" in text
  assert text.splitlines()[-1].startswith("bfloat16: XLA's CPU compiler computes bf16 matmuls")
  assert "bfloat16" not in plan_scale.table(
      [dict(plan, rows=[dict(row, dtype="float32", param_dtype="float32")])], 0.9)
