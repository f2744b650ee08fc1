"""How a command line imports its libraries: with Python's cyclic garbage collector paused,
then `gc.freeze()` on what the imports built.

Importing TensorFlow, seqio, JAX and the task registry builds about a million long-lived
objects (modules, functions, protobuf descriptors, registered tasks), none of them garbage.
With the collector on, the growing heap sets off full collections that walk all of it
again, about a fifth of `import spot_jax.training.trainer`'s CPU (1.3 of 6.5-7 s on 2 AMD
EPYC cores); every later full collection of a run walks it too (docs/development.md).
Paused, nothing is walked; frozen, the objects move to the permanent generation, which
later collections skip.

Only commands call this (`gin_flags.run_command` for `python -m spot_jax.{train,eval,infer,
spot}`, `pipeline.main`, `python -m spot_jax.cli.zero_shot`): importing spot_jax as a
library leaves the caller's collector as it was."""
import contextlib
import gc
from typing import Iterator


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
  """Runs the block (the command's imports and registrations) with the collector paused,
  then freezes every object tracked so far and restores the collector's state, also when
  the block raises. What is garbage before the block is collected first, so only the
  block's own leftovers can be frozen: at a process's start that collection walks a few
  thousand objects; called again later (a test calling `main`), it walks what is not yet
  frozen, and nothing already garbage is kept for the life of the process."""
  enabled = gc.isenabled()
  gc.collect()
  gc.disable()
  try:
    yield
  finally:
    gc.freeze()
    if enabled:
      gc.enable()
