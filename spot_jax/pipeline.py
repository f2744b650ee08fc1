"""The main job: SPoT's whole pipeline on the embedded default, offline, on a laptop.

On the bundled synthetic suite (`spot_jax.tasks.synthetic`, four task families) and the
shipped tiny frozen backbone (`spot_jax.embedded`):
1. source prompt tuning, several seeds per source task, each run registered in the prompt
   library: its prompt at `embedding_step` (the task embedding) and its best-validation
   prompt (what transfers);
2. target task embeddings (a short prompt-tuning run per target);
3. the task-embedding similarity matrix over all tasks;
4. target prompt tuning at one step budget from (a) uniform random init, (b) class-label
   init, (c) the top-1 source retrieved by per-token average cosine, (d) the top-k
   weighted average, (e) the oracle: every source tried, the best kept;
5. the report: results table (markdown + JSON), similarity heatmap, similarity vs.
   relative error reduction scatter.
Everything lands in one output directory, with TensorBoard logs of every run.

  python -m spot_jax.pipeline --out spot_jax_demo

Flags may also come from the environment variable SPOT_JAX_PIPELINE_FLAGS (read before the
command line, whose flags win). Every setting is checked before the first run; rerunning on
an existing `--out` resumes it, and only with the settings it was started with.
"""
import argparse
import dataclasses
import json
import logging
import os
import shlex
import sys
import time
import zlib
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

log = logging.getLogger("spot_jax.pipeline")

FLAGS_ENV = "SPOT_JAX_PIPELINE_FLAGS"
CONFIG_FILE = "pipeline_config.json"

EMBEDDING_SEED = 1000
INIT_METHODS = ("random_uniform", "class_labels", "spot_top1", "spot_top_k_weighted_average",
                "oracle")


@dataclasses.dataclass(frozen=True)
class PipelineConfig:
  """What the study runs; the defaults are the documented full run."""
  out_dir: str = "spot_jax_demo"
  source_seeds: Sequence[int] = (0, 1, 2)
  target_seeds: Sequence[int] = (0, 1)
  source_steps: int = 150
  embedding_step: int = 50
  target_steps: int = 50
  prompt_length: int = 20
  batch_size: int = 16
  top_k: int = 3
  num_eval_examples: Optional[int] = 100
  metric: str = "cosine_per_token"
  sources: Optional[Sequence[str]] = None  # default: all of the suite's source tasks
  targets: Optional[Sequence[str]] = None
  backbone_dir: Optional[str] = None  # default: the shipped backbone (spot_jax/assets)

  def __post_init__(self):
    from spot_jax import paths
    object.__setattr__(self, "out_dir", paths.absolute(self.out_dir))
    object.__setattr__(self, "backbone_dir", paths.absolute(self.backbone_dir))
    for name in ("source_seeds", "target_seeds"):
      object.__setattr__(self, name, tuple(getattr(self, name)))
    for name in ("sources", "targets"):
      if getattr(self, name) is not None:
        object.__setattr__(self, name, tuple(getattr(self, name)))

  def problems(self) -> List[str]:
    """Every setting that cannot run, one message each naming the flag and the value."""
    from spot_jax.tasks import synthetic
    from spot_jax.transfer import similarity
    out = []
    for name in ("source_steps", "target_steps", "embedding_step", "prompt_length",
                 "batch_size", "top_k"):
      value = getattr(self, name)
      if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        out.append(f"--{name} {value!r}: expected a positive integer")
    if isinstance(self.embedding_step, int) and isinstance(self.source_steps, int) and \
        self.embedding_step > self.source_steps:
      out.append(f"--embedding_step {self.embedding_step}: the task embedding is the prompt "
                 f"at that step, so it must be at most --source_steps ({self.source_steps})")
    if self.num_eval_examples is not None and self.num_eval_examples < 1:
      out.append(f"--num_eval_examples {self.num_eval_examples}: expected a positive integer")
    for name in ("source_seeds", "target_seeds"):
      seeds = getattr(self, name)
      if not seeds:
        out.append(f"--{name}: give at least one seed")
      elif len(set(seeds)) != len(seeds):
        out.append(f"--{name} {list(seeds)}: each seed once (runs are named by seed)")
    if self.metric not in similarity.METRICS:
      out.append(f"--metric {self.metric!r}: expected one of {sorted(similarity.METRICS)}")
    for name, known in (("sources", synthetic.SOURCE_TASKS),
                        ("targets", synthetic.TARGET_TASKS)):
      for task in getattr(self, name) or ():
        if task not in known:
          out.append(f"--{name} {task!r}: not a {name[:-1]} task of the suite; expected "
                     f"some of {list(known)}")
    if self.backbone_dir and not os.path.isdir(self.backbone_dir):
      out.append(f"--backbone_dir {self.backbone_dir!r}: no such directory")
    return out

  def check(self) -> None:
    problems = self.problems()
    if problems:
      raise ValueError("pipeline settings cannot run:\n  " + "\n  ".join(problems))

  def to_json(self) -> Dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(self)))


