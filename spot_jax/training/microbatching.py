"""How many microbatches a step needs: the fewest whose activations fit a memory budget.

A training step keeps every layer's activations alive until the backward pass reaches it; at
SPoT's shapes (batch 32, 100 + 512 encoder tokens) that is what decides the step's peak memory
(Small, float32: about 0.3 GB per example, 10 GB for the whole batch; the frozen weights are
0.3 GB). Splitting the batch into `k` microbatches (gradients accumulated, the same update) divides
it by `k`; fewer, larger microbatches run faster. `choose_num_microbatches` takes the fewest that
fit `activation_memory_gb` (per device), from `activation_bytes_per_example`: the arrays the
backward pass of one example needs, counted per layer. tests/training/microbatching_test.py
holds the count to XLA's own `memory_analysis()` of the compiled step.

On CPU, which split runs fastest depends on the CPU, so a run (one, or a packed group) whose
user set neither the number nor the budget measures it (`probe_candidates`,
`resolve(probe=...)`): it times its step at every split from the budget's down to one row
per microbatch (never coarser: the budget is a memory ceiling, and the probe's own steps
stay under it) and keeps the fastest (`fastest`: the budget's split unless another is more
than `TIMING_TOLERANCE` faster), when the run is long enough to win the time back
(`PROBE_MIN_STEPS_PER_CANDIDATE`). Measured (Small, batch 32, 612 + 16 tokens): on 2 AMD
EPYC cores with AVX2 one example per microbatch ran fastest (1.18 examples/s, 1.13 at 2
examples); with AVX-512 one example ran 1-16% slower than two (1.9-2.1 against 2.2-2.3
examples/s, one sitting) once attention stopped handing XLA a softmax with a unit batch
dimension (layers.py). Since attention keeps one copy of its weights for the backward pass
(`layers.dropped_weighted_values`), two examples fit the CPU budget, so the probe times 16
and 32 microbatches there (docs/speed.md). The main job's packed stages (rows of 14 or 63
tiny examples) ran fastest at 4-16 microbatches, finer than their budget's 2.
"""
import json
import logging
import math
import os
from typing import Callable, Dict, List, Optional, Sequence

from spot_jax import atomic_files
from spot_jax.model.config import T5Config

# The default per-device budget for activations when the user sets none. On CPU small: measured
# with tools/bench.py (Small, batch 32, 612 + 16 tokens, AMD EPYC with AVX2), the step ran
# faster the smaller its microbatches, down to one example (1.18 examples/s at 1 example per
# microbatch, 1.13 at 2, 1.08 at 4, 1.03 at 8, 0.88 at 16), as one layer's attention scores
# then stay in the cache; peak memory fell from 7.2 GB to 1.4 GB. A whole small batch of a
# small model still fits. Other CPUs differ: a run measures the finer splits (the probe
# above). On an accelerator, which needs large microbatches to be busy, this fraction of its
# memory (the rest: weights, optimizer state, XLA's workspace).
CPU_BUDGET_GB = 0.5
ACCELERATOR_BUDGET_FRACTION = 0.6
# Measured steps within this fraction of the shortest count as equally fast (the same
# command's step time moved 3-11% between runs on the machines measured), so a rerun on the
# same machine takes the same split unless a timing crosses this margin.
TIMING_TOLERANCE = 0.1
# A run measures only when it is long enough to win the time back: each candidate costs a
# compile and two to four steps (about seven steps' time in the main job's source stage),
# and the best split measured saved at most a third of a step (1.5x), so about 20 steps per
# candidate. Shorter runs take the budget's split.
PROBE_MIN_STEPS_PER_CANDIDATE = 20
_GB = 2**30
RECORD_FILE = "microbatching.json"


def _itemsize(dtype: str) -> int:
  return 2 if dtype in ("bfloat16", "float16") else 4


