"""`report.md` of a study, written from its numbers: every sentence that states a finding
is generated from an interval or a test in `study.json`, so a rerun writes its own.

A claim "holds" only where its 95% interval excludes no-effect (or its correlation test
has p < 0.05 in the claimed direction); otherwise the report says it was not shown.
"""
import math
from typing import Any, Dict, List, Mapping, Optional

from spot_jax.transfer import statistics, strategies, study_report

ALPHA = 0.05


def _fmt(x: Optional[float], digits: int = 3) -> str:
  return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else \
      f"{x:.{digits}f}"


def _pooled(data: Mapping[str, Any], a: str, b: str) -> Optional[Dict[str, Any]]:
  for c in data["comparisons"]:
    if (c["a"], c["b"]) == (a, b):
      return c
  return None


def claims(data: Mapping[str, Any]) -> List[Dict[str, Any]]:
  """SPoT's phenomena, each with whether this study's data support it and the evidence."""
  out = []
  table, chance = data.get("table"), data.get("chance") or {}
  majority = data.get("majority") or {}
  if table:
    above, below = [], []
    for t in table["targets"]:
      cells = table["cells"][t]
      best = max(cells, key=lambda m: cells[m]["mean"])
      cell = cells[best]
      bar, name = (majority[t], "majority") if majority.get(t) is not None else \
          (chance.get(t), "chance")
      if bar is None:
        continue
      ok = cell["low"] is not None and cell["low"] > bar
      (above if ok else below).append(
          f"{t}: {best} {statistics.fmt_interval(cell)} vs {name} {bar:.1f}")
    if above or below:
      what = "its majority baseline" if majority else "chance"
      out.append({"claim": f"every target clearly above {what} from its best init",
                  "holds": not below and bool(above),
                  "evidence": "; ".join(above + below)})
  for a, b, text in strategies.claims():
    c = _pooled(data, a, b)
    if c is not None and c["pooled"] is not None:
      out.append({"claim": text, "holds": c["pooled"]["verdict"] == "better",
                  "evidence": c["conclusion"]})
  fam = data["similarity"].get("same_minus_cross_family")
  if fam and fam.get("mean") is not None:
    out.append({"claim": "same-family task embeddings are more similar than cross-family ones",
                "holds": fam["verdict"] == "better",
                "evidence": (f"same family {_fmt(fam['within_mean'], 4)} (n = {fam['n_within']}"
                             f" run pairs), cross family {_fmt(fam['across_mean'], 4)} (n = "
                             f"{fam['n_across']}); difference {_fmt(fam['mean'], 4)}, 95% CI "
                             f"[{_fmt(fam['low'], 4)}, {_fmt(fam['high'], 4)}] (Welch)")})
  corr = data.get("correlation")
  if corr and corr.get("note") is None:
    holds = corr["spearman_rho"] > 0 and corr["spearman_p"] < ALPHA
    out.append({"claim": "task-embedding similarity predicts transfer (SPoT Figure 4)",
                "holds": holds,
                "evidence": (f"Spearman ρ = {corr['spearman_rho']:.2f} (p = "
                             f"{corr['spearman_p']:.2g}), Pearson r = {corr['pearson_r']:.2f} "
                             f"(p = {corr['pearson_p']:.2g}) over {corr['n']} (source, target) "
                             "pairs, each the mean over target seeds")})
  by_relation = (data.get("transfer_by_relation") or {}).get("score") or {}
  for key, text in (("same_minus_other_family",
                     "same-family sources transfer better than other-family sources"),
                    ("same_minus_label_control",
                     "the label-control source (another family, the target's label words) "
                     "transfers less than same-family sources")):
    ci = by_relation.get(key)
    if ci:
      out.append({"claim": text, "holds": ci["verdict"] == "better",
                  "evidence": (f"mean over same-family sources minus the other group, paired "
                               f"by (target, seed): {_interval(ci)}, n = {ci['n']} on "
                               f"{', '.join(ci['targets'])}")})
  zero = data.get("zero_shot") or {}
  rel = zero.get("by_relation") or {}
  for key, text in (("same_minus_other_family",
                     "zero-shot transfer within a family exceeds transfer across families "
                     "(Su et al.)"),
                    ("same_minus_label_control",
                     "zero-shot transfer within a family exceeds the label control's")):
    ci = rel.get(key)
    if ci and ci.get("mean") is not None:
      out.append({"claim": text, "holds": ci["verdict"] == "better",
                  "evidence": (f"within family {_fmt(ci['within_mean'], 1)} (n = "
                               f"{ci['n_within']} prompt-task pairs), other group "
                               f"{_fmt(ci['across_mean'], 1)} (n = {ci['n_across']}); "
                               f"difference {_interval(ci)} (Welch)")})
  comp = zero.get("indicator_comparison") or {}
  diff = comp.get("neurons_minus_best_embedding")
  if diff:
    rho = comp["spearman"]
    out.append({"claim": "activated-neuron overlap predicts zero-shot transfer better than "
                         "task-embedding similarity (Su et al.)",
                "holds": diff["verdict"] == "better",
                "evidence": ("Spearman ρ: " + ", ".join(
                    f"{n} {_fmt(v, 2)}" for n, v in rho.items()) + f"; best {comp['best']}; "
                    f"neurons minus {diff['embedding']}: {_interval(diff, 2)} (paired "
                    f"bootstrap over {comp['n']} pairs)")})
  return out


