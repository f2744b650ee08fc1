"""Indicators against transfer: correlations equal scipy's on the pairs they name, own-task
pairs are left out, ON joins the table with a model, a new indicator is one registration,
and the command writes the files."""
import json

import jax
import matplotlib.image
import numpy as np
import pytest
from scipy import stats

from spot_jax.model import t5
from spot_jax.model.config import get_config
from spot_jax.cli import indicators as indicators_cli
from spot_jax.prompts import prompt_files
from spot_jax.transfer import indicators, neurons, similarity, transfer_report

TASKS = ["a", "b", "c"]


def _setup(seed=0):
  """Two prompts per task; transfer to a task grows with per-token cosine to its prompts."""
  rng = np.random.default_rng(seed)
  prompts = rng.normal(size=(6, 4, 8)).astype(np.float32)
  prompt_tasks = ["a", "a", "b", "b", "c", "c"]
  values = np.zeros((6, 3))
  for t, task in enumerate(TASKS):
    own = [k for k, pt in enumerate(prompt_tasks) if pt == task]
    sims = np.mean([similarity.score(prompts[o], prompts, "cosine_per_token") for o in own], 0)
    values[:, t] = 10 * sims + 5
  values[5, 0] = np.nan  # unknown pair: left out
  return values, prompts, prompt_tasks


def test_correlations_are_scipys_on_the_cross_task_pairs():
  values, prompts, prompt_tasks = _setup()
  table = indicators.indicator_table(values, prompts, prompt_tasks, TASKS,
                                     indicators.metrics())
  assert table["indicators"] == list(similarity.METRICS)  # no model: no ON
  pairs = table["pairs"]
  assert len(pairs) == 3 * 4 - 1 and all(p["source_task"] != p["target"] for p in pairs)
  pooled = table["pooled"]["cosine_per_token"]
  assert pooled["spearman"] == pytest.approx(1.0) and pooled["n"] == 11
  for name in similarity.METRICS:
    x, y = [p[name] for p in pairs], [p["value"] for p in pairs]
    assert table["pooled"][name]["spearman"] == pytest.approx(stats.spearmanr(x, y)[0])
    assert table["pooled"][name]["pearson_p"] == pytest.approx(stats.pearsonr(x, y)[1])
  per_a = table["per_target"]["a"]["cosine_per_token"]
  assert per_a["n"] == 3 and per_a["spearman"] == pytest.approx(1.0)
  md = transfer_report.indicators_markdown(table)
  assert "| cosine_per_token | +1.00 (p=" in md


def test_activated_neurons_join_with_a_model():
  config = get_config("tiny", vocab_size=40, emb_dim=8, num_heads=2, head_dim=4, mlp_dim=16,
                      dropout_rate=0.0, name="ind_tiny")
  params = t5.init_params(config, jax.random.PRNGKey(0))
  values, prompts, prompt_tasks = _setup(1)
  table = indicators.indicator_table(
      values, prompts, prompt_tasks, TASKS,
      indicators.metrics(indicators.FrozenModel(config, params, probe_token_id=39)))
  assert indicators.ON in table["pooled"] and table["pooled"][indicators.ON]["n"] == 11
  patterns = neurons.activation_patterns(config, params, prompts, probe_token_id=39)
  first = table["pairs"][0]
  own = [k for k, pt in enumerate(prompt_tasks) if pt == first["target"]]
  want = np.mean([neurons.pattern_similarity(patterns[o], patterns)[first["source"]]
                  for o in own])
  assert first[indicators.ON] == pytest.approx(want)


def _norm_ratio(target, library):
  """A new indicator: how close the prompts' norms are, min / max."""
  t, lib = np.linalg.norm(target), np.linalg.norm(np.asarray(library), axis=(1, 2))
  return np.minimum(t, lib) / np.maximum(t, lib)


def test_a_new_indicator_is_one_registration():
  indicators.register(indicators.Indicator("norm_ratio", lambda _: _norm_ratio))
  try:
    with pytest.raises(ValueError, match="'norm_ratio' is registered already"):
      indicators.register(indicators.Indicator("norm_ratio", lambda _: _norm_ratio))
    values, prompts, prompt_tasks = _setup(3)
    table = indicators.indicator_table(values, prompts, prompt_tasks, TASKS,
                                       indicators.metrics())
    assert table["indicators"][-1] == "norm_ratio"
    first = table["pairs"][0]
    own = [k for k, pt in enumerate(prompt_tasks) if pt == first["target"]]
    assert first["norm_ratio"] == pytest.approx(np.mean(
        [_norm_ratio(prompts[o], prompts)[first["source"]] for o in own]))
    assert indicators.metric("norm_ratio") is _norm_ratio
  finally:
    indicators.unregister("norm_ratio")
  with pytest.raises(ValueError, match="unknown indicator 'norm_ratio'"):
    indicators.get("norm_ratio")
  with pytest.raises(ValueError, match="runs prompts through the frozen model"):
    indicators.metric("on")


def test_command_on_a_zero_shot_matrix(tmp_path, capsys):
  values, prompts, prompt_tasks = _setup(2)
  files = [prompt_files.save_prompt(tmp_path / f"p{k}", p, dict(
      task=pt, model_name="m", vocabulary_hash="ab" * 32, step=1))
           for k, (p, pt) in enumerate(zip(prompts, prompt_tasks))]
  rows = [[None if np.isnan(v) else float(v) for v in row] for row in values]
  (tmp_path / "zero_shot.json").write_text(json.dumps({
      "prompts": [f"p{k}" for k in range(6)], "prompt_files": files,
      "prompt_tasks": prompt_tasks, "tasks": TASKS, "raw": rows, "relative": rows}))
  table = indicators_cli.main(["--zero_shot", str(tmp_path / "zero_shot.json"),
                               "--out", str(tmp_path / "out")])
  assert table["pooled"]["cosine_per_token"]["spearman"] == pytest.approx(1.0)
  assert matplotlib.image.imread(str(tmp_path / "out" / "indicators.png")).shape[0] > 100
  assert "pooled Spearman" in (tmp_path / "out" / "indicators.md").read_text()
  # A damaged or foreign zero_shot.json is named, with what was expected.
  for text, message in (('{"prompts": [', "cannot be read as JSON"),
                        ('{"raw": []}', "not a zero_shot.json of `python -m spot_jax.cli"
                                        ".zero_shot` (no prompt_files, prompt_tasks, tasks, "
                                        "relative)")):
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(SystemExit):
      indicators_cli.main(["--zero_shot", str(tmp_path / "bad.json"), "--out", str(tmp_path / "o")])
    assert f"--zero_shot {tmp_path / 'bad.json'}: {message}" in capsys.readouterr().err
