"""The study orchestrator on the toy backbone: sources into the library, target embeddings,
retrieval, every init for every target seed, the report, and resume."""
import functools
import json
import os
import shutil

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
import toy_tasks as toy
from spot_jax.training import trainer
from spot_jax.transfer import retrieval, strategies, study
from spot_jax.transfer.prompt_library import ModelSignature, PromptLibrary

SOURCES = ("toy_first", "toy_last", "toy_parity_prefixed")
TARGET = "toy_parity"


def _config(out, config, backbone, **overrides):
  settings = dict(out_dir=out, sources=SOURCES, targets=(TARGET,), source_seeds=(0,),
                  target_seeds=(0, 1), source_steps=8, embedding_step=4, target_steps=4,
                  mixture_steps=4, prompt_length=4, source_batch_size=8, target_batch_size=8,
                  top_k=2, num_eval_examples=16, target_eval_points=2, task_feature_lengths={"inputs": 16,
                                                                       "targets": 8},
                  labels={TARGET: ("even", "odd")}, model_config=config,
                  initial_checkpoint=backbone)
  settings.update(overrides)
  return study.StudyConfig(**settings)


@pytest.fixture(scope="module")
def finished(toy_backbone, tmp_path_factory):
  toy.register()
  config, backbone, _ = toy_backbone
  out = str(tmp_path_factory.mktemp("study") / "run")
  cfg = _config(out, config, backbone)
  train = functools.partial(trainer.train, mesh_shape=(1, 1))
  s = study.Study(cfg, train)
  summary = s.run()
  return cfg, s, summary, train


def _init_of(cfg, key, seed):
  return prompt_files.load_prompt_array(os.path.join(
      cfg.out_dir, "targets", TARGET, key, f"seed{seed}", "prompts", "step_0"))


@pytest.mark.slow
def test_every_init_runs_from_what_retrieval_chose(finished):
  cfg, s, summary, _ = finished
  library = PromptLibrary(os.path.join(cfg.out_dir, "library"))
  assert library.verify().ok and len(library.entries()) == 2 * len(SOURCES)
  emb, meta = prompt_files.load_prompt(os.path.join(
      cfg.out_dir, "target_embeddings", TARGET, "prompts", "step_4"))
  ranked = retrieval.rank_library(emb, library, query=ModelSignature.of(meta),
                                  exclude_tasks=[TARGET], step=4)
  assert [r["task"] for r in s.rankings[TARGET]] == [r.task for r in ranked]
  rows = {(r["init"], r["seed"]): r for r in s.results}
  assert {i for i, _ in rows} == set(study.INITS) | {study.AVERAGE_SOURCE}
  for seed in (0, 1):
    sweep = {t: json.load(open(os.path.join(cfg.out_dir, "targets", TARGET, f"from_{t}",
                                            f"seed{seed}", "score.json")))["score"]
             for t in SOURCES}
    # The runs from each source started from that source's transfer prompt.
    for t in SOURCES:
      [value] = library.entries(task=t, role=prompt_files.TRANSFER)
      np.testing.assert_array_equal(_init_of(cfg, f"from_{t}", seed), library.load(value))
    top = ranked[0].task
    assert rows[("spot_top1", seed)]["score"] == sweep[top]
    assert rows[("spot_top1", seed)]["source"] == top
    assert rows[("best_of_top_k", seed)]["score"] == max(sweep[r.task] for r in ranked[:2])
    assert rows[("oracle", seed)]["score"] == max(sweep.values())
    assert rows[(study.AVERAGE_SOURCE, seed)]["score"] == pytest.approx(np.mean(
        list(sweep.values())))
  # The weighted average: alpha_r = sim_r / sum over the top-k positive similarities.
  chosen = [r for r in ranked[:2] if r.score > 0] or ranked[:1]
  entries = {e.task: library.load(e) for e in library.entries(role=prompt_files.TRANSFER)}
  total = sum(r.score for r in chosen)
  want = sum(r.score / total * entries[r.task] for r in chosen) if len(chosen) > 1 or \
      chosen[0].score > 0 else entries[chosen[0].task]
  np.testing.assert_allclose(_init_of(cfg, "top_k_weighted_average", 0), want, rtol=1e-5,
                             atol=1e-6)
  # The mixture: the top-k source tasks and the target, its source prompt the init.
  import seqio
  mixture = seqio.get_mixture_or_task(f"spot_top2_mixture_for_{TARGET}")
  assert sorted(t.name for t in mixture.tasks) == sorted([r.task for r in ranked[:2]] +
                                                         [TARGET])
  np.testing.assert_array_equal(_init_of(cfg, "top_k_mixture", 1), prompt_files.load_prompt_array(
      os.path.join(cfg.out_dir, "targets", TARGET, "mixture_source", "prompts", "final")))
  # Class labels: the label words' embeddings; random: uniform in [-0.5, 0.5].
  assert np.abs(_init_of(cfg, "random_uniform", 0)).max() <= 0.5
  assert not np.array_equal(_init_of(cfg, "random_uniform", 0), _init_of(cfg, "random_uniform",
                                                                          1))