def check_resumable(cfg: PipelineConfig) -> None:
  """An existing output directory resumes only with the settings it was started with:
  otherwise its finished runs would be reported under the new settings."""
  path = os.path.join(cfg.out_dir, CONFIG_FILE)
  if not os.path.exists(path):
    return
  with open(path) as f:
    old = json.load(f)
  new = cfg.to_json()
  differs = [f"{key}: {old.get(key)!r} before, {new.get(key)!r} now"
             for key in sorted(set(old) | set(new))
             if key != "out_dir" and old.get(key) != new.get(key)]
  if differs:
    raise ValueError(f"{cfg.out_dir} holds a pipeline run with other settings ({path}); "
                     "rerun with the same settings to resume it, or give another --out. "
                     "Differences:\n  " + "\n  ".join(differs))


class Progress:
  """Console lines per stage with a running ETA from the mean time per unit."""

  def __init__(self, stage: int, name: str, total: int, stages: int = 5):
    self.stage, self.name, self.total, self.stages = stage, name, total, stages
    self.done, self.start = 0, time.time()
    log.info("[stage %d/%d] %s: %d runs", stage, stages, name, total)

  def tick(self, what: str):
    self.done += 1
    elapsed = time.time() - self.start
    eta = elapsed / self.done * (self.total - self.done)
    log.info("[stage %d/%d] %s %d/%d %s  (%.0fs elapsed, ETA %.0fs)", self.stage, self.stages,
             self.name, self.done, self.total, what, elapsed, eta)


