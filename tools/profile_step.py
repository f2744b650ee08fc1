"""Where a step's time and memory go: the step `tools/bench.py` times, profiled by XLA.

  python tools/profile_step.py --mode prompt --size small --batch 32 --inputs 512 \
      --targets 16 --prompt_length 100 --steps 1

Takes bench.py's flags (same shapes, same compiled step) and prints:
  * XLA's memory analysis of the compiled step (arguments, outputs, temporaries: the peak
    working set of activations the step keeps alive) and its cost analysis;
  * the largest arrays the optimized program materialises (instructions outside fusions, by
    bytes: e.g. `[B, H, L, L]` attention probabilities), with their shapes;
  * a time profile of `--steps` steps from `jax.profiler` (per XLA op, summed over the
    executor's threads), grouped: matmuls (ops that run a `dot`, oneDNN/custom calls), other
    fusions (elementwise/softmax/reductions), copies and transposes, the rest; the top ops
    with their HLO shapes.
`--json FILE` also writes the numbers.
"""
import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bench  # noqa: E402  (tools/bench.py: the step and its flags)
import step_timing  # noqa: E402  (tools/)

_DTYPE_BYTES = {"f32": 4, "bf16": 2, "f16": 2, "s32": 4, "u32": 4, "pred": 1, "s8": 1, "u8": 1,
                "f64": 8, "s64": 8, "u64": 8}
_INSTR = re.compile(r"^\s*(?:ROOT\s+)?(%?[\w.\-]+)\s*=\s*(.+?)\s+([\w\-]+)\(")
_ARRAY = re.compile(r"\b(f32|bf16|f16|s32|u32|pred|s8|u8|f64|s64|u64)\[([\d,]*)\]")


EXTRA_FLAGS = (("--top", dict(type=int, default=25, help="ops and arrays to list")),
               ("--json", dict(default=None, help="also write the numbers here")))


def array_bytes(shape_text: str) -> int:
  """Bytes of every array in an HLO shape (`f32[8,6,612,612]{...}` or a tuple of them)."""
  total = 0
  for dtype, dims in _ARRAY.findall(shape_text):
    n = 1
    for d in filter(None, dims.split(",")):
      n *= int(d)
    total += n * _DTYPE_BYTES[dtype]
  return total


def hlo_instructions(hlo_text: str):
  """{name: (opcode, shape text, computation, line)} of the optimized HLO module, and the set
  of fused computations (whose instructions never exist as separate buffers)."""
  instrs, fused, comp = {}, set(), None
  for line in hlo_text.splitlines():
    if line and not line[0].isspace() and line.rstrip().endswith("{"):  # a computation
      words = line.split()
      comp = (words[1] if words[0] == "ENTRY" else words[0]).lstrip("%")
      continue
    m = _INSTR.match(line)
    if not m:
      continue
    name, shape, opcode = m.group(1).lstrip("%"), m.group(2), m.group(3)
    instrs[name] = (opcode, shape, comp, line)
    for called in re.findall(r"calls=(%?[\w.\-]+)", line):
      if opcode == "fusion":
        fused.add(called.lstrip("%"))
  return instrs, fused


def largest_arrays(instrs, fused, top: int):
  rows = [(array_bytes(shape), name, opcode, shape.split("{")[0])
          for name, (opcode, shape, comp, _) in instrs.items()
          if comp not in fused and opcode not in ("parameter", "get-tuple-element", "tuple",
                                                   "bitcast", "constant")]
  rows.sort(reverse=True)
  return rows[:top]


def _dims(shape_text: str):
  m = _ARRAY.search(shape_text)
  return [int(d) for d in m.group(2).split(",") if d] if m else []


def dot_of(op: str, instrs, by_computation):
  """(FLOPs, "out <- lhs x rhs" shapes) of the dot an op runs (itself or inside its fusion);
  `by_computation`: {computation: [lines]}."""
  if op not in instrs:
    return None
  line = instrs[op][3]
  called = re.findall(r"calls=%?([\w.\-]+)", line)
  candidates = [line] + (by_computation.get(called[0], []) if called else [])
  for l in candidates:
    m = _INSTR.match(l)
    if not m or m.group(3) != "dot":
      continue
    operands = re.findall(r"%?([\w.\-]+)", l.split(" dot(", 1)[1].split(")", 1)[0])
    lhs = _dims(instrs[operands[0]][1]) if operands and operands[0] in instrs else []
    rhs = _dims(instrs[operands[1]][1]) if len(operands) > 1 and operands[1] in instrs else []
    contracting = re.search(r"lhs_contracting_dims=\{([\d,]*)\}", l)
    k = 1
    for i in (contracting.group(1).split(",") if contracting and lhs else []):
      if i:
        k *= lhs[int(i)]
    out = _dims(m.group(2))
    flops = 2 * k
    for d in out:
      flops *= d
    return flops, f"{out} <- {lhs} x {rhs}"
  return None


def category(name: str, opcode: str, runs_dot: bool) -> str:
  """The op's group. `runs_dot`: `dot_of` found a dot in it. XLA:CPU hands reductions and
  elementwise fusions to YNNPACK as well as matmuls, so a `ynn_fusion` without a dot is not
  a matmul (the softmax backward's reduction was one, 24% of a step's op time)."""
  lowered = name.lower()
  if (runs_dot or "onednn" in lowered or opcode in ("dot", "custom-call", "convolution")
      or "convolution" in lowered):
    return "matmul"
  if opcode in ("copy", "transpose") or lowered.startswith(("copy", "transpose")):
    return "copy/transpose"
  if opcode == "fusion" or "fusion" in lowered:
    return "other fusion (elementwise, softmax, reductions)"
  return "other"


