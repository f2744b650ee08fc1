"""tools/compare_studies.py: two runs' study.json files side by side."""
import json
import pathlib
import subprocess
import sys

import pytest

from spot_jax.transfer import statistics, study

REPO = pathlib.Path(__file__).resolve().parents[2]


def _study(tmp, name, shift):
  results = [{"target": t, "init": i, "seed": s, "step": 3,
              "score": base + s + (shift if i == "spot_top1" else 0.0)}
             for t in ("x", "y") for s in (0, 1, 2)
             for i, base in (("random_uniform", 10.0), ("spot_top1", 10.0))]
  data = {"config": {"source_seeds": [0], "target_seeds": [0, 1, 2]}, "table": None,
          "chance": {}, "similarity": {}, "correlation": None,
          "comparisons": statistics.comparisons(results, ["x", "y"], study.COMPARISONS)}
  out = tmp / name
  out.mkdir()
  (out / "study.json").write_text(json.dumps(data))
  return out


@pytest.mark.slow
def test_claims_and_pooled_differences_side_by_side(tmp_path):
  a, b = _study(tmp_path, "a", 20.0), _study(tmp_path, "b", 0.0)
  proc = subprocess.run([sys.executable, str(REPO / "tools" / "compare_studies.py"), str(a),
                         str(b), "--names", "first", "second"], capture_output=True, text=True,
                        check=True)
  lines = proc.stdout.splitlines()
  assert lines[0].startswith("| claim | first (source seeds [0]")
  assert "| SPoT transfer (top-1) beats random init | **held** | not shown |" in lines
  assert "| spot_top1 − random_uniform | 20.0 [20.0, 20.0] ✓ | 0.0 [0.0, 0.0] |" in lines
