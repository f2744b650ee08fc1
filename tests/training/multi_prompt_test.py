"""Many prompts per step: a packed group of runs equals the same runs trained one by one
(prompts, validation scores, files), and a stopped group resumes exactly."""
import logging
import os
import signal

import numpy as np
import pytest

from spot_jax.model import checkpoints
from spot_jax.prompts import initializers, prompt_files
import toy_tasks as toy
from spot_jax.training import multi_prompt, packed_step, preemption, trainer

LENGTHS = {"inputs": 16, "targets": 8}
# Two tasks, three seeds; two runs share task and seed (one iterator) but not their init.
RUNS = (("toy_first", 0, None), ("toy_last", 1, None), ("toy_first", 0, "uniform"))


def _runs(root):
  return [multi_prompt.PromptRun(str(root / f"run{i}"), task, seed,
                                 initializers.random_uniform() if init else None, f"r{i}")
          for i, (task, seed, init) in enumerate(RUNS)]


def _common(toy_backbone, steps):
  config, backbone, _ = toy_backbone
  return dict(task_feature_lengths=LENGTHS, model_config=config, initial_checkpoint=backbone,
              train_steps=steps, prompt_length=4, batch_size=8, eval_period=2,
              num_eval_examples=16, checkpoint_period=2, prompt_save_steps=(0, 2),
              log_period=2)


@pytest.mark.slow
def test_packed_runs_equal_separate_runs_and_resume_exactly(toy_backbone, tmp_path):
  toy.register()
  packed = multi_prompt.train_prompts(_runs(tmp_path / "packed"), **_common(toy_backbone, 4))
  for i, run in enumerate(_runs(tmp_path / "alone")):
    alone = trainer.train(model_dir=run.model_dir, mixture_or_task_name=run.mixture_or_task_name,
                          seed=run.seed, prompt_init=run.prompt_init, run_name=run.run_name,
                          mesh_shape=(1, 1), **_common(toy_backbone, 4))
    for name in ("step_0", "step_2", "final", "best"):
      a, meta_a = prompt_files.load_prompt(os.path.join(packed[i]["model_dir"], "prompts", name))
      b, meta_b = prompt_files.load_prompt(os.path.join(alone["model_dir"], "prompts", name))
      # Last-bit differences of the batched matmuls; Adafactor's per-element normalisation
      # amplifies them where a gradient is near zero (after 4 steps of learning rate 0.3: up
      # to ~2e-4 seen on two CPUs with XLA's MLIR fusion emitters, 5.0e-4 in one of 256
      # elements with its elemental emitter, the suite's setting: tests/compile_flags.py),
      # so runs are compared over few steps; the one-step test below pins the update itself
      # to 1e-6.
      np.testing.assert_allclose(a, b, rtol=0, atol=1e-3, err_msg=f"run {i} {name}")
      assert (meta_a.task, meta_a.seed, meta_a.step, meta_a.role, meta_a.run) == (
          meta_b.task, meta_b.seed, meta_b.step, meta_b.role, meta_b.run)
    evals = lambda h: [(x["step"], x["eval"]) for x in h if "eval" in x]
    assert evals(packed[i]["history"]) == evals(alone["history"])
    assert packed[i]["best"] == alone["best"]
    losses = lambda h: [x["loss"] for x in h if "loss" in x]
    np.testing.assert_allclose(losses(packed[i]["history"]), losses(alone["history"]),
                               rtol=1e-3)
  # Stopped at step 2 and restarted, the group continues exactly.
  multi_prompt.train_prompts(_runs(tmp_path / "split"), **_common(toy_backbone, 2))
  resumed = multi_prompt.train_prompts(_runs(tmp_path / "split"), **_common(toy_backbone, 4))
  for a, b in zip(packed, resumed):
    np.testing.assert_array_equal(
        prompt_files.load_prompt_array(os.path.join(a["model_dir"], "prompts", "final")),
        prompt_files.load_prompt_array(os.path.join(b["model_dir"], "prompts", "final")))
    assert a["best"] == b["best"]
  # The shared iterator gave both toy_first/seed 0 runs the same batches, other inits.
  a0 = prompt_files.load_prompt_array(str(tmp_path / "packed" / "run0" / "prompts" / "step_0"))
  a2 = prompt_files.load_prompt_array(str(tmp_path / "packed" / "run2" / "prompts" / "step_0"))
  assert not np.array_equal(a0, a2) and np.abs(a2).max() <= 0.5


