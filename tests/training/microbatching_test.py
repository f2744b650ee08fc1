"""The microbatch count from a memory budget: the activation count against XLA's own memory
analysis of the compiled step, the choice, and the record a resumed run repeats."""
import functools
import json

import jax
import jax.numpy as jnp
import pytest

from spot_jax.model.config import T5Config
from spot_jax.model.t5 import T5, init_params
from spot_jax.training import microbatching, optimizer, partitioning
from spot_jax.training.partitioned_step import PartitionedTrainer

GB = 2**30
CONFIG = T5Config(vocab_size=256, emb_dim=64, num_heads=4, head_dim=16, mlp_dim=128,
                  num_encoder_layers=2, num_decoder_layers=2)


def _xla_temp_bytes(config, batch, enc_len, dec_len, prompt_length=0):
  """XLA's temporary buffers (the step's working set) of the compiled prompt-tuning step."""
  mesh = partitioning.make_mesh(1, 1, jax.devices()[:1])
  trainer = PartitionedTrainer(T5(config), optimizer.spot_prompt_optimizer(), "prompt", mesh)
  params = trainer.place(init_params(config, jax.random.PRNGKey(0)), trainer.frozen_sharding)
  state = trainer.init_state(jnp.zeros((prompt_length, config.emb_dim)))
  ids = jnp.ones((batch, enc_len - prompt_length), jnp.int32)
  targets = jnp.ones((batch, dec_len), jnp.int32)
  batch = {"encoder_input_tokens": ids, "decoder_input_tokens": targets,
           "decoder_target_tokens": targets, "decoder_loss_weights": targets}
  compiled = trainer.jitted_step().lower(state, params, batch, jax.random.PRNGKey(1)).compile()
  return compiled.memory_analysis().temp_size_in_bytes


# Long inputs, narrow layers of Small's head size: the attention weights are most of what a
# step keeps.
ATTENTION_BOUND = T5Config(vocab_size=256, emb_dim=32, num_heads=2, head_dim=64, mlp_dim=64,
                           num_encoder_layers=2, num_decoder_layers=2)


@functools.lru_cache(maxsize=None)  # two tests ask for ATTENTION_BOUND's at 320 + 4 tokens
def _temp_growth_per_example(config, enc_len, dec_len):
  small, large = 2, 8
  return (_xla_temp_bytes(config, large, enc_len, dec_len, 16)
          - _xla_temp_bytes(config, small, enc_len, dec_len, 16)) / (large - small)


@pytest.mark.slow
@pytest.mark.parametrize("config,enc_len,dec_len", [(CONFIG, 192, 8), (CONFIG, 64, 32),
                                                    (ATTENTION_BOUND, 320, 4)])
def test_activation_count_tracks_xla_memory_analysis(config, enc_len, dec_len):
  """The per-example count is what the compiled step's temporaries grow by per example."""
  grow = _temp_growth_per_example(config, enc_len, dec_len)
  estimate = microbatching.activation_bytes_per_example(config, enc_len, dec_len)
  assert 0.6 * grow <= estimate <= 1.6 * grow, (estimate, grow)


@pytest.mark.slow
@pytest.mark.parametrize("dropout_rate", [0.1, 0.0])
def test_a_step_keeps_one_copy_of_each_layers_attention_weights(dropout_rate):
  """With or without dropout, a step keeps each encoder layer's softmax output once (the
  count's one float32 `[H, L, L]` per layer): what it keeps beyond the count is less than
  half of one such array per layer. Autodiff of dropout then the product kept the dropped
  weights too (one more array per layer); without dropout it kept more still."""
  config = ATTENTION_BOUND.replace(dropout_rate=dropout_rate)
  enc_len = 320
  grow = _temp_growth_per_example(config, enc_len, 4)
  estimate = microbatching.activation_bytes_per_example(config, enc_len, 4)
  weights = 4 * config.num_heads * enc_len * enc_len
  assert grow - estimate < 0.5 * weights * config.num_encoder_layers, (grow, estimate, weights)


