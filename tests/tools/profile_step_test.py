"""tools/profile_step.py profiles bench.py's step on the tiny model: XLA's memory analysis, the
largest arrays, time per op group from jax.profiler, matmuls by shape."""
import json
import pathlib
import subprocess
import sys

import pytest

TOOLS = pathlib.Path(__file__).resolve().parents[2] / "tools"


@pytest.mark.slow
def test_profile_of_a_prompt_step(tmp_path):
  out = tmp_path / "profile.json"
  proc = subprocess.run(
      [sys.executable, str(TOOLS / "profile_step.py"), "--mode", "prompt", "--size", "tiny",
       "--batch", "4", "--inputs", "16", "--targets", "4", "--prompt_length", "3",
       "--microbatches", "2", "--steps", "2", "--top", "5", "--json", str(out)],
      capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-3000:]
  for section in ("## memory", "## largest materialised arrays", "## time per step",
                  "## matmuls by shape", "## top 5 ops"):
    assert section in proc.stdout, section
  result = json.loads(out.read_text())
  assert result["memory_gib"]["temp_size_in_bytes"] > 0
  assert result["traced_s_per_step"] > 0
  assert abs(sum(result["groups_s"].values()) - result["traced_s_per_step"]) < 1e-6
  assert result["groups_s"].get("matmul", 0) > 0
  # The attention scores [B/2, H, L, L] of the tiny model (4 heads, 3 + 16 tokens) are there.
  assert any(m["shapes"].startswith("[2, 4, 19, 19]") for m in result["matmuls"]), \
      result["matmuls"]
  assert all(m["gflop"] > 0 for m in result["matmuls"])


def test_hlo_parsing():
  sys.path.insert(0, str(TOOLS))
  import profile_step
  assert profile_step.array_bytes("f32[8,6,612,612]{3,2,1,0}") == 8 * 6 * 612 * 612 * 4
  assert profile_step.array_bytes("(bf16[2,3], s32[])") == 2 * 3 * 2 + 4
  hlo = """HloModule m

fused_dot {
  p0 = f32[4,8]{1,0} parameter(0)
  p1 = f32[8,16]{1,0} parameter(1)
  ROOT d = f32[4,16]{1,0} dot(p0, p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

ENTRY main {
  a = f32[4,8]{1,0} parameter(0)
  b = f32[8,16]{1,0} parameter(1)
  ROOT f = f32[4,16]{1,0} fusion(a, b), kind=kOutput, calls=fused_dot
}
"""
  instrs, fused = profile_step.hlo_instructions(hlo)
  assert fused == {"fused_dot"} and instrs["f"][2] == "main"
  by_comp = {}
  for _, (_, _, comp, line) in instrs.items():
    by_comp.setdefault(comp, []).append(line)
  flops, shapes = profile_step.dot_of("f", instrs, by_comp)
  assert flops == 2 * 4 * 16 * 8 and shapes == "[4, 16] <- [4, 8] x [8, 16]"
  assert [r[1] for r in profile_step.largest_arrays(instrs, fused, 5)] == ["f"]
  # A YNNPACK fusion is a matmul only when it runs a dot: XLA:CPU gives it reductions too.
  assert profile_step.category("ynn_fusion.3", "fusion", runs_dot=True) == "matmul"
  assert profile_step.category("ynn_fusion.7", "fusion", runs_dot=False).startswith("other fus")
  assert profile_step.category("copy_bitcast_fusion.2", "fusion", False) == "copy/transpose"
