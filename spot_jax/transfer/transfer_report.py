"""Su et al.'s transferability results as files: the zero-shot matrix and the indicator table,
each as JSON, markdown and a figure. What they hold is computed by `zero_shot` and
`indicators`; the commands (`spot_jax.cli`) and the study write them through here."""
import os
from typing import Any, Dict, Mapping

import numpy as np

from spot_jax import paths
from spot_jax.transfer import study_report


def zero_shot_markdown(result: Mapping[str, Any]) -> str:
  """Raw scores, with the relative score (to the task's own prompts) in brackets."""
  tasks = result["tasks"]
  lines = ["Zero-shot transfer: each prompt (row) evaluated untrained on each task (column); "
           f"{result['split']} split, metric per task: "
           + ", ".join(f"{t} {m}" for t, m in zip(tasks, result["metrics"]))
           + ". In brackets: relative to the task's own prompts (1.00 = as good).", "",
           "| prompt (trained on) | " + " | ".join(tasks) + " |",
           "|---|" + "---|" * len(tasks)]
  for name, task, raw, rel in zip(result["prompts"], result["prompt_tasks"], result["raw"],
                                  result["relative"]):
    cells = [f"{r:.2f}" + (f" ({q:.2f})" if q is not None else "") for r, q in zip(raw, rel)]
    lines.append(f"| {name} ({task or '?'}) | " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot_zero_shot(result: Mapping[str, Any], path: str) -> str:
  """Heatmap of relative scores where the task has own prompts, raw scores elsewhere."""
  from matplotlib.figure import Figure
  rel = np.array([[np.nan if v is None else v for v in row] for row in result["relative"]])
  use_rel = not np.all(np.isnan(rel))
  values = rel if use_rel else np.array(result["raw"], float)
  fig = Figure(figsize=(1.0 * len(result["tasks"]) + 4, 0.45 * len(result["prompts"]) + 2))
  ax = fig.add_subplot()
  im = ax.imshow(np.nan_to_num(values), cmap="viridis", aspect="auto")
  fig.colorbar(im, ax=ax, label="relative score" if use_rel else "score")
  ax.set_xticks(range(len(result["tasks"])), result["tasks"], rotation=90, fontsize=8)
  ax.set_yticks(range(len(result["prompts"])), result["prompts"], fontsize=8)
  for i, row in enumerate(values):
    for j, v in enumerate(row):
      ax.text(j, i, "-" if np.isnan(v) else f"{v:.2f}", ha="center", va="center", fontsize=7,
              color="white")
  ax.set_title("Zero-shot transfer (rows: prompts, columns: tasks)")
  return study_report.save_png(fig, path)


def write_zero_shot(result: Mapping[str, Any], out_dir: str) -> Dict[str, str]:
  out_dir = paths.absolute(out_dir)
  files = study_report.write_report(out_dir, "zero_shot", result, zero_shot_markdown(result))
  files["heatmap"] = plot_zero_shot(result, os.path.join(out_dir, "zero_shot_heatmap.png"))
  return files


def _fmt(c: Mapping[str, Any], key: str) -> str:
  v, p = c.get(key), c.get(f"{key}_p")
  return "n/a" if v is None else f"{v:+.2f} (p={p:.2g})"


def indicators_markdown(table: Mapping[str, Any]) -> str:
  rows = ["Indicators against transfer: Spearman ρ and Pearson r (p-values) between each "
          "indicator's similarity of a source prompt to the target's own prompts and the "
          f"transfer value, over {len(table['pairs'])} (source, target) pairs.", "",
          "| indicator | pooled Spearman | pooled Pearson | "
          + " | ".join(f"{t} Spearman" for t in table["per_target"]) + " |",
          "|---|---|---|" + "---|" * len(table["per_target"])]
  for name in table["indicators"]:
    pooled = table["pooled"][name]
    rows.append(f"| {name} | {_fmt(pooled, 'spearman')} | {_fmt(pooled, 'pearson')} | "
                + " | ".join(_fmt(table["per_target"][t][name], "spearman")
                             for t in table["per_target"]) + " |")
  return "\n".join(rows) + "\n"


def plot_indicators(table: Mapping[str, Any], path: str) -> str:
  """Pooled Spearman per indicator (bars), each target's as dots."""
  from matplotlib.figure import Figure
  names = table["indicators"]
  fig = Figure(figsize=(1.3 * len(names) + 3, 4.5))
  ax = fig.add_subplot()
  pooled = [table["pooled"][n]["spearman"] for n in names]
  ax.bar(range(len(names)), [0 if v is None else v for v in pooled], color="0.7",
         label="pooled")
  for task, per in table["per_target"].items():
    ys = [per[n]["spearman"] for n in names]
    ax.plot([i for i, y in enumerate(ys) if y is not None], [y for y in ys if y is not None],
            "o", label=task)
  ax.axhline(0, color="0.3", lw=0.8)
  ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
  ax.set_ylabel("Spearman ρ with transfer")
  ax.set_ylim(-1.05, 1.05)
  ax.legend(fontsize=7)
  ax.set_title("Which indicator predicts transfer")
  return study_report.save_png(fig, path)


def write_indicators(table: Mapping[str, Any], out_dir: str) -> Dict[str, str]:
  out_dir = paths.absolute(out_dir)
  files = study_report.write_report(out_dir, "indicators", table, indicators_markdown(table))
  files["plot"] = plot_indicators(table, os.path.join(out_dir, "indicators.png"))
  return files
