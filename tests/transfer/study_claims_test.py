"""The study's transfer-by-relation statistics, the zero-shot grouping, the indicator
comparison and the claims they decide, on hand-made numbers (checked against scipy)."""
import warnings

import numpy as np
import pytest
from scipy import stats

from spot_jax.transfer import statistics, study_measures, study_writeup
from spot_jax.transfer.study_config import (LABEL_CONTROL, OTHER_FAMILY, SAME_FAMILY,
                                            SAME_FAMILY_OTHER_LABELS, StudyConfig)

LABELS = {"s1": ("bad", "good"), "s2": ("bad", "good"), "t": ("bad", "good"),
          "n1": ("yes", "maybe", "no"), "ctrl": ("bad", "good"), "tp": ("book", "game")}
FAMILIES = {"s1": "sentiment", "s2": "sentiment", "t": "sentiment", "n1": "nli",
            "ctrl": "topic", "tp": "topic"}


def _cfg(tmp_path, **kw):
  return StudyConfig(out_dir=str(tmp_path), sources=("s1", "s2", "n1", "ctrl"), targets=("t",),
                     labels=LABELS, families=FAMILIES, **kw)


def test_relation_from_families_and_label_words(tmp_path):
  cfg = _cfg(tmp_path)
  assert cfg.relation("s1", "t") == SAME_FAMILY
  assert cfg.relation("n1", "t") == OTHER_FAMILY
  assert cfg.relation("ctrl", "t") == LABEL_CONTROL
  assert cfg.relation("ctrl", "tp") == SAME_FAMILY_OTHER_LABELS


def test_curve_settings_are_checked(tmp_path):
  problems = _cfg(tmp_path, target_steps=30, target_eval_points=4,
                  target_score="median").problems()
  assert any("--target_eval_points 4: must divide --target_steps (30)" in p for p in problems)
  assert any("--target_score 'median'" in p for p in problems)


def test_learning_curve_scores():
  assert study_measures.learning_curve_scores([[10, 40.0], [20, 70.0], [30, 60.0]]) == {
      "best": 70.0, "final": 60.0, "auc": pytest.approx(170.0 / 3)}
  with pytest.raises(ValueError, match="at least one validation"):
    study_measures.learning_curve_scores([])


def _scores():
  rows = []
  for seed, (a, b, n, c) in enumerate([(80, 70, 50, 60), (90, 84, 60, 55), (70, 66, 44, 50)]):
    for source, value in (("s1", a), ("s2", b), ("n1", n), ("ctrl", c)):
      rel = {"s1": SAME_FAMILY, "s2": SAME_FAMILY, "n1": OTHER_FAMILY, "ctrl": LABEL_CONTROL}
      rows.append({"target": "t", "seed": seed, "source": source, "relation": rel[source],
                   "score": float(value), "auc": float(value) / 2})
  return rows


def test_relation_differences_are_paired_by_target_and_seed():
  out = statistics.relation_differences(_scores())
  same = [75.0, 87.0, 68.0]
  want = stats.ttest_1samp(np.subtract(same, [50, 60, 44]), 0).confidence_interval(0.95)
  got = out["score"]["same_minus_other_family"]
  assert got["mean"] == pytest.approx(np.mean(np.subtract(same, [50, 60, 44])))
  assert (got["low"], got["high"]) == pytest.approx((want.low, want.high))
  assert got["verdict"] == "better" and got["n"] == 3 and got["targets"] == ["t"]
  ctrl = out["score"]["same_minus_label_control"]
  assert ctrl["mean"] == pytest.approx(np.mean(np.subtract(same, [60, 55, 50])))
  assert out["auc"]["same_minus_other_family"]["mean"] == pytest.approx(got["mean"] / 2)
  assert out["score"]["mean_by_relation"][SAME_FAMILY] == pytest.approx(np.mean(same))


def test_zero_shot_grouped_by_relation(tmp_path):
  cfg = _cfg(tmp_path)
  matrix = {"prompts": ["s1/seed0", "n1/seed1", "ctrl/seed0"],
            "tasks": ["s1", "s2", "n1", "ctrl", "t"],
            "raw": [[90, 80, 0, 50, 70], [0, 0, 85, 0, 0], [40, 45, 0, 95, 50]]}
  out = study_measures.zero_shot_by_relation(matrix, cfg)
  assert sorted(out["groups"][SAME_FAMILY]) == [70, 80]
  assert sorted(out["groups"][OTHER_FAMILY]) == [0, 0, 0, 0, 0, 0]
  assert sorted(out["groups"][LABEL_CONTROL]) == [40, 45, 50, 50]
  diff = out["same_minus_other_family"]
  assert diff["mean"] == pytest.approx(75.0) and diff["verdict"] == "better"
  welch = stats.ttest_ind([70, 80], [40, 45, 50, 50], equal_var=False)
  ci = welch.confidence_interval(0.95)
  got = out["same_minus_label_control"]
  assert (got["low"], got["high"]) == pytest.approx((ci.low, ci.high))


