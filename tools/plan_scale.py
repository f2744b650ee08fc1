"""Does prompt tuning fit, before anyone rents the hardware: the real partitioned prompt-tuning
step (the one `spot_jax.train` runs) lowered and compiled from abstract shapes, no weights
allocated, on emulated CPU meshes; prints one JSON line per compiled step and a table.

  python tools/plan_scale.py --sizes base large xl xxl --meshes 1x1 8x1 4x8 --batch 32
  python tools/plan_scale.py --sizes xxl --meshes 1x1 --param_dtype bfloat16 --dtype bfloat16

Per device, for each size, mesh (data x model devices) and microbatch count: the bytes of
the frozen weights and of the trained prompt and its optimizer state (from the abstract
arrays and their shardings), the activations the step keeps for the backward pass
(`microbatching.activation_bytes_per_example`, an estimate), and XLA's own buffer
assignment of the compiled step (arguments, outputs, temporaries, and its peak:
arguments + outputs - aliased + temporaries); the FLOPs of one step (counted from the
matmuls as tools/bench.py counts them, and XLA's cost analysis where it gives one). Then,
for each accelerator in DEVICES, the fewest microbatches whose peak fits `--usable_fraction`
of its memory, or "no".

Microbatch counts are tried in increasing powers of two that divide the per-device batch,
until every accelerator fits or none is left; each is one compile (seconds at Small, about
a minute per step at XXL on 2 cores). The numbers are the CPU compiler's: XLA on a GPU or
TPU fuses and schedules differently, so read them as an estimate with a margin, which
`--usable_fraction` leaves.
"""
import argparse
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

_GIB = 2 ** 30
_MIB = 2 ** 20
# Memory per JAX device: a TPU v3 core (two per chip, 16 GiB each), a TPU v4 chip (32 GiB),
# and the GPUs as nvidia-smi reports them.
DEVICES = {"tpu_v3_core": 16 * _GIB, "tpu_v4_chip": 32 * _GIB,
           "a100_80gb": 81920 * _MIB, "h200": 143771 * _MIB}


def _mesh_shape(text: str):
  try:
    data, model = (int(x) for x in text.lower().split("x"))
  except ValueError:
    raise argparse.ArgumentTypeError(f"--meshes {text!r}: expected DATAxMODEL, e.g. 8x1")
  if data < 1 or model < 1:
    raise argparse.ArgumentTypeError(f"--meshes {text!r}: both sizes must be positive")
  return data, model


def parse_args(argv=None):
  from spot_jax.model.config import SIZES
  p = argparse.ArgumentParser(description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--sizes", nargs="+", choices=sorted(SIZES), default=["small"])
  p.add_argument("--meshes", nargs="+", type=_mesh_shape, default=[(1, 1)],
                 help="data x model devices, e.g. 1x1 8x1 4x8 (the XXL pod preset)")
  p.add_argument("--batch", type=int, default=32, help="global batch (SPoT: 32)")
  p.add_argument("--inputs", type=int, default=512, help="encoder tokens per example")
  p.add_argument("--targets", type=int, default=16, help="decoder tokens per example")
  p.add_argument("--prompt_length", type=int, default=100)
  p.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                 help="activation dtype")
  p.add_argument("--param_dtype", choices=("float32", "bfloat16"), default="float32",
                 help="dtype of the frozen weights")
  p.add_argument("--usable_fraction", type=float, default=0.9,
                 help="share of an accelerator's memory a step may take")
  p.add_argument("--min_microbatches", type=int, default=1,
                 help="start the search here (fewer are taken not to fit)")
  p.add_argument("--max_microbatches", type=int, default=None,
                 help="try no more microbatches than this (default: the per-device batch)")
  args = p.parse_args(argv)
  for data, _ in args.meshes:
    if args.batch % data:
      p.error(f"--batch {args.batch} does not split over {data} data-parallel devices")
  if not 0 < args.usable_fraction <= 1:
    p.error(f"--usable_fraction {args.usable_fraction}: expected a share in (0, 1]")
  return args


