"""Many prompt-tuning runs in one loop over one frozen model: each step packs every run's
batch into one `[N * B]` batch, each example carrying its own run's prompt (the per-example
prompts of `prompt.prefix_prompt`), so one compiled step, one forward and one backward
serve N runs. Each run keeps its own task, seed (data order and init), Adafactor state,
checkpoints, validation and prompt files, in its own run directory laid out as
`trainer.train` writes one; the loop itself is `loop.run`, shared with `trainer.train`.

Runs are independent: example i of run n reads only run n's prompt, each run's loss is its
own mean over its tokens, and the summed loss's gradient with respect to row n of the
`[N, P, D]` prompt table is run n's own gradient; the update (Adafactor's clipping
included) is taken per run. So a packed run equals the same run trained alone up to float
reassociation in the batched matmuls, when the model has no dropout. With dropout, one
mask is drawn over the packed batch, not the per-run masks of separate runs.

What it saves is the per-run fixed cost: data pipelines (runs sharing task and seed share
one iterator), compilation, validation (every run of a task decoded in mixed batches) and
small-batch inefficiency.
"""
import contextlib
import dataclasses
import functools
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from spot_jax import paths, run_lock, settings
from spot_jax.model import checkpoints
from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5
from spot_jax.prompts import initializers
from spot_jax.training import (checkpointing, data, loop, microbatch_probe, microbatching,
                               optimizer as optimizer_lib)
from spot_jax.training.evaluator import MixedPromptPredictor, Validator, make_decode_fn
from spot_jax.training.packed_step import jitted_step
from spot_jax.training.train_step import TrainState, init_state

log = logging.getLogger("spot_jax.train")


@dataclasses.dataclass(frozen=True)
class PromptRun:
  """One run of a packed group: its directory, task, seed and prompt init."""
  model_dir: str
  mixture_or_task_name: str
  seed: int = 0
  prompt_init: Optional[Callable] = None  # a prompt-init factory; None: sampled vocabulary
  run_name: str = ""


def _member(states: TrainState, i: int) -> TrainState:
  return jax.tree.map(lambda x: x[i], states)


def check_finite(states: TrainState, runs: Sequence[PromptRun]):
  bad = np.asarray(states.nonfinite_step)
  for i, step in enumerate(bad):
    if step >= 0:
      raise FloatingPointError(
          f"run {runs[i].model_dir} diverged at step {int(step)}: the loss was not finite or "
          "the update took a trained value out of range (e.g. from too large a learning "
          "rate); that update was not applied and no state after it was saved")