class _SigtermAt(logging.Handler):
  """Sends this process a real SIGTERM when the training log reaches `text`, as a scheduler
  would mid-run (the trainer's handler takes it in the main thread)."""

  def __init__(self, text):
    super().__init__()
    self.text, self.sent = text, False

  def emit(self, record):
    if not self.sent and self.text in record.getMessage():
      self.sent = True
      os.kill(os.getpid(), signal.SIGTERM)


def _train_until_sigterm(runs, common, text):
  logger, handler = logging.getLogger("spot_jax.train"), _SigtermAt(text)
  level = logger.level
  logger.setLevel(logging.INFO)
  logger.addHandler(handler)
  try:
    with pytest.raises(preemption.Preempted, match="rerun the same command to resume"):
      multi_prompt.train_prompts(runs, **common)
  finally:
    logger.removeHandler(handler)
    logger.setLevel(level)
  assert handler.sent


@pytest.mark.slow
def test_sigterm_saves_every_packed_run_and_the_rerun_continues_exactly(toy_backbone, tmp_path):
  toy.register()
  common = dict(_common(toy_backbone, 6), log_period=1, checkpoint_period=6, eval_period=2,
                prompt_save_steps=())
  full = multi_prompt.train_prompts(_runs(tmp_path / "full"), **common)
  cut = _runs(tmp_path / "cut")
  _train_until_sigterm(cut, common, "step 3/6, 3 packed runs")  # after the step-2 validation
  for run in cut:
    assert sorted(os.listdir(os.path.join(run.model_dir, "checkpoints"))) == ["3"]
  # Stopped again at the last step: the checkpoint is there, the final outputs are not yet.
  _train_until_sigterm(cut, common, "step 6/6, 3 packed runs")
  assert not os.path.exists(os.path.join(cut[0].model_dir, "prompts", "final.npy"))
  resumed = multi_prompt.train_prompts(cut, **common)
  evals = lambda out: [(h["step"], h["eval"]) for h in out["history"] if "eval" in h]
  for a, b in zip(full, resumed):
    assert evals(b) == evals(a) and [s for s, _ in evals(a)] == [2, 4, 6], "the whole curve"
    assert b["best"] == a["best"]
    np.testing.assert_array_equal(
        prompt_files.load_prompt_array(os.path.join(a["model_dir"], "prompts", "final")),
        prompt_files.load_prompt_array(os.path.join(b["model_dir"], "prompts", "final")))


@pytest.mark.slow
def test_runs_at_different_steps_are_refused(toy_backbone, tmp_path):
  toy.register()
  runs = _runs(tmp_path)
  trainer.train(model_dir=runs[0].model_dir, mixture_or_task_name="toy_first", mesh_shape=(1, 1),
                **dict(_common(toy_backbone, 2), eval_period=0))
  with pytest.raises(ValueError, match="at different steps"):
    multi_prompt.train_prompts(runs, **_common(toy_backbone, 4))


@pytest.mark.slow
@pytest.mark.parametrize("num_microbatches", [1, 2])
def test_one_packed_update_is_each_runs_own_update(toy_backbone, num_microbatches):
  """The packed step's loss, gradient and Adafactor update of every run equal that run's
  own `train_step` on its own batch, split into the same microbatches."""
  import functools
  import jax
  import jax.numpy as jnp
  from spot_jax.model.t5 import T5
  from spot_jax.training import optimizer
  from spot_jax.training.train_step import init_state, train_step
  config, backbone, _ = toy_backbone
  params = checkpoints.load_frozen_model(backbone, config, 0)
  tx = optimizer.spot_prompt_optimizer()
  rs = np.random.RandomState(0)
  n, b = 3, 4
  batch = {"encoder_input_tokens": rs.randint(3, 300, (n, b, 16)).astype(np.int32),
           "decoder_input_tokens": rs.randint(3, 300, (n, b, 8)).astype(np.int32),
           "decoder_target_tokens": rs.randint(3, 300, (n, b, 8)).astype(np.int32),
           "decoder_loss_weights": (rs.rand(n, b, 8) > 0.3).astype(np.int32)}
  prompts = jnp.asarray(rs.normal(size=(n, 4, 64)), jnp.float32)
  states = jax.vmap(lambda p: init_state(p, tx))(prompts)
  rng = jax.random.PRNGKey(0)
  # Each step compiled once, as the trainers run them (op by op they take ~10x longer).
  step = jax.jit(functools.partial(packed_step.multi_train_step, model=T5(config), tx=tx,
                                   num_microbatches=num_microbatches))
  own_step = jax.jit(functools.partial(train_step, model=T5(config), tx=tx, mode="prompt",
                                       num_microbatches=num_microbatches))
  packed, metrics = step(states, params, batch, rng)
  for i in range(n):
    alone, m = own_step(init_state(prompts[i], tx), params, jax.tree.map(lambda x: x[i], batch),
                        rng)
    np.testing.assert_allclose(packed.params[i], alone.params, rtol=0, atol=1e-6)
    for key in ("loss", "accuracy", "grad_norm"):
      # Summing microbatches adds float32 reassociation (seen: 1.4e-6 relative).
      np.testing.assert_allclose(metrics[key][i], m[key], rtol=1e-6 * num_microbatches ** 2)


