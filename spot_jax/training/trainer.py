"""One run (`python -m spot_jax.train`): a frozen T5 from a checkpoint, a `[P, D]` prompt (or
the model, or Su et al.'s projector) trained on a seqio task or mixture over a `('data',
'model')` mesh. This module checks the settings, builds the state, data and step; the loop
(`loop.run`: validation, prompt files, checkpoints that resume exactly) is shared with the
packed runs of `multi_prompt`."""
import functools
import json
import logging
import os
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Tuple

import jax
import optax

from spot_jax import atomic_files, paths, run_lock, settings
from spot_jax.model import checkpoints as model_checkpoints
from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5
from spot_jax.prompts import prompt_files
from spot_jax.training import (checkpointing, data, host_memory, loop, microbatch_probe,
                               microbatching, modes, partitioning)
from spot_jax.training.evaluator import Validator
from spot_jax.training.modes import PROMPT_TUNING
from spot_jax.training.partitioned_step import PartitionedTrainer
from spot_jax.training.train_step import MAX_ABS_PARAM, TrainState

log = logging.getLogger("spot_jax.train")


def check_finite(state: TrainState):
  bad = int(state.nonfinite_step)
  if bad >= 0:
    raise FloatingPointError(
        f"training diverged at step {bad}: the loss was not finite or the update took a "
        f"trained value beyond |x| <= {MAX_ABS_PARAM:g} (NaN included), e.g. from too large "
        "a learning rate; that update was not applied and no state after it was saved")


SETTINGS_FILE = "run_settings.json"
_RESUME_SETTINGS = ("mixture_or_task_name", "mode", "model", "prompt_length", "batch_size",
                    "seed", "task_feature_lengths", "train_split")


def check_run_settings(model_dir: str, resuming: bool, now: Mapping[str, Any]) -> None:
  """A run resumes with the settings it started with (`model_dir/run_settings.json`); only a
  longer `train_steps` is taken (and logged). Written when a run starts from step 0."""
  path = os.path.join(model_dir, SETTINGS_FILE)
  if not resuming or not os.path.isfile(path):
    atomic_files.write_atomically(path, json.dumps(now, indent=1, sort_keys=True).encode())
    return
  with open(path, encoding="utf-8") as f:
    before = json.load(f)
  for name in _RESUME_SETTINGS:
    if name in before and before[name] != now[name]:
      raise settings.SettingError(
          "train", name, now[name], f"{before[name]!r}, the value the run in {model_dir} "
          f"started with ({path}); resume with it, or choose another model_dir")
  if now["train_steps"] < before["train_steps"]:
    raise settings.SettingError(
        "train", "train_steps", now["train_steps"], f"at least {before['train_steps']}, the "
        f"run in {model_dir} was started for that many ({path}); a resume may only go longer")
  if now["train_steps"] > before["train_steps"]:
    log.info("resuming %s for %d steps (it started for %d)", model_dir, now["train_steps"],
             before["train_steps"])
    atomic_files.write_atomically(path, json.dumps(now, indent=1, sort_keys=True).encode())