@pytest.mark.slow
def test_the_report_holds_every_artifact(finished):
  cfg, s, summary, _ = finished
  out = cfg.out_dir
  with open(os.path.join(out, "study.json")) as f:
    data = json.load(f)
  cell = data["table"]["cells"][TARGET]["spot_top1"]
  assert cell["n"] == 2 and cell["seeds"] == [0, 1] and cell["low"] <= cell["mean"]
  assert [(c["a"], c["b"]) for c in data["comparisons"]] == list(study.COMPARISONS)
  assert summary["conclusions"] == [c["conclusion"] for c in data["comparisons"]]
  sim = data["similarity"]
  assert sim["tasks"] == list(SOURCES) + [TARGET] and len(sim["matrix"]) == 4
  assert len(data["displacement"]["runs"]) == len(SOURCES)
  assert data["zero_shot"]["tasks"] == list(SOURCES) + [TARGET]
  assert len(data["transfer_pairs"]) == len(SOURCES)
  # Learning curves: validation at steps 2 and 4; the score is the best point (SPoT's
  # default), the area under the curve their mean; the majority class beside chance.
  for seed in (0, 1):
    with open(os.path.join(out, "targets", TARGET, "random_uniform", f"seed{seed}",
                           "score.json")) as f:
      record = json.load(f)
    assert [step for step, _ in record["curve"]] == [2, 4]
    values = [v for _, v in record["curve"]]
    assert record["score"] == record["best"] == max(values) and record["final"] == values[-1]
    assert record["auc"] == pytest.approx(np.mean(values))
  assert all(r["auc"] is not None for r in data["results"])
  assert set(data["auc_table"]["cells"][TARGET]) == set(study.INITS)
  import seqio
  rows = list(seqio.get_mixture_or_task(TARGET).get_dataset(
      {"inputs": 16, "targets": 8}, split="validation", shuffle=False).take(16)
      .as_numpy_iterator())
  labels = [r["targets_pretokenized"] for r in rows]
  assert data["majority"][TARGET] == pytest.approx(
      100.0 * max(labels.count(x) for x in set(labels)) / 16)
  assert len(data["source_scores"]) == 2 * len(SOURCES)
  report = open(os.path.join(out, "report.md")).read()
  assert "## What the data support" in report and "95%" in report
  for c in data["comparisons"]:
    assert c["conclusion"] in report
  for name in ("results.md", "similarity_heatmap.png", "similarity_vs_transfer.png",
               "zero_shot/zero_shot.json", "summary.json", study.CONFIG_FILE):
    assert os.path.isfile(os.path.join(out, name)), name


@pytest.mark.slow
def test_a_rerun_resumes_without_training_and_refuses_other_settings(finished):
  cfg, s, summary, train = finished
  again = study.Study(cfg, train)
  resumed = again.run()
  assert again.progress.trained == 0 and again.progress.done_runs == s.progress.done_runs
  # The data checks of runs finished before the resume are still in the summary.
  assert resumed["data"] and resumed["data"] == summary["data"]
  assert again.results == s.results
  with pytest.raises(ValueError, match="target_steps: 4 before, 5 now"):
    study.check_resumable(_config(cfg.out_dir, cfg.model_config, cfg.initial_checkpoint,
                                  target_steps=5))


def test_settings_are_checked_naming_each_flag(tmp_path):
  cfg = study.StudyConfig(out_dir=str(tmp_path), sources=("a", "a"), targets=("a",),
                          source_seeds=(1, 1), top_k=0, embedding_step=50, source_steps=10,
                          inits=("random_uniform", "magic"), metric="dot")
  problems = "\n".join(cfg.problems(known_tasks=["a", "b"]))
  for message in ("--top_k 0: expected a positive integer",
                  "--embedding_step 50: the task embedding is the prompt at that step, so it "
                  "must be at most --source_steps (10)",
                  "--source_seeds [1, 1]: each seed once", "--inits ['random_uniform', 'magic']",
                  "--metric 'dot'", "--sources ['a', 'a']: each task once",
                  "--targets ['a']: also sources", "task_feature_lengths: not set"):
    assert message in problems
  unknown = study.StudyConfig(out_dir=str(tmp_path), sources=("spot_glue_rte_v20",),
                              targets=("b",), task_feature_lengths={"inputs": 8, "targets": 4})
  assert "--sources 'spot_glue_rte_v20': not a registered task or mixture; did you mean " \
      "spot_glue_rte_v200?" in unknown.problems(known_tasks=["spot_glue_rte_v200", "b"])