def op_times(trace_dir: str):
  """{hlo_op: [total microseconds, count]} from the perfetto trace jax.profiler wrote."""
  paths = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)
  if not paths:
    raise RuntimeError(f"jax.profiler wrote no perfetto trace under {trace_dir}")
  with gzip.open(paths[0]) as f:
    data = json.load(f)
  events = data["traceEvents"] if isinstance(data, dict) else data
  times = collections.defaultdict(lambda: [0.0, 0])
  for e in events:
    op = (e.get("args") or {}).get("hlo_op")
    if e.get("ph") == "X" and op:
      times[op][0] += float(e.get("dur", 0.0))
      times[op][1] += 1
  return times


def main(argv=None):
  import jax

  args = bench.resolve_microbatches(bench.parse_args(argv, EXTRA_FLAGS))
  if args.reference != "jax":
    raise SystemExit("profile_step.py profiles the JAX step (--reference jax)")
  c = bench.model_config(args)
  built = bench.build_jax(args, c)
  compiled = built["compiled"]
  mem = compiled.memory_analysis()
  memory = {k: getattr(mem, k) / 2**30 for k in (
      "argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
      "temp_size_in_bytes", "generated_code_size_in_bytes") if hasattr(mem, k)}
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  instrs, fused = hlo_instructions(compiled.as_text())

  for _ in range(max(args.warmup, 1)):
    built["run"]()
  with tempfile.TemporaryDirectory() as trace_dir:
    start = time.perf_counter()
    with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
      for _ in range(args.steps):
        built["run"]()
    wall = (time.perf_counter() - start) / args.steps
    times = op_times(trace_dir)

  total = sum(t for t, _ in times.values()) / args.steps
  by_computation = collections.defaultdict(list)
  for _, (_, _, comp, line) in instrs.items():
    by_computation[comp].append(line)
  dots = {op: dot_of(op, instrs, by_computation) for op in times}
  groups = collections.Counter()
  rows = []
  for op, (t, n) in times.items():
    opcode, shape, _, _ = instrs.get(op, ("?", "", None, ""))
    groups[category(op, opcode, dots[op] is not None)] += t / args.steps
    rows.append((t / args.steps, op, opcode, n // args.steps, shape.split("{")[0]))
  rows.sort(reverse=True)
  matmuls = collections.defaultdict(lambda: [0.0, 0, 0])  # shapes -> [us, count, flops]
  for op, (t, n) in times.items():
    found = dots[op]
    if found:
      matmuls[found[1]][0] += t / args.steps
      matmuls[found[1]][1] += n // args.steps
      matmuls[found[1]][2] += found[0] * n // args.steps

  print(f"# {args.mode} step, {args.size}, batch {args.batch} x ({args.inputs} + "
        f"{args.prompt_length if args.mode == 'prompt' else 0}) -> {args.targets}, "
        f"{args.microbatches} microbatch(es), {args.dtype}, remat={args.remat}")
  print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
  print("\n## memory (XLA memory analysis, GiB)")
  for k, v in memory.items():
    print(f"  {k:32s} {v:8.3f}")
  print(f"  host peak RSS so far            {step_timing.peak_rss_gb():8.3f}")
  print(f"\n## cost analysis: {cost.get('flops', float('nan')) / 1e9:.1f} GFLOP, "
        f"{cost.get('bytes accessed', float('nan')) / 2**30:.2f} GiB accessed "
        "(loops counted once)")
  print("\n## largest materialised arrays (outside fusions)")
  for size, name, opcode, shape in largest_arrays(instrs, fused, args.top):
    print(f"  {size / 2**20:9.1f} MiB  {opcode:22s} {name:40s} {shape}")
  print(f"\n## time per step: wall {wall:.2f} s, traced ops {total / 1e6:.2f} s "
        "(summed over threads)")
  for name, t in groups.most_common():
    print(f"  {name:48s} {t / 1e6:8.2f} s  {100 * t / max(total, 1e-9):5.1f}%")
  print(f"\n## matmuls by shape: time, achieved rate (top {args.top})")
  for shapes, (t, n, flops) in sorted(matmuls.items(), key=lambda kv: -kv[1][0])[:args.top]:
    print(f"  {t / 1e6:7.3f} s x{n:<4d} {flops / max(t, 1e-9) / 1e3:7.1f} GFLOP/s  {shapes}")
  print(f"\n## top {args.top} ops")
  for t, op, opcode, n, shape in rows[:args.top]:
    print(f"  {t / 1e6:7.3f} s {100 * t / max(total, 1e-9):5.1f}%  x{n:<4d} {op:40s} "
          f"{opcode:12s} {shape[:90]}")
  out = {"memory_gib": memory, "wall_s_per_step": wall, "traced_s_per_step": total / 1e6,
         "groups_s": {k: v / 1e6 for k, v in groups.items()},
         "top_ops": [dict(op=op, opcode=opcode, s=t / 1e6, count=n, shape=shape)
                     for t, op, opcode, n, shape in rows[:args.top]],
         "matmuls": [dict(shapes=k, s=t / 1e6, count=n, gflop=f / 1e9)
                     for k, (t, n, f) in matmuls.items()],
         "xla_flags": os.environ.get("XLA_FLAGS", "")}
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=1)
  return out


if __name__ == "__main__":
  main()
