"""What a study runs (`StudyConfig`), checked before any run, and what a finished study
directory was started with (`check_resumable`). Label words and task families default to
the task registry's. The study itself is `spot_jax.transfer.study`."""
import dataclasses
import json
import os
from typing import Any, Dict, List, Mapping, Optional, Sequence

from spot_jax import paths
from spot_jax.tasks import metadata
from spot_jax.transfer import similarity, strategies

CONFIG_FILE = "study_config.json"
BASELINE = strategies.BASELINE
INITS = strategies.BUILT_IN  # the default: every built-in strategy (`strategies.register` adds)
AVERAGE_SOURCE = strategies.AVERAGE_SOURCE
# What a target run's score is: SPoT's best validation score (the checkpoint it reports), the
# score at the last step, or the area under the validation curve (mean over its points).
TARGET_SCORES = ("best", "final", "auc")
# How a source relates to a target, from the tasks' families and label words.
SAME_FAMILY = "same family"
LABEL_CONTROL = "label control"  # another family with the target's label words
OTHER_FAMILY = "other family"
SAME_FAMILY_OTHER_LABELS = "same family, other labels"


def _positive_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool) and value >= 1


@dataclasses.dataclass(frozen=True)
class StudyConfig:
  """What a study runs. Tasks are seqio names; the model comes from the trainer's config
  (`model_config`, `initial_checkpoint` are recorded here for the zero-shot matrix, the
  neuron overlap and the resume check)."""
  out_dir: str
  sources: Sequence[str]
  targets: Sequence[str]
  source_seeds: Sequence[int] = (0, 1)
  target_seeds: Sequence[int] = (0, 1, 2)
  source_steps: int = 100
  embedding_step: int = 40
  target_steps: int = 30
  mixture_steps: Optional[int] = None  # the top-k mixture's source run; None: source_steps
  prompt_length: Optional[int] = 20  # None: the trainer's configured value (also below)
  source_batch_size: Optional[int] = 16
  target_batch_size: Optional[int] = 8
  top_k: int = 3
  inits: Sequence[str] = INITS
  metric: str = similarity.DEFAULT_METRIC
  num_eval_examples: Optional[int] = 100
  target_eval_points: int = 1  # validations per target run, evenly spaced, the last at the end
  target_score: str = "best"  # one of TARGET_SCORES
  task_feature_lengths: Optional[Mapping[str, int]] = None  # every task's, unless below
  feature_lengths: Optional[Mapping[str, Mapping[str, int]]] = None  # per task
  labels: Optional[Mapping[str, Sequence[str]]] = None  # per task; else the registry's
  families: Optional[Mapping[str, str]] = None  # per task; else the registry's
  zero_shot: bool = True
  probe_token: Optional[int] = None  # ON's probe token; None: T5's <extra_id_0>
  model_config: Any = None
  initial_checkpoint: Optional[str] = None
  library_dir: Optional[str] = None
  pack: bool = True  # train a stage's runs together, many prompts per step (given a trainer)

  def __post_init__(self):
    set_ = lambda name, value: object.__setattr__(self, name, value)
    set_("out_dir", paths.absolute(self.out_dir))
    set_("initial_checkpoint", paths.absolute(self.initial_checkpoint))
    set_("library_dir", paths.absolute(self.library_dir))
    for name in ("sources", "targets", "source_seeds", "target_seeds", "inits"):
      value = getattr(self, name)
      set_(name, (value,) if isinstance(value, str) else tuple(value or ()))
    for name in ("feature_lengths", "labels", "families"):
      set_(name, dict(getattr(self, name) or {}))
    if self.task_feature_lengths is not None:
      set_("task_feature_lengths", dict(self.task_feature_lengths))

  # -- checks ------------------------------------------------------------------------------
  def problems(self, known_tasks: Optional[Sequence[str]] = None) -> List[str]:
    """Every setting that cannot run, one message each naming the flag and the value."""
    out = []
    for name in ("source_steps", "embedding_step", "target_steps", "prompt_length",
                 "source_batch_size", "target_batch_size", "top_k", "target_eval_points"):
      value = getattr(self, name)
      optional = name in ("prompt_length", "source_batch_size", "target_batch_size")
      if not _positive_int(value) and not (optional and value is None):
        out.append(f"--{name} {value!r}: expected a positive integer")
    if self.mixture_steps is not None and not _positive_int(self.mixture_steps):
      out.append(f"--mixture_steps {self.mixture_steps!r}: expected a positive integer")
    if _positive_int(self.embedding_step) and _positive_int(self.source_steps) and \
        self.embedding_step > self.source_steps:
      out.append(f"--embedding_step {self.embedding_step}: the task embedding is the prompt "
                 f"at that step, so it must be at most --source_steps ({self.source_steps})")
    if _positive_int(self.target_eval_points) and _positive_int(self.target_steps) and \
        self.target_steps % self.target_eval_points:
      out.append(f"--target_eval_points {self.target_eval_points}: must divide --target_steps "
                 f"({self.target_steps}), so the validations fall on evenly spaced steps")
    if self.target_score not in TARGET_SCORES:
      out.append(f"--target_score {self.target_score!r}: expected one of {list(TARGET_SCORES)}")
    if self.num_eval_examples is not None and not _positive_int(self.num_eval_examples):
      out.append(f"--num_eval_examples {self.num_eval_examples!r}: expected a positive "
                 "integer")
    for name in ("source_seeds", "target_seeds"):
      seeds = getattr(self, name)
      if not seeds:
        out.append(f"--{name}: give at least one seed")
      elif not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        out.append(f"--{name} {list(seeds)}: seeds are non-negative integers")
      elif len(set(seeds)) != len(seeds):
        out.append(f"--{name} {list(seeds)}: each seed once (runs are named by seed)")
    if self.metric not in similarity.METRICS:
      out.append(f"--metric {self.metric!r}: expected one of {sorted(similarity.METRICS)}")
    unknown = [i for i in self.inits if i not in strategies.names()]
    if unknown or not self.inits:
      out.append(f"--inits {list(self.inits)}: expected some of {list(strategies.names())}")
    for name in ("sources", "targets"):
      tasks = getattr(self, name)
      if not tasks:
        out.append(f"--{name}: give at least one task")
      if len(set(tasks)) != len(tasks):
        out.append(f"--{name} {list(tasks)}: each task once")
      for task in tasks:
        if known_tasks is not None and task not in known_tasks:
          import difflib
          close = difflib.get_close_matches(task, known_tasks, n=3, cutoff=0.6)
          out.append(f"--{name} {task!r}: not a registered task or mixture" +
                     (f"; did you mean {', '.join(close)}?" if close else ""))
    both = sorted(set(self.sources) & set(self.targets))
    if both:
      out.append(f"--targets {both}: also sources; a target must be held out")
    if _positive_int(self.top_k) and self.sources and self.top_k > len(self.sources):
      out.append(f"--top_k {self.top_k}: more than the {len(self.sources)} sources")
    if self.zero_shot and self.task_feature_lengths is None and any(
        t not in self.feature_lengths for t in (*self.sources, *self.targets)):
      out.append("task_feature_lengths: not set; the zero-shot matrix needs the tasks' "
                 "inputs/targets lengths (--gin.TASK_FEATURE_LENGTHS)")
    if self.initial_checkpoint and not os.path.exists(self.initial_checkpoint) \
        and "://" not in self.initial_checkpoint:
      out.append(f"initial_checkpoint {self.initial_checkpoint!r}: no such file or directory")
    return out

  def check(self, known_tasks: Optional[Sequence[str]] = None) -> None:
    problems = self.problems(known_tasks)
    if problems:
      raise ValueError("study settings cannot run:\n  " + "\n  ".join(problems))

  def to_json(self) -> Dict[str, Any]:
    out = {}
    for f in dataclasses.fields(self):
      value = getattr(self, f.name)
      if dataclasses.is_dataclass(value):
        value = dataclasses.asdict(value)
      out[f.name] = value
    return json.loads(json.dumps(out, default=str))

  # -- per task ----------------------------------------------------------------------------
  def lengths(self, task: str) -> Optional[Dict[str, int]]:
    found = self.feature_lengths.get(task) or self.task_feature_lengths
    return None if found is None else dict(found)

  def task_labels(self, task: str) -> Optional[Sequence[str]]:
    if task in self.labels:
      return self.labels[task]
    return metadata.label_words(task)

  def family(self, task: str) -> Optional[str]:
    return self.families.get(task) or metadata.family(task)

  def relation(self, source: str, target: str) -> Optional[str]:
    """SAME_FAMILY, LABEL_CONTROL, OTHER_FAMILY or SAME_FAMILY_OTHER_LABELS; None when a
    family or a label set is unknown."""
    fs, ft = self.family(source), self.family(target)
    ls, lt = self.task_labels(source), self.task_labels(target)
    if fs is None or ft is None or ls is None or lt is None:
      return None
    same_labels = tuple(ls) == tuple(lt)
    if fs == ft:
      return SAME_FAMILY if same_labels else SAME_FAMILY_OTHER_LABELS
    return LABEL_CONTROL if same_labels else OTHER_FAMILY


def check_resumable(cfg: StudyConfig) -> None:
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
    raise ValueError(f"{cfg.out_dir} holds a study run with other settings ({path}); "
                     "rerun with the same settings to resume it, or give another output "
                     "directory. Differences:\n  " + "\n  ".join(differs))