def train_prompts(runs: Sequence[PromptRun], *, task_feature_lengths: Mapping[str, int],
                  model_config: T5Config, initial_checkpoint: Optional[str],
                  train_steps: int, prompt_length: int = 100,
                  tx: Optional[optax.GradientTransformation] = None, batch_size: int = 32,
                  train_split: str = "train", eval_split: str = "validation",
                  eval_period: int = 0, num_eval_examples: Optional[int] = None,
                  eval_batch_size: Optional[int] = None, best_metric: Optional[str] = None,
                  checkpoint_period: int = 1000, keep_checkpoints: Optional[int] = 2,
                  prompt_save_steps: Sequence[int] = (10000,), log_period: int = 100,
                  use_cached: bool = False, num_microbatches: Optional[int] = None,
                  activation_memory_gb: Optional[float] = None) -> List[Dict[str, Any]]:
  """Trains the runs' prompts together; returns each run's summary as `trainer.train` does
  (`model_dir`, `final_step`, `best`, `history`, `data`, `wall_seconds`).

  Every run shares the model, feature lengths, steps, batch size and schedule; they differ
  in task, seed and init. Restarted, the group resumes from its runs' latest checkpoint
  (all runs must be at the same step) and continues exactly.

  `num_microbatches=None` splits each run's batch as `trainer.train` splits one run's, a
  packed row being N examples (one of each run): into the fewest slices whose activations
  fit `activation_memory_gb`, or, on CPU with neither given and a packed batch that needs
  splitting, as measured fastest on this CPU (`microbatch_probe`: the packed step timed at
  each candidate split, once per process for a model, group size and shape). The choice is
  recorded in the first run's directory, so a resumed group repeats it. With dropout off (the
  main job's backbone) the split changes only the order of the float sums.
  """
  runs = [dataclasses.replace(r, model_dir=paths.absolute(r.model_dir)) for r in runs]
  with contextlib.ExitStack() as locks:  # one process per run directory
    for directory in dict.fromkeys(r.model_dir for r in runs):
      locks.enter_context(run_lock.hold(directory, "run directory"))
    initial_checkpoint = paths.absolute(initial_checkpoint)
    if not runs:
      raise settings.SettingError("train_prompts", "runs", runs, "at least one run")
    dirs = [r.model_dir for r in runs]
    if len(set(dirs)) != len(dirs):
      raise settings.SettingError("train_prompts", "runs", dirs, "one directory per run")
    check = functools.partial(settings.integer, "train_prompts")
    for name, value in (("train_steps", train_steps), ("batch_size", batch_size),
                        ("prompt_length", prompt_length), ("log_period", log_period)):
      check(name, value, minimum=1)
    check("eval_period", eval_period, minimum=0)
    check("checkpoint_period", checkpoint_period, minimum=0)
    check("num_microbatches", num_microbatches, minimum=1, optional=True)
    settings.positive_number("train_prompts", "activation_memory_gb", activation_memory_gb,
                             optional=True)
    if num_microbatches is not None and batch_size % num_microbatches:
      raise settings.SettingError("train_prompts", "num_microbatches", num_microbatches,
                                  f"a divisor of batch_size {batch_size}")
    settings.integers("train_prompts", "prompt_save_steps", prompt_save_steps, minimum=0)
    settings.feature_lengths("train_prompts", "task_feature_lengths", task_feature_lengths)
    for r in runs:
      check("seed", r.seed)
    tx = tx or optimizer_lib.spot_prompt_optimizer()
    tasks = list(dict.fromkeys(r.mixture_or_task_name for r in runs))
    vocab, reports = {}, []
    for task in tasks:  # at the door: every task, vocabulary and split before compiling
      vocab[task] = data.output_vocabulary(task)
      data.check_vocabulary_fits(vocab[task], model_config.vocab_size, task)
      reports += data.check_data(task, task_feature_lengths=task_feature_lengths,
                                 split=train_split)
      if eval_period:
        reports += data.check_data(task, task_feature_lengths=task_feature_lengths,
                                   split=eval_split)
    for d in dirs:
      os.makedirs(d, exist_ok=True)
    model_params = checkpoints.load_frozen_model(initial_checkpoint, model_config, runs[0].seed)
    frozen = jax.tree.map(jnp.asarray, model_params)
    embedding = model_params["token_embedder"]["embedding"]
    prompts, step_keys = [], []
    for r in runs:  # the same keys as trainer.train: an init and a dropout key from the seed
      init_rng, step_rng = jax.random.split(jax.random.PRNGKey(r.seed))
      factory = r.prompt_init or initializers.sampled_vocab()
      prompts.append(jnp.asarray(factory(embedding, vocab[r.mixture_or_task_name],
                                         model_config.name)(
          init_rng, (prompt_length, model_config.emb_dim)), jnp.float32))
      step_keys.append(step_rng)
    states = jax.vmap(lambda p: init_state(p, tx))(jnp.stack(prompts))

    keys = list(dict.fromkeys((r.mixture_or_task_name, r.seed) for r in runs))
    datasets = {k: data.train_dataset(k[0], task_feature_lengths=task_feature_lengths,
                                      batch_size=batch_size, split=train_split, seed=k[1],
                                      use_cached=use_cached) for k in keys}
    steps = {}  # the packed step per split; the probe's compile is the one the runs use
    step_at = lambda k: steps.setdefault(k, jitted_step(model_config, tx, k))
    if num_microbatches is None:  # a packed row is N examples, one of each run
      batch = microbatch_probe.batch_from_spec(datasets[keys[0]].element_spec, (len(runs),))

      def prepare(k):  # the packed step at k microbatches, on a copy of the states
        fn = step_at(k)
        return (lambda s: fn(s, frozen, batch, step_keys[0])), jax.tree.map(jnp.copy, states)
      num_microbatches = microbatching.resolve(
          dirs[0], model_config, batch_size, task_feature_lengths["inputs"] + prompt_length,
          task_feature_lengths["targets"], activation_memory_gb, examples_per_row=len(runs),
          train_steps=train_steps, probe=functools.partial(
              microbatch_probe.measured_once,
              ("packed", model_config, prompt_length, microbatch_probe.shapes_key(batch)),
              functools.partial(microbatch_probe.seconds_per_step, prepare)))
    iterators = {k: iter(ds) for k, ds in datasets.items()}
    owner = {k: next(i for i, r in enumerate(runs) if (r.mixture_or_task_name, r.seed) == k)
             for k in keys}
    ckpts = [checkpointing.RunCheckpointer(d, keep=keep_checkpoints) for d in dirs]
    latest = [c.latest_step() for c in ckpts]
    if len(set(latest)) > 1:
      raise ValueError("the runs of a packed group resume together, but their checkpoints are "
                       "at different steps: " + ", ".join(f"{d}: {s}" for d, s in
                                                         zip(dirs, latest)))
    if latest[0] is not None:
      log.info("resuming %d packed runs at step %d", len(runs), latest[0])
      restored = []
      for i, (r, c) in enumerate(zip(runs, ckpts)):
        k = (r.mixture_or_task_name, r.seed)
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype,
                                                               sharding=device),
                                _member(states, i))
        state, at = c.restore(latest[0], abstract, iterators[k] if owner[k] == i else None)
        if at != latest[0]:
          raise checkpointing.CheckpointError(
              f"{dirs[i]} resumed from step {at}, the group's other runs from step {latest[0]}: "
              "packed runs resume together; delete the group's run directories to start it "
              "again")
        restored.append(state)
      states = jax.tree.map(lambda *xs: jnp.stack(xs), *restored)

    metas = [dict(task=r.mixture_or_task_name, model_name=model_config.name,
                  vocabulary_hash=data.vocabulary_hash(vocab[r.mixture_or_task_name]),
                  seed=r.seed, run=r.run_name or os.path.basename(os.path.normpath(r.model_dir)))
             for r in runs]
    validators = {}
    if eval_period:
      model = T5(model_config)
      validators = {t: Validator(t, model=model, task_feature_lengths=task_feature_lengths,
                                 split=eval_split, batch_size=eval_batch_size or batch_size,
                                 num_examples=num_eval_examples, use_cached=use_cached)
                    for t in tasks}
    packed = _PackedRuns(runs, metas, states, frozen, iterators, owner, step_keys[0], ckpts,
                         validators, step_at(num_microbatches),
                         make_decode_fn(model_config, max_length=task_feature_lengths["targets"]),
                         eval_batch_size or batch_size)
    outcome = loop.run(packed, train_steps=train_steps, batch_size=batch_size,
                       log_period=log_period, eval_period=eval_period,
                       checkpoint_period=checkpoint_period, prompt_save_steps=prompt_save_steps,
                       best_metric=best_metric)
    return [{"model_dir": dirs[i], "final_step": outcome.final_step, "best": outcome.best[i],
             "history": outcome.histories[i], "wall_seconds": outcome.wall_seconds,
             "data": [x for x in reports if x["task"] in _task_names(r.mixture_or_task_name)]}
            for i, r in enumerate(runs)]


