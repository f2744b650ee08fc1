r"""The main job: SPoT's transfer study (`spot_jax/transfer/study.py`), from gin files.

With no `--gin_file`, the embedded default (`gin/study/embedded.gin`): the shipped tiny
frozen backbone and the bundled synthetic suite, offline, on a laptop:

  python -m spot_jax.pipeline --out spot_jax_demo

On real registered tasks, e.g. GLUE sources and SuperGLUE targets at Base:

  python -m spot_jax.pipeline --gin_file=study/glue_base.gin --out /runs/study

It runs source prompt tuning (every source x seed, into a prompt library), the target task
embeddings, the similarity matrix, the zero-shot matrix and transfer indicators, target
tuning from every init for every target seed, and writes `report.md` (intervals, paired
differences, conclusions), `results.md/.json`, `study.json`, the heatmap and the
similarity-vs-transfer plot into the output directory, with TensorBoard logs of every run.

Flags: t5x-style `--gin_file`, `--gin.NAME=value`, `--gin_search_paths`, plus short forms
of the study's macros (`--source_steps 50` is `--gin.SOURCE_STEPS=50`; `--out DIR` is
`--gin.STUDY_DIR=DIR`). Flags may also come from the environment variable
SPOT_JAX_PIPELINE_FLAGS (read before the command line, whose flags win). Every setting is
checked before the first run; rerunning on an existing output directory resumes it, and
only with the settings it was started with.
"""
import json
import os
import shlex
import sys
from typing import Optional, Sequence

FLAGS_ENV = "SPOT_JAX_PIPELINE_FLAGS"
DEFAULT_GIN = "study/embedded.gin"
# short flag -> (macro, argparse type, nargs)
SHORT_FLAGS = {
    "source_steps": ("SOURCE_STEPS", int, None),
    "embedding_step": ("EMBEDDING_STEP", int, None),
    "target_steps": ("TARGET_STEPS", int, None),
    "mixture_steps": ("MIXTURE_STEPS", int, None),
    "prompt_length": ("PROMPT_LENGTH", int, None),
    "source_batch_size": ("SOURCE_BATCH_SIZE", int, None),
    "target_batch_size": ("TARGET_BATCH_SIZE", int, None),
    "top_k": ("TOP_K", int, None),
    "num_eval_examples": ("NUM_EVAL_EXAMPLES", int, None),
    "source_seeds": ("SOURCE_SEEDS", int, "+"),
    "target_seeds": ("TARGET_SEEDS", int, "+"),
    "sources": ("SOURCES", str, "+"),
    "targets": ("TARGETS", str, "+"),
    "inits": ("INITS", str, "+"),
    "metric": ("SIMILARITY_METRIC", str, None),
    "target_eval_points": ("TARGET_EVAL_POINTS", int, None),
    "target_score": ("TARGET_SCORE", str, None),
}


def _parser():
  from spot_jax.cli import gin_flags
  parser = gin_flags.flag_parser(__doc__)
  parser.prog = "python -m spot_jax.pipeline"
  parser.add_argument("--out", help="the output directory (--gin.STUDY_DIR)")
  for flag, (macro, kind, nargs) in SHORT_FLAGS.items():
    parser.add_argument(f"--{flag}", type=kind, nargs=nargs, help=f"--gin.{macro}")
  return parser


def main(argv: Optional[Sequence[str]] = None) -> dict:
  # Before TensorFlow and XLA load: their C++ info and warning lines are not the study's.
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  from spot_jax.cli import startup
  with startup.frozen_imports():  # the libraries, with the garbage collector paused
    import logging
    import gin
    from spot_jax import paths, settings
    from spot_jax.cli import gin_flags
    from spot_jax.training import data
    from spot_jax.transfer import study
    configurables = gin_flags.register_configurables()  # before gin parses their names
  argv = shlex.split(os.environ.get(FLAGS_ENV, "")) + list(
      sys.argv[1:] if argv is None else argv)
  parser = _parser()
  try:
    args = parser.parse_args(gin_flags.rewrite_gin_args(argv))
  except ValueError as e:
    parser.error(str(e))
  bindings = list(args.gin_bindings)
  if args.out is not None:
    bindings.append(f"STUDY_DIR = {paths.absolute(args.out)!r}")
  for flag, (macro, _, nargs) in SHORT_FLAGS.items():
    value = getattr(args, flag)
    if value is not None:
      bindings.append(f"{macro} = {list(value) if nargs else value!r}")
  gin_flags.setup_logging()
  # The console shows the study's progress and results: seqio's and TensorFlow's per-run
  # notices (uncached sources, padding, evaluator loggers) repeat for each of its runs.
  logging.getLogger("absl").setLevel(logging.ERROR)
  gin.clear_config()  # a command's own config, also when called twice in one process
  search = [p.strip() for p in args.gin_search_paths.split(",") if p.strip()]
  gin_flags.parse_gin(args.gin_file or [DEFAULT_GIN], bindings, search, finalize=False)
  missing = gin_flags.missing_required_macros()
  if missing:
    parser.error("required gin macros not set: " + ", ".join(missing) + "; set each with "
                 + " ".join(f"--gin.{m}=..." for m in missing))
  unused = gin_flags.unused_macro_bindings(bindings)
  if unused:
    parser.error("\n  ".join(unused))
  gin.finalize()
  with startup.frozen_imports():  # the task modules
    configurables["prepare_tasks"]()
  import seqio
  cfg = configurables["study"]()
  problems = cfg.problems(sorted(set(seqio.TaskRegistry.names())
                                 | set(seqio.MixtureRegistry.names())))
  vocabulary = gin_flags.query_macro("VOCABULARY_FILE")
  if isinstance(vocabulary, str) and not problems:
    for task in (*cfg.sources, *cfg.targets):
      try:
        data.check_task_vocabulary(task, vocabulary)
      except ValueError as e:
        problems.append(f"--sources/--targets {task!r}: {e}")
  if problems:  # before any run: a usage error naming each flag, not a traceback later
    parser.error("\n  ".join(["settings that cannot run:"] + problems))
  from spot_jax import run_lock
  from spot_jax.training import preemption
  try:
    with run_lock.hold(cfg.out_dir, "--out"):
      try:
        study.check_resumable(cfg)
        gin_flags.check_resumed_config(cfg.out_dir, "STUDY_DIR", "study")
      except ValueError as e:
        parser.error(str(e))
      gin_flags.write_config(cfg.out_dir, "config.gin")
      summary = study.Study(cfg, configurables["train"],
                            configurables["train_prompts"] if cfg.pack else None).run()
      gin_flags.write_config(cfg.out_dir, "operative_config.gin", operative=True)
  except settings.SettingError as e:
    sys.exit(f"error: {gin_flags.setting_flag(e)}")
  except run_lock.DirectoryInUse as e:
    sys.exit(f"error: {e}")
  except preemption.Preempted as e:
    logging.getLogger("spot_jax").warning("%s (the study resumes with it)", e)
    sys.exit(preemption.EXIT_CODE)
  print(json.dumps(summary, default=str), flush=True)
  return summary


if __name__ == "__main__":
  main()
