r"""Lists every registered task and mixture: source, split sizes, an example, metrics.

  python tools/show_tasks.py                       # sizes/examples where data is prepared
  python tools/show_tasks.py --mock                # offline: random mock rows, no sizes
  python tools/show_tasks.py --filter 'glue_(cola|rte)' --tfds_data_dir ~/tensorflow_datasets

Examples are shown as formatted text (before tokenization), so no vocabulary is read.
"""
import argparse
import contextlib
import os
import re
import sys
from typing import List, Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from absl import logging  # pylint: disable=g-import-not-at-top
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from spot_jax.tasks import local_files
from spot_jax.tasks import names
from spot_jax.tasks import registration

SU_ET_AL = {names.IMDB: "IMDB", names.MOVIE_RATIONALES: "movie rationales",
            names.NQ_OPEN: "NQ-Open", names.SNLI: "SNLI", names.LAPTOP: "laptop",
            names.RESTAURANT: "restaurant", names.TWEET_EVAL: "TweetEval sentiment",
            names.ETHICS_DEONTOLOGY: "ETHICS deontology",
            names.ETHICS_JUSTICE: "ETHICS justice"}
TAGS = {**{t: f"SPoT Table 1 family ({m[len('spot_'):-len('_mix')]})"
           for m, members in names.FAMILY_MIXTURES.items() if m != "spot_all_mix"
           for t in members},
        **{v: f"Su et al. ({k})" for v, k in SU_ET_AL.items()},
        **{v: f"SPoT source ({k})" for k, v in names.SOURCE_TASKS.items()},
        **{v: f"SPoT target ({k})" for k, v in names.TARGET_TASKS.items()}}


def describe_source(task: seqio.Task) -> str:
  source = task.source
  if isinstance(source, seqio.TfdsDataSource):
    mapping = getattr(source, "_splits", None)
    extra = ""
    if isinstance(mapping, dict) and any(k != v for k, v in mapping.items()):
      extra = " splits " + ", ".join(f"{k}={v}" for k, v in mapping.items() if k != v)
    return f"TFDS {source.tfds_dataset.name}{extra}"
  if isinstance(source, local_files.TsvDataSource):
    return "local TSV <dir>/{train,validation,test}.tsv"
  return type(source).__name__


def known_splits(task: seqio.Task) -> List[str]:
  """The task's splits; from the code's split mapping when the data is not prepared."""
  try:
    return list(task.splits)
  except ValueError:
    mapping = getattr(task.source, "_splits", None)
    return list(mapping) if isinstance(mapping, dict) else ["train", "validation"]


def split_sizes(task: seqio.Task) -> Optional[str]:
  """"train=..., validation=..." or None when the data is not prepared."""
  sizes = []
  for split in known_splits(task):
    try:
      n = task.num_input_examples(split)
    except Exception:  # pylint: disable=broad-except
      return None
    sizes.append(f"{split}={n}")
  return ", ".join(sizes)


