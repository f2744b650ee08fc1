"""SPoT's transfer study, one orchestrator for the bundled suite and for real tasks.

Over any registered seqio tasks (Vu et al. 2022 §3, Su et al. 2022 §4):
1. source prompt tuning, each source task x seed, each run registered in the prompt
   library: its prompt at `embedding_step` (the task embedding) and its best-validation
   prompt (what transfers);
2. a task embedding per target (a short prompt-tuning run);
3. the similarity matrix over all tasks, and how much of each embedding is still its
   initialisation (the prompt's distance from its step-0 value);
4. the zero-shot matrix (every source prompt on every task, untrained) and the indicator
   table (embedding similarities and neuron overlap against zero-shot transfer);
5. target prompt tuning at one step budget from each init: random, class labels, SPoT's
   top-1 retrieved source, best of top-k, top-k weighted average, top-k multi-task
   mixture and the oracle (every source tried), each for every target seed;
6. the report (`report.md`): every cell with its seeds, mean and 95% interval, paired
   differences between inits with their intervals, and the conclusions they support,
   the clustered similarity heatmap and the similarity-vs-transfer plot.

`python -m spot_jax.pipeline` runs it (the main job, on the embedded default, or on real
tasks from a gin file); `python -m spot_jax.spot` runs it for one target and one strategy.
Rerunning on the same output directory resumes from the last finished run, and only with
the settings it was started with.
"""
import dataclasses
import functools
import json
import logging
import os
import time
import zlib
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from spot_jax import atomic_files
from spot_jax.prompts import initializers, prompt_files
from spot_jax.transfer import (retrieval, similarity, statistics, strategies, study_measures,
                               study_report, workflow)
from spot_jax.transfer.study_measures import (learning_curve_scores, majority_score,
                                              neuron_indicator, zero_shot_by_relation)
from spot_jax.transfer.prompt_library import ModelSignature, PromptLibrary
from spot_jax.transfer.study_config import (AVERAGE_SOURCE, BASELINE, CONFIG_FILE, INITS,
                                            StudyConfig, check_resumable)
from spot_jax.transfer.strategies import TargetPlan

log = logging.getLogger("spot_jax.study")

DATA_CHECKS_FILE = "data_checks.json"  # every run's data checks, kept across resumes
EMBEDDING_SEED = 1000  # target embeddings' seeds: EMBEDDING_SEED + i, none a source run's
# What the report compares (a, b), a - b paired over seeds, when every built-in init runs
# (a study compares what its strategies name: `strategies.comparisons(cfg.inits)`).
COMPARISONS = strategies.comparisons(INITS)


class Progress:
  """Console lines per finished run with an ETA from the examples trained so far."""

  def __init__(self, total_examples: int, total_runs: int):
    self.total, self.runs = max(total_examples, 1), total_runs
    self.done = self.done_runs = 0
    self.trained = 0  # examples trained in this process (resumed runs cost nothing)
    self.start = time.time()

  def tick(self, stage: str, what: str, examples: int, trained: bool):
    self.done += examples
    self.done_runs += 1
    if trained:
      self.trained += examples
    elapsed = time.time() - self.start
    left = self.total - self.done
    eta = elapsed / self.trained * left if self.trained else float("nan")
    log.info("[%s] run %d/%d %s  (%.0fs elapsed, ETA %.0fs)", stage, self.done_runs,
             self.runs, what, elapsed, eta)


def _write_json(path: str, data: Any) -> str:
  return atomic_files.write_atomically(path, json.dumps(data, indent=2, default=str) + "\n")


@dataclasses.dataclass
class _Run:
  """One prompt-tuning run of the study: what to train, how to tell it is done, and what
  to do with its result (register it, record its score)."""
  stage: str
  label: str
  model_dir: str
  task: str
  seed: int
  steps: int
  batch_size: Optional[int]
  factory: Optional[Callable] = None
  eval_period: int = 0
  save_steps: Tuple[int, ...] = ()
  run_name: str = ""
  lengths: Optional[Mapping[str, int]] = None  # None: the config's for the task
  done: Callable[[], bool] = lambda: False
  finish: Callable[[Dict[str, Any]], None] = lambda out: None


