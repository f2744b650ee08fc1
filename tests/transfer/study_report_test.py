"""Report artifacts against hand-computed numbers, scipy, and decoded PNGs."""
import json
import math

import numpy as np
import pytest
from matplotlib import image as mpimg
from scipy import stats

from spot_jax.transfer import study_measures, study_report

METHODS = ["random_uniform", "class_labels", "spot_top1"]
# target -> init -> scores for seeds 0, 1, 2 (class_labels ran seed 0 only on "rte").
SCORES = {
    "rte": {"random_uniform": [60.0, 62.0, 64.0], "class_labels": [70.0],
            "spot_top1": [80.0, 84.0, 82.0]},
    "cb": {"random_uniform": [90.0, 90.0, 90.0], "class_labels": [85.0, 89.0, 87.0],
           "spot_top1": [95.0, 92.5, 92.5]},
}


def _results(scores=SCORES, step=500):
  return [{"target": t, "init": m, "seed": s, "step": step, "score": v}
          for t, by_m in scores.items() for m, vs in by_m.items() for s, v in enumerate(vs)]


def test_table_means_stds_and_rer_by_hand():
  table = study_measures.results_table(_results())
  assert table["methods"] == METHODS and table["targets"] == ["rte", "cb"]
  rte, cb = table["cells"]["rte"], table["cells"]["cb"]
  assert rte["random_uniform"]["mean"] == pytest.approx(62.0)
  assert rte["random_uniform"]["std"] == pytest.approx(2.0)          # sample std of 60, 62, 64
  assert rte["class_labels"]["n"] == 1 and rte["class_labels"]["std"] == 0.0
  assert rte["spot_top1"]["mean"] == pytest.approx(82.0)
  # Base error 38, SPoT error 18: 20/38 of the error removed.
  assert rte["spot_top1"]["rer"] == pytest.approx(20.0 / 38.0)
  assert rte["class_labels"]["rer"] == pytest.approx(8.0 / 38.0)
  assert rte["random_uniform"]["rer"] == 0.0
  assert cb["spot_top1"]["mean"] == pytest.approx(93.333333)
  assert cb["spot_top1"]["std"] == pytest.approx(np.std([95, 92.5, 92.5], ddof=1))
  assert cb["spot_top1"]["rer"] == pytest.approx((93.333333 - 90.0) / 10.0)
  assert cb["class_labels"]["rer"] == pytest.approx(-3.0 / 10.0)
  avg = table["average"]
  assert avg["spot_top1"]["mean"] == pytest.approx((82.0 + 93.333333) / 2)
  assert avg["spot_top1"]["rer"] == pytest.approx((20.0 / 38.0 + 0.333333) / 2)
  # Per-seed averages over targets (87.5, 88.25, 87.25), then their sample std.
  assert avg["spot_top1"]["std"] == pytest.approx(np.std([87.5, 88.25, 87.25], ddof=1))
  # class_labels ran different seeds on the two targets: no per-seed std.
  assert avg["class_labels"]["std"] is None and avg["class_labels"]["n"] == 2
  assert avg["random_uniform"]["rer"] == 0.0


def test_baseline_at_100_gives_no_rer_and_input_is_validated():
  table = study_measures.results_table(_results({"t": {"random_uniform": [100.0],
                                                     "spot_top1": [99.0]}}))
  assert table["cells"]["t"]["spot_top1"]["rer"] is None
  assert table["average"]["spot_top1"]["rer"] is None
  with pytest.raises(ValueError, match="baseline 'oracle'"):
    study_measures.results_table(_results(), baseline="oracle")
  mixed = _results() + [{"target": "cb", "init": "oracle", "seed": 0, "step": 900, "score": 1.0}]
  with pytest.raises(ValueError, match="step budgets"):
    study_measures.results_table(mixed)
  with pytest.raises(ValueError, match="two results"):
    study_measures.results_table(_results() + _results()[:1])
  with pytest.raises(ValueError, match=r"\[0, 100\]"):
    study_measures.results_table([{"target": "t", "init": "random_uniform", "seed": 0,
                                 "step": 1, "score": float("nan")}])


def test_results_files_parse_back_to_the_printed_numbers(tmp_path):
  results = _results()
  results.append({"target": "rte", "init": "oracle", "seed": 0, "step": 500, "score": 88.0})
  table = study_measures.results_table(results)
  paths = study_report.write_results(table, str(tmp_path / "out"))
  assert json.loads(open(paths["json"]).read()) == table
  text = open(paths["markdown"]).read()
  lines = [l for l in text.splitlines() if l.startswith("|")]
  assert lines[0] == "| target | random_uniform | class_labels | spot_top1 | oracle |"
  assert len(lines) == 2 + 2 + 1                  # header, separator, targets, average
  parsed = study_report.read_results_markdown(text)
  assert parsed["methods"] == table["methods"]
  assert list(parsed["rows"]) == ["rte", "cb", study_measures.AVERAGE]
  assert parsed["rows"]["cb"]["oracle"] is None   # not run on cb
  assert parsed["rows"][study_measures.AVERAGE]["class_labels"]["ci95"] is None
  rows = {**table["cells"], study_measures.AVERAGE: table["average"]}
  for label, row in rows.items():
    for m, cell in row.items():
      got = parsed["rows"][label][m]
      assert got["mean"] == round(cell["mean"], 2)
      if cell["ci95"] is not None:
        assert got["ci95"] == round(cell["ci95"], 2)
      assert got["rer"] == pytest.approx(round(100 * cell["rer"], 1) / 100)
  # ± is the 95% t half-width: t(0.975, 2) * 2 / sqrt(3) = 4.97 for 60, 62, 64; none for
  # class_labels' single seed.
  assert "| rte | 62.00 ± 4.97 (RER +0.0%) | 70.00 ± n/a (RER +21.1%) |" in text
  with pytest.raises(ValueError, match="not 'mean"):
    study_report.read_results_markdown(text.replace("62.00 ± 4.97", "62.00"))


