"""How tools/bench.py and its PyTorch reference time a step: warm-up calls, then timed ones
(wall and process CPU), the process's peak resident memory, and random token batches."""
import resource
import time


def peak_rss_gb() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def timed(fn, steps: int, warmup: int):
  """Runs `fn` warmup + steps times; returns wall and process-CPU seconds of each timed step
  and the last output. CPU seconds (all threads) say more than wall time on a shared machine."""
  out = None
  for _ in range(warmup):
    out = fn()
  times, cpu = [], []
  for _ in range(steps):
    start, start_cpu = time.perf_counter(), time.process_time()
    out = fn()
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - start_cpu)
  return times, cpu, out


def random_tokens(rng, batch, length, vocab):
  return rng.randint(2, vocab, size=(batch, length))  # no padding: every position counts
