"""The study's report, drawn and written: the results table as markdown (and read back),
the similarity heatmap and the similarity-vs-transfer scatter. What they show is computed
by `study_measures` (the results table, RER, similarity-vs-transfer statistics).

Pure functions over plain Python data (no JAX), so the pipeline, the tools and the tests
share them.

Figures are drawn on `matplotlib.figure.Figure` with the Agg canvas, never through pyplot,
so no global backend is switched and nothing is left open. Every file is written under a
temporary name and renamed, so a reader never sees half a table or half a PNG.
"""
import io
import json
import os
import re
from typing import Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from scipy.cluster import hierarchy
from scipy.spatial import distance

from spot_jax import atomic_files
from spot_jax.transfer.study_measures import AVERAGE, CI, similarity_transfer_stats

_NA = "n/a"


def _format_cell(cell: Optional[Mapping[str, Any]]) -> str:
  if cell is None:
    return _NA
  ci = _NA if cell.get("ci95") is None else f"{cell['ci95']:.2f}"
  rer = _NA if cell["rer"] is None else f"{100.0 * cell['rer']:+.1f}%"
  return f"{cell['mean']:.2f} ± {ci} (RER {rer})"


def results_markdown(table: Mapping[str, Any]) -> str:
  """The table as markdown: rows = targets then the average, columns = init methods."""
  methods, targets = table["methods"], table["targets"]
  for name in [*methods, *targets]:
    if "|" in name or "\n" in name:
      raise ValueError(f"name {name!r} cannot go in a markdown table cell")
  ns = sorted({c["n"] for t in targets for c in table["cells"][t].values()})
  lines = [
      "# Target-task results", "",
      f"Validation score (0-100) at an equal step budget per target: mean ± the half-width "
      f"of its {CI} (seeds per cell: {', '.join(map(str, ns))}). RER: relative error "
      f"reduction vs. `{table['baseline']}`, (score - base) / (100 - base) (SPoT §3.1). The "
      f"last row averages the per-target means and RERs; its interval is over the per-seed "
      f"averages.", "",
      "| target | " + " | ".join(methods) + " |",
      "|" + "---|" * (len(methods) + 1)]
  for t in targets:
    lines.append(f"| {t} | " + " | ".join(_format_cell(table["cells"][t].get(m))
                                          for m in methods) + " |")
  lines.append(f"| {AVERAGE} | " + " | ".join(_format_cell(table["average"][m])
                                             for m in methods) + " |")
  partial = [f"`{m}` ({table['average'][m]['n']}/{len(targets)})" for m in methods
             if table["average"][m]["n"] < len(targets)]
  if partial:
    lines += ["", "Averaged over fewer targets: " + ", ".join(partial) + "."]
  return "\n".join(lines) + "\n"


def write_report(out_dir: str, stem: str, data: Mapping[str, Any], markdown: str
                 ) -> Dict[str, str]:
  """Writes `<stem>.json` (strict JSON) and `<stem>.md` atomically; returns both paths."""
  text = json.dumps(data, indent=2, allow_nan=False) + "\n"
  write = atomic_files.write_atomically
  return {"json": write(os.path.join(out_dir, f"{stem}.json"), text),
          "markdown": write(os.path.join(out_dir, f"{stem}.md"), markdown)}


def write_results(table: Mapping[str, Any], out_dir: str) -> Dict[str, str]:
  """Writes `results.json` (the table dict, strict JSON) and `results.md`; returns both paths."""
  return write_report(out_dir, "results", table, results_markdown(table))


_NUM = r"-?\d+(?:\.\d+)?"
_CELL = re.compile(rf"^(?P<mean>{_NUM}) ± (?P<ci>{_NUM}|n/a) "
                   rf"\(RER (?:(?P<rer>[+-]{_NUM})%|n/a)\)$")


def _split_row(line: str) -> List[str]:
  return [c.strip() for c in line.strip().strip("|").split("|")]


