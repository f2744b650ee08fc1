"""Command line over the prompt library and SPoT retrieval.

  python -m spot_jax.cli.library add LIB PROMPT... [--role transfer]
  python -m spot_jax.cli.library list LIB [--task T] [--role R] [--json]
  python -m spot_jax.cli.library remove LIB ID...
  python -m spot_jax.cli.library verify LIB [--clean]
  python -m spot_jax.cli.library rank LIB TARGET [--metric M] [--aggregate A] [--k K]
  python -m spot_jax.cli.library weighted-average LIB TARGET --k K --output PATH
  python -m spot_jax.cli.library mixture LIB TARGET --k K
  python -m spot_jax.cli.library oracle-plan LIB TARGET

TARGET is the target task's embedding: a prompt file (with its JSON sidecar)
written after the short target run; its metadata names the model it came from.
"""
import argparse
import json
import sys
from typing import Optional, Sequence

from spot_jax import paths
from spot_jax.cli import convert
from spot_jax.prompts import prompt_files
from spot_jax.transfer import indicators
from spot_jax.transfer import prompt_library
from spot_jax.transfer import retrieval
from spot_jax.transfer import similarity




def _entry_row(entry: prompt_library.LibraryEntry) -> str:
  m = entry.metadata
  metric = f"{m.metric_name}={m.metric_value:.4g}" if m.metric_value is not None else "-"
  return (f"{entry.id}  {m.task:<24} {entry.run or '-':<8} {m.role:<14} step={m.step:<8} "
          f"{m.model_name} [{m.prompt_length}x{m.d_model}]  {metric}")


def _cmd_add(args) -> int:
  library = prompt_library.PromptLibrary(args.library, create=True)
  overrides = {k: v for k, v in (("task", args.task), ("run", args.run)) if v is not None}
  for path in args.prompts:
    entry = library.add_file(path, role=args.role, **overrides)
    print(f"added {_entry_row(entry)}")
  return 0


def _cmd_list(args) -> int:
  library = prompt_library.PromptLibrary(args.library)
  entries = library.entries(task=args.task, role=args.role, model_name=args.model_name)
  for entry in entries:
    print(entry.to_json() if args.json else _entry_row(entry))
  if not args.json:
    print(f"{len(entries)} entries in {library.root}", file=sys.stderr)
  return 0


def _cmd_remove(args) -> int:
  library = prompt_library.PromptLibrary(args.library)
  for entry in library.remove(args.ids):
    print(f"removed {_entry_row(entry)}")
  return 0


def _cmd_verify(args) -> int:
  library = prompt_library.PromptLibrary(args.library)
  report = library.verify(clean=args.clean)
  for problem in report.problems:
    print(f"problem: {problem}")
  for orphan in report.orphans:
    state = "removed" if orphan in report.removed else "orphan (remove with --clean)"
    print(f"{state}: {orphan}")
  verdict = "ok" if report.ok else "FAILED"
  print(f"{verdict}: {report.entries} entries, {len(report.problems)} problems, "
        f"{len(report.orphans)} orphans")
  return 0 if report.ok else 1


def _ranking(args):
  """(library, target metadata, query signature, ranked sources) for the retrieval commands."""
  library = prompt_library.PromptLibrary(args.library)
  target, meta = prompt_files.load_prompt(args.target)
  query = prompt_library.ModelSignature.of(meta)
  step = args.step
  if step is None:
    steps = {e.step for e in library.entries(role=prompt_files.TASK_EMBEDDING)}
    if len(steps) > 1 and meta.step in steps:
      step = meta.step  # SPoT compares embeddings taken at the same step.
    elif steps and meta.step not in steps:
      print(f"note: the target embedding is from step {meta.step}, the library's from "
            f"{sorted(steps)}", file=sys.stderr)
  exclude = list(args.exclude_task or [])
  if not args.include_target_task:
    exclude.append(meta.task)
  ranked = retrieval.rank_library(target, library, query=query, metric=_metric(args),
                                  aggregate=args.aggregate, exclude_tasks=exclude, step=step,
                                  model_name=args.model_name)
  return library, meta, query, ranked


def _metric(args):
  """A registered indicator's metric (`transfer/indicators.py`); a model-bound one (ON,
  `--metric on`) on the frozen model the flags load."""
  indicator = indicators.get(args.metric)
  if not indicator.needs_model:
    return indicators.metric(args.metric)
  if not args.checkpoint or not (args.size or args.config):
    raise ValueError(f"--metric {args.metric}: indicator {indicator.name!r} runs the frozen "
                     "model: give --checkpoint and --size (or --config)")
  from spot_jax.model import checkpoints
  config = convert.model_config(args)
  params = checkpoints.load_params(paths.absolute(args.checkpoint), config)
  return indicators.metric(args.metric, indicators.FrozenModel(config, params,
                                                               args.probe_token))


def _cmd_rank(args) -> int:
  library, meta, query, ranked = _ranking(args)
  shown = ranked if args.k is None else retrieval.top_k(ranked, args.k)
  for i, source in enumerate(shown, start=1):
    runs = ", ".join(f"{run or '-'}:{s:.4f}" for run, s in source.run_scores)
    if args.json:
      print(json.dumps({"rank": i, "task": source.task, "score": source.score,
                        "runs": [list(r) for r in source.run_scores]}))
    else:
      print(f"{i:>3}. {source.task:<24} {source.score:.6f}  ({args.aggregate} of {runs})")
  if args.k is not None:
    print(f"best of top-{args.k} for {meta.task!r}: target runs to launch from", file=sys.stderr)
    for plan in retrieval.best_of_top_k(ranked, args.k, library, query=query):
      print(f"  {plan.source_task}: {plan.prompt_path}", file=sys.stderr)
  return 0