def test_remat_keeps_less():
  full = microbatching.activation_bytes_per_example(CONFIG, 612, 16)
  remat = microbatching.activation_bytes_per_example(CONFIG.replace(remat=True), 612, 16)
  assert remat < full / 1.5


@pytest.mark.parametrize("per_example_gb,budget,expected", [
    (0.1, 4.0, 1),    # the whole batch fits
    (0.3, 3.0, 4),    # 32 * 0.3 = 9.6 GB: 8 per microbatch (2.4 GB) is the largest that fits
    (0.3, 2.3, 8),    # 8 would be 2.4 GB: 4 per microbatch
    (5.0, 3.0, 32),   # nothing fits: one example per microbatch
])
def test_fewest_microbatches_that_fit(per_example_gb, budget, expected):
  assert microbatching.choose_num_microbatches(32, int(per_example_gb * GB), budget) == expected


def test_small_at_spots_shapes_takes_two_examples_per_microbatch_on_cpu():
  """Small, batch 32, 100 + 512 encoder tokens, 16 targets, the CPU budget: 16 microbatches
  of two examples (about 0.21 GB of activations each, one copy of the attention weights;
  with two copies one example per microbatch was all that fitted)."""
  from spot_jax.model.config import get_config
  per_example = microbatching.activation_bytes_per_example(get_config("small"), 612, 16)
  assert microbatching.choose_num_microbatches(32, per_example,
                                               microbatching.CPU_BUDGET_GB) == 16
  # The main job's tiny model trains its batch whole.
  tiny = microbatching.activation_bytes_per_example(CONFIG, 84, 8)
  assert microbatching.choose_num_microbatches(16, tiny, microbatching.CPU_BUDGET_GB) == 1


@pytest.mark.parametrize("batch,budget", [(0, 1.0), (8, 0.0), (8, -1.0)])
def test_bad_settings_raise(batch, budget):
  with pytest.raises(ValueError):
    microbatching.choose_num_microbatches(batch, 1, budget)


def test_resumed_run_repeats_the_recorded_choice(tmp_path):
  k = microbatching.resolve(str(tmp_path), CONFIG, 32, 612, 16, budget_gb=0.01)
  record = json.loads((tmp_path / microbatching.RECORD_FILE).read_text())
  assert record["num_microbatches"] == k > 1
  # A larger budget later (another machine) does not change a resumed run's split.
  assert microbatching.resolve(str(tmp_path), CONFIG, 32, 612, 16, budget_gb=100.0) == k
  (tmp_path / microbatching.RECORD_FILE).write_text(json.dumps({"num_microbatches": 5}))
  with pytest.raises(ValueError, match="does not split the per-device batch 32"):
    microbatching.resolve(str(tmp_path), CONFIG, 32, 612, 16)


def test_on_cpu_the_probe_times_the_splits_from_the_budgets_to_one_row():
  """The probe times the budget's split and every finer one, never a coarser one (the budget
  is a memory ceiling for the probe's steps too). Small at SPoT's shapes: 2 examples per
  microbatch fit the CPU budget, so 16 and 32 microbatches are timed; with twice the
  activations 32 would be the only candidate. Nothing is offered where the choice is not
  the probe's."""
  import types
  from spot_jax.model.config import get_config
  per_example = microbatching.activation_bytes_per_example(get_config("small"), 612, 16)
  assert microbatching.choose_num_microbatches(32, per_example, microbatching.CPU_BUDGET_GB) == 16
  assert microbatching.probe_candidates(32, per_example) == [16, 32]
  assert microbatching.probe_candidates(32, 2 * per_example) == [32]
  assert microbatching.probe_candidates(32, per_example, budget_gb=0.5) == []  # the user's
  gpu = types.SimpleNamespace(platform="gpu")
  assert microbatching.probe_candidates(32, per_example, device=gpu) == []
  tiny = microbatching.activation_bytes_per_example(CONFIG, 84, 8)
  assert microbatching.probe_candidates(16, tiny) == []  # the batch fits whole
  # Finer splits than the budget's are timed, down to one row per microbatch (a packed row of
  # many runs' examples): 4 rows fit the budget.
  row = int(0.12 * 2**30)
  assert microbatching.choose_num_microbatches(16, row, microbatching.CPU_BUDGET_GB) == 4
  assert microbatching.probe_candidates(16, row) == [4, 8, 16]