class _PackedRuns(loop.Runs):
  """N prompt runs stepping together, for the loop: the `[N, ...]` states, each (task, seed)'s
  data iterator (saved with the first run that reads it), the packed step, and validation
  that decodes every run of a task in mixed batches."""
  packed = True

  def __init__(self, runs, metas, states, frozen, iterators, owner, rng, ckpts, validators,
               step_fn, decode_fn, eval_batch_size):
    self.runs, self.metas = runs, metas
    self.model_dirs = [r.model_dir for r in runs]
    self.states, self.frozen, self.iterators, self.owner = states, frozen, iterators, owner
    self.rng, self.ckpts, self.validators = rng, ckpts, validators
    self.step_fn, self.decode_fn, self.eval_batch_size = step_fn, decode_fn, eval_batch_size
    self.validates = bool(validators)

  def step(self):
    batches = {k: jax.tree.map(lambda t: t._numpy(), next(it))
               for k, it in self.iterators.items()}
    members = [batches[(r.mixture_or_task_name, r.seed)] for r in self.runs]
    batch = {name: np.stack([b[name] for b in members]) for name in members[0]}
    self.states, metrics = self.step_fn(self.states, self.frozen, batch, self.rng)
    return metrics

  def current_step(self) -> int:
    return int(self.states.step[0])

  def check_finite(self) -> None:
    check_finite(self.states, self.runs)

  def metric_rows(self, metrics):
    m = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    return [{k: float(v[i]) for k, v in m.items()} for i in range(len(self.runs))]

  def prompt(self, i):
    return self.states.params[i]

  def validate(self, step):
    results = [None] * len(self.runs)
    table = np.asarray(self.states.params)
    for task, validator in self.validators.items():
      members = [i for i, r in enumerate(self.runs) if r.mixture_or_task_name == task]
      predictor = MixedPromptPredictor(self.decode_fn, self.frozen, table[members],
                                       self.eval_batch_size)
      for k, i in enumerate(members):
        results[i] = validator(self.frozen, None, step, predict_fn=predictor.for_prompt(k))
    return results

  def save_checkpoints(self, step):
    for i, (r, c) in enumerate(zip(self.runs, self.ckpts)):
      k = (r.mixture_or_task_name, r.seed)
      c.save(step, _member(self.states, i), self.iterators[k] if self.owner[k] == i else None)

  def close(self):
    for c in self.ckpts:
      c.close()


def _task_names(name: str) -> List[str]:
  import seqio
  from spot_jax.tasks import pipeline
  provider = pipeline.get_task_or_mixture(name)
  return [t.name for t in provider.tasks] if isinstance(provider, seqio.Mixture) else [name]