def _cmd_weighted_average(args) -> int:
  library, meta, query, ranked = _ranking(args)
  init = retrieval.top_k_weighted_average(ranked, args.k, library, query=query)
  metadata = prompt_files.PromptMetadata(
      task=meta.task, model_name=query.model_name, vocabulary_hash=query.vocabulary_hash,
      step=0, extra={"init": f"top_{args.k}_weighted_average", "metric": args.metric,
                     "sources": [list(s) for s in init.sources]})
  path = prompt_files.save_prompt(args.output, init.prompt, metadata)
  for task, alpha, entry_id in init.sources:
    print(f"{task:<24} alpha={alpha:.6f}  [{entry_id}]")
  print(f"wrote {path}")
  return 0


def _cmd_mixture(args) -> int:
  _, meta, _, ranked = _ranking(args)
  spec = retrieval.multitask_mixture_spec(ranked, args.k, meta.task)
  print(json.dumps({"name": spec.name, "source_tasks": list(spec.source_tasks),
                    "target_task": spec.target_task, "tasks": list(spec.tasks),
                    "examples_rate_limit": spec.examples_rate_limit}))
  return 0


def _cmd_oracle_plan(args) -> int:
  library = prompt_library.PromptLibrary(args.library)
  _, meta = prompt_files.load_prompt(args.target)
  query = prompt_library.ModelSignature.of(meta)
  for plan in retrieval.oracle_plans(library, query=query, exclude_tasks=[meta.task]):
    print(f"{plan.source_task:<24} {plan.prompt_path}")
  return 0


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m spot_jax.cli.library",
                                   description=__doc__.split("\n\n")[0])
  sub = parser.add_subparsers(dest="command", required=True)

  p = sub.add_parser("add", help="copy prompt files into the library (created if missing)")
  p.add_argument("library")
  p.add_argument("prompts", nargs="+", help="prompt files (.npy with a .json sidecar)")
  p.add_argument("--role", choices=prompt_files.ROLES, help="overrides the file's role")
  p.add_argument("--task", help="overrides the file's task")
  p.add_argument("--run", help="overrides the file's run name")
  p.set_defaults(func=_cmd_add)

  p = sub.add_parser("list", help="print the manifest")
  p.add_argument("library")
  p.add_argument("--task")
  p.add_argument("--role", choices=prompt_files.ROLES)
  p.add_argument("--model-name")
  p.add_argument("--json", action="store_true", help="one manifest line per entry")
  p.set_defaults(func=_cmd_list)

  p = sub.add_parser("remove", help="remove entries by id")
  p.add_argument("library")
  p.add_argument("ids", nargs="+")
  p.set_defaults(func=_cmd_remove)

  p = sub.add_parser("verify", help="check every entry; list orphans left by crashed writes")
  p.add_argument("library")
  p.add_argument("--clean", action="store_true", help="delete orphans")
  p.set_defaults(func=_cmd_verify)

  def ranking_args(p, *, k_required: bool):
    p.add_argument("library")
    p.add_argument("target", help="the target's task-embedding prompt file")
    p.add_argument("--metric", default=similarity.DEFAULT_METRIC,
                   choices=sorted(a for n in indicators.names()
                                  for a in (n, *indicators.get(n).aliases)),
                   help="a registered indicator (transfer/indicators.py); on (activated_"
                        "neurons): Su et al.'s activated-neuron overlap on the frozen model "
                        "(needs --checkpoint and --size or --config)")
    p.add_argument("--checkpoint", help="the frozen model, for --metric on")
    convert.model_args(p, required=False)
    p.add_argument("--probe-token", type=int,
                   help="for --metric on: the probe token id (default T5's <extra_id_0>)")
    p.add_argument("--aggregate", default="mean", choices=retrieval.AGGREGATES,
                   help="how runs of one source task combine")
    p.add_argument("--k", type=int, required=k_required)
    p.add_argument("--step", type=int, help="compare with library embeddings of this step")
    p.add_argument("--model-name", help="only library entries of this model")
    p.add_argument("--exclude-task", action="append", help="leave a source task out")
    p.add_argument("--include-target-task", action="store_true",
                   help="keep the target's own task among the sources")

  p = sub.add_parser("rank", help="rank source tasks for a target embedding")
  ranking_args(p, k_required=False)
  p.add_argument("--json", action="store_true")
  p.set_defaults(func=_cmd_rank)

  p = sub.add_parser("weighted-average", help="write the top-k weighted-average init prompt")
  ranking_args(p, k_required=True)
  p.add_argument("--output", required=True, help="prompt file to write (dir/name)")
  p.set_defaults(func=_cmd_weighted_average)

  p = sub.add_parser("mixture", help="print the top-k multi-task mixture's tasks as JSON")
  ranking_args(p, k_required=True)
  p.set_defaults(func=_cmd_mixture)

  p = sub.add_parser("oracle-plan", help="list every transfer prompt the oracle would try")
  p.add_argument("library")
  p.add_argument("target")
  p.set_defaults(func=_cmd_oracle_plan)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  try:
    return args.func(args)
  except (prompt_library.LibraryError, prompt_library.ModelMismatchError,
          prompt_files.PromptFileError, ValueError, KeyError, OSError) as e:
    message = e.args[0] if isinstance(e, KeyError) and e.args else e
    print(f"error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
