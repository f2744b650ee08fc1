"""The gin edge of the command lines: t5x.train's flags, the shipped gin files on the search
path, the library's configurables registered under short names, and the config written
into the run directory. The library itself never imports gin."""
import argparse
import ast
import difflib
import importlib.resources
import logging
import os
import re
import sys
from typing import Callable, Dict, List, Optional, Sequence

import gin

from spot_jax import paths, run_lock, settings
from spot_jax.cli import startup
from spot_jax.training import preemption

GIN_PACKAGE = "spot_jax.gin"
_REQUIRED_RE = re.compile(r"^([A-Za-z_][\w.]*)\s*=\s*%gin\.REQUIRED\s*$", re.M)
_MACRO_BINDING_RE = re.compile(r"^\s*([A-Za-z_]\w*)\s*=")
_MACRO_REFERENCE_RE = re.compile(r"%([A-Za-z_]\w*)")
_MACRO_DEFINITION_RE = re.compile(r"^([A-Za-z_]\w*)\s*=", re.M)
_CONFIGURABLES: Dict[str, Callable] = {}
_SEARCH_PATHS = set()


def gin_dir() -> str:
  """The folder of the shipped gin files (the installed `spot_jax.gin` package)."""
  return str(importlib.resources.files(GIN_PACKAGE))


def register_configurables() -> Dict[str, Callable]:
  """Registers the library functions gin files name (the entry points of spot_jax's
  commands and the components); idempotent. Returns name -> wrapper."""
  if "train" in _CONFIGURABLES:
    return _CONFIGURABLES
  from spot_jax import embedded
  from spot_jax.training import data, inference, multi_prompt, trainer
  from spot_jax.transfer import study, study_config
  register_components()
  table = [
      (trainer.train, "train", "spot_jax"),
      (multi_prompt.train_prompts, "train_prompts", "spot_jax"),
      (inference.evaluate, "evaluate", "spot_jax"),
      (inference.infer, "infer", "spot_jax"),
      (data.prepare_tasks, "prepare_tasks", "spot_jax"),
      (study.run_spot, "run_spot", "spot_jax"),
      (study_config.StudyConfig, "study", "spot_jax"),
      (embedded.backbone_config, "embedded_backbone_config", "spot_jax"),
      (embedded.backbone_path, "embedded_backbone_path", "spot_jax"),
      (embedded.probe_token_id, "embedded_probe_token", "spot_jax"),
  ]
  for fn, name, module in table:
    _CONFIGURABLES[name] = gin.external_configurable(fn, name=name, module=module)
  return _CONFIGURABLES


def choose_prompt_init(scheme: Optional[Callable] = None) -> Optional[Callable]:
  """The prompt init a prompts/*.gin layer picked (`prompts.choice.scheme`; None: sampled
  vocabulary); both trainers' runs/ layers read it, so one layer serves both."""
  return scheme


def register_components() -> Dict[str, Callable]:
  """Registers the configurables the shared gin layers (models/, prompts/, optim) name,
  not the entry points: what `t5x.train` needs beside its own `train`; idempotent."""
  if "get_config" in _CONFIGURABLES:
    return _CONFIGURABLES
  from spot_jax.model import config as model_config
  from spot_jax.prompts import initializers, projector
  from spot_jax.training import optimizer
  from spot_jax.transfer import workflow
  table = [
      (model_config.get_config, "get_config", "model"),
      (choose_prompt_init, "choice", "prompts"),
      (optimizer.adafactor, "adafactor", "optim"),
      (optimizer.spot_prompt_optimizer, "spot_prompt_optimizer", "optim"),
      (optimizer.model_tuning_optimizer, "model_tuning_optimizer", "optim"),
      (initializers.sampled_vocab, "sampled_vocab", "prompts"),
      (initializers.random_uniform, "random_uniform", "prompts"),
      (initializers.class_labels, "class_labels", "prompts"),
      (initializers.text, "text", "prompts"),
      (initializers.prompt_file, "prompt_file", "prompts"),
      (workflow.library_prompt, "library_prompt", "prompts"),
      (projector.make_projector, "projector", "prompts"),
      (optimizer.projector_optimizer, "projector_optimizer", "optim"),
  ]
  for fn, name, module in table:
    _CONFIGURABLES[name] = gin.external_configurable(fn, name=name, module=module)
  return _CONFIGURABLES