def formatted_example(task: seqio.Task, split: str) -> Optional[dict]:
  """Source -> the task's text preprocessors, stopping before tokenization."""
  try:
    ds = task.source.get_dataset(split=split, shuffle=False)
    with seqio.utils.map_seed_manager(0):
      for preprocessor in task.preprocessors:
        if preprocessor is seqio.preprocessors.tokenize:
          break
        ds = preprocessor(ds)
    for ex in ds.take(1).as_numpy_iterator():
      return ex
  except Exception as e:  # pylint: disable=broad-except
    return {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"}
  return None


def _text(value, limit: int = 160) -> str:
  if isinstance(value, bytes):
    value = value.decode("utf-8", errors="replace")
  text = str(value).replace("\n", "\\n")
  return text if len(text) <= limit else text[:limit] + "..."


def show_task(task: seqio.Task, show_example: bool, mock: bool, out) -> None:
  base = task.name
  tag = TAGS.get(base, "GLUE/SuperGLUE" if base in names.CORE_TASKS else "extra")
  print(f"{task.name}  [{tag}]", file=out)
  print(f"  source:  {describe_source(task)}", file=out)
  sizes = split_sizes(task)
  print(f"  sizes:   {sizes or 'unknown (data not prepared)'}", file=out)
  metric_names = [getattr(f, "__name__", repr(f)) for f in task.metric_fns]
  print(f"  metrics: {', '.join(metric_names) or '(none: unsupervised)'}", file=out)
  if show_example and sizes is None and not mock:
    # seqio would try to download and prepare the data: never from a listing tool.
    print("  example: (data not prepared; --mock shows a random one)", file=out)
  elif show_example:
    splits = known_splits(task)
    split = "validation" if "validation" in splits else splits[0]
    ex = formatted_example(task, split)
    if ex is None:
      why = " (random mock rows fail this task's row checks)" if mock else ""
      print(f"  example: (none: every row was dropped{why})", file=out)
    elif "error" in ex:
      print(f"  example: unavailable: {ex['error']}", file=out)
    else:
      inputs = ex.get("inputs", "(a random-length prefix of the tokenized text; the "
                                "rest is the target)")
      print(f"  inputs:  {_text(inputs)}", file=out)
      print(f"  targets: {_text(ex.get('targets', ''))}", file=out)


def show_mixture(mixture: seqio.Mixture, out) -> None:
  print(f"{mixture.name}  [mixture, rate = min(n_train, 2^19)]", file=out)
  for task in mixture.tasks:
    try:
      rate = f"{mixture.get_rate(task):.0f}"
    except Exception as e:  # pylint: disable=broad-except
      rate = f"unknown ({type(e).__name__})"
    print(f"  {task.name}: {rate}", file=out)


def main(argv: Optional[List[str]] = None, out=sys.stdout) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--filter", default="", help="regex on task/mixture names")
  parser.add_argument("--tfds_data_dir", default=None)
  parser.add_argument("--cr_dir", default=None)
  parser.add_argument("--cxc_dir", default=None)
  parser.add_argument("--local_dir", action="append", default=[], metavar="TASK=DIR",
                      help="the directory of another local-file task (repeatable)")
  parser.add_argument("--no_examples", action="store_true")
  parser.add_argument("--mock", action="store_true",
                      help="random TFDS rows (tfds.testing.mock_data): runs offline; "
                      "with --tfds_data_dir, split sizes come from its metadata")
  args = parser.parse_args(argv)

  registration.register_all(tfds_data_dir=args.tfds_data_dir, cr_dir=args.cr_dir,
                            cxc_dir=args.cxc_dir,
                            local_dirs=dict(d.split("=", 1) for d in args.local_dir))
  pattern = re.compile(args.filter)
  tasks = [n for n in names.ALL_TASKS if pattern.search(n)]
  mixtures = [n for n in names.ALL_MIXTURES if pattern.search(n)]
  mock = (tfds.testing.mock_data(num_examples=1, data_dir=args.tfds_data_dir)
          if args.mock else contextlib.nullcontext())
  with mock:
    for name in tasks:
      show_task(seqio.get_mixture_or_task(name), not args.no_examples, args.mock, out)
    for name in mixtures:
      show_mixture(seqio.get_mixture_or_task(name), out)
  if mixtures and not args.tfds_data_dir and not args.mock:
    print("\n(Mixture rates need prepared TFDS data: see --tfds_data_dir.)", file=out)
  core = sum(1 for n in tasks if n in names.CORE_TASKS)
  print(f"\n{len(tasks)} tasks ({core} of the 26 SPoT + 16 GLUE/SuperGLUE tasks, "
        f"overlaps counted once; {len(tasks) - core} extras), {len(mixtures)} mixtures.",
        file=out)
  return 0


if __name__ == "__main__":
  logging.set_verbosity(logging.ERROR)
  tf.get_logger().setLevel("ERROR")
  sys.exit(main())