def test_indicator_comparison_against_scipy():
  rng = np.random.default_rng(3)
  y = rng.normal(size=40)
  pairs = [{"value": float(v), "on": float(v + 0.1 * e), "cos": float(v + 2.0 * f)}
           for v, e, f in zip(y, rng.normal(size=40), rng.normal(size=40))]
  out = statistics.indicator_comparison(pairs, ["cos", "on"], neuron_indicator="on")
  assert out["spearman"]["on"] == pytest.approx(stats.spearmanr([p["on"] for p in pairs], y)[0])
  assert out["best"] == "on" and out["n"] == 40
  diff = out["neurons_minus_best_embedding"]
  assert diff["embedding"] == "cos" and diff["low"] <= diff["mean"] <= diff["high"]
  assert diff["verdict"] == "better"
  # The same inputs give the same interval (a fixed resampling stream).
  again = statistics.indicator_comparison(pairs, ["cos", "on"], neuron_indicator="on")
  assert again["neurons_minus_best_embedding"] == diff
  assert statistics.indicator_comparison(pairs[:3], ["cos", "on"], neuron_indicator="on") is None
  # The interval is scipy's bootstrap with scipy's spearmanr on each resample.
  def per_resample(a, b, y):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore", stats.ConstantInputWarning)
      return np.nan_to_num(stats.spearmanr(a, y)[0]) - np.nan_to_num(stats.spearmanr(b, y)[0])
  columns = tuple(np.array([p[k] for p in pairs]) for k in ("on", "cos", "value"))
  ref = stats.bootstrap(columns, per_resample, paired=True, vectorized=False, n_resamples=2000,
                        method="percentile", random_state=np.random.default_rng(0))
  assert (diff["low"], diff["high"]) == pytest.approx(
      (ref.confidence_interval.low, ref.confidence_interval.high), abs=1e-12)


def test_spearman_of_every_resample_at_once_is_scipys():
  """Ties, and constant resamples (rho undefined: NaN, as scipy, which also warns)."""
  rng = np.random.default_rng(5)
  x = rng.integers(0, 4, size=(300, 6)).astype(float)  # many ties, some constant rows
  y = rng.integers(0, 3, size=(300, 6)).astype(float)
  got = statistics.spearman_rows(x, y)
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", stats.ConstantInputWarning)
    want = np.array([stats.spearmanr(a, b)[0] for a, b in zip(x, y)])
  assert np.isnan(want).any() and (np.isnan(got) == np.isnan(want)).all()
  np.testing.assert_allclose(got[~np.isnan(want)], want[~np.isnan(want)], rtol=0, atol=1e-12)


def _data(same, other, control, zero_within, zero_across):
  def ci(values):
    c = statistics.interval(values)
    return dict(c, verdict=statistics.verdict(c), targets=["t"])
  return {"table": None, "comparisons": [], "similarity": {}, "correlation": None,
          "transfer_by_relation": {"score": {
              "mean_by_relation": {}, "same_minus_other_family": ci(np.subtract(same, other)),
              "same_minus_label_control": ci(np.subtract(same, control))}},
          "zero_shot": {"by_relation": {
              "same_minus_other_family": statistics.group_difference(zero_within,
                                                                     zero_across),
              "same_minus_label_control": None}, "indicator_comparison": None}}


def test_claims_follow_the_intervals():
  held = {c["claim"]: c["holds"] for c in study_writeup.claims(
      _data([80, 90, 70], [50, 62, 41], [79, 91, 72], [70, 80, 75], [0, 0, 1]))}
  assert held["same-family sources transfer better than other-family sources"]
  assert not held["the label-control source (another family, the target's label words) "
                  "transfers less than same-family sources"]
  assert held["zero-shot transfer within a family exceeds transfer across families "
              "(Su et al.)"]
  held = {c["claim"]: c["holds"] for c in study_writeup.claims(
      _data([80, 40, 70], [50, 60, 52], [60, 55, 50], [0, 30], [20, 10]))}
  assert not held["same-family sources transfer better than other-family sources"]
  assert not held["zero-shot transfer within a family exceeds transfer across families "
                  "(Su et al.)"]