class Study:
  """One study; `run()` executes the stages (skipping finished runs) and returns the summary.

  `train` is `spot_jax.training.trainer.train`, possibly configured by gin; the study
  passes each run's directory, task, steps, seed, init, batch size, prompt length and
  feature lengths (and the model, when the config names one). `train_group`, when given
  (`training.multi_prompt.train_prompts`, configured alike), trains the runs of a stage
  that share steps, batch size and feature lengths together, many prompts per step.
  """

  def __init__(self, cfg: StudyConfig, train: Callable[..., Dict[str, Any]],
               train_group: Optional[Callable[..., List[Dict[str, Any]]]] = None):
    self.cfg, self.train_fn, self.train_group = cfg, train, train_group
    self.library_root = cfg.library_dir or os.path.join(cfg.out_dir, "library")
    self.results: List[Dict[str, Any]] = []
    self.pairs: List[Dict[str, Any]] = []
    self.source_scores: List[Dict[str, Any]] = []  # every source's transfer, per target seed
    self.rankings: Dict[str, List[Dict[str, Any]]] = {}
    self.data: Dict[tuple, Dict[str, Any]] = {}
    self.progress = Progress(*self._planned())

  # -- bookkeeping ---------------------------------------------------------------------------
  def _planned(self) -> Tuple[int, int]:
    cfg = self.cfg
    n_src = len(cfg.sources) * len(cfg.source_seeds)
    chosen = strategies.selected(cfg.inits)
    per_seed = strategies.sweep_size(cfg) + sum(s.init is not None for s in chosen)
    n_tgt = len(cfg.targets) * len(cfg.target_seeds) * per_seed
    n_mix = len(cfg.targets) * sum(s.source_runs for s in chosen)
    src_batch, tgt_batch = cfg.source_batch_size or 1, cfg.target_batch_size or 1
    examples = (n_src * cfg.source_steps * src_batch
                + len(cfg.targets) * cfg.embedding_step * src_batch
                + n_mix * (cfg.mixture_steps or cfg.source_steps) * src_batch
                + n_tgt * cfg.target_steps * tgt_batch)
    return examples, n_src + len(cfg.targets) + n_mix + n_tgt

  def _lengths(self, run: _Run) -> Optional[Dict[str, int]]:
    return dict(run.lengths) if run.lengths else self.cfg.lengths(run.task)

  def _common(self, lengths: Optional[Mapping[str, int]], steps: int) -> Dict[str, Any]:
    """Settings every run passes; None leaves the trainer's own (gin) setting."""
    cfg = self.cfg
    args = dict(task_feature_lengths=lengths, prompt_length=cfg.prompt_length,
                keep_checkpoints=1, log_period=max(steps, 1))
    if cfg.model_config is not None:
      args.update(model_config=cfg.model_config, initial_checkpoint=cfg.initial_checkpoint)
    return {k: v for k, v in args.items() if v is not None or k == "initial_checkpoint"}

  def _data_path(self) -> str:
    return os.path.join(self.cfg.out_dir, DATA_CHECKS_FILE)

  def _load_data(self) -> None:
    """The data checks of runs finished before a resume (they are not run again)."""
    try:
      with open(self._data_path(), encoding="utf-8") as f:
        reports = json.load(f)
    except FileNotFoundError:
      return
    except ValueError as e:
      raise ValueError(f"{self._data_path()} is not valid JSON ({e}); it lists the data checks "
                       "of the study's finished runs: delete it, and resume") from None
    for report in reports:
      self.data[(report["task"], report["split"])] = report

  def _record_data(self, out: Dict[str, Any]) -> None:
    reports = out.get("data") or ()
    for report in reports:
      self.data[(report["task"], report["split"])] = report
    if reports:
      _write_json(self._data_path(), [self.data[key] for key in sorted(self.data)])

  def _execute(self, runs: Sequence[_Run]) -> None:
    """Trains the runs not done yet, packed by shared settings when `train_group` is set,
    then hands each result to its run's `finish`."""
    cfg = self.cfg
    pending = []
    for r in runs:
      if r.done():
        self.progress.tick(r.stage, r.label, r.steps * (r.batch_size or 1), False)
      else:
        pending.append(r)
    groups: Dict[tuple, List[_Run]] = {}
    for r in pending:
      key = (r.steps, r.batch_size, r.eval_period, r.save_steps,
             json.dumps(self._lengths(r), sort_keys=True))
      groups.setdefault(key if self.train_group else (id(r),), []).append(r)
    for group in groups.values():
      first = group[0]
      shared = dict(self._common(self._lengths(first), first.steps), train_steps=first.steps,
                    eval_period=first.eval_period, checkpoint_period=first.steps,
                    prompt_save_steps=first.save_steps, num_eval_examples=cfg.num_eval_examples)
      if first.batch_size is not None:
        shared["batch_size"] = first.batch_size
      if self.train_group and len(group) > 1:
        from spot_jax.training.multi_prompt import PromptRun
        outs = self.train_group(runs=[PromptRun(r.model_dir, r.task, r.seed, r.factory,
                                                r.run_name) for r in group], **shared)
      else:
        outs = [self.train_fn(model_dir=r.model_dir, mixture_or_task_name=r.task,
                              seed=r.seed, prompt_init=r.factory, run_name=r.run_name,
                              **shared) for r in group]
      for r, out in zip(group, outs):
        self._record_data(out)
        r.finish(out)
        self.progress.tick(r.stage, r.label, r.steps * (r.batch_size or 1), True)

  # -- stage 1: sources and the library ------------------------------------------------------
  def train_sources(self, library: PromptLibrary) -> None:
    cfg = self.cfg
    runs = []
    for task in cfg.sources:
      for seed in cfg.source_seeds:
        run = f"seed{seed}"
        run_dir = os.path.join(cfg.out_dir, "sources", task, run)
        runs.append(_Run(
            "sources", f"{task} {run}", run_dir, task,
            # Per task: tasks sharing a seed would share their sampled-vocabulary init rows.
            zlib.crc32(task.encode()) % 10_000 + seed, cfg.source_steps,
            cfg.source_batch_size, eval_period=cfg.source_steps,
            save_steps=(0, cfg.embedding_step), run_name=run,
            done=functools.partial(lambda t, r: bool(library.entries(task=t, run=r)), task, run),
            finish=functools.partial(lambda d, r, out: workflow.register_run(
                library, d, embedding_step=cfg.embedding_step, run=r), run_dir, run)))
    self._execute(runs)

  # -- stage 2: target embeddings ------------------------------------------------------------
  def embed_targets(self) -> Dict[str, str]:
    cfg = self.cfg
    out, runs = {}, []
    for i, task in enumerate(cfg.targets):
      run_dir = os.path.join(cfg.out_dir, "target_embeddings", task)
      out[task] = os.path.join(run_dir, "prompts", f"step_{cfg.embedding_step}")
      # A seed no source run uses: the same seed would start from the same sampled rows
      # and make the embeddings look alike before any training.
      runs.append(_Run("target embeddings", task, run_dir, task, EMBEDDING_SEED + i,
                       cfg.embedding_step, cfg.source_batch_size,
                       save_steps=(cfg.embedding_step,),
                       done=functools.partial(os.path.exists,
                                              out[task] + prompt_files.JSON_SUFFIX)))
    self._execute(runs)
    return out

  # -- stage 3: similarity and how far embeddings moved ------------------------------------------
  def similarity(self, library: PromptLibrary, target_embeddings: Mapping[str, str]
                 ) -> Dict[str, Any]:
    """Mean similarity over run pairs between every two tasks' embeddings (SPoT §3.2);
    run pairs within a task exclude a run with itself."""
    cfg = self.cfg
    runs = {t: [library.load(e) for e in library.entries(
        task=t, role=prompt_files.TASK_EMBEDDING)] for t in cfg.sources}
    runs.update({t: [prompt_files.load_prompt_array(p)] for t, p in target_embeddings.items()})
    tasks = list(cfg.sources) + list(cfg.targets)
    matrix = np.zeros((len(tasks), len(tasks)))
    within, across, same_task = [], [], []
    for i, a in enumerate(tasks):
      for j, b in enumerate(tasks):
        values = [float(similarity.score(x, y[None], cfg.metric)[0])
                  for ia, x in enumerate(runs[a]) for ib, y in enumerate(runs[b])
                  if not (a == b and ia == ib)]
        matrix[i, j] = np.mean(values) if values else np.nan
        if i < j or (i == j and values):
          fa, fb = cfg.family(a), cfg.family(b)
          group = (same_task if a == b else within if fa is not None and fa == fb
                   else across)
          group.extend(values)
    if np.isnan(matrix).any():  # one run of a task: no pair within it; show its self-score
      for i, a in enumerate(tasks):
        if np.isnan(matrix[i, i]):
          matrix[i, i] = float(similarity.score(runs[a][0], runs[a][0][None], cfg.metric)[0])
    families = statistics.group_difference(within, across)
    return {"tasks": tasks, "matrix": matrix.tolist(), "metric": cfg.metric,
            "families": {t: cfg.family(t) for t in tasks},
            "same_task_mean": float(np.mean(same_task)) if same_task else None,
            "same_minus_cross_family": families}

  def displacement(self) -> Dict[str, Any]:
    """How much of each source's task embedding is still its initialisation: the relative
    distance |e - e0| / |e0| and the per-token cosine of e with its step-0 prompt e0."""
    cfg = self.cfg
    rows = []
    for task in cfg.sources:
      for seed in cfg.source_seeds:
        prompts = os.path.join(cfg.out_dir, "sources", task, f"seed{seed}", "prompts")
        try:
          e0 = prompt_files.load_prompt_array(os.path.join(prompts, "step_0"))
        except FileNotFoundError:  # a library filled elsewhere: no step-0 prompt to compare
          continue
        e = prompt_files.load_prompt_array(os.path.join(prompts, f"step_{cfg.embedding_step}"))
        cos = np.sum(e * e0, -1) / (np.linalg.norm(e, axis=-1) * np.linalg.norm(e0, axis=-1))
        rows.append({"task": task, "seed": seed,
                     "relative_distance": float(np.linalg.norm(e - e0) / np.linalg.norm(e0)),
                     "cosine_with_init": float(np.mean(cos))})
    if not rows:
      return {"runs": [], "mean_relative_distance": None, "mean_cosine_with_init": None}
    return {"runs": rows, "step": cfg.embedding_step,
            "mean_relative_distance": float(np.mean([r["relative_distance"] for r in rows])),
            "mean_cosine_with_init": float(np.mean([r["cosine_with_init"] for r in rows]))}

  # -- stage 4: zero-shot matrix and indicators ----------------------------------------------
  def zero_shot(self, library: PromptLibrary) -> Optional[Dict[str, Any]]:
    cfg = self.cfg
    if not cfg.zero_shot:
      return None
    from spot_jax.transfer import indicators, transfer_report, zero_shot
    out_dir = os.path.join(cfg.out_dir, "zero_shot")
    done = os.path.join(out_dir, "zero_shot.json")
    if os.path.exists(done):
      with open(done) as f:
        matrix = json.load(f)
    else:
      if cfg.model_config is None:
        raise ValueError("the zero-shot matrix needs the study's model_config and "
                         "initial_checkpoint (or zero_shot=False)")
      # One prompt per source task (its best run), as Su et al. evaluate one per task.
      prompts = {}
      for t in cfg.sources:
        e = max(library.entries(task=t, role=prompt_files.TRANSFER),
                key=lambda e: (e.metadata.metric_value or 0.0, e.run or ""))
        prompts[f"{e.task}/{e.run}"] = library.path(e)
      tasks = list(cfg.sources) + list(cfg.targets)
      lengths = {k: max(cfg.lengths(t)[k] for t in tasks) for k in ("inputs", "targets")}
      matrix = zero_shot.zero_shot_matrix(
          prompts, tasks, model_config=cfg.model_config, checkpoint_path=cfg.initial_checkpoint,
          task_feature_lengths=lengths, num_examples=cfg.num_eval_examples, batch_size=64)
      transfer_report.write_zero_shot(matrix, out_dir)
    from spot_jax.model import checkpoints
    params = checkpoints.load_frozen_model(cfg.initial_checkpoint, cfg.model_config, 0)
    table_prompts = np.stack([prompt_files.load_prompt_array(p)
                              for p in matrix["prompt_files"]])
    values = np.array([[np.nan if v is None else v for v in row] for row in matrix["relative"]])
    try:
      table = indicators.indicator_table(
          values, table_prompts, matrix["prompt_tasks"], matrix["tasks"],
          indicators.metrics(indicators.FrozenModel(cfg.model_config, params, cfg.probe_token)))
    except ValueError as e:  # e.g. every source scores 0 on its own task: no relative score
      log.warning("no indicator table: %s", e)
      return {"matrix": matrix, "indicators": None, "note": str(e)}
    table["values"] = "relative"
    transfer_report.write_indicators(table, os.path.join(cfg.out_dir, "indicators"))
    return {"matrix": matrix, "indicators": table, "note": None}

  # -- stage 5: target tuning ------------------------------------------------------------------
  def _target_run(self, target: str, key: str, seed: int, factory) -> _Run:
    cfg = self.cfg
    run_dir = os.path.join(cfg.out_dir, "targets", target, key, f"seed{seed}")
    done = os.path.join(run_dir, "score.json")

    def finish(out):
      if out["best"] is None:
        raise ValueError(f"target run {run_dir} recorded no validation score")
      name = out["best"]["metric_name"]
      curve = [[int(h["step"]), float(h[name])] for h in out["history"] if "eval" in h]
      scores = learning_curve_scores(curve)
      _write_json(done, {"score": scores[cfg.target_score], **scores, "curve": curve,
                         "best_checkpoint": out["best"], "seed": seed, "init": key})

    return _Run("targets", f"{target} {key} seed{seed}", run_dir, target, seed,
                cfg.target_steps, cfg.target_batch_size, factory,
                eval_period=cfg.target_steps // cfg.target_eval_points, save_steps=(0,),
                done=functools.partial(os.path.exists, done), finish=finish)

  def _record(self, target: str, key: str, seed: int) -> Dict[str, Any]:
    """A finished target run's score.json."""
    path = os.path.join(self.cfg.out_dir, "targets", target, key, f"seed{seed}", "score.json")
    with open(path) as f:
      return json.load(f)

  def _plan_target(self, library: PromptLibrary, target: str, embedding: str) -> TargetPlan:
    """Retrieval for a target: the ranking, then each chosen strategy's preparation (e.g.
    the weighted average written once, the top-k mixture registered)."""
    cfg = self.cfg
    emb, meta = prompt_files.load_prompt(embedding)
    query = ModelSignature.of(meta)
    ranked = retrieval.rank_library(emb, library, query=query, metric=cfg.metric,
                                    exclude_tasks=[target], step=meta.step)
    ranked = [r for r in ranked if r.task in cfg.sources]
    self.rankings[target] = [{"task": r.task, "similarity": r.score} for r in ranked]
    log.info("%s: ranking %s", target, [(r.task, round(r.score, 4)) for r in ranked])
    plan = TargetPlan(cfg=cfg, target=target, labels=cfg.task_labels(target), ranked=ranked,
                      k=min(cfg.top_k, len(ranked)), library=library, query=query,
                      embedding_metadata=meta, prepared={})
    for strategy in strategies.selected(cfg.inits):
      if strategy.prepare is not None:
        plan.prepared[strategy.name] = strategy.prepare(plan)
    return plan

  def _source_runs(self, plan: TargetPlan) -> List[_Run]:
    """The runs on sources the strategies' preparation asked for (e.g. the mixture's), each
    under the stage name its strategy gave."""
    cfg = self.cfg
    runs = []
    for prepared in plan.prepared.values():
      run = prepared.get("source_run")
      if run:
        runs.append(_Run(run["stage"], run["task"], run["model_dir"], run["task"],
                         cfg.target_seeds[0], run["steps"], cfg.source_batch_size,
                         lengths=cfg.lengths(plan.target),
                         done=functools.partial(os.path.exists, run["done_file"])))
    return runs

  def tune_targets(self, library: PromptLibrary, embeddings: Mapping[str, str]) -> None:
    cfg = self.cfg
    plans = {t: self._plan_target(library, t, embeddings[t]) for t in cfg.targets}
    self._execute([run for plan in plans.values() for run in self._source_runs(plan)])
    for target, plan in plans.items():
      sweep = plan.ranked[:strategies.sweep_size(cfg)]
      entries = {r.task: retrieval.transfer_entry(library, r, query=plan.query) for r in sweep}
      # (key, factory): every run this target's inits need, per seed: the baselines' own
      # runs, one run from each swept source's prompt, then the other strategies' own runs.
      own = [(s.kind, s.name, s.init(plan)) for s in strategies.selected(cfg.inits)
             if s.init is not None]
      own = [(kind, key, factory) for kind, key, factory in own if factory is not None]
      inits = ([(key, f) for kind, key, f in own if kind == strategies.BASELINE_KIND]
               + [(f"from_{r.task}", initializers.prompt_file(library.path(entries[r.task])))
                  for r in sweep]
               + [(key, f) for kind, key, f in own if kind != strategies.BASELINE_KIND])
      self._execute([self._target_run(target, key, seed, factory)
                     for seed in cfg.target_seeds for key, factory in inits])
      self._collect(plan, [r.task for r in sweep], [key for key, _ in inits])

  def _collect(self, plan: TargetPlan, sweep: Sequence[str], keys: Sequence[str]) -> None:
    """The results rows of a target's finished runs, each source's transfer to it per seed
    (with the pair's relation), and its (source, target) pairs."""
    cfg, target = self.cfg, plan.target
    chosen = strategies.selected(cfg.inits)
    per_source = {task: [] for task in sweep}
    for seed in cfg.target_seeds:
      rows: Dict[str, Dict[str, Any]] = {}
      records = {key: self._record(target, key, seed) for key in keys}
      score = {key: float(r["score"]) for key, r in records.items()}
      auc = {key: float(r["auc"]) for key, r in records.items()}

      def row(init, runs, **info):
        """The row of `init`: the mean over `runs` (one run, or every source's)."""
        rows[init] = dict(target=target, init=init, seed=seed, step=cfg.target_steps,
                          score=float(np.mean([score[k] for k in runs])),
                          auc=float(np.mean([auc[k] for k in runs])), **info)

      by_source = {task: score[f"from_{task}"] for task in sweep}
      for task, value in by_source.items():
        per_source[task].append(value)
        self.source_scores.append({"target": target, "seed": seed, "source": task,
                                   "relation": cfg.relation(task, target), "score": value,
                                   "auc": auc[f"from_{task}"]})
      for strategy in chosen:
        if strategy.init is not None and strategy.name in score:
          row(strategy.name, [strategy.name],
              **plan.prepared.get(strategy.name, {}).get("row", {}))
        elif strategy.pick is not None and sweep:
          for init, sources, info in strategy.pick(list(sweep), by_source, plan.k):
            row(init, [f"from_{t}" for t in sources], **info)
      order = [s.name for s in chosen]
      self.results += ([rows[i] for i in order if i in rows]
                       + [r for i, r in rows.items() if i not in order])
    base = [r["score"] for r in self.results
            if r["target"] == target and r["init"] == BASELINE]
    sims = {r.task: r.score for r in plan.ranked}
    for source, scores in per_source.items():
      if base:
        self.pairs.append({"source": source, "target": target, "similarity": sims[source],
                           "score": float(np.mean(scores)), "baseline": float(np.mean(base)),
                           "seeds": list(cfg.target_seeds)})

  # -- stage 6: the report ---------------------------------------------------------------------
  def report(self, sim: Dict[str, Any], moved: Dict[str, Any],
             zero: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    from spot_jax.transfer import study_writeup
    cfg = self.cfg
    out = cfg.out_dir
    families = {t: f for t, f in sim["families"].items() if f is not None}
    rows = [r for r in self.results if r["init"] != AVERAGE_SOURCE]
    table = study_measures.results_table(rows, baseline=BASELINE) if any(
        r["init"] == BASELINE for r in rows) else None
    if table is not None:
      study_report.write_results(table, out)
    study_report.plot_similarity_heatmap(sim, families,
                                         os.path.join(out, "similarity_heatmap.png"))
    corr = None
    if self.pairs:
      corr = study_report.plot_similarity_vs_transfer(
          self.pairs, os.path.join(out, "similarity_vs_transfer.png"), families=families)
    comparisons = statistics.comparisons(self.results, list(cfg.targets),
                                         strategies.comparisons(cfg.inits))
    chance = {t: study_measures.chance_score(cfg.task_labels(t)) for t in cfg.targets}
    majority = {t: (majority_score(t, cfg.lengths(t), cfg.num_eval_examples)
                    if cfg.task_labels(t) else None) for t in cfg.targets}
    auc_rows = [dict(r, score=r["auc"]) for r in rows if r.get("auc") is not None]
    data = {"config": cfg.to_json(), "results": self.results, "table": table,
            "auc_table": study_measures.results_table(auc_rows, baseline=BASELINE)
            if table is not None and len(auc_rows) == len(rows) else None,
            "comparisons": comparisons, "similarity": sim, "displacement": moved,
            "rankings": self.rankings, "transfer_pairs": self.pairs, "correlation": corr,
            "chance": chance, "majority": majority, "source_scores": self.source_scores,
            "transfer_by_relation": statistics.relation_differences(self.source_scores),
            "zero_shot": None if zero is None else {
                "raw": zero["matrix"]["raw"], "prompts": zero["matrix"]["prompts"],
                "tasks": zero["matrix"]["tasks"], "note": zero["note"],
                "by_relation": zero_shot_by_relation(zero["matrix"], cfg),
                "pooled_indicators": zero["indicators"]["pooled"] if zero["indicators"]
                else None,
                "indicator_comparison": statistics.indicator_comparison(
                    zero["indicators"]["pairs"], zero["indicators"]["indicators"],
                    neuron_indicator=neuron_indicator())
                if zero["indicators"] else None}}
    _write_json(os.path.join(out, "similarity.json"), sim)
    _write_json(os.path.join(out, "transfer_pairs.json"), self.pairs)
    _write_json(os.path.join(out, "study.json"), data)
    atomic_files.write_atomically(os.path.join(out, "report.md"), study_writeup.markdown(data))
    return data

  def run(self) -> Dict[str, Any]:
    cfg = self.cfg
    start = time.time()
    os.makedirs(cfg.out_dir, exist_ok=True)
    _write_json(os.path.join(cfg.out_dir, CONFIG_FILE), cfg.to_json())
    self._load_data()
    library = PromptLibrary(self.library_root, create=True)
    self.train_sources(library)
    embeddings = self.embed_targets()
    sim = self.similarity(library, embeddings)
    moved = self.displacement()
    zero = self.zero_shot(library)
    self.tune_targets(library, embeddings)
    data = self.report(sim, moved, zero)
    summary = {"out_dir": cfg.out_dir, "wall_seconds": round(time.time() - start, 1),
               "correlation": data["correlation"], "library_ok": library.verify().ok,
               "conclusions": [c["conclusion"] for c in data["comparisons"]],
               "data": [self.data[key] for key in sorted(self.data)]}
    _write_json(os.path.join(cfg.out_dir, "summary.json"), summary)
    return summary


def run_spot(*, train: Callable[..., Dict[str, Any]], out_dir: str, source_tasks: Sequence[str],
             target_task: str, library_dir: Optional[str] = None, seeds: Sequence[int] = (0,),
             embedding_step: int = 10000, source_steps: int = 262144,
             target_steps: int = 100000, strategy: str = "best_of_top_k", k: int = 1,
             metric: str = similarity.DEFAULT_METRIC,
             num_eval_examples: Optional[int] = None) -> Dict[str, Any]:
  """SPoT for one target with one strategy (`python -m spot_jax.spot`): the study with that
  init alone, target seed 0, the trainer's configured batch size, prompt length and feature
  lengths, no zero-shot matrix. Writes `spot_result.json` (ranking, the target runs, best)."""
  inits = {"best_of_top_k": "spot_top1" if k == 1 else "best_of_top_k"}.get(strategy, strategy)
  transfer = [s.name for s in strategies.selected(strategies.names())
              if s.kind == strategies.TRANSFER_KIND and s.name != "spot_top1"]
  if strategy not in transfer:  # spot_top1 is best_of_top_k with k = 1
    from spot_jax import settings
    raise settings.SettingError("run_spot", "strategy", strategy,
                                "one of " + ", ".join(transfer))
  cfg = StudyConfig(out_dir=out_dir, sources=source_tasks, targets=(target_task,),
                    source_seeds=seeds, target_seeds=(0,), source_steps=source_steps,
                    embedding_step=embedding_step, target_steps=target_steps,
                    mixture_steps=source_steps, prompt_length=None, source_batch_size=None,
                    target_batch_size=None, top_k=k, inits=(inits,), metric=metric,
                    zero_shot=False, library_dir=library_dir,
                    num_eval_examples=num_eval_examples, pack=False)
  import seqio
  cfg.check(sorted(set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names())))
  check_resumable(cfg)
  study = Study(cfg, train)
  study.run()
  runs = []
  for key in sorted(os.listdir(os.path.join(cfg.out_dir, "targets", target_task))):
    done = os.path.join(cfg.out_dir, "targets", target_task, key, "seed0", "score.json")
    if os.path.exists(done):
      with open(done) as f:
        runs.append(dict(json.load(f), run_dir=os.path.dirname(done)))
  row = next(r for r in study.results if r["init"] == inits)
  summary = {"target_task": target_task, "strategy": strategy, "k": k, "metric": metric,
             "ranking": study.rankings[target_task], "runs": runs,
             "best": {"score": row["score"], "source": row.get("source")},
             "library": study.library_root}
  _write_json(os.path.join(cfg.out_dir, "spot_result.json"), summary)
  return summary
