"""SIGTERM as schedulers and preemptible TPU VMs send it: inside a training loop it asks the
loop to save a checkpoint at the end of the current step and stop, as T5X saves on
preemption, so the rerun of the same command resumes from that step."""
import contextlib
import logging
import signal
import threading
from typing import Callable, Iterator

log = logging.getLogger("spot_jax.train")
EXIT_CODE = 128 + signal.SIGTERM  # what a shell reports for a job ended by SIGTERM


class Preempted(RuntimeError):
  """The run saved a checkpoint at `step` and stopped on SIGTERM."""

  def __init__(self, model_dir: str, step: int):
    super().__init__(f"stopped by SIGTERM after saving a checkpoint of {model_dir} at step "
                     f"{step}; rerun the same command to resume from there")
    self.model_dir, self.step = model_dir, step


@contextlib.contextmanager
def sigterm_requests() -> Iterator[Callable[[], bool]]:
  """Within the block SIGTERM sets a flag instead of ending the process; yields the function
  that reads it. Outside the main thread (where Python cannot take signals) it never fires."""
  if threading.current_thread() is not threading.main_thread():
    yield lambda: False
    return
  received = []

  def handler(signum, frame):  # pylint: disable=unused-argument
    if not received:
      log.warning("SIGTERM: saving a checkpoint at the end of this step, then stopping")
    received.append(signum)

  previous = signal.signal(signal.SIGTERM, handler)
  try:
    yield lambda: bool(received)
  finally:
    signal.signal(signal.SIGTERM, previous)