def binding_value(value: str) -> str:
  """A `--gin.NAME=value` value as gin text: literals and references as given, anything else
  (a bare path or task name) as a quoted string."""
  text = value.strip()
  if not text:
    return "''"
  try:
    ast.literal_eval(text)
    return text
  except (ValueError, SyntaxError, MemoryError, RecursionError):
    pass
  if text[0] in "@%[({'\"" or text.startswith("gin."):
    return text  # a reference or structure: gin reports any error in it
  return repr(text)


def rewrite_gin_args(argv: Sequence[str]) -> List[str]:
  """`--gin.NAME=value` (T5X style) -> `--gin_bindings=NAME = value`."""
  out = []
  for arg in argv:
    if arg.startswith("--gin."):
      name, eq, value = arg[len("--gin."):].partition("=")
      if not eq or not name:
        raise ValueError(f"{arg!r}: write --gin.NAME=value")
      arg = f"--gin_bindings={name} = {binding_value(value)}"
    out.append(arg)
  return out


def flag_parser(description: str) -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(description=description,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--gin_file", action="append", default=[],
                      help="a gin file (repeatable, parsed in order: models, prompts, runs)")
  parser.add_argument("--gin_bindings", action="append", default=[],
                      help="a gin binding 'NAME = value' (repeatable); or --gin.NAME=value")
  parser.add_argument("--gin_search_paths", default="",
                      help="comma-separated folders searched for gin files and includes")
  return parser


def resolve_gin_file(path: str, search_paths: Sequence[str] = ()) -> str:
  """A path as given when it exists; else under a search path; a `gin/...` path relative to
  the repository root falls back to the installed copy."""
  if os.path.isabs(path) or os.path.exists(path):
    return path
  for folder in search_paths:
    if os.path.exists(os.path.join(folder, path)):
      return os.path.join(folder, path)
  if path.startswith("gin/") and os.path.exists(os.path.join(gin_dir(), path[4:])):
    return os.path.join(gin_dir(), path[4:])
  return path  # gin searches its own paths and names what it tried


def parse_gin(gin_files: Sequence[str], bindings: Sequence[str] = (),
              search_paths: Sequence[str] = (), *, finalize: bool = True,
              skip_unknown=False) -> None:
  """Registers the configurables, puts the shipped gin folder on the search path and parses
  the files in order, then the bindings (which win)."""
  register_configurables()
  harden_gin_file_readers()
  search_paths = [p for p in search_paths if p]
  for folder in list(search_paths) + [gin_dir()]:
    add_search_path(folder)
  files = [resolve_gin_file(f, search_paths) for f in gin_files]
  quiet = _QuietMisses()
  logging.getLogger().addFilter(quiet)
  try:
    gin.parse_config_files_and_bindings(files, list(bindings), finalize_config=finalize,
                                        skip_unknown=skip_unknown)
  finally:
    logging.getLogger().removeFilter(quiet)


def add_search_path(folder: str) -> None:
  """Appends `folder` to gin's search path, once per process (gin keeps a list)."""
  if folder not in _SEARCH_PATHS:
    _SEARCH_PATHS.add(folder)
    gin.add_config_file_search_path(folder)


def harden_gin_file_readers() -> None:
  """gin also reads `head/name.gin` from a Python package `head`, and raises TypeError when
  `head` is a namespace package (e.g. `tests/prompts` under pytest, a `models/` folder in the
  working directory) instead of trying the next search path. Count that as "not there"."""
  from gin import config as gin_config
  readers = gin_config._FILE_READERS  # pylint: disable=protected-access
  for i, (reader, exists) in enumerate(readers):
    if getattr(exists, "spot_jax_safe", False):
      continue

    def safe_exists(path, _exists=exists):
      try:
        return _exists(path)
      except (TypeError, ValueError, ImportError):
        return False

    safe_exists.spot_jax_safe = True
    readers[i] = (reader, safe_exists)


