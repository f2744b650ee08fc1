"""The registry of target inits: what the built-ins plan and pick, and what a registration
must say. A new strategy running in the study: tests/transfer/study_test.py."""
import types

import pytest

from spot_jax.transfer import strategies

SWEEP = ["a", "b", "c"]  # sources in rank order
SCORE = {"a": 50.0, "b": 70.0, "c": 90.0}


def test_the_builtins_in_report_order():
  assert strategies.BUILT_IN == ("random_uniform", "class_labels", "spot_top1",
                                 "best_of_top_k", "top_k_weighted_average", "top_k_mixture",
                                 "oracle")
  # Transfer inits against the baselines, the baselines against each other, then the checks.
  assert strategies.comparisons(strategies.BUILT_IN) == (
      ("spot_top1", "random_uniform"), ("spot_top1", "class_labels"),
      ("best_of_top_k", "random_uniform"), ("top_k_weighted_average", "random_uniform"),
      ("top_k_weighted_average", "class_labels"), ("top_k_mixture", "random_uniform"),
      ("oracle", "random_uniform"), ("class_labels", "random_uniform"),
      ("spot_top1", strategies.AVERAGE_SOURCE), ("oracle", "spot_top1"))
  assert strategies.comparisons(["random_uniform", "best_of_top_k"]) == (
      ("best_of_top_k", "random_uniform"),)


def test_sweep_and_picks():
  cfg = types.SimpleNamespace(sources=SWEEP, top_k=2, inits=("spot_top1",))
  assert strategies.sweep_size(cfg) == 1
  cfg.inits = ("spot_top1", "best_of_top_k")
  assert strategies.sweep_size(cfg) == 2
  cfg.inits, cfg.top_k = ("best_of_top_k", "oracle"), 5
  assert strategies.sweep_size(cfg) == 3  # never more than the sources
  cfg.inits = ("random_uniform", "top_k_mixture")
  assert strategies.sweep_size(cfg) == 0
  pick = lambda name, k: strategies.get(name).pick(SWEEP, SCORE, k)
  assert pick("spot_top1", 2) == [("spot_top1", ("a",), {"source": "a"})]
  assert pick("best_of_top_k", 2) == [("best_of_top_k", ("b",), {"source": "b"})]
  assert pick("oracle", 2) == [("oracle", ("c",), {"source": "c"}),
                               (strategies.AVERAGE_SOURCE, ("a", "b", "c"), {})]


def test_class_labels_runs_only_for_a_task_with_label_words():
  plan = lambda labels: strategies.TargetPlan(cfg=None, target="t", labels=labels, ranked=[],
                                              k=0)
  assert strategies.get("class_labels").init(plan(())) is None
  assert callable(strategies.get("class_labels").init(plan(("yes", "no"))))


def test_a_registration_says_what_it_runs_and_is_refused_twice():
  with pytest.raises(ValueError, match="either an init .* or a pick"):
    strategies.Strategy("nothing", strategies.TRANSFER_KIND)
  with pytest.raises(ValueError, match="kind 'magic'"):
    strategies.Strategy("x", "magic", pick=lambda *a: [])
  with pytest.raises(ValueError, match="'oracle' is already registered"):
    strategies.register(strategies.Strategy("oracle", strategies.TRANSFER_KIND,
                                            pick=lambda *a: []))
  with pytest.raises(KeyError, match="no strategy 'magic'"):
    strategies.get("magic")
  assert "SPoT transfer (top-1) beats random init" in [c[2] for c in strategies.claims()]
