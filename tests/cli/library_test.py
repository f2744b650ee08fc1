"""The library command line, in process, plus a check that transfer code loads without TF."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
from spot_jax.cli import library as library_cli
from spot_jax.transfer.prompt_library import PromptLibrary

VOCAB = "cd" * 32
E = np.eye(4, dtype=np.float32)


def _save(directory, name, tokens, *, task, role=None, step=10_000, model="small", metric=None):
  meta = dict(task=task, run="seed0", role=role, step=step, model_name=model,
              vocabulary_hash=VOCAB)
  if metric is not None:
    meta.update(metric_name="accuracy", metric_value=metric)
  return prompt_files.save_prompt(directory / name, np.asarray(tokens, np.float32), meta)


def _build(tmp_path, capsys):
  lib = str(tmp_path / "lib")
  files = tmp_path / "files"
  for task, tokens in (("near", [E[0], E[0]]), ("mid", [E[0] + E[1]] * 2), ("far", [E[2]] * 2)):
    emb = _save(files, f"{task}_emb", tokens, task=task)
    best = _save(files, f"{task}_best", tokens, task=task, step=50_000, metric=0.5)
    assert library_cli.main(["add", lib, emb, "--role", "task_embedding"]) == 0
    assert library_cli.main(["add", lib, best, "--role", "transfer"]) == 0
  target = _save(files, "rte_emb", [E[0], E[0]], task="rte")
  capsys.readouterr()
  return lib, target


def test_add_list_verify_remove(tmp_path, capsys):
  lib, _ = _build(tmp_path, capsys)
  assert library_cli.main(["list", lib, "--json", "--role", "transfer"]) == 0
  entries = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [e["task"] for e in entries] == ["near", "mid", "far"]
  assert library_cli.main(["verify", lib]) == 0
  assert capsys.readouterr().out.strip().endswith("ok: 6 entries, 0 problems, 0 orphans")
  assert library_cli.main(["remove", lib, entries[0]["id"]]) == 0
  assert len(PromptLibrary(lib).entries()) == 5
  assert library_cli.main(["remove", lib, "nope"]) == 2
  assert "nope" in capsys.readouterr().err


def test_rank_takes_a_registered_indicator_by_name(tmp_path, capsys):
  from spot_jax.transfer import indicators
  lib, target = _build(tmp_path, capsys)
  indicators.register(indicators.Indicator(
      "negative_l1", lambda _: lambda t, lib: -np.abs(np.asarray(lib) - t).sum(axis=(1, 2))))
  try:
    assert library_cli.main(["rank", lib, target, "--json", "--metric", "negative_l1"]) == 0
    ranking = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["task"], r["score"]) for r in ranking] == [("near", 0.0), ("mid", -2.0),
                                                          ("far", -4.0)]
  finally:
    indicators.unregister("negative_l1")
  with pytest.raises(SystemExit):
    library_cli.main(["rank", lib, target, "--metric", "negative_l1"])
  assert "invalid choice: 'negative_l1'" in capsys.readouterr().err


def test_rank_and_retrieval_commands(tmp_path, capsys):
  lib, target = _build(tmp_path, capsys)
  assert library_cli.main(["rank", lib, target, "--json"]) == 0
  ranking = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
  assert [r["task"] for r in ranking] == ["near", "mid", "far"]
  assert ranking[0]["score"] == 1.0 and ranking[0]["rank"] == 1
  assert library_cli.main(["rank", lib, target, "--k", "2"]) == 0
  err = capsys.readouterr().err
  assert "best of top-2" in err and "near__seed0__transfer" in err
  out = str(tmp_path / "init" / "rte_wavg")
  assert library_cli.main(["weighted-average", lib, target, "--k", "2", "--output", out]) == 0
  assert "alpha=" in capsys.readouterr().out
  prompt, meta = prompt_files.load_prompt(out)
  assert prompt.shape == (2, 4) and meta.extra["init"] == "top_2_weighted_average"
  assert library_cli.main(["mixture", lib, target, "--k", "2"]) == 0
  spec = json.loads(capsys.readouterr().out)
  assert spec["tasks"] == ["near", "mid", "rte"]
  assert library_cli.main(["oracle-plan", lib, target]) == 0
  assert len(capsys.readouterr().out.splitlines()) == 3


def test_a_target_of_another_model_is_refused(tmp_path, capsys):
  lib, _ = _build(tmp_path, capsys)
  other = _save(tmp_path, "base_emb", np.ones((2, 8)), task="rte", model="base")
  assert library_cli.main(["rank", lib, other]) == 2
  err = capsys.readouterr().err
  assert "'small' (d_model=4" in err and "'base' (d_model=8" in err


def test_transfer_modules_load_without_tensorflow():
  code = ("import sys; import spot_jax.cli.library, spot_jax.transfer.retrieval; "
          "bad = [m for m in ('tensorflow', 'seqio', 'jax', 'flax') if m in sys.modules]; "
          "print(bad); sys.exit(1 if bad else 0)")
  result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
  assert result.returncode == 0, result.stdout + result.stderr


def test_launch_targets_whose_files_are_gone_are_refused(tmp_path, capsys):
  lib, target = _build(tmp_path, capsys)
  library = PromptLibrary(lib)
  [near] = library.entries(task="near", role="transfer")
  gone = library.path(near)
  os.remove(gone)
  for command in (["rank", lib, target, "--k", "1"], ["oracle-plan", lib, target]):
    assert library_cli.main(command) == 2
    err = capsys.readouterr().err
    assert f"library entry {near.describe()} cannot be used" in err and "does not exist" in err
    assert "verify" in err
