"""The main job, reduced (few steps, one seed, a few tasks of the bundled suite): every
artifact of `python -m spot_jax.pipeline` exists and is well formed."""
import json
import os

import matplotlib.image
import pytest

from spot_jax import pipeline
from spot_jax.transfer import study_report
from spot_jax.transfer.prompt_library import PromptLibrary

SOURCES = ("synth_sentiment_movie", "synth_sentiment_product", "synth_nli_people")
TARGETS = ("synth_sentiment_restaurant",)


@pytest.mark.slow
def test_reduced_pipeline_writes_every_artifact(tmp_path, caplog):
  caplog.set_level("INFO", logger="spot_jax.pipeline")
  out = str(tmp_path / "study")
  cfg = pipeline.PipelineConfig(out_dir=out, source_seeds=(0,), target_seeds=(0,),
                                source_steps=10, embedding_step=5, target_steps=6,
                                prompt_length=8, batch_size=8, top_k=2, num_eval_examples=16,
                                sources=SOURCES, targets=TARGETS)
  summary = pipeline.Study(cfg).run()
  assert summary["library_ok"]
  # The bundled suite's rows fit the feature lengths: counted, nothing truncated.
  counted = {(r["task"], r["split"]) for r in summary["data"]}
  assert {(t, "train") for t in SOURCES + TARGETS} <= counted
  assert all(r["examples"] > 0 and r["truncated_inputs"] == r["truncated_targets"] == 0
             for r in summary["data"])
  # The table: JSON and markdown agree, one row per target plus the average.
  with open(os.path.join(out, "results.json")) as f:
    table = json.load(f)
  with open(os.path.join(out, "results.md")) as f:
    parsed = study_report.read_results_markdown(f.read())
  assert parsed["methods"] == list(pipeline.INIT_METHODS)
  assert set(parsed["rows"]) == set(TARGETS) | {"average over targets"}
  for method in pipeline.INIT_METHODS:
    cell = table["cells"][TARGETS[0]][method]
    assert cell["n"] == 1 and 0.0 <= cell["mean"] <= 100.0
    assert abs(parsed["rows"][TARGETS[0]][method]["mean"] - cell["mean"]) < 0.01
  # The pictures decode.
  for name in ("similarity_heatmap.png", "similarity_vs_transfer.png"):
    image = matplotlib.image.imread(os.path.join(out, name))
    assert image.shape[0] > 200 and image.shape[1] > 200
  # The library: a key and a value per source run, all verified.
  library = PromptLibrary(os.path.join(out, "library"))
  assert library.verify().ok and len(library.entries()) == 2 * len(SOURCES)
  # Similarity over all tasks; a transfer pair per (source, target).
  with open(os.path.join(out, "similarity.json")) as f:
    sim = json.load(f)
  assert sim["tasks"] == list(SOURCES + TARGETS) and len(sim["matrix"]) == 4
  with open(os.path.join(out, "transfer_pairs.json")) as f:
    assert len(json.load(f)) == len(SOURCES)
  # TensorBoard logs of the runs, and progress with an ETA while it ran.
  events = [f for root, _, files in os.walk(out) for f in files if "tfevents" in f]
  assert len(events) >= 2 * (len(SOURCES) + 1)
  assert any("[stage 4/5]" in r.getMessage() and "ETA" in r.getMessage()
             for r in caplog.records)
  # Rerunning resumes: nothing is trained again, the table is the same.
  again = pipeline.Study(cfg).run()
  with open(os.path.join(out, "results.json")) as f:
    assert json.load(f)["cells"] == table["cells"]
  assert again["library_ok"]


# --- Settings are checked before the first run ------------------------------------------------

@pytest.mark.parametrize("flags,messages", [
    (["--top_k", "0"], ["--top_k 0: expected a positive integer"]),
    (["--embedding_step", "10", "--source_steps", "5"],
     ["--embedding_step 10: the task embedding is the prompt at that step, so it must be at "
      "most --source_steps (5)"]),
    (["--target_steps", "-1", "--source_seeds", "1", "1", "--targets", "synth_nli_townz"],
     ["--target_steps -1: expected a positive integer",
      "--source_seeds [1, 1]: each seed once", "--targets 'synth_nli_townz': not a target task"]),
])
def test_bad_settings_stop_before_any_run(tmp_path, monkeypatch, capsys, flags, messages):
  monkeypatch.chdir(tmp_path)
  with pytest.raises(SystemExit) as e:
    pipeline.main(["--out", "study", *flags])
  assert e.value.code == 2
  err = capsys.readouterr().err
  for message in messages:
    assert message in err
  assert not (tmp_path / "study").exists()


def test_an_existing_run_resumes_only_with_its_settings(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  (tmp_path / "study").mkdir()
  before = pipeline.PipelineConfig(out_dir="study", source_steps=5, embedding_step=5)
  (tmp_path / "study" / pipeline.CONFIG_FILE).write_text(json.dumps(before.to_json()))
  with pytest.raises(SystemExit):
    pipeline.main(["--out", "study", "--source_steps", "7", "--embedding_step", "5"])
  err = capsys.readouterr().err
  assert "holds a pipeline run with other settings" in err
  assert "source_steps: 5 before, 7 now" in err
  assert json.loads((tmp_path / "study" / pipeline.CONFIG_FILE).read_text()) == before.to_json()


def test_relative_out_and_flags_from_the_environment(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv(pipeline.FLAGS_ENV, "--source_steps 9 --embedding_step 4 --top_k 2")
  seen = []

  class Recorded:  # what main() hands the study, without running it
    def __init__(self, cfg):
      seen.append(cfg)

    def run(self):
      return {}

  monkeypatch.setattr(pipeline, "Study", Recorded)
  pipeline.main(["--out", "rel/study", "--top_k", "1"])
  [cfg] = seen
  assert cfg.out_dir == str(tmp_path / "rel" / "study")
  assert (cfg.source_steps, cfg.top_k) == (9, 1)  # the command line wins over the environment