def _emulate_devices(count: int):
  """Enough emulated CPU devices for the largest mesh; before jax is imported."""
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_force_host_platform_device_count" not in flags:
    os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
  os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _bytes_per_device(tree) -> int:
  """Bytes one device holds of abstract arrays with shardings."""
  import jax
  import numpy as np
  total = 0
  for leaf in jax.tree.leaves(tree):
    shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
    total += int(np.prod(shape, dtype=np.int64)) * leaf.dtype.itemsize
  return total


def compile_step(size: str, mesh_shape, num_microbatches: int, args) -> dict:
  """The prompt-tuning step of `size` on a `data x model` mesh, compiled from abstract
  shapes; what one device holds and XLA's buffer assignment."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from jax.sharding import NamedSharding, PartitionSpec

  import bench
  from spot_jax.model.config import get_config
  from spot_jax.model.t5 import T5, init_params
  from spot_jax.training import microbatching, optimizer, partitioning
  from spot_jax.training.partitioned_step import PartitionedTrainer
  from spot_jax.training.train_step import init_state

  data, model_par = mesh_shape
  c = get_config(size, dtype=args.dtype, param_dtype=args.param_dtype)
  mesh = partitioning.make_mesh(data, model_par, jax.devices()[:data * model_par])
  tx = optimizer.spot_prompt_optimizer()
  trainer = PartitionedTrainer(T5(c), tx, "prompt", mesh, num_microbatches=num_microbatches)
  abstract = lambda tree, shardings: jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), tree, shardings)
  frozen = abstract(jax.eval_shape(lambda: init_params(c, jax.random.PRNGKey(0))),
                    trainer.frozen_sharding)
  prompt = jax.ShapeDtypeStruct((args.prompt_length, c.emb_dim), jnp.float32)
  state = trainer.abstract_state(jax.eval_shape(lambda p: init_state(p, tx), prompt))
  batch_sh = partitioning.batch_sharding(mesh)
  batch = {k: jax.ShapeDtypeStruct((args.batch, length), jnp.int32, sharding=batch_sh)
           for k, length in (("encoder_input_tokens", args.inputs),
                             ("decoder_input_tokens", args.targets),
                             ("decoder_target_tokens", args.targets),
                             ("decoder_loss_weights", args.targets))}
  key = jax.eval_shape(lambda: jax.random.PRNGKey(0))
  rng = jax.ShapeDtypeStruct(key.shape, key.dtype, sharding=NamedSharding(mesh, PartitionSpec()))
  start = time.perf_counter()
  compiled = trainer.jitted_step(has_frozen=True).lower(state, frozen, batch, rng).compile()
  compile_s = time.perf_counter() - start
  memory = compiled.memory_analysis()
  per_device_batch = args.batch // data
  activations = microbatching.activation_bytes_per_example(
      c, args.inputs + args.prompt_length, args.targets) * per_device_batch // num_microbatches
  xla = {"arguments": memory.argument_size_in_bytes, "outputs": memory.output_size_in_bytes,
         "aliased": memory.alias_size_in_bytes, "temporaries": memory.temp_size_in_bytes}
  xla["peak"] = xla["arguments"] + xla["outputs"] - xla["aliased"] + xla["temporaries"]
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  xla_flops = (cost or {}).get("flops")
  flops = bench.step_flops("prompt", c, args.batch, args.inputs + args.prompt_length,
                           args.targets)
  return {
      "size": size, "mesh": f"{data}x{model_par}", "devices": data * model_par,
      "batch": args.batch, "per_device_batch": per_device_batch,
      "num_microbatches": num_microbatches, "inputs": args.inputs, "targets": args.targets,
      "prompt_length": args.prompt_length, "dtype": args.dtype,
      "param_dtype": args.param_dtype,
      "parameters": sum(int(np.prod(x.shape, dtype=np.int64)) for x in jax.tree.leaves(frozen)),
      "per_device_bytes": {"frozen_weights": _bytes_per_device(frozen),
                           "prompt_and_optimizer_state": _bytes_per_device(state),
                           "activations_estimate": int(activations),
                           "xla": xla},
      "gflop_per_step": _gflop(flops),
      # XLA counts a loop body once: with microbatches, one microbatch's share (per device).
      "xla_gflop_per_device_and_microbatch": None if xla_flops is None else _gflop(
          xla_flops),
      "compile_s": round(compile_s, 1),
  }


def _gflop(flops) -> float:
  """GFLOP to 4 significant digits (a fixed 0.1 GFLOP would print tiny models' steps as 0)."""
  return float(f"{flops / 1e9:.4g}")


def microbatch_counts(per_device_batch: int, limit=None, start: int = 1):
  """Powers of two dividing the per-device batch, from `start` up, in increasing order."""
  counts, k = [], 1
  while k <= per_device_batch and (limit is None or k <= limit):
    if per_device_batch % k == 0 and k >= start:
      counts.append(k)
    k *= 2
  return counts


def fits(peak: int, usable_fraction: float):
  return {name: peak <= usable_fraction * capacity for name, capacity in DEVICES.items()}


def plan(size: str, mesh_shape, args, emit=print) -> dict:
  """Compiles with more microbatches until every accelerator fits; returns the verdict per
  accelerator: the fewest microbatches that fit, or None."""
  verdict = {name: None for name in DEVICES}
  rows = []
  for k in microbatch_counts(args.batch // mesh_shape[0], args.max_microbatches,
                             args.min_microbatches):
    row = compile_step(size, mesh_shape, k, args)
    row["fits"] = fits(row["per_device_bytes"]["xla"]["peak"], args.usable_fraction)
    emit(json.dumps(row))
    rows.append(row)
    for name, ok in row["fits"].items():
      if ok and verdict[name] is None:  # fewer than --min_microbatches: not tried
        verdict[name] = k
    if all(v is not None for v in verdict.values()):
      break
  return {"size": size, "mesh": f"{mesh_shape[0]}x{mesh_shape[1]}", "rows": rows,
          "microbatches_to_fit": verdict}


def table(plans, usable_fraction: float) -> str:
  lines = [f"per device; fits: the fewest microbatches tried whose XLA peak is within "
           f"{usable_fraction:.0%} of the accelerator's memory ('no': none tried fits)",
           "| size | mesh | microbatches | frozen GiB | prompt+opt MiB | activations GiB "
           "(est.) | XLA temp GiB | XLA peak GiB | GFLOP/step | " +
           " | ".join(DEVICES) + " |",
           "|" + "---|" * (9 + len(DEVICES))]
  for p in plans:
    for row in p["rows"]:
      b = row["per_device_bytes"]
      verdict = [("no" if p["microbatches_to_fit"][d] is None else
                  str(p["microbatches_to_fit"][d])) if row is p["rows"][-1] else ""
                 for d in DEVICES]
      lines.append(
          f"| {row['size']} | {row['mesh']} | {row['num_microbatches']} | "
          f"{b['frozen_weights'] / _GIB:.2f} | {b['prompt_and_optimizer_state'] / _MIB:.2f} | "
          f"{b['activations_estimate'] / _GIB:.2f} | {b['xla']['temporaries'] / _GIB:.2f} | "
          f"{b['xla']['peak'] / _GIB:.2f} | {row['gflop_per_step']:.0f} | " +
          " | ".join(verdict) + " |")
  if any("bfloat16" in (r["dtype"], r["param_dtype"]) for p in plans for r in p["rows"]):
    lines.append("bfloat16: XLA's CPU compiler computes bf16 matmuls in float32 and keeps "
                 "converted copies of the weights among its temporaries, so these overstate "
                 "what a GPU or TPU (native bf16) needs.")
  return "\n".join(lines)


def main(argv=None):
  args = parse_args(argv)
  _emulate_devices(max(math.prod(m) for m in args.meshes))
  import jax
  have = len(jax.devices())
  for data, model_par in args.meshes:
    if data * model_par > have:
      raise SystemExit(f"--meshes {data}x{model_par}: needs {data * model_par} devices, this "
                       f"process has {have} (XLA_FLAGS set "
                       "--xla_force_host_platform_device_count lower)")
  plans = [plan(size, mesh, args) for size in args.sizes for mesh in args.meshes]
  print(table(plans, args.usable_fraction))
  return plans


if __name__ == "__main__":
  main()