def activation_bytes_per_example(config: T5Config, encoder_length: int, decoder_length: int,
                                 remat: Optional[bool] = None) -> int:
  """Bytes of the activations one example's backward pass keeps, at the step's lengths.

  Per encoder layer of length L (H heads of size K, width D, MLP width F): the attention
  weights after the softmax, counted in float32 (H * L * L; dropout's copy of them is not
  kept, `layers.dropped_weighted_values`), queries, keys, values and the attention output
  (4 * L * H * K), normed inputs and residual stream (3 * L * D), the MLP's two projections,
  their gated product and its dropout (4 * L * F). The decoder's layers have the same terms
  at length T, plus cross attention (H * T * L + 2 * L * H * K for its keys and values of
  the encoder output), and the float32 logits (2 * T * V: logits and softmax). With
  `remat` only each layer's input is kept, plus one layer's activations in flight.
  """
  c = config
  remat = c.remat if remat is None else remat
  L, T = encoder_length, decoder_length
  hk, d, f, h = c.num_heads * c.head_dim, c.emb_dim, c.mlp_dim, c.num_heads
  act = _itemsize(c.dtype)

  def layer(length, kv_length, cross: bool):
    scores = 4 * h * length * kv_length  # the softmax's output
    other = act * (4 * length * hk + 3 * length * d + 4 * length * f)
    if cross:
      scores += 4 * h * length * L
      other += act * (2 * length * hk + 2 * L * hk)
    return scores + other

  enc, dec = layer(L, L, False), layer(T, T, True)
  logits = 4 * 2 * T * c.vocab_size
  if remat:
    kept = act * d * (L * c.num_encoder_layers + T * c.num_decoder_layers)
    return kept + max(enc, dec) + logits
  return enc * c.num_encoder_layers + dec * c.num_decoder_layers + logits


def default_budget_gb(device=None) -> float:
  """CPU_BUDGET_GB on CPU; ACCELERATOR_BUDGET_FRACTION of an accelerator's memory."""
  import jax  # pylint: disable=g-import-not-at-top
  device = device or jax.devices()[0]
  if device.platform != "cpu":
    stats = device.memory_stats() if hasattr(device, "memory_stats") else None
    if stats and stats.get("bytes_limit"):
      return ACCELERATOR_BUDGET_FRACTION * stats["bytes_limit"] / _GB
  return CPU_BUDGET_GB


def choose_num_microbatches(batch_per_device: int, bytes_per_example: int,
                            budget_gb: float) -> int:
  """The fewest microbatches `k` (a divisor of the per-device batch) whose activations,
  `batch_per_device / k * bytes_per_example`, fit `budget_gb`; the per-device batch (one
  example per microbatch) when nothing fits, with a warning."""
  if batch_per_device < 1:
    raise ValueError(f"the per-device batch must be >= 1, got {batch_per_device}")
  if not budget_gb > 0:
    raise ValueError(f"activation_memory_gb must be > 0, got {budget_gb!r}")
  budget = budget_gb * _GB
  for k in range(1, batch_per_device + 1):
    if batch_per_device % k == 0 and batch_per_device // k * bytes_per_example <= budget:
      return k
  logging.warning("One example's activations (%.2f GB) exceed activation_memory_gb=%.2f; "
                  "training one example per microbatch. Lower the lengths or raise the budget.",
                  bytes_per_example / _GB, budget_gb)
  return batch_per_device


def fit(config: T5Config, batch_per_device: int, encoder_length: int, decoder_length: int,
        budget_gb: Optional[float] = None, examples_per_row: int = 1) -> int:
  """The fewest microbatches whose activations at these lengths fit `budget_gb` (None:
  `default_budget_gb()`). `examples_per_row` > 1: each of the `batch_per_device` rows is that
  many examples (packed runs, one example of each)."""
  budget = default_budget_gb() if budget_gb is None else budget_gb
  per_example = activation_bytes_per_example(config, encoder_length, decoder_length)
  k = choose_num_microbatches(batch_per_device, per_example * examples_per_row, budget)
  logging.info("num_microbatches=%d: %d x %d examples per device of about %.2f GB of "
               "activations each, within activation_memory_gb=%.2f", k, batch_per_device,
               examples_per_row, per_example / _GB, budget)
  return k


