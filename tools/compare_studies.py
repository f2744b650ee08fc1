r"""Two (or more) study runs side by side: each claim's verdict and the pooled paired
differences between inits, from each run's `study.json`; prints markdown.

  python tools/compare_studies.py spot_jax_demo /runs/other_seeds

What the README says held on a second run is this table, not a reading of one run.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from spot_jax.transfer import statistics, study_writeup  # noqa: E402


def load(path: str) -> dict:
  with open(os.path.join(path, "study.json")) as f:
    return json.load(f)


def table(runs: dict) -> str:
  names = list(runs)
  seeds = {n: (d["config"]["source_seeds"], d["config"]["target_seeds"])
           for n, d in runs.items()}
  header = " | ".join(f"{n} (source seeds {s[0]}, target seeds {s[1]})"
                      for n, s in seeds.items())
  lines = [f"| claim | {header} |", "|---" * (len(names) + 1) + "|"]
  claims = {n: {c["claim"]: c for c in study_writeup.claims(d)} for n, d in runs.items()}
  order = list(dict.fromkeys(c for n in names for c in claims[n]))
  for claim in order:
    cells = []
    for n in names:
      c = claims[n].get(claim)
      cells.append("n/a" if c is None else ("**held**" if c["holds"] else "not shown"))
    lines.append(f"| {claim} | " + " | ".join(cells) + " |")
  lines += ["", f"| a − b, pooled over target × seed (points, 95% CI) | {' | '.join(names)} |",
            "|---" * (len(names) + 1) + "|"]
  pairs = list(dict.fromkeys((c["a"], c["b"]) for d in runs.values()
                             for c in d["comparisons"]))
  for a, b in pairs:
    cells = []
    for n in names:
      c = next((c for c in runs[n]["comparisons"] if (c["a"], c["b"]) == (a, b)), None)
      p = c and c["pooled"]
      cells.append("n/a" if not p else
                   f"{statistics.fmt_interval(p)} {'✓' if p['verdict'] == 'better' else ''}"
                   .strip())
    lines.append(f"| {a} − {b} | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("runs", nargs="+", help="study output directories (with study.json)")
  parser.add_argument("--names", nargs="+", help="column names (default: A, B, ...)")
  args = parser.parse_args(argv)
  names = args.names or [chr(ord("A") + i) for i in range(len(args.runs))]
  if len(names) != len(args.runs):
    parser.error(f"--names gives {len(names)} names for {len(args.runs)} runs")
  text = table({n: load(p) for n, p in zip(names, args.runs)})
  print(text, end="")
  return text


if __name__ == "__main__":
  main()
