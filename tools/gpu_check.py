r"""The accelerator check of issue "Faster than PEFT": one prepared run for a session lent a
GPU. It measures the chip's bf16 matmul rate, then prompt tuning with `tools/bench.py` at
each size (bf16, batch 32, inputs 512 + a 100-token prompt, targets 16, random weights) and
the PEFT reference at the smaller sizes, and prints a table: examples/s, MFU against the
measured matmul rate, device peak memory, and spot_jax's speed over PEFT's.

  python tools/gpu_check.py --out gpu_check.json                 # on the GPU machine
  python tools/gpu_check.py --sizes tiny --peft_sizes tiny --batch 2 --inputs 16 \
      --targets 4 --prompt_length 4 --matmul_n 256 --steps 1     # a dry run on CPU

Each measurement is a separate `bench.py` process (a failure, e.g. out of memory at XXL, is
recorded and the rest go on), with a per-run time limit so the whole check fits the
session's device time. Needs jax (and torch, transformers, peft for the reference); no
seqio or TensorFlow.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def matmul_rate(n: int, dtype: str, repeats: int = 10) -> dict:
  """The chip's sustained rate on an n x n x n matmul, GFLOP/s (the MFU denominator). JAX in
  this process takes only what it uses (no preallocation), so the bench runs it starts after
  get the device's memory as a user's run would."""
  os.environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "false"
  import jax
  ka, kb = jax.random.split(jax.random.PRNGKey(0))
  a = jax.random.normal(ka, (n, n), dtype)  # random data: zeros or ones run faster than real
  b = jax.random.normal(kb, (n, n), dtype)
  f = jax.jit(lambda x, y: x @ y)
  f(a, b).block_until_ready()
  start = time.perf_counter()
  for _ in range(repeats):
    out = f(a, b)
  out.block_until_ready()
  seconds = (time.perf_counter() - start) / repeats
  return {"n": n, "dtype": dtype, "gflops_per_s": 2 * n ** 3 / seconds / 1e9,
          "device_kind": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform}


def bench(args, size: str, reference: str, timeout: float) -> dict:
  cmd = [sys.executable, os.path.join(HERE, "bench.py"), "--mode", "prompt", "--size", size,
         "--batch", str(args.batch), "--inputs", str(args.inputs), "--targets",
         str(args.targets), "--prompt_length", str(args.prompt_length), "--dtype", args.dtype,
         "--steps", str(args.steps), "--warmup", str(args.warmup), "--reference", reference,
         "--roofline_n", "0"]  # this tool measures the chip's rate itself
  if reference == "jax" and args.param_dtype:
    cmd += ["--param_dtype", args.param_dtype]
  start = time.time()
  try:
    env = {k: v for k, v in os.environ.items() if k != "XLA_PYTHON_CLIENT_PREALLOCATE"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
  except subprocess.TimeoutExpired:
    return {"size": size, "reference": reference, "error": f"timeout after {timeout:.0f}s"}
  if proc.returncode:
    return {"size": size, "reference": reference, "error": proc.stderr.strip()[-800:],
            "wall_s": time.time() - start}
  return dict(json.loads(proc.stdout.strip().splitlines()[-1]), wall_s=time.time() - start)


def table(rate: dict, rows: list) -> str:
  peft = {r["size"]: r for r in rows if r.get("reference") == "peft" and "error" not in r}
  lines = [f"bf16 matmul rate ({rate['n']}^3, {rate['device_kind']}): "
           f"{rate['gflops_per_s'] / 1e3:.1f} TFLOP/s", "",
           "| run | size | examples/s | MFU | device peak GB | vs PEFT |", "|---|---|---|---|---|---|"]
  for r in rows:
    if "error" in r:
      lines.append(f"| {r['reference']} | {r['size']} | failed: "
                   f"{r['error'].splitlines()[-1][:80] if r['error'] else ''} | | | |")
      continue
    mfu = r["gflops_per_s"] / rate["gflops_per_s"]
    ratio = ""
    if r["reference"] == "jax" and r["size"] in peft:
      ratio = f"{r['examples_per_s'] / peft[r['size']]['examples_per_s']:.2f}x"
    peak = "n/a" if r.get("device_peak_gb") is None else f"{r['device_peak_gb']:.1f}"
    lines.append(f"| {r['reference']} | {r['size']} | {r['examples_per_s']:.1f} | "
                 f"{100 * mfu:.0f}% | {peak} | {ratio} |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", nargs="+", default=["base", "large", "xl", "xxl"])
  p.add_argument("--peft_sizes", nargs="*", default=["base", "large"])
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--inputs", type=int, default=512)
  p.add_argument("--targets", type=int, default=16)
  p.add_argument("--prompt_length", type=int, default=100)
  p.add_argument("--dtype", default="bfloat16")
  p.add_argument("--param_dtype", default="bfloat16",
                 help="frozen weights' dtype (bf16 halves XXL's 44 GB)")
  p.add_argument("--steps", type=int, default=5)
  p.add_argument("--warmup", type=int, default=1)
  p.add_argument("--matmul_n", type=int, default=8192)
  p.add_argument("--timeout", type=int, default=150, help="seconds per bench run at most")
  p.add_argument("--budget_s", type=float, default=None,
                 help="seconds for all bench runs together: a run gets at most what is left "
                      "(sizes run in the order given, the default smallest first, so a lease's "
                      "end costs only the largest)")
  p.add_argument("--out", help="write every measurement as JSON here")
  args = p.parse_args(argv)
  start = time.time()
  rate = matmul_rate(args.matmul_n, args.dtype)
  print(f"matmul: {json.dumps(rate)}", flush=True)
  rows = []
  runs = [(size, ref) for size in args.sizes
          for ref in (("jax", "peft") if size in args.peft_sizes else ("jax",))]
  for size, reference in runs:
    left = args.timeout if args.budget_s is None else args.budget_s - (time.time() - start)
    if left < 10:
      rows.append({"size": size, "reference": reference, "error": "not run: budget spent"})
    else:
      rows.append(bench(args, size, reference, min(args.timeout, left)))
    print(f"run: {json.dumps(rows[-1])[:1500]}", flush=True)
    result = {"matmul": rate, "runs": rows, "table": table(rate, rows)}
    if args.out:  # after every run: a command cut short still returns what it measured
      with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
  print(result["table"], end="", flush=True)
  return result


if __name__ == "__main__":
  main()