def _block_similarity(seed=0):
  """Two families of three tasks, interleaved so clustering must reorder them."""
  tasks = ["sst", "mnli", "imdb", "qnli", "yelp", "rte"]
  families = {t: "sentiment" if t in ("sst", "imdb", "yelp") else "entailment" for t in tasks}
  rng = np.random.default_rng(seed)
  m = np.array([[0.9 if families[a] == families[b] else 0.1 for b in tasks] for a in tasks])
  m = m + rng.uniform(-0.05, 0.05, size=m.shape)
  return {"tasks": tasks, "matrix": m.tolist()}, families


def _decodes(path, min_side=200):
  img = mpimg.imread(path)
  assert img.ndim == 3 and min(img.shape[:2]) >= min_side
  assert np.ptp(img[..., :3]) > 0.1               # not a blank canvas
  return img


def test_clustering_groups_the_blocks_and_heatmap_decodes(tmp_path):
  sim, families = _block_similarity()
  order = study_report.cluster_order(np.asarray(sim["matrix"]))
  assert sorted(order) == list(range(6))
  fams = [families[sim["tasks"][i]] for i in order]
  assert fams[:3] == [fams[0]] * 3 and fams[3:] == [fams[3]] * 3 and fams[0] != fams[3]
  path = tmp_path / "heat.png"
  names = study_report.plot_similarity_heatmap(sim, families, str(path))
  assert names == [sim["tasks"][i] for i in order]
  _decodes(path)


def test_heatmap_handles_one_task_and_unknown_families(tmp_path):
  path = tmp_path / "one.png"
  assert study_report.plot_similarity_heatmap({"tasks": ["a"], "matrix": [[0.7]]}, None,
                                              str(path)) == ["a"]
  _decodes(path, min_side=100)
  with pytest.raises(ValueError, match=r"\[2, 2\]"):
    study_report.plot_similarity_heatmap({"tasks": ["a", "b"], "matrix": [[1.0]]}, {}, str(path))


def _pairs(sims, scores, baseline=60.0):
  return [{"source": f"s{i}", "target": "t" if i % 2 else "u", "similarity": x, "score": y,
           "baseline": baseline} for i, (x, y) in enumerate(zip(sims, scores))]


def test_correlations_equal_scipy_and_scatter_decodes(tmp_path):
  rng = np.random.default_rng(1)
  sims = rng.uniform(0.2, 0.9, size=12)
  scores = np.clip(55 + 30 * sims + rng.normal(0, 4, size=12), 0, 100)
  pairs = _pairs(sims, scores)
  families = {"t": "nli", "u": "qa", **{f"s{i}": ("nli" if i < 6 else "qa") for i in range(12)}}
  path = tmp_path / "scatter.png"
  st = study_report.plot_similarity_vs_transfer(pairs, str(path), families=families)
  rer = (scores - 60.0) / 40.0
  pr, sr = stats.pearsonr(sims, rer), stats.spearmanr(sims, rer)
  assert st["n"] == 12 and st["note"] is None
  assert st["pearson_r"] == pytest.approx(pr[0]) and st["pearson_p"] == pytest.approx(pr[1])
  assert st["spearman_rho"] == pytest.approx(sr[0]) and st["spearman_p"] == pytest.approx(sr[1])
  np.testing.assert_allclose(st["rer"], rer)
  _decodes(path)


@pytest.mark.parametrize("pairs, note", [
    (_pairs([0.5], [70.0]), "fewer than 3 pairs"),
    (_pairs([0.5, 0.5, 0.5, 0.5], [70.0, 65.0, 80.0, 61.0]), "constant similarity"),
    (_pairs([0.1, 0.5, 0.9], [70.0] * 3), "constant relative error"),
    (_pairs([0.1, 0.5, 0.9], [70.0, 90.0, 100.0], baseline=100.0), "fewer than 3 pairs, n = 0"),
    ([], "fewer than 3 pairs, n = 0"),
])
def test_degenerate_pairs_give_nan_and_a_note(tmp_path, pairs, note):
  path = tmp_path / "degenerate.png"
  st = study_report.plot_similarity_vs_transfer(pairs, str(path))
  assert note in st["note"]
  assert st["excluded"] == sum(p["baseline"] == 100.0 for p in pairs)
  assert all(math.isnan(st[k]) for k in ("pearson_r", "pearson_p", "spearman_rho", "spearman_p"))
  _decodes(path)