def train(*, model_dir: str, mixture_or_task_name: str, task_feature_lengths: Mapping[str, int],
          model_config: T5Config, initial_checkpoint: Optional[str], train_steps: int,
          mode: str = PROMPT_TUNING, prompt_length: int = 100,
          prompt_init: Optional[Callable] = None,
          tx: Optional[optax.GradientTransformation] = None, batch_size: int = 32,
          seed: int = 0, train_split: str = "train", eval_split: str = "validation",
          eval_period: int = 0, num_eval_examples: Optional[int] = None,
          eval_batch_size: Optional[int] = None, best_metric: Optional[str] = None,
          checkpoint_period: int = 1000, keep_checkpoints: Optional[int] = 2,
          prompt_save_steps: Sequence[int] = (10000,), log_period: int = 100,
          mesh_shape: Tuple[int, int] = (-1, 1), num_microbatches: Optional[int] = None,
          activation_memory_gb: Optional[float] = None,
          use_cached: bool = False, run_name: str = "",
          export_params_path: Optional[str] = None, projector=None,
          source_prompt_file: Optional[str] = None) -> Dict[str, Any]:
  """Trains a prompt (or, with mode='model', the whole model) and returns a summary.

  `num_microbatches=None` splits each batch into the fewest microbatches whose activations fit
  `activation_memory_gb` per device (None: `microbatching.default_budget_gb()`, 0.5 GB on CPU);
  on CPU with neither given, a batch that needs splitting is split as measured fastest on this
  CPU (`microbatching.probe_candidates`: its step timed at the budget's split and each finer
  one, `microbatch_probe`; a run of fewer than 20 steps per candidate keeps the
  budget's split). The choice is kept in `model_dir/microbatching.json`, so a resumed run
  repeats it.

  The run lives in `model_dir`: `checkpoints/<step>` (orbax, with the data iterator),
  `prompts/` (`.npy` + `.json`: `step_<N>` at `prompt_save_steps` (0: the init), `best`,
  `final`),
  `train/` and `eval/` TensorBoard logs. Restarted on the same `model_dir`, it resumes
  from the latest checkpoint and continues exactly.

  With mode='projector' (Su et al.'s task tuning) a projector is trained instead: the prompt
  is its projection of the fixed prompt in `source_prompt_file` (of another model), and the
  prompt files are those projections. `projector` is `prompts.projector.make_projector(...)`
  (sized here from the source prompt and the model) or a `PromptProjector`.
  """
  model_dir = paths.absolute(model_dir)
  with run_lock.hold(model_dir, "model_dir"):
    initial_checkpoint, export_params_path, source_prompt_file = map(
        paths.absolute, (initial_checkpoint, export_params_path, source_prompt_file))
    if mode not in modes.names():
      raise settings.SettingError("train", "mode", mode, f"one of {modes.names()}")
    trains = modes.get(mode)
    check = functools.partial(settings.integer, "train")
    for name, value in (("train_steps", train_steps), ("batch_size", batch_size),
                        ("prompt_length", prompt_length), ("log_period", log_period)):
      check(name, value, minimum=1)
    check("num_microbatches", num_microbatches, minimum=1, optional=True)
    settings.positive_number("train", "activation_memory_gb", activation_memory_gb, optional=True)
    check("eval_period", eval_period, minimum=0)
    check("checkpoint_period", checkpoint_period, minimum=0)
    check("seed", seed)
    for name, value in (("keep_checkpoints", keep_checkpoints),
                        ("num_eval_examples", num_eval_examples),
                        ("eval_batch_size", eval_batch_size)):
      check(name, value, minimum=1, optional=True)
    settings.integers("train", "prompt_save_steps", prompt_save_steps, minimum=0)
    settings.integers("train", "mesh_shape", mesh_shape, length=2)
    settings.feature_lengths("train", "task_feature_lengths", task_feature_lengths)
    source_prompt = None
    if trains.needs_projector:
      if projector is None or not source_prompt_file:
        raise settings.SettingError("train", "projector", projector,
                                    f"a projector and a source_prompt_file in mode {mode!r}")
      source_prompt, _ = prompt_files.load_prompt(source_prompt_file, require_metadata=False)
      if callable(projector) and not hasattr(projector, "apply"):
        projector = projector(source_prompt.shape[0], model_config.emb_dim)
      if (projector.prompt_length, projector.target_dim) != (source_prompt.shape[0],
                                                             model_config.emb_dim):
        raise settings.SettingError(
            "train", "projector", projector, f"a projector of [{source_prompt.shape[0]}, d_src] "
            f"prompts (the source's length) to the model's width {model_config.emb_dim}")
    if eval_period and checkpoint_period and max(eval_period, checkpoint_period) % min(
        eval_period, checkpoint_period):
      raise ValueError(f"eval_period {eval_period} and checkpoint_period {checkpoint_period} "
                       "must be multiples of each other")
    os.makedirs(model_dir, exist_ok=True)
    ckpt = checkpointing.RunCheckpointer(model_dir, keep=keep_checkpoints)
    check_run_settings(model_dir, ckpt.latest_step() is not None, dict(
        mixture_or_task_name=mixture_or_task_name, mode=mode, model=model_config.name,
        prompt_length=prompt_length if trains.sized_by_prompt_length else None,
        batch_size=batch_size,
        seed=seed, task_feature_lengths=dict(task_feature_lengths), train_split=train_split,
        train_steps=train_steps))
    # Validate at the door: task, vocabulary and mesh before anything is compiled.
    vocab = data.output_vocabulary(mixture_or_task_name)
    data.check_vocabulary_fits(vocab, model_config.vocab_size, mixture_or_task_name)
    mesh = partitioning.make_mesh(*mesh_shape)
    partitioning.check_batch_divides(batch_size, mesh)
    if num_microbatches is not None and batch_size % num_microbatches:
      raise ValueError(f"batch size {batch_size} does not divide into {num_microbatches} "
                       "microbatches")
    data_report = data.check_data(mixture_or_task_name, task_feature_lengths=task_feature_lengths,
                                  split=train_split)
    if eval_period:
      data_report += data.check_data(mixture_or_task_name,
                                     task_feature_lengths=task_feature_lengths, split=eval_split)

    model = T5(model_config)
    if tx is None:
      tx = trains.default_optimizer()
    make_trainer = functools.partial(PartitionedTrainer, model, tx, mode, mesh,
                                     projector=projector)
    trainer = make_trainer(num_microbatches=num_microbatches or 1)  # the split: below
    model_params = model_checkpoints.load_frozen_model(initial_checkpoint, model_config, seed)
    rng = jax.random.PRNGKey(seed)
    init_rng, step_rng = jax.random.split(rng)

    frozen, trainable = trains.setup(modes.Setup(
        model_params=model_params, model_config=model_config, vocabulary=vocab,
        prompt_length=prompt_length, prompt_init=prompt_init, rng=init_rng,
        source_prompt=source_prompt, projector=projector))
    if frozen is not None:
      frozen = trainer.place(frozen, trainer.frozen_sharding)
    del model_params
    host_memory.release_freed_heap()  # what loading the checkpoint freed
    host_memory.release_after_each_compile()  # and each compile, before its program runs

    ds = data.train_dataset(mixture_or_task_name, task_feature_lengths=task_feature_lengths,
                            batch_size=batch_size, split=train_split, seed=seed,
                            use_cached=use_cached)
    if num_microbatches is None:
      batch = microbatch_probe.batch_from_spec(ds.element_spec)
      prompt_tokens = trains.prompt_tokens(prompt_length, source_prompt)
      def prepare(k):  # the run's own step at k microbatches, on a fresh state
        t = make_trainer(num_microbatches=k)
        placed = t.place(batch, t.batch_sharding)
        return (lambda s: t.step(s, frozen, placed, step_rng)), t.init_state(trainable)
      num_microbatches = microbatching.resolve(
          model_dir, model_config, batch_size // mesh.shape["data"],
          task_feature_lengths["inputs"] + prompt_tokens, task_feature_lengths["targets"],
          activation_memory_gb, train_steps=train_steps,
          probe=functools.partial(
              microbatch_probe.measured_once,
              (model_config, mode, prompt_tokens, tuple(mesh.shape.items()),
               microbatch_probe.shapes_key(batch)),
              functools.partial(microbatch_probe.seconds_per_step, prepare)))
      trainer = make_trainer(num_microbatches=num_microbatches)
    state = trainer.init_state(trainable)
    iterator = iter(ds)
    if ckpt.latest_step() is not None:
      state, start = ckpt.restore(None, trainer.abstract_state(state), iterator)
      log.info("resuming from %s at step %d", model_dir, start)

    validator = None
    if eval_period:
      validator = Validator(mixture_or_task_name, model=model,
                            task_feature_lengths=task_feature_lengths, split=eval_split,
                            batch_size=eval_batch_size or batch_size,
                            num_examples=num_eval_examples, use_cached=use_cached,
                            log_dir=os.path.join(model_dir, "inference_eval"))
    meta = dict(task=mixture_or_task_name, model_name=model_config.name,
                vocabulary_hash=data.vocabulary_hash(vocab), seed=seed, run=run_name or
                os.path.basename(os.path.normpath(model_dir)))
    if source_prompt is not None:
      meta["extra"] = {"projected_from": source_prompt_file}
    one = _OneRun(model_dir, meta, trainer, state, frozen, iterator, step_rng, ckpt, validator,
                  trains, projector)
    outcome = loop.run(one, train_steps=train_steps, batch_size=batch_size,
                       log_period=log_period, eval_period=eval_period,
                       checkpoint_period=checkpoint_period, prompt_save_steps=prompt_save_steps,
                       best_metric=best_metric)
    if export_params_path and trains.trains_model:
      from spot_jax.model import t5x_export
      t5x_export.write_t5x_msgpack(jax.device_get(one.state.params), export_params_path)
    return {"model_dir": model_dir, "final_step": outcome.final_step, "best": outcome.best[0],
            "history": outcome.histories[0], "data": data_report,
            "num_microbatches": num_microbatches, "wall_seconds": outcome.wall_seconds,
            "final_state": one.state}


