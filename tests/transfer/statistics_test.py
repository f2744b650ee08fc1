"""The study's statistics against scipy: t intervals of a mean, paired differences over
seeds, Welch's interval, and the sentences written from them."""
import numpy as np
import pytest
from scipy import stats

from spot_jax.transfer import statistics


def test_interval_is_scipys_t_interval_of_the_mean():
  values = [61.0, 64.5, 59.0, 70.0]
  got = statistics.interval(values)
  low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values),
                               scale=stats.sem(values))
  assert got["mean"] == pytest.approx(np.mean(values))
  assert (got["low"], got["high"]) == (pytest.approx(low), pytest.approx(high))
  assert got["n"] == 4
  one = statistics.interval([3.0])
  assert one["mean"] == 3.0 and one["low"] is None and one["half_width"] is None
  with pytest.raises(ValueError, match="finite"):
    statistics.interval([1.0, float("nan")])


RESULTS = [
    # target A: spot 10 points better on every seed; target B: mixed; target C: spot worse
    *[{"target": "A", "init": "spot", "seed": s, "score": 60.0 + s} for s in range(3)],
    *[{"target": "A", "init": "random", "seed": s, "score": 50.0 + s + 0.1 * s * s}
      for s in range(3)],
    *[{"target": "B", "init": "spot", "seed": s, "score": v} for s, v in enumerate((50, 60, 40))],
    *[{"target": "B", "init": "random", "seed": s, "score": v}
      for s, v in enumerate((55, 52, 45))],
    *[{"target": "C", "init": "spot", "seed": s, "score": 30.0 - s} for s in range(3)],
    *[{"target": "C", "init": "random", "seed": s, "score": 40.0 + s * 0.5} for s in range(3)],
    {"target": "D", "init": "random", "seed": 0, "score": 10.0},
]


def test_paired_difference_pairs_by_seed_and_pools_over_targets():
  diff = statistics.paired_difference(RESULTS, "spot", "random", ["A", "B", "C", "D"])
  a = diff["per_target"]["A"]
  want = [10.0 - 0.1 * s * s for s in range(3)]
  res = stats.ttest_1samp(want, 0.0)
  ci = res.confidence_interval(0.95)
  assert a["mean"] == pytest.approx(np.mean(want))
  assert (a["low"], a["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
  assert a["verdict"] == "better" and a["seeds"] == [0, 1, 2]
  assert diff["per_target"]["B"]["verdict"] == "unclear"
  assert diff["per_target"]["C"]["verdict"] == "worse"
  assert diff["missing"] == ["D"]
  pooled = [d for t in "ABC" for d in (
      [r["score"] for r in RESULTS if r["target"] == t and r["init"] == "spot"][i]
      - [r["score"] for r in RESULTS if r["target"] == t and r["init"] == "random"][i]
      for i in range(3))]
  assert diff["pooled"]["n"] == 9
  assert diff["pooled"]["mean"] == pytest.approx(np.mean(pooled))


def test_conclusions_are_written_from_the_intervals():
  diff = statistics.paired_difference(RESULTS, "spot", "random", ["A", "B", "C", "D"])
  text = statistics.conclusion(diff)
  assert text.startswith("spot vs random: spot beats random on A; random beats spot on C; "
                         "no difference shown on B; over all (target, seed) pairs: ")
  assert "not compared on D (a run is missing)" in text
  [only] = statistics.comparisons(RESULTS, ["A"], [("spot", "random"), ("spot", "oracle")])
  assert only["conclusion"].startswith("spot vs random: spot beats random on A; over all")
  assert "spot better" in only["conclusion"]


def test_group_difference_is_welchs_interval():
  within, across = [0.012, 0.009, 0.015, 0.011], [0.004, 0.006, 0.001, 0.005, 0.003]
  got = statistics.group_difference(within, across)
  ci = stats.ttest_ind(within, across, equal_var=False).confidence_interval(0.95)
  assert (got["low"], got["high"]) == (pytest.approx(ci.low), pytest.approx(ci.high))
  assert got["verdict"] == "better"
  assert statistics.group_difference([0.1], across)["verdict"] == "unclear"
