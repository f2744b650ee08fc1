"""Retrieval on a library built from known vectors: order, aggregation, strategies, guard."""
import numpy as np
import pytest

from spot_jax.transfer import prompt_library
from spot_jax.transfer import retrieval
from spot_jax.transfer.prompt_library import ModelSignature, PromptLibrary

D = 4
VOCAB = "cd" * 32
SMALL = ModelSignature("small", D, VOCAB)
E = np.eye(D, dtype=np.float32)


def _add(library, task, run, role, tokens, step=10_000, metric=None, model="small", d=D):
  meta = dict(task=task, run=run, role=role, step=step, model_name=model, vocabulary_hash=VOCAB)
  if metric is not None:
    meta.update(metric_name="accuracy", metric_value=metric)
  return library.add(np.asarray(tokens, np.float32).reshape(2, d), meta)


@pytest.fixture
def library(tmp_path):
  lib = PromptLibrary(tmp_path / "lib", create=True)
  # Task embeddings; per-token cosine with the target [e0, e0] in the comments.
  _add(lib, "near", "seed0", "task_embedding", [E[0], E[0]])               # 1.0
  _add(lib, "near", "seed1", "task_embedding", [E[0], E[1]])               # 0.5
  _add(lib, "mid", "seed0", "task_embedding", [0.8 * E[0] + 0.6 * E[1]] * 2)  # 0.8
  _add(lib, "far", "seed0", "task_embedding", [E[1], E[2]])                # 0.0
  _add(lib, "rte", "seed0", "task_embedding", [E[0], E[0]])                # the target itself
  # Transfer prompts (best checkpoints) with their validation scores.
  _add(lib, "near", "seed0", "transfer", [E[0] * 1, E[0]], step=50_000, metric=0.7)
  _add(lib, "near", "seed1", "transfer", [E[0] * 2, E[1]], step=50_000, metric=0.9)
  _add(lib, "mid", "seed0", "transfer", [E[2], E[3]], step=50_000, metric=0.6)
  _add(lib, "far", "seed0", "transfer", [E[3], E[3]], step=50_000, metric=0.5)
  return lib


TARGET = np.stack([E[0], E[0]])


def _names(ranked):
  return [(r.task, r.run, round(r.score, 4)) for r in ranked]


def test_order_depends_on_how_runs_are_aggregated(library):
  mean = retrieval.rank_library(TARGET, library, query=SMALL, exclude_tasks=["rte"])
  assert _names(mean) == [("mid", None, 0.8), ("near", None, 0.75), ("far", None, 0.0)]
  assert mean[1].run_scores == (("seed0", pytest.approx(1.0)), ("seed1", pytest.approx(0.5)))
  best = retrieval.rank_library(TARGET, library, query=SMALL, aggregate="max",
                                exclude_tasks=["rte"])
  assert _names(best) == [("near", None, 1.0), ("mid", None, 0.8), ("far", None, 0.0)]
  runs = retrieval.rank_library(TARGET, library, query=SMALL, aggregate="none",
                                exclude_tasks=["rte"])
  assert _names(runs) == [("near", "seed0", 1.0), ("mid", "seed0", 0.8),
                          ("near", "seed1", 0.5), ("far", "seed0", 0.0)]


def test_the_target_task_ranks_first_unless_excluded(library):
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, aggregate="max")
  assert _names(ranked)[:2] == [("near", None, 1.0), ("rte", None, 1.0)]  # ties: by name
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, exclude_tasks=["rte"])
  assert "rte" not in [r.task for r in ranked]


def test_other_metrics_rank_too(library):
  for metric in ("cosine_mean_token", "euclidean_flat", "euclidean_per_token"):
    ranked = retrieval.rank_library(TARGET, library, query=SMALL, metric=metric,
                                    aggregate="max", exclude_tasks=["rte"])
    assert ranked[0].task == "near" and ranked[-1].task == "far", metric


def test_top_k_bounds(library):
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, exclude_tasks=["rte"])
  assert [r.task for r in retrieval.top_k(ranked, 2)] == ["mid", "near"]
  with pytest.raises(ValueError, match="k=4 but only 3"):
    retrieval.top_k(ranked, 4)
  with pytest.raises(ValueError, match="positive"):
    retrieval.top_k(ranked, 0)