def read_results_markdown(text: str) -> Dict[str, Any]:
  """Parses `results.md` text back: {"methods": [...], "rows": {label: {method: cell or None}}}.

  A cell is {"mean", "ci95", "rer"} as printed (rer a fraction, ci95 None where n/a); rows
  keep file order, the average row under its label. Raises ValueError on a malformed table.
  """
  lines = [l for l in text.splitlines() if l.strip().startswith("|")]
  if len(lines) < 2:
    raise ValueError("no markdown table found")
  header = _split_row(lines[0])
  if header[0] != "target" or not set(_split_row(lines[1])[0]) <= set("-: ") \
      or len(_split_row(lines[1])) != len(header):
    raise ValueError(f"malformed table header: {lines[:2]!r}")
  methods, rows = header[1:], {}
  for line in lines[2:]:
    cols = _split_row(line)
    if len(cols) != len(header):
      raise ValueError(f"row has {len(cols)} columns, header {len(header)}: {line!r}")
    row = {}
    for m, c in zip(methods, cols[1:]):
      if c == _NA:
        row[m] = None
        continue
      match = _CELL.match(c)
      if not match:
        raise ValueError(f"cell {c!r} ({cols[0]}, {m}) is not 'mean ± ci95 (RER +x.x%)'")
      row[m] = {"mean": float(match["mean"]),
                "ci95": None if match["ci"] == _NA else float(match["ci"]),
                "rer": None if match["rer"] is None else float(match["rer"]) / 100.0}
    rows[cols[0]] = row
  return {"methods": methods, "rows": rows}


def save_png(fig: Figure, path: str) -> str:
  FigureCanvasAgg(fig)
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
  return atomic_files.write_atomically(path, buf.getvalue())


def _family_colors(families: Sequence[Optional[str]]) -> Dict[Optional[str], Any]:
  names = sorted({f for f in families if f is not None})
  cmap = colormaps["tab10" if len(names) <= 10 else "tab20"]
  colors: Dict[Optional[str], Any] = {f: cmap(i % cmap.N) for i, f in enumerate(names)}
  colors[None] = "0.35"
  return colors


def _similarity_matrix(similarity: Mapping[str, Any]):
  tasks = [str(t) for t in similarity["tasks"]]
  m = np.asarray(similarity["matrix"], np.float64)
  if m.ndim != 2 or m.shape != (len(tasks), len(tasks)):
    raise ValueError(f"similarity matrix must be [{len(tasks)}, {len(tasks)}] for "
                     f"{len(tasks)} tasks, got shape {list(m.shape)}")
  if not tasks:
    raise ValueError("the similarity matrix has no tasks")
  if len(set(tasks)) != len(tasks):
    raise ValueError(f"task names repeat: {tasks}")
  if not np.all(np.isfinite(m)):
    raise ValueError("the similarity matrix has non-finite entries")
  return tasks, m


def cluster_linkage(matrix: np.ndarray) -> Optional[np.ndarray]:
  """Average linkage on 1 - similarity (symmetrised, diagonal 0, clipped at 0); None for n < 2.

  Per-token average cosine of a prompt with itself is below 1, so the diagonal is set to
  zero distance rather than taken from the matrix.
  """
  m = np.asarray(matrix, np.float64)
  if m.shape[0] < 2:
    return None
  d = np.clip(1.0 - 0.5 * (m + m.T), 0.0, None)
  np.fill_diagonal(d, 0.0)
  return hierarchy.linkage(distance.squareform(d, checks=False), method="average",
                           optimal_ordering=True)


def cluster_order(matrix: np.ndarray) -> List[int]:
  """Row order of the matrix by hierarchical clustering (`leaves_list` of `cluster_linkage`)."""
  z = cluster_linkage(matrix)
  return [0] * len(matrix) if z is None else [int(i) for i in hierarchy.leaves_list(z)]