def _small_with_two_examples_per_budget(monkeypatch):
  """Small's config, with the CPU budget shrunk to two SPoT-shaped examples (612 + 16
  tokens), so a batch of 32 splits into 16 by the budget and the probe also times 32."""
  from spot_jax.model.config import get_config
  small = get_config("small")
  per_example = microbatching.activation_bytes_per_example(small, 612, 16)
  monkeypatch.setattr(microbatching, "CPU_BUDGET_GB", 2.5 * per_example / 2**30)
  return small


@pytest.mark.parametrize("seconds,chosen", [({16: 1.0, 32: 1.5}, 16), ({16: 1.5, 32: 1.0}, 32),
                                            ({16: 1.0, 32: 1.0}, 16), ({16: 1.09, 32: 1.0}, 16)])
def test_resolve_takes_the_fastest_measured_split_and_records_it(tmp_path, monkeypatch,
                                                                 seconds, chosen):
  small = _small_with_two_examples_per_budget(monkeypatch)
  asked = []

  def probe(candidates):
    asked.append(list(candidates))
    return seconds
  assert microbatching.resolve(str(tmp_path), small, 32, 612, 16, probe=probe) == chosen
  assert asked == [[16, 32]]
  record = json.loads((tmp_path / microbatching.RECORD_FILE).read_text())
  assert record["num_microbatches"] == chosen
  assert record["probe_seconds_per_step"] == {str(k): v for k, v in seconds.items()}
  assert record["activation_memory_gb"] == microbatching.CPU_BUDGET_GB
  assert record["budget_num_microbatches"] == 16  # two examples per microbatch fit the budget
  # Resumed: the recorded split, measured no more.
  assert microbatching.resolve(str(tmp_path), small, 32, 612, 16, probe=probe) == chosen
  assert asked == [[16, 32]]


def test_the_budgets_split_stays_unless_another_is_clearly_faster():
  """Steps within TIMING_TOLERANCE of the shortest count as equal: the budget's split is kept
  among them, else the one nearest it, so timing noise rarely moves a rerun's choice."""
  fastest = microbatching.fastest
  assert microbatching.TIMING_TOLERANCE == 0.1
  assert fastest({2: 0.73, 4: 0.50, 8: 0.66, 16: 0.49}, 2) == 4  # 4 and 16 alike; 4 nearer 2
  assert fastest({2: 0.53, 4: 0.50, 8: 0.66, 16: 0.49}, 2) == 2
  assert fastest({2: 0.73, 4: 0.60, 8: 0.50, 16: 0.49}, 4) == 8
  assert fastest({4: 1.0, 16: 1.0}, 8) == 16  # as near: the finer
  assert fastest({4: 1.0, 16: 1.05}) == 16  # no budget's split: the finest of the fastest


def test_a_short_run_takes_the_budgets_split_without_measuring(tmp_path, monkeypatch):
  """Each candidate costs a compile and a few steps: a run shorter than
  PROBE_MIN_STEPS_PER_CANDIDATE steps per candidate would not win that time back."""
  small = _small_with_two_examples_per_budget(monkeypatch)
  asked = []

  def probe(candidates):
    asked.append(list(candidates))
    return {16: 1.5, 32: 1.0}
  short = 2 * microbatching.PROBE_MIN_STEPS_PER_CANDIDATE - 1
  assert microbatching.resolve(str(tmp_path / "short"), small, 32, 612, 16, probe=probe,
                               train_steps=short) == 16
  assert asked == []
  assert "probe_seconds_per_step" not in json.loads(
      (tmp_path / "short" / microbatching.RECORD_FILE).read_text())
  assert microbatching.resolve(str(tmp_path / "long"), small, 32, 612, 16, probe=probe,
                               train_steps=short + 1) == 32
  assert asked == [[16, 32]]