class Study:
  """One run of the pipeline; `run()` executes all stages and returns the summary."""

  def __init__(self, cfg: PipelineConfig):
    cfg.check()
    check_resumable(cfg)
    from spot_jax import embedded
    from spot_jax.tasks import synthetic
    from spot_jax.transfer.prompt_library import PromptLibrary
    self.cfg = cfg
    self.suite = synthetic
    synthetic.register()
    self.sources = list(cfg.sources or synthetic.SOURCE_TASKS)
    self.targets = list(cfg.targets or synthetic.TARGET_TASKS)
    if cfg.backbone_dir:  # a backbone.msgpack + config.json pair, as tools/build_backbone.py writes
      from spot_jax.model.config import T5Config
      with open(os.path.join(cfg.backbone_dir, embedded.BACKBONE_CONFIG)) as f:
        self.model_config = T5Config(**json.load(f)["config"])
      self.backbone = os.path.join(cfg.backbone_dir, embedded.BACKBONE_CHECKPOINT)
    else:
      self.model_config = embedded.backbone_config()
      self.backbone = embedded.backbone_path()
    os.makedirs(cfg.out_dir, exist_ok=True)
    self.library = PromptLibrary(os.path.join(cfg.out_dir, "library"), create=True)
    self.results: List[Dict[str, Any]] = []
    self.pairs: List[Dict[str, Any]] = []
    self.data: Dict[tuple, Dict[str, Any]] = {}  # per (task, split): what was truncated

  def _train(self, **kwargs):
    from spot_jax.training import trainer
    cfg = self.cfg
    args = dict(task_feature_lengths=self.suite.TASK_FEATURE_LENGTHS,
                model_config=self.model_config, initial_checkpoint=self.backbone,
                prompt_length=cfg.prompt_length, batch_size=cfg.batch_size,
                num_eval_examples=cfg.num_eval_examples, log_period=50,
                keep_checkpoints=1, prompt_save_steps=())
    args.update(kwargs)
    out = trainer.train(**args)
    for report in out["data"]:
      self.data[(report["task"], report["split"])] = report
    return out

  # -- stage 1 + 2: sources and the library ---------------------------------------------
  def train_sources(self):
    from spot_jax.transfer import workflow
    cfg = self.cfg
    progress = Progress(1, "source prompts + library", len(self.sources) * len(cfg.source_seeds))
    for task in self.sources:
      for seed in cfg.source_seeds:
        run = f"seed{seed}"
        if not self.library.entries(task=task, run=run):
          run_dir = os.path.join(cfg.out_dir, "sources", task, run)
          # Per task: tasks sharing a seed would share their sampled-vocabulary init rows.
          self._train(model_dir=run_dir, mixture_or_task_name=task,
                      seed=zlib.crc32(task.encode()) % 10_000 + seed,
                      train_steps=cfg.source_steps, eval_period=cfg.source_steps,
                      checkpoint_period=cfg.source_steps,
                      prompt_save_steps=(cfg.embedding_step,), run_name=run)
          workflow.register_run(self.library, run_dir, embedding_step=cfg.embedding_step,
                                run=run)
        progress.tick(f"{task} {run}")

  # -- stage 3: target embeddings and the similarity matrix -----------------------------
  def embed_targets(self) -> Dict[str, str]:
    from spot_jax.training import trainer
    from spot_jax.transfer import workflow
    cfg = self.cfg
    progress = Progress(2, "target task embeddings", len(self.targets))
    paths = {}
    for i, task in enumerate(self.targets):
      run_dir = os.path.join(cfg.out_dir, "target_embeddings", task)
      paths[task] = os.path.join(run_dir, "prompts", f"step_{cfg.embedding_step}")
      if not os.path.exists(paths[task] + ".json"):
        # A seed no source run uses: the same seed would start from the same sampled rows
        # and make the embeddings look alike before any training.
        workflow.embed_task(model_dir=run_dir, embedding_step=cfg.embedding_step,
                            train=self._train, mixture_or_task_name=task,
                            seed=EMBEDDING_SEED + i, checkpoint_period=cfg.embedding_step)
      progress.tick(task)
    return paths

  def similarity_matrix(self, target_embeddings: Dict[str, str]) -> Dict[str, Any]:
    """Mean similarity over run pairs between every two tasks' embeddings (SPoT §3.2)."""
    from spot_jax.prompts import prompt_files
    from spot_jax.transfer import similarity
    runs = {t: [self.library.load(e) for e in self.library.entries(
        task=t, role=prompt_files.TASK_EMBEDDING)] for t in self.sources}
    runs.update({t: [prompt_files.load_prompt_array(p)] for t, p in target_embeddings.items()})
    tasks = self.sources + self.targets
    matrix = np.zeros((len(tasks), len(tasks)))
    for i, a in enumerate(tasks):
      for j, b in enumerate(tasks):
        stack = np.stack(runs[b])
        matrix[i, j] = np.mean([similarity.score(x, stack, self.cfg.metric) for x in runs[a]])
    return {"tasks": tasks, "matrix": matrix.tolist(), "metric": self.cfg.metric}

  # -- stage 4: target tuning from each init --------------------------------------------
  def _tune_target(self, target: str, init: str, seed: int, factory, tag: str = "") -> float:
    cfg = self.cfg
    run_dir = os.path.join(cfg.out_dir, "targets", target, f"{init}{tag}", f"seed{seed}")
    done = os.path.join(run_dir, "score.json")
    if os.path.exists(done):
      with open(done) as f:
        return json.load(f)["score"]
    out = self._train(model_dir=run_dir, mixture_or_task_name=target, seed=seed,
                      train_steps=cfg.target_steps, prompt_init=factory,
                      eval_period=max(cfg.target_steps // 2, 1),
                      checkpoint_period=cfg.target_steps)
    score = float(out["best"]["metric_value"])
    with open(done, "w") as f:
      json.dump({"score": score, "best": out["best"]}, f)
    return score

  def tune_targets(self, target_embeddings: Dict[str, str], sim: Dict[str, Any]):
    from spot_jax.prompts import initializers, prompt_files
    from spot_jax.transfer import retrieval
    from spot_jax.transfer.prompt_library import ModelSignature
    cfg = self.cfg
    n_runs = sum(len(cfg.target_seeds) * 4 + len(self.sources) for _ in self.targets)
    progress = Progress(4, "target prompt tuning", n_runs)
    for target in self.targets:
      emb, meta = prompt_files.load_prompt(target_embeddings[target])
      query = ModelSignature.of(meta)
      ranked = retrieval.rank_library(emb, self.library, query=query, metric=cfg.metric,
                                      exclude_tasks=[target], step=meta.step)
      ranked = [r for r in ranked if r.task in self.sources]
      transfer = {s: retrieval.transfer_entry(self.library, r, query=query)
                  for r in ranked for s in [r.task]}
      sims = {r.task: r.score for r in ranked}
      # alpha_r = sim_r / sum(sims) needs positive similarities; per-token cosines near 0
      # can dip below, so the average takes the positive ones among the top k; with none,
      # it is the top-1 prompt (alpha = 1).
      k = sum(r.score > 0 for r in ranked[:cfg.top_k])
      if k < min(cfg.top_k, len(ranked)):
        log.info("%s: top-%d weighted average over the %d positive similarities", target,
                 cfg.top_k, k)
      if k:
        avg = retrieval.top_k_weighted_average(ranked, k, self.library, query=query)
        avg_prompt, avg_sources = avg.prompt, [list(s) for s in avg.sources]
      else:
        top = transfer[ranked[0].task]
        avg_prompt, avg_sources = self.library.load(top), [[ranked[0].task, 1.0, top.id]]
      avg_path = prompt_files.save_prompt(
          os.path.join(cfg.out_dir, "targets", target, "weighted_average_init"), avg_prompt,
          meta.replace(role=None, step=0, created="", array_sha256="",
                       extra={"sources": avg_sources}))
      # Oracle and scatter: the target tuned from every source's transfer prompt (seed 0).
      seed0 = cfg.target_seeds[0]
      per_source = {}
      for source in self.sources:
        per_source[source] = self._tune_target(
            target, "from", seed0, initializers.prompt_file(self.library.path(transfer[source])),
            tag=f"_{source}")
        progress.tick(f"{target} from {source}")
      best_source = max(per_source, key=per_source.get)
      top1 = ranked[0].task
      for seed in cfg.target_seeds:
        scores = {
            "random_uniform": self._tune_target(target, "random_uniform", seed,
                                                 initializers.random_uniform()),
            "spot_top_k_weighted_average": self._tune_target(
                target, "weighted_average", seed, initializers.prompt_file(avg_path)),
        }
        labels = self.suite.LABELS.get(target)
        if labels:
          scores["class_labels"] = self._tune_target(target, "class_labels", seed,
                                                     initializers.class_labels(labels))
        for name, source in (("spot_top1", top1), ("oracle", best_source)):
          scores[name] = per_source[source] if seed == seed0 else self._tune_target(
              target, "from", seed, initializers.prompt_file(self.library.path(
                  transfer[source])), tag=f"_{source}")
        for name in INIT_METHODS:
          if name in scores:
            self.results.append({"target": target, "init": name, "seed": seed,
                                 "step": cfg.target_steps, "score": scores[name]})
        for _ in range(4):
          progress.tick(f"{target} seed {seed}")
      baseline = float(np.mean([r["score"] for r in self.results
                                if r["target"] == target and r["init"] == "random_uniform"]))
      for source, score in per_source.items():
        self.pairs.append({"source": source, "target": target, "similarity": sims[source],
                           "score": score, "baseline": baseline})
      log.info("%s: ranking %s; top-1 %s, oracle %s", target,
               [(r.task, round(r.score, 3)) for r in ranked], top1, best_source)

  # -- stage 5: the report --------------------------------------------------------------
  def report(self, sim: Dict[str, Any]) -> Dict[str, Any]:
    from spot_jax.transfer import study_report
    cfg = self.cfg
    Progress(5, "report", 1)
    families = dict(self.suite.FAMILY_OF)
    table = study_report.results_table(self.results, baseline="random_uniform")
    study_report.write_results(table, cfg.out_dir)
    study_report.plot_similarity_heatmap(sim, families,
                                         os.path.join(cfg.out_dir, "similarity_heatmap.png"))
    stats = study_report.plot_similarity_vs_transfer(
        self.pairs, os.path.join(cfg.out_dir, "similarity_vs_transfer.png"), families=families)
    with open(os.path.join(cfg.out_dir, "similarity.json"), "w") as f:
      json.dump(sim, f, indent=2)
    with open(os.path.join(cfg.out_dir, "transfer_pairs.json"), "w") as f:
      json.dump(self.pairs, f, indent=2)
    return {"table": table, "correlation": stats}

  def run(self) -> Dict[str, Any]:
    start = time.time()
    with open(os.path.join(self.cfg.out_dir, CONFIG_FILE), "w") as f:
      json.dump(self.cfg.to_json(), f, indent=2)
    self.train_sources()
    embeddings = self.embed_targets()
    Progress(3, "similarity matrix", 1)
    sim = self.similarity_matrix(embeddings)
    self.tune_targets(embeddings, sim)
    report = self.report(sim)
    summary = {"out_dir": self.cfg.out_dir, "wall_seconds": round(time.time() - start, 1),
               "correlation": report["correlation"],
               "library_ok": self.library.verify().ok,
               "data": [self.data[key] for key in sorted(self.data)]}
    with open(os.path.join(self.cfg.out_dir, "summary.json"), "w") as f:
      json.dump(summary, f, indent=2, default=str)
    return summary


def main(argv: Optional[Sequence[str]] = None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  defaults = PipelineConfig()
  parser.add_argument("--out", default=defaults.out_dir)
  for field in ("source_steps", "embedding_step", "target_steps", "prompt_length",
                "batch_size", "top_k"):
    parser.add_argument(f"--{field}", type=int, default=getattr(defaults, field))
  parser.add_argument("--num_eval_examples", type=int, default=defaults.num_eval_examples)
  parser.add_argument("--source_seeds", type=int, nargs="+", default=list(defaults.source_seeds))
  parser.add_argument("--target_seeds", type=int, nargs="+", default=list(defaults.target_seeds))
  parser.add_argument("--sources", nargs="+", default=None)
  parser.add_argument("--targets", nargs="+", default=None)
  parser.add_argument("--metric", default=defaults.metric)
  parser.add_argument("--backbone_dir", default=None,
                      help="backbone.msgpack + config.json (default: the shipped backbone)")
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parser.parse_args(shlex.split(os.environ.get(FLAGS_ENV, "")) + argv)
  logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
  for noisy in ("absl", "jax", "orbax", "tensorflow", "seqio", "spot_jax.train"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
  cfg = PipelineConfig(out_dir=args.out, source_seeds=tuple(args.source_seeds),
                       target_seeds=tuple(args.target_seeds), source_steps=args.source_steps,
                       embedding_step=args.embedding_step, target_steps=args.target_steps,
                       prompt_length=args.prompt_length, batch_size=args.batch_size,
                       top_k=args.top_k, num_eval_examples=args.num_eval_examples,
                       metric=args.metric, sources=args.sources, targets=args.targets,
                       backbone_dir=args.backbone_dir)
  problems = cfg.problems()
  if problems:  # before any run: a usage error naming each flag, not a traceback later
    parser.error("\n  ".join(["settings that cannot run:"] + problems))
  try:
    check_resumable(cfg)
  except ValueError as e:
    parser.error(str(e))
  print(json.dumps(Study(cfg).run(), default=str))


if __name__ == "__main__":
  main()