def plot_similarity_heatmap(similarity: Mapping[str, Any],
                            families: Optional[Mapping[str, str]], path: str) -> List[str]:
  """PNG heatmap of task-embedding similarity, clustered, dendrogram on top, family-colored labels.

  Returns the task names in the plotted (clustered) order.
  """
  tasks, m = _similarity_matrix(similarity)
  families = dict(families or {})
  n = len(tasks)
  z = cluster_linkage(m)
  order = cluster_order(m)
  ordered = m[np.ix_(order, order)]
  names = [tasks[i] for i in order]
  fams = [families.get(t) for t in names]
  colors = _family_colors(fams)

  side = min(max(4.0, 0.42 * n + 2.5), 24.0)
  fig = Figure(figsize=(side + 1.2, side + 1.4))
  grid = fig.add_gridspec(2, 2, height_ratios=[1.0, 4.5], width_ratios=[4.5, 0.15],
                          hspace=0.02, wspace=0.04)
  ax_tree, ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
  fig.add_subplot(grid[0, 1]).set_axis_off()
  if z is not None:
    hierarchy.dendrogram(z, ax=ax_tree, no_labels=True, color_threshold=0.0,
                         above_threshold_color="0.3")
    ax_tree.set_xlim(0, 10 * n)
  ax_tree.set_axis_off()
  ax_tree.set_title("Task-embedding similarity (average linkage on 1 - similarity)")

  # The colour scale spans the pairs between tasks: a task with itself (a prompt with
  # itself when it has one run) would otherwise take the whole scale.
  off = ordered[~np.eye(n, dtype=bool)] if n > 1 else ordered.ravel()
  im = ax.imshow(ordered, cmap="viridis", aspect="auto", interpolation="nearest",
                 vmin=float(off.min()), vmax=float(off.max()) if off.max() > off.min() else None)
  fig.colorbar(im, cax=fig.add_subplot(grid[1, 1]), label="similarity")
  ax.set_xticks(range(n))
  ax.set_yticks(range(n))
  ax.set_xticklabels(names, rotation=90, fontsize=8)
  ax.set_yticklabels(names, fontsize=8)
  for labels in (ax.get_xticklabels(), ax.get_yticklabels()):
    for label, fam in zip(labels, fams):
      label.set_color(colors[fam])
  if n <= 16:
    lo, hi = float(off.min()), float(off.max())
    digits = 3 if np.abs(ordered).max() < 0.1 else 2
    for i in range(n):
      for j in range(n):
        dark = hi > lo and (ordered[i, j] - lo) / (hi - lo) < 0.5
        ax.text(j, i, f"{ordered[i, j]:.{digits}f}", ha="center", va="center", fontsize=7,
                color="white" if dark else "black")
  if any(f is not None for f in fams):
    handles = [Line2D([], [], marker="s", linestyle="", color=colors[f], label=f or "unknown")
               for f in sorted(set(fams), key=lambda f: (f is None, f or ""))]
    ax.legend(handles=handles, title="family", loc="upper left", bbox_to_anchor=(1.1, 1.28),
              fontsize=8, title_fontsize=8, frameon=False)
  save_png(fig, path)
  return names


def plot_similarity_vs_transfer(transfer_pairs: Sequence[Mapping[str, Any]], path: str,
                                families: Optional[Mapping[str, str]] = None) -> Dict[str, Any]:
  """PNG scatter of source-target similarity (x) vs RER (y, %), with Pearson/Spearman in the title.

  Points are colored by whether source and target share a family when `families` is given.
  Returns the stats of `similarity_transfer_stats` (NaN correlations where undefined).
  """
  st = similarity_transfer_stats(transfer_pairs)
  pairs = [transfer_pairs[i] for i in st["pair_index"]]
  x, y = np.asarray(st["similarity"]), 100.0 * np.asarray(st["rer"])

  fig = Figure(figsize=(7.0, 5.2))
  FigureCanvasAgg(fig)
  ax = fig.add_subplot(1, 1, 1)
  ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--")
  if families is not None:
    groups = {"same family": [], "different family": [], "family unknown": []}
    for k, p in enumerate(pairs):
      fs, ft = families.get(p["source"]), families.get(p["target"])
      key = ("family unknown" if fs is None or ft is None else
             "same family" if fs == ft else "different family")
      groups[key].append(k)
    for (label, idx), color in zip(groups.items(), ("tab:red", "tab:blue", "0.5")):
      if idx:
        ax.scatter(x[idx], y[idx], s=28, color=color, label=f"{label} ({len(idx)})", alpha=0.85)
  elif len(x):
    ax.scatter(x, y, s=28, color="tab:blue", label=f"source-target pairs ({len(x)})", alpha=0.85)
  if len(x) <= 12:
    for xi, yi, p in zip(x, y, pairs):
      ax.annotate(f"{p['source']}→{p['target']}", (xi, yi), fontsize=7,
                  xytext=(3, 3), textcoords="offset points")
  if st["note"] is None:
    slope, icept = np.polyfit(x, y, 1)
    xl = np.array([x.min(), x.max()])
    ax.plot(xl, slope * xl + icept, color="0.25", linewidth=1.0, label="least squares")
    corr = (f"Pearson r = {st['pearson_r']:.3f} (p = {st['pearson_p']:.3g}), "
            f"Spearman ρ = {st['spearman_rho']:.3f} (p = {st['spearman_p']:.3g})")
  else:
    corr = f"Pearson / Spearman undefined: {st['note']}"
  dropped = f", {st['excluded']} left out (baseline 100)" if st["excluded"] else ""
  plural = "" if st["n"] == 1 else "s"
  ax.set_title(f"Task similarity vs. transfer, {st['n']} pair{plural}{dropped}\n{corr}",
               fontsize=9)
  ax.set_xlabel("task-embedding similarity (source, target)")
  ax.set_ylabel("relative error reduction vs. random init (%)")
  if ax.get_legend_handles_labels()[0]:
    ax.legend(fontsize=8, loc="best")
  ax.grid(alpha=0.3)
  save_png(fig, path)
  return st