class _QuietMisses(logging.Filter):
  """Drops gin's "Path not found" errors for search-path prefixes it tries before the hit."""

  def filter(self, record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Path not found")


def missing_required_macros() -> List[str]:
  """Macros still set to `%gin.REQUIRED` after parsing (gin does not check macros itself)."""
  return sorted(set(_REQUIRED_RE.findall(gin.config_str())))


def unused_macro_bindings(bindings: Sequence[str]) -> List[str]:
  """One message per binding of a macro (`NAME = value`) that nothing in the parsed config
  refers to as `%NAME`: a misspelled flag, which would otherwise leave the default in
  place. The message suggests the closest macros the config does use."""
  text = gin.config_str()
  used = set(_MACRO_REFERENCE_RE.findall(text))
  known = sorted(used | set(_MACRO_DEFINITION_RE.findall(text)) - {"gin"})
  problems = []
  for binding in bindings:
    match = _MACRO_BINDING_RE.match(binding)
    if not match or match.group(1) in used:
      continue
    name = match.group(1)
    close = difflib.get_close_matches(name, [k for k in known if k != name], n=3, cutoff=0.6)
    hint = (f"did you mean {', '.join('--gin.' + c for c in close)}?" if close
            else "no loaded gin file uses it")
    problems.append(f"--gin.{name} is not used by any loaded gin file; {hint}")
  return problems


def query_macro(name: str, default=None):
  try:
    return gin.query_parameter(f"%{name}")
  except ValueError:
    return default


def output_dir(macro: str) -> str:
  """The directory a run writes to, from its macro (e.g. MODEL_DIR), made absolute as the
  trainer makes it (`~` expanded), so configs and checkpoints land in one place."""
  value = query_macro(macro)
  if not isinstance(value, str) or not value:
    raise ValueError(f"{macro} must be a directory path, got {value!r}; "
                     f"set it with --gin.{macro}=/path/to/dir")
  return paths.absolute(value)


class ResumeMismatch(ValueError):
  """A run directory resumed under other settings than it started with."""


# What a resumed run may change: a longer run continues the same one.
LONGER_ON_RESUME = ("TRAIN_STEPS", "train.train_steps")
# entry -> the subdirectory whose presence means the output directory holds a run to resume
_RESUMED_FROM = {"train": "checkpoints", "run_spot": "sources", "study": "sources"}


def config_bindings(text: str) -> Dict[str, str]:
  """`name -> value text` of a config as gin writes it (config.gin): comments dropped, a
  binding's continuation lines joined."""
  out: Dict[str, str] = {}
  name = None
  for line in text.splitlines():
    if not line.strip() or line.lstrip().startswith("#"):
      continue
    if line[0].isspace() and name is not None:
      out[name] = f"{out[name]} {line.strip().rstrip(chr(92))}"
      continue
    key, eq, value = line.partition(" = ")
    if eq:
      name = key.strip()
      out[name] = value.strip().rstrip(chr(92))  # a trailing backslash continues the line
  return {k: " ".join(v.split()) for k, v in out.items()}


def check_resumed_config(directory: str, output_macro: str, entry: str) -> None:
  """Refuses to resume the run in `directory` under settings other than those it started
  with (its config.gin), naming each difference; a longer TRAIN_STEPS is accepted and
  logged. Nothing to check when the directory holds no run of `entry` yet."""
  marker = _RESUMED_FROM.get(entry)
  path = os.path.join(directory, "config.gin")
  if marker is None or not os.path.isdir(os.path.join(directory, marker)) or not os.listdir(
      os.path.join(directory, marker)) or not os.path.isfile(path):
    return
  with open(path, encoding="utf-8") as f:
    before = config_bindings(f.read())
  now = config_bindings(gin.config_str())
  changes = []
  for key in sorted(set(before) | set(now)):
    old, new = before.get(key, "(unset)"), now.get(key, "(unset)")
    if key == output_macro or old == new:
      continue
    if key in LONGER_ON_RESUME and old.isdigit() and new.isdigit() and int(new) > int(old):
      logging.getLogger("spot_jax").info("resuming %s with %s = %s (was %s): the run goes on",
                                         directory, key, new, old)
      continue
    changes.append(f"{key} = {new} (the run has {old})")
  if changes:
    raise ResumeMismatch(
        f"--gin.{output_macro} {directory} holds a run started with other settings "
        f"({path}):\n  " + "\n  ".join(changes) + "\nA resumed run continues that run "
        "exactly, so the only change it takes is a longer TRAIN_STEPS. Rerun with the "
        f"settings it started with, or choose a new --gin.{output_macro}.")


def write_config(directory: str, filename: str, *, operative: bool = False) -> str:
  """Writes the parsed (or, after the run, the operative) config into `directory`, from
  the first process only."""
  import jax
  import tensorflow as tf
  text = gin.operative_config_str() if operative else gin.config_str()
  path = os.path.join(directory, filename)
  if jax.process_index() != 0:
    return path
  tf.io.gfile.makedirs(directory)
  with tf.io.gfile.GFile(path, "w") as f:
    f.write(text)
  return path


def setup_logging() -> None:
  """Console lines from spot_jax at INFO; TensorFlow, seqio and absl at WARNING."""
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  logging.basicConfig(level=logging.WARNING, force=True, stream=sys.stderr,
                      format="%(asctime)s %(levelname).1s %(name)s] %(message)s",
                      datefmt="%H:%M:%S")
  logging.getLogger("spot_jax").setLevel(logging.INFO)


def parse_command_line(argv: Sequence[str], description: str) -> argparse.Namespace:
  """Parses t5x-style flags and the gin config they name; a missing required macro is an
  error naming it and the flag that sets it."""
  parser = flag_parser(description)
  args = parser.parse_args(rewrite_gin_args(list(argv)))
  if not args.gin_file:
    parser.error("give at least one --gin_file (e.g. --gin_file=runs/prompt_tuning.gin)")
  search = [p.strip() for p in args.gin_search_paths.split(",") if p.strip()]
  parse_gin(args.gin_file, args.gin_bindings, search, finalize=False)
  missing = missing_required_macros()
  if missing:  # all of them at once, before gin's finalize names only the first
    parser.error("required gin macros not set: " + ", ".join(missing) + "; set each with "
                 + " ".join(f"--gin.{m}=..." for m in missing))
  unused = unused_macro_bindings(args.gin_bindings)
  if unused:
    parser.error("\n  ".join(unused))
  gin.finalize()
  return args


def run_command(argv: Optional[Sequence[str]], doc: str, output_macro: str, entry: str,
                **kwargs):
  """The shape of every `python -m spot_jax.<command>`: parse t5x-style flags, write
  config.gin into the output directory, register the tasks, run the configured `entry`,
  then write operative_config.gin. Returns (entry's result, output directory). The
  libraries (imported while parsing) and the task modules are imported with the garbage
  collector paused (`startup`)."""
  with startup.frozen_imports():
    setup_logging()
    parse_command_line(sys.argv[1:] if argv is None else argv, doc)
  out = output_dir(output_macro)
  try:
    with run_lock.hold(out, f"--gin.{output_macro}"):
      check_resumed_config(out, output_macro, entry)
      write_config(out, "config.gin")
      configurables = register_configurables()
      with startup.frozen_imports():
        configurables["prepare_tasks"]()
      result = configurables[entry](**{k: configurables[v] for k, v in kwargs.items()})
      write_config(out, "operative_config.gin", operative=True)
  except settings.SettingError as e:
    sys.exit(f"error: {setting_flag(e)}")
  except (run_lock.DirectoryInUse, ResumeMismatch) as e:
    sys.exit(f"error: {e}")
  except preemption.Preempted as e:
    logging.getLogger("spot_jax").warning("%s", e)
    sys.exit(preemption.EXIT_CODE)
  return result, out


def setting_flag(error: "settings.SettingError") -> str:
  """A SettingError in terms of the flag that set it: `--gin.TRAIN_STEPS=10.5: ...` when
  the argument is bound to a macro, else the gin binding `train.train_steps`."""
  binding = f"{error.function}.{error.name.split('[')[0]}"
  try:
    bound = gin.query_parameter(f"spot_jax.{binding}")
  except ValueError:
    bound = None
  text = repr(bound)
  if isinstance(bound, gin.config.ConfigurableReference) and text.startswith("%"):
    flag = f"--gin.{text[1:]}={error.value!r}"
  else:
    flag = f"--gin.{binding}={error.value!r}"
  return f"{flag}: {binding} expects {error.expected}"
