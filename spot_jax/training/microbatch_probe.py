"""Times a run's train step at each candidate number of microbatches, so that a CPU run takes
the split that is fastest on its own CPU (`microbatching.resolve(probe=...)`).

Each candidate's step is compiled, run once (caches warm), then timed once, on a copy of the
run's state and a batch of the run's shapes; the run's own state and data are untouched, and
the chosen step's compile is the one the run then uses. TensorFlow-free, like the step."""
import time
from typing import Callable, Dict, Mapping, Sequence

import jax
import numpy as np

from spot_jax.training.partitioned_step import PartitionedTrainer
from spot_jax.training.train_step import TrainState


def batch_like(shapes: Mapping[str, tuple], dtypes: Mapping[str, np.dtype]):
  """A batch of these shapes and dtypes, every token 1 and every loss weight 1 (a step's time
  does not depend on the values)."""
  return {name: np.ones(shape, dtypes[name]) for name, shape in shapes.items()}


def seconds_per_step(make_trainer: Callable[[int], PartitionedTrainer],
                     fresh_state: Callable[[PartitionedTrainer], TrainState], frozen, batch,
                     rng, candidates: Sequence[int]) -> Dict[int, float]:
  """{k: seconds of one step at k microbatches} for every candidate `k`."""
  seconds = {}
  for k in candidates:
    trainer = make_trainer(k)
    state = fresh_state(trainer)  # the step donates it
    placed = trainer.place(batch, trainer.batch_sharding)
    state, _ = trainer.step(state, frozen, placed, rng)  # compiles, warms the caches
    jax.block_until_ready(state)
    start = time.perf_counter()
    state, metrics = trainer.step(state, frozen, placed, rng)
    jax.block_until_ready((state, metrics))
    seconds[k] = time.perf_counter() - start
    del state
  return seconds