class _Stop(Exception):
  pass


def test_each_run_gets_its_tasks_lengths_batch_and_the_model(tmp_path):
  calls = []

  def train(**kwargs):
    calls.append(kwargs)
    raise _Stop

  cfg = study.StudyConfig(out_dir=str(tmp_path), sources=("toy_first",), targets=(TARGET,),
                          task_feature_lengths={"inputs": 16, "targets": 8},
                          feature_lengths={"toy_first": {"inputs": 24, "targets": 4}},
                          source_batch_size=4, prompt_length=3, model_config="M",
                          initial_checkpoint=None, top_k=1)
  with pytest.raises(_Stop):
    study.Study(cfg, train).run()
  [first] = calls
  assert first["mixture_or_task_name"] == "toy_first"
  assert first["task_feature_lengths"] == {"inputs": 24, "targets": 4}
  assert (first["batch_size"], first["prompt_length"], first["model_config"]) == (4, 3, "M")
  assert first["prompt_save_steps"] == (0, cfg.embedding_step)
  assert cfg.lengths(TARGET) == {"inputs": 16, "targets": 8}
  # Unset batch size and prompt length leave the trainer's own (gin) settings in place.
  calls.clear()
  with pytest.raises(_Stop):
    study.Study(study.StudyConfig(out_dir=str(tmp_path / "b"), sources=("toy_first",),
                                  targets=(TARGET,), source_batch_size=None,
                                  prompt_length=None, zero_shot=False, top_k=1),
                train).run()
  assert "batch_size" not in calls[0] and "prompt_length" not in calls[0]
  assert "task_feature_lengths" not in calls[0] and "model_config" not in calls[0]


def _uniform_average(plan):
  """A new init for the test below: the plain mean of the top-k sources' transfer prompts."""
  prompts = [plan.library.load(retrieval.transfer_entry(plan.library, r, query=plan.query))
             for r in plan.ranked[:plan.k]]
  path = os.path.join(plan.cfg.out_dir, "targets", plan.target, "uniform_average_init")
  prompt_files.save_prompt(path, np.mean(prompts, axis=0), plan.embedding_metadata.replace(
      task=plan.target, role=None, step=0, metric_name=None, metric_value=None, created="",
      array_sha256=""))
  return {"init_file": path}


@pytest.fixture
def uniform_average():
  """Registered for one test: one Strategy and one register line."""
  from spot_jax.prompts import initializers
  strategies.register(strategies.Strategy(
      "top_k_uniform_average", strategies.TRANSFER_KIND, prepare=_uniform_average,
      init=lambda plan: initializers.prompt_file(
          plan.prepared["top_k_uniform_average"]["init_file"]),
      comparisons=(("top_k_uniform_average", "random_uniform"),),
      claims=(("top_k_uniform_average", "random_uniform",
               "the top-k plain average beats random init"),)))
  yield "top_k_uniform_average"
  strategies.unregister("top_k_uniform_average")


@pytest.mark.slow
def test_a_registered_strategy_runs_in_the_study_and_its_report(finished, uniform_average,
                                                                 tmp_path):
  cfg, s, _, train = finished
  out = str(tmp_path / "run")
  shutil.copytree(cfg.out_dir, out)  # every run of the finished study is resumed, not trained
  inits = ("random_uniform", "spot_top1", uniform_average)
  new = _config(out, cfg.model_config, cfg.initial_checkpoint, inits=inits)
  assert new.problems(known_tasks=[*SOURCES, TARGET]) == []  # the configuration accepts it
  again = study.Study(new, train)
  again.run()
  assert again.progress.trained == 2 * cfg.target_steps * cfg.target_batch_size  # its 2 seeds
  rows = {(r["init"], r["seed"]): r for r in again.results}
  assert {i for i, _ in rows} == set(inits)
  old = {(r["init"], r["seed"]): r for r in s.results}
  for seed in (0, 1):
    assert rows[("spot_top1", seed)] == old[("spot_top1", seed)]
    np.testing.assert_allclose(_init_of(new, uniform_average, seed),
                               prompt_files.load_prompt_array(os.path.join(
                                   out, "targets", TARGET, "uniform_average_init")))
  with open(os.path.join(out, "study.json")) as f:
    data = json.load(f)
  assert [(c["a"], c["b"]) for c in data["comparisons"]] == [
      ("spot_top1", "random_uniform"), (uniform_average, "random_uniform")]
  report = open(os.path.join(out, "report.md")).read()
  assert "the top-k plain average beats random init" in report
  assert uniform_average in open(os.path.join(out, "results.md")).read()
