"""Times a run's train step at each candidate number of microbatches, so that a CPU run takes
the split that is fastest on its own CPU (`microbatching.resolve(probe=...)`): one run's
partitioned step (`trainer.train`) or a packed group's (`multi_prompt.train_prompts`).

Each candidate's step is compiled, run once (caches warm), then timed (the shortest of up to
`MAX_TIMED_STEPS`), on a copy of the run's state and a batch of the run's shapes; the run's
own state and data are untouched.
`measured_once` keeps one process's measurements, so the runs of one command that share a
model and shapes (e.g. `spot_jax.spot`'s, or a study's groups) measure once. TensorFlow-free,
like the step."""
import time
from typing import Any, Callable, Dict, Hashable, Mapping, Sequence, Tuple

import jax
import numpy as np

# prepare(k) -> (step, state): `step(state) -> (state, metrics)` at k microbatches, and a
# state it may donate.
Prepare = Callable[[int], Tuple[Callable[[Any], Tuple[Any, Any]], Any]]


def batch_from_spec(element_spec: Mapping[str, Any], lead: tuple = ()):
  """A batch of a dataset's `element_spec` (tf.TensorSpecs, read by attribute: no TensorFlow
  import here), each array with `lead` dimensions in front (a packed group's runs); every
  token 1 and every loss weight 1 (a step's time does not depend on the values)."""
  return {k: np.ones(lead + tuple(v.shape), v.dtype.as_numpy_dtype)
          for k, v in element_spec.items()}


def shapes_key(batch: Mapping[str, np.ndarray]) -> tuple:
  """The batch's part of a `measured_once` key: its arrays' names and shapes."""
  return tuple((k, v.shape) for k, v in batch.items())


# Each candidate's timed steps: until they add up to MIN_TIMED_S, at most MAX_TIMED_STEPS
# (one step of Small at SPoT's shapes takes 14-24 s on 2 cores: one is timed; a packed step
# of the main job's stages 0.5-1 s: two or three, the shortest kept, which is less moved by
# the rest of the machine than one timing).
MIN_TIMED_S = 1.0
MAX_TIMED_STEPS = 3


def seconds_per_step(prepare: Prepare, candidates: Sequence[int]) -> Dict[int, float]:
  """{k: the shortest timed step at k microbatches} for every candidate `k`."""
  seconds = {}
  for k in candidates:
    step, state = prepare(k)
    state, _ = step(state)  # compiles, warms the caches
    jax.block_until_ready(state)
    times = []
    while not times or (sum(times) < MIN_TIMED_S and len(times) < MAX_TIMED_STEPS):
      start = time.perf_counter()
      state, metrics = step(state)
      jax.block_until_ready((state, metrics))
      times.append(time.perf_counter() - start)
    seconds[k] = min(times)
    del state, metrics, step
  return seconds


_MEASURED: Dict[tuple, Dict[int, float]] = {}


def measured_once(key: Hashable, measure: Callable[[Sequence[int]], Dict[int, float]],
                  candidates: Sequence[int]) -> Dict[int, float]:
  """`measure(candidates)` once per process for a `key` (the model, mode, prompt length,
  mesh and batch shapes that decide the step's time)."""
  key = (key, tuple(candidates))
  if key not in _MEASURED:
    _MEASURED[key] = measure(candidates)
  return _MEASURED[key]