class _OneRun(loop.Runs):
  """One run over a mesh, for the loop: its state, data iterator, step and checkpointer."""

  def __init__(self, model_dir, meta, trainer, state, frozen, iterator, rng, ckpt, validator,
               mode, projector):
    self.model_dirs, self.metas = [model_dir], [meta]
    self.trainer, self.state, self.frozen, self.iterator = trainer, state, frozen, iterator
    self.rng, self.ckpt, self.validator = rng, ckpt, validator
    self.mode, self.projector = mode, projector
    self.validates = validator is not None

  def step(self):
    batch = jax.tree.map(lambda t: t._numpy(), next(self.iterator))
    batch = self.trainer.place(batch, self.trainer.batch_sharding)
    self.state, metrics = self.trainer.step(self.state, self.frozen, batch, self.rng)
    return metrics

  def current_step(self) -> int:
    return int(self.state.step)

  def check_finite(self) -> None:
    check_finite(self.state)

  def metric_rows(self, metrics):
    return [{k: float(v) for k, v in jax.device_get(metrics).items()}]

  def _split(self):
    return self.mode.split(self.state.params, self.frozen, self.projector)

  def prompt(self, i):
    """The `[P, D]` prompt the model reads now (None when the mode writes no prompts)."""
    return self._split()[1] if self.mode.writes_prompts else None

  def validate(self, step):
    model_params, prompt = self._split()
    return [self.validator(model_params, prompt if self.mode.writes_prompts else None, step)]

  def save_checkpoints(self, step):
    self.ckpt.save(step, self.state, self.iterator)

  def close(self):
    self.ckpt.close()