def probe_candidates(batch_per_device: int, bytes_per_example: int,
                     budget_gb: Optional[float] = None, device=None) -> List[int]:
  """The splits a run times before choosing (`resolve(probe=...)`), coarsest first: every
  divisor of the per-device batch from the fewest microbatches within `CPU_BUDGET_GB` to one
  row per microbatch (finer splits need less memory, and on some CPUs run faster: the main
  job's packed stages ran 1.4-1.6x faster at 8 microbatches than at the 2 or 4 that fit
  `CPU_BUDGET_GB`). Never coarser than the budget's: the probe's steps, like the run's, stay
  within it. Empty when the choice is not the probe's: a budget the user set (a hard limit),
  an accelerator (its fit is already its coarsest split), or a batch whose activations fit
  `CPU_BUDGET_GB` in one piece (it is not split). One split alone (the budget's is already
  one row per microbatch) leaves nothing to time; callers measure only two or more."""
  import jax  # pylint: disable=g-import-not-at-top
  device = device or jax.devices()[0]
  if budget_gb is not None or device.platform != "cpu":
    return []
  coarsest = choose_num_microbatches(batch_per_device, bytes_per_example, CPU_BUDGET_GB)
  if coarsest == 1:
    return []
  return [k for k in range(coarsest, batch_per_device + 1) if batch_per_device % k == 0]


def fastest(seconds_per_step: Dict[int, float], preferred: Optional[int] = None) -> int:
  """The split to train with, from measured seconds per step: among the splits within
  `TIMING_TOLERANCE` of the shortest step, `preferred` (the budget's split) if it is one of
  them, else the one nearest it (by factors of two; the finer when two are as near, or with
  no `preferred`: the finest, least memory)."""
  shortest = min(seconds_per_step.values())
  near = [k for k, s in seconds_per_step.items() if s <= shortest * (1 + TIMING_TOLERANCE)]
  if preferred is None:
    return max(near)
  return min(near, key=lambda k: (abs(math.log2(k / preferred)), -k))


def resolve(model_dir: str, config: T5Config, batch_per_device: int, encoder_length: int,
            decoder_length: int, budget_gb: Optional[float] = None,
            examples_per_row: int = 1,
            probe: Optional[Callable[[Sequence[int]], Dict[int, float]]] = None,
            train_steps: Optional[int] = None) -> int:
  """The number of microbatches of a run whose settings leave it to us: the one recorded in
  `model_dir/RECORD_FILE` when the run is resumed (the same split, so the same dropout masks
  and sums), else the measured or `fit(...)`'s, recorded. `probe(candidates)` gives seconds
  per step of each candidate split (`microbatch_probe.seconds_per_step`); it is called when
  `probe_candidates` has more than one (a CPU, no budget set) and the run's `train_steps`
  (None: a long run) are at least `PROBE_MIN_STEPS_PER_CANDIDATE` per candidate, and
  `fastest(seconds, fit's split)` is taken."""
  path = os.path.join(model_dir, RECORD_FILE)
  if os.path.exists(path):
    with open(path) as f:
      recorded = json.load(f)
    k = recorded.get("num_microbatches")
    if not isinstance(k, int) or k < 1 or batch_per_device % k:
      raise ValueError(f"{path}: num_microbatches={k!r} does not split the per-device batch "
                       f"{batch_per_device}; delete the file to choose again")
    logging.info("num_microbatches=%d, as recorded in %s", k, path)
    return k
  per_example = activation_bytes_per_example(config, encoder_length, decoder_length)
  candidates = (probe_candidates(batch_per_device, per_example * examples_per_row, budget_gb)
                if probe is not None else [])
  if train_steps is not None and train_steps < PROBE_MIN_STEPS_PER_CANDIDATE * len(candidates):
    candidates = []  # too short a run to win the measurement's time back
  budget = default_budget_gb() if budget_gb is None else budget_gb
  k = by_budget = fit(config, batch_per_device, encoder_length, decoder_length, budget,
                      examples_per_row)
  if len(candidates) > 1:
    seconds = probe(candidates)
    k = fastest(seconds, by_budget)
    logging.info("num_microbatches=%d: measured %s seconds per step (the budget's split: %d)",
                 k, {m: round(s, 4) for m, s in seconds.items()}, by_budget)
  record = {"num_microbatches": k, "activation_memory_gb": budget,
            "activation_bytes_per_example": per_example,
            "batch_per_device": batch_per_device, "examples_per_row": examples_per_row}
  if len(candidates) > 1:
    record["probe_seconds_per_step"] = {str(m): s for m, s in seconds.items()}
    record["budget_num_microbatches"] = by_budget
  atomic_files.write_atomically(path, (json.dumps(record, indent=1) + "\n").encode())
  return k
