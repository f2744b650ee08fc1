"""The XLA flags the suite compiles its tiny models with: several times quicker compiles, and
every parity bound holds with them (figures in docs/development.md).

- `--xla_backend_optimization_level=0`: no LLVM backend optimisation (about 4x quicker).
- `--xla_cpu_use_fusion_emitters=false`: XLA:CPU's elemental IR emitter for fusions instead
  of its newer MLIR fusion emitters (a quarter less CPU on the train-step and decoding
  tests, which are mostly compiles).

tests/conftest.py adds them to XLA_FLAGS for the suite's processes and the commands they
start; a test that starts a command with XLA_FLAGS of its own (one device, not the suite's
eight) passes them too. A flag already in XLA_FLAGS is left as it is."""
FAST_COMPILE = ("--xla_backend_optimization_level=0", "--xla_cpu_use_fusion_emitters=false")


def with_fast_compile(flags: str = "") -> str:
  """`flags` (an XLA_FLAGS value) with each FAST_COMPILE flag it does not set itself."""
  given = {flag.split("=")[0] for flag in flags.split()}
  return " ".join(flags.split() + [f for f in FAST_COMPILE if f.split("=")[0] not in given])
