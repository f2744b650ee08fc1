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