def test_best_of_top_k_plans_from_the_best_transfer_prompt(library):
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, exclude_tasks=["rte"])
  plans = retrieval.best_of_top_k(ranked, 2, library, query=SMALL)
  assert [(p.source_task, p.entry.run, p.entry.role) for p in plans] == [
      ("mid", "seed0", "transfer"), ("near", "seed1", "transfer")]  # seed1: accuracy 0.9
  # Ranking runs separately keeps each run's own transfer prompt.
  runs = retrieval.rank_library(TARGET, library, query=SMALL, aggregate="none",
                                exclude_tasks=["rte"])
  assert retrieval.best_of_top_k(runs, 1, library, query=SMALL)[0].entry.run == "seed0"
  scores = {plans[0].prompt_path: 71.0, plans[1].prompt_path: 74.5}
  results = retrieval.run_plans(plans, scores.__getitem__)
  assert [s for _, s in results] == [71.0, 74.5]
  best_plan, best_score = retrieval.oracle(results)
  assert (best_plan.source_task, best_score) == ("near", 74.5)


def test_oracle_tries_every_transfer_prompt(library):
  plans = retrieval.oracle_plans(library, query=SMALL, exclude_tasks=["rte"])
  assert sorted((p.source_task, p.entry.run) for p in plans) == [
      ("far", "seed0"), ("mid", "seed0"), ("near", "seed0"), ("near", "seed1")]
  results = retrieval.run_plans(plans, lambda path: 80.0 if "far" in path else 60.0)
  assert retrieval.oracle(results)[0].source_task == "far"
  with pytest.raises(ValueError, match="returned nan"):
    retrieval.run_plans(plans, lambda path: float("nan"))


def test_weighted_average_init_is_the_formula():
  prompts = np.random.default_rng(0).normal(size=(3, 5, 6)).astype(np.float32)
  sims = [0.9, 0.6, 0.3]
  want = sum(s / 1.8 * p for s, p in zip(sims, prompts.astype(np.float64)))
  np.testing.assert_allclose(retrieval.weighted_average_init(prompts, sims), want, rtol=1e-6)
  np.testing.assert_allclose(retrieval.weighted_average_init(prompts[:1], [0.2]), prompts[0])
  with pytest.raises(ValueError, match="non-negative"):
    retrieval.weighted_average_init(prompts, [0.5, -0.1, 0.2])
  with pytest.raises(ValueError, match=r"\[3, 5, 6\] and \[2\]"):
    retrieval.weighted_average_init(prompts, [0.5, 0.1])


def test_top_k_weighted_average_uses_the_transfer_prompts(library):
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, exclude_tasks=["rte"])
  init = retrieval.top_k_weighted_average(ranked, 2, library, query=SMALL)
  mid = library.load(library.entries(task="mid", role="transfer")[0])
  near = library.load(library.entries(task="near", role="transfer", run="seed1")[0])
  np.testing.assert_allclose(init.prompt, (0.8 * mid + 0.75 * near) / 1.55, rtol=1e-6)
  assert [(t, round(a, 6)) for t, a, _ in init.sources] == [
      ("mid", round(0.8 / 1.55, 6)), ("near", round(0.75 / 1.55, 6))]


def test_multitask_mixture_spec(library):
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, aggregate="none")
  spec = retrieval.multitask_mixture_spec(ranked, 2, "rte")
  assert spec.source_tasks == ("near", "mid") and spec.tasks == ("near", "mid", "rte")
  assert spec.examples_rate_limit == 2**19 and "rte" in spec.name
  with pytest.raises(ValueError, match="k=4 but 3 distinct"):
    retrieval.multitask_mixture_spec(ranked, 4, "rte")


def test_prompts_of_another_model_are_refused(library):
  _add(library, "big", "seed0", "task_embedding", np.ones((2, 8)), model="base", d=8)
  with pytest.raises(prompt_library.ModelMismatchError) as e:
    retrieval.rank_library(TARGET, library, query=SMALL)
  message = str(e.value)
  assert "'base' (d_model=8" in message and "'small' (d_model=4" in message
  # Selecting the query's model explicitly leaves the other model's prompt out.
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, model_name="small")
  assert "big" not in [r.task for r in ranked]
  with pytest.raises(ValueError, match=r"needs \[P, 8\]"):
    retrieval.rank_library(TARGET, library, query=ModelSignature("base", 8, VOCAB),
                           model_name="base")


def test_embeddings_from_several_steps_need_a_step(library):
  _add(library, "near", "seed0", "task_embedding", [E[1], E[1]], step=1_000)
  with pytest.raises(ValueError, match=r"steps \[1000, 10000\]"):
    retrieval.rank_library(TARGET, library, query=SMALL)
  ranked = retrieval.rank_library(TARGET, library, query=SMALL, step=1_000)
  assert [r.task for r in ranked] == ["near"]