@pytest.mark.slow
def test_a_packed_group_on_cpu_measures_its_split_and_a_resume_repeats_it(toy_backbone,
                                                                         tmp_path, monkeypatch):
  """With no split or budget given, a packed group whose batch needs splitting times its
  packed step at each candidate split (from the budget's to one row of the group's examples
  per microbatch) and trains with the fastest; the record keeps the
  choice and the times, and the resumed group repeats the split without measuring, bit for
  bit, as does another group of the same shapes in the same process. (The CPU budget is
  shrunk so the toy model needs splitting: 4 rows of 8 fit it.)"""
  import json
  from spot_jax.training import microbatch_probe, microbatching
  toy.register()
  config = toy_backbone[0]
  row = len(RUNS) * microbatching.activation_bytes_per_example(
      config, LENGTHS["inputs"] + 4, LENGTHS["targets"])
  monkeypatch.setattr(microbatching, "CPU_BUDGET_GB", 4.5 * row / 2**30)
  monkeypatch.setattr(microbatching, "PROBE_MIN_STEPS_PER_CANDIDATE", 0)  # 1- and 2-step runs
  monkeypatch.setattr(microbatch_probe, "_MEASURED", {})
  timed, measure = [], microbatch_probe.seconds_per_step

  def counting(*args):
    timed.append(list(args[-1]))
    return measure(*args)
  monkeypatch.setattr(microbatch_probe, "seconds_per_step", counting)
  common = lambda steps: dict(_common(toy_backbone, steps), eval_period=0, log_period=1,
                              prompt_save_steps=())
  cut = _runs(tmp_path / "cut")
  multi_prompt.train_prompts(cut, **common(2))
  assert timed == [[2, 4, 8]]
  record = json.loads(open(os.path.join(cut[0].model_dir, microbatching.RECORD_FILE)).read())
  seconds = {int(k): v for k, v in record["probe_seconds_per_step"].items()}
  assert set(seconds) == {2, 4, 8} and all(v > 0 for v in seconds.values())
  chosen = record["num_microbatches"]
  assert record["budget_num_microbatches"] == 2 and record["examples_per_row"] == len(RUNS)
  assert chosen == microbatching.fastest(seconds, 2)
  resumed = multi_prompt.train_prompts(cut, **common(4))
  assert timed == [[2, 4, 8]]
  full = multi_prompt.train_prompts(_runs(tmp_path / "full"), num_microbatches=chosen,
                                    **common(4))
  for a, b in zip(resumed, full):
    losses = lambda out: [h["loss"] for h in out["history"] if "loss" in h]
    assert losses(a) == losses(b)[2:] and len(losses(a)) == 2
    np.testing.assert_array_equal(
        prompt_files.load_prompt_array(os.path.join(a["model_dir"], "prompts", "final")),
        prompt_files.load_prompt_array(os.path.join(b["model_dir"], "prompts", "final")))
  other = _runs(tmp_path / "other")
  multi_prompt.train_prompts(other, **common(1))
  assert timed == [[2, 4, 8]]
  assert json.loads(open(os.path.join(other[0].model_dir, microbatching.RECORD_FILE)).read())[
      "probe_seconds_per_step"] == record["probe_seconds_per_step"]