def _interval(ci: Mapping[str, Any], digits: int = 1) -> str:
  return (f"{ci['mean']:+.{digits}f}, 95% CI [{ci['low']:+.{digits}f}, "
          f"{ci['high']:+.{digits}f}]")


def markdown(data: Mapping[str, Any]) -> str:
  cfg = data["config"]
  lines = ["# SPoT transfer study", ""]
  lines += [f"Sources ({len(cfg['sources'])}): {', '.join(cfg['sources'])}, seeds "
            f"{cfg['source_seeds']}, {cfg['source_steps']} steps at batch "
            f"{cfg['source_batch_size']}; task embedding = the prompt at step "
            f"{cfg['embedding_step']}.",
            f"Targets ({len(cfg['targets'])}): {', '.join(cfg['targets'])}, seeds "
            f"{cfg['target_seeds']}, {cfg['target_steps']} steps at batch "
            f"{cfg['target_batch_size']} from each init; top-k = {cfg['top_k']}; similarity "
            f"`{cfg['metric']}`; prompt length {cfg['prompt_length']}; validation on "
            f"{cfg['num_eval_examples'] or 'all'} examples.", ""]
  lines += ["## What the data support", "",
            "Each claim holds only where its 95% interval excludes no effect (or its "
            f"correlation has p < {ALPHA} in the claimed direction).", ""]
  for c in claims(data):
    evidence = c["evidence"] if c["evidence"].endswith(".") else c["evidence"] + "."
    lines.append(f"- **{'held' if c['holds'] else 'not shown'}**: {c['claim']}. {evidence}")
  lines += ["", "## Inits compared, paired over seeds", "",
            "a − b in score points: mean and 95% t interval over the seeds both ran, per "
            "target and pooled over (target, seed) pairs.", ""]
  for c in data["comparisons"]:
    lines.append(f"- {c['conclusion']}")
  if data.get("table"):
    lines += ["", study_report.results_markdown(data["table"]).replace(
        "# Target-task results", "## Target-task results")]
    chance = {t: c for t, c in (data.get("chance") or {}).items() if c is not None}
    if chance:
      lines.append("Chance (uniform guess over the label words): " + ", ".join(
          f"{t} {c:.1f}" for t, c in chance.items()) + ".")
    majority = {t: c for t, c in (data.get("majority") or {}).items() if c is not None}
    if majority:
      lines.append("Majority class (always its most frequent answer, on the same validation "
                   "examples): " + ", ".join(f"{t} {c:.1f}" for t, c in majority.items())
                   + ".")
  if data.get("auc_table"):
    lines += ["", study_report.results_markdown(data["auc_table"]).replace(
        "# Target-task results", "## Area under the target learning curve (mean validation "
        "score over the curve's points)")]
  by_relation = data.get("transfer_by_relation") or {}
  if any((v or {}).get("mean_by_relation") for v in by_relation.values()):
    lines += ["", "## Transfer by the source's relation to the target", "",
              "Mean target score from a source's prompt, by how the source relates to the "
              "target (same family = same skill and label words; label control = another "
              "family with the target's label words; other family = neither).", ""]
    for key, result in by_relation.items():
      means = result.get("mean_by_relation") or {}
      lines.append(f"- {key}: " + ", ".join(f"{r} {v:.1f}" for r, v in sorted(means.items())))
  zero_rel = (data.get("zero_shot") or {}).get("by_relation") or {}
  if zero_rel.get("means"):
    lines += ["", "Zero-shot (untrained source prompts on other tasks), mean score by "
              "relation: " + ", ".join(f"{r} {v:.1f}" for r, v in
                                        sorted(zero_rel["means"].items())) + "."]
  sim = data["similarity"]
  lines += ["", "## Task embeddings", ""]
  moved = data.get("displacement") or {}
  if moved.get("mean_relative_distance") is not None:
    lines.append(f"At step {moved['step']} a source prompt has moved "
                 f"{moved['mean_relative_distance']:.2f}× its initial norm from its init "
                 f"(mean per-token cosine with the init {moved['mean_cosine_with_init']:.2f}), "
                 f"over {len(moved['runs'])} runs.")
  if sim.get("same_task_mean") is not None:
    lines.append(f"Mean similarity between two runs of the same task: "
                 f"{sim['same_task_mean']:.4f}.")
  fam = sim.get("same_minus_cross_family") or {}
  if fam.get("within_mean") is not None and fam.get("across_mean") is not None:
    lines.append(f"Same family: {fam['within_mean']:.4f}; cross family: "
                 f"{fam['across_mean']:.4f}.")
  lines += ["", "Retrieval (targets' embeddings against the library):", ""]
  families = sim.get("families") or {}
  for target, ranking in (data.get("rankings") or {}).items():
    top = ranking[0]["task"] if ranking else None
    same = top is not None and families.get(top) is not None and \
        families.get(top) == families.get(target)
    lines.append(f"- {target}: " + ", ".join(f"{r['task']} ({r['similarity']:.4f})"
                                               for r in ranking)
                 + (f" — top-1 is {'the same' if same else 'another'} family" if top else ""))
  lines += ["", "![task-embedding similarity](similarity_heatmap.png)"]
  corr = data.get("correlation")
  if corr:
    lines += ["", "## Similarity vs. transfer", "",
              (f"Over {corr['n']} (source, target) pairs: Pearson r = "
               f"{_fmt(corr['pearson_r'], 2)} (p = {_fmt(corr['pearson_p'], 3)}), Spearman ρ = "
               f"{_fmt(corr['spearman_rho'], 2)} (p = {_fmt(corr['spearman_p'], 3)})."
               if corr.get("note") is None else f"Correlation undefined: {corr['note']}."),
              "", "![similarity vs. transfer](similarity_vs_transfer.png)"]
  zero = data.get("zero_shot")
  if zero:
    lines += ["", "## Zero-shot transfer indicators (Su et al.)", "",
              "Spearman ρ of each indicator with the zero-shot relative score, pooled over "
              "(source prompt, task) pairs (own-task pairs left out); details in "
              "`indicators/` and `zero_shot/`.", ""]
    for name, c in (zero["pooled_indicators"] or {}).items():
      lines.append(f"- {name}: ρ = {_fmt(c.get('spearman'), 2)} (p = "
                   f"{_fmt(c.get('spearman_p'), 3)}), n = {c['n']}")
    cross = [v for k, row in enumerate(zero.get("raw") or [])
             for t, v in enumerate(row) if v is not None
             and zero["prompts"][k].split("/")[0] != zero["tasks"][t]]
    if cross and max(cross) == min(cross):
      lines.append(f"Every cross-task zero-shot score is {cross[0]:g}: the correlations are "
                   "undefined (no untrained prompt transfers here).")
    if zero.get("note"):
      lines.append(f"No indicator table: {zero['note']}.")
  return "\n".join(lines) + "\n"
