"""The main job's command (`python -m spot_jax.pipeline`), reduced through its flags: every
artifact of the study on the bundled suite, settings checked before any run, resume only
with the same settings, relative paths and flags from the environment; and the same command
on real registered tasks (GLUE / SuperGLUE, TFDS mocked) from a gin file."""
import json
import os
import pathlib
import subprocess
import sys

import matplotlib.image
import pytest

from spot_jax import pipeline
from spot_jax.transfer import study, study_report
from spot_jax.transfer.prompt_library import PromptLibrary

REPO = pathlib.Path(__file__).resolve().parents[2]
SOURCES = ("synth_sentiment_movie", "synth_sentiment_product", "synth_nli_people",
           "synth_topic_goodbad")
TARGETS = ("synth_sentiment_restaurant",)
REDUCED = ["--source_steps", "6", "--embedding_step", "3", "--target_steps", "3",
           "--target_eval_points", "3",
           "--mixture_steps", "3", "--source_seeds", "0", "--target_seeds", "0", "1",
           "--prompt_length", "4", "--source_batch_size", "8", "--target_batch_size", "8",
           "--top_k", "2", "--num_eval_examples", "16", "--sources", *SOURCES,
           "--targets", *TARGETS]


@pytest.mark.slow
def test_reduced_main_job_writes_every_artifact(tmp_path, monkeypatch, capsys):
  monkeypatch.chdir(tmp_path)
  summary = pipeline.main(["--out", "study", *REDUCED])
  out = tmp_path / "study"
  assert summary["out_dir"] == str(out) and summary["library_ok"]
  # The bundled suite's rows fit the feature lengths: counted, nothing truncated.
  assert all(r["examples"] > 0 and r["truncated_inputs"] == r["truncated_targets"] == 0
             for r in summary["data"])
  # The table: JSON and markdown agree; every init, two seeds, an interval each.
  table = json.loads((out / "results.json").read_text())
  parsed = study_report.read_results_markdown((out / "results.md").read_text())
  assert parsed["methods"] == list(study.INITS)
  assert set(parsed["rows"]) == set(TARGETS) | {study_report.AVERAGE}
  for method in study.INITS:
    cell = table["cells"][TARGETS[0]][method]
    assert cell["n"] == 2 and 0.0 <= cell["mean"] <= 100.0 and cell["ci95"] is not None
    assert abs(parsed["rows"][TARGETS[0]][method]["mean"] - cell["mean"]) < 0.01
  # The report: claims, comparisons and conclusions from the intervals.
  data = json.loads((out / "study.json").read_text())
  report = (out / "report.md").read_text()
  assert [c["conclusion"] for c in data["comparisons"]] == summary["conclusions"]
  assert all(c in report for c in summary["conclusions"])
  # The pictures decode.
  for name in ("similarity_heatmap.png", "similarity_vs_transfer.png",
               "zero_shot/zero_shot_heatmap.png"):
    image = matplotlib.image.imread(str(out / name))
    assert image.shape[0] > 200 and image.shape[1] > 200
  # The library: a key and a value per source run, all verified.
  library = PromptLibrary(str(out / "library"))
  assert library.verify().ok and len(library.entries()) == 2 * len(SOURCES)
  sim = json.loads((out / "similarity.json").read_text())
  assert sim["tasks"] == list(SOURCES + TARGETS) and len(sim["matrix"]) == len(SOURCES) + 1
  # Learning curves (validation at steps 1, 2, 3), the majority-class bar, transfer by the
  # source's relation to the target (same family, label control, other family), zero-shot
  # transfer by relation, and the claims they decide.
  record = json.loads((out / "targets" / TARGETS[0] / "random_uniform" / "seed0" /
                       "score.json").read_text())
  assert [s for s, _ in record["curve"]] == [1, 2, 3]
  assert record["score"] == record["auc"] == sum(v for _, v in record["curve"]) / 3
  assert 40.0 <= data["majority"][TARGETS[0]] < 100.0
  relations = {s["source"]: s["relation"] for s in data["source_scores"]}
  assert relations == {"synth_sentiment_movie": "same family",
                       "synth_sentiment_product": "same family",
                       "synth_nli_people": "other family",
                       "synth_topic_goodbad": "label control"}
  by_relation = data["transfer_by_relation"]["score"]
  assert by_relation["same_minus_other_family"]["n"] == 2
  assert by_relation["same_minus_label_control"]["n"] == 2
  assert set(data["zero_shot"]["by_relation"]["groups"]) == {
      "same family", "other family", "label control"}
  for claim in ("every target clearly above its majority baseline from its best init",
                "same-family sources transfer better than other-family sources",
                "zero-shot transfer within a family exceeds transfer across families"):
    assert claim in report
  assert len(json.loads((out / "transfer_pairs.json").read_text())) == len(SOURCES)
  assert (out / "config.gin").is_file() and (out / "operative_config.gin").is_file()
  # TensorBoard logs of the runs, and progress with an ETA while it ran.
  events = [f for _, _, files in os.walk(out) for f in files if "tfevents" in f]
  assert len(events) >= 2 * (len(SOURCES) + 1)
  log = capsys.readouterr().err  # the command's console (INFO lines of spot_jax)
  assert any("[targets]" in line and "ETA" in line for line in log.splitlines())
  assert "packed runs" in log  # the runs of a stage trained together
  # Library notices (seqio's per-run warnings) stay off the console.
  assert "FunctionDataset" not in log and "sequence lengths are longer" not in log
  # Rerunning resumes: nothing is trained again, the table is the same.
  pipeline.main(["--out", "study", *REDUCED])
  assert json.loads((out / "results.json").read_text())["cells"] == table["cells"]
  assert "spot_jax.train]" not in capsys.readouterr().err


# --- Settings are checked before the first run ------------------------------------------------

@pytest.mark.parametrize("flags,messages", [
    (["--top_k", "0"], ["--top_k 0: expected a positive integer"]),
    (["--embedding_step", "10", "--source_steps", "5"],
     ["--embedding_step 10: the task embedding is the prompt at that step, so it must be at "
      "most --source_steps (5)"]),
    (["--target_steps", "-1", "--source_seeds", "1", "1", "--targets", "synth_nli_townz"],
     ["--target_steps -1: expected a positive integer",
      "--source_seeds [1, 1]: each seed once",
      "--targets 'synth_nli_townz': not a registered task or mixture; did you mean "
      "synth_nli_towns, "]),
    (["--gin.TOP_KK=2"], ["--gin.TOP_KK is not used by any loaded gin file; did you mean "
                          "--gin.TOP_K?"]),
    (["--top_k", "ten"], ["argument --top_k: invalid int value: 'ten'"]),
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
  seen = []
  monkeypatch.setattr(study.Study, "run", lambda self: seen.append(self.cfg) or {})
  pipeline.main(["--out", "study", "--source_steps", "5", "--embedding_step", "5"])
  (tmp_path / "study" / study.CONFIG_FILE).write_text(json.dumps(seen[0].to_json()))
  before = (tmp_path / "study" / study.CONFIG_FILE).read_text()
  with pytest.raises(SystemExit):
    pipeline.main(["--out", "study", "--source_steps", "7", "--embedding_step", "5"])
  err = capsys.readouterr().err
  assert "holds a study run with other settings" in err
  assert "source_steps: 5 before, 7 now" in err
  assert (tmp_path / "study" / study.CONFIG_FILE).read_text() == before
  # A trainer setting outside the study's own (its gin config) is refused too, once the
  # study has runs; before that, nothing is being resumed.
  (tmp_path / "study" / "sources").mkdir()
  (tmp_path / "study" / "sources" / "synth_sentiment_movie").mkdir()
  with pytest.raises(SystemExit):
    pipeline.main(["--out", "study", "--source_steps", "5", "--embedding_step", "5",
                   "--gin.LEARNING_RATE=0.5"])
  err = capsys.readouterr().err
  assert f"--gin.STUDY_DIR {tmp_path / 'study'} holds a run started with other settings" in err
  assert "LEARNING_RATE = 0.5 (the run has 0.3)" in err


def test_relative_out_and_flags_from_the_environment(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.setenv(pipeline.FLAGS_ENV, "--source_steps 9 --embedding_step 4 --top_k 2")
  seen = []
  monkeypatch.setattr(study.Study, "run", lambda self: seen.append(self.cfg) or {})
  pipeline.main(["--out", "rel/study", "--top_k", "1"])
  [cfg] = seen
  assert cfg.out_dir == str(tmp_path / "rel" / "study")
  assert (cfg.source_steps, cfg.top_k) == (9, 1)  # the command line wins over the environment
  # The embedded default: the shipped backbone, the bundled suite, three families and the
  # label control, learning curves on 200 validation examples.
  assert cfg.model_config.name == "synthetic_backbone" and len(cfg.targets) == 3
  assert {cfg.family(t) for t in cfg.sources} == {"sentiment", "paraphrase", "topic"}
  assert [cfg.relation(s, "synth_sentiment_restaurant") for s in cfg.sources].count(
      "label control") == 1
  assert (cfg.target_eval_points, cfg.target_score, cfg.num_eval_examples) == (2, "auc", 200)


# --- The same study on real registered tasks ---------------------------------------------

GLUE_SPLITS = {"glue/rte:2.0.0": {"train": 2490, "validation": 277, "test": 3000},
               "glue/mrpc:2.0.0": {"train": 3668, "validation": 408, "test": 1725},
               "super_glue/cb:1.0.2": {"train": 250, "validation": 56, "test": 250}}


@pytest.mark.slow
def test_the_study_runs_on_real_tasks_from_a_gin_file(toy_backbone, tiny_vocab, tmp_path):
  """GLUE RTE and MRPC as sources, SuperGLUE CB as the target, through their real seqio
  pipelines (TFDS mocked, the T5 vocabulary replaced by a tiny SentencePiece model), on a
  tiny frozen model: `python -m spot_jax.pipeline --gin_file=...` as a user runs it."""
  import mocked_tfds  # pylint: disable=g-import-not-at-top
  _, backbone, _ = toy_backbone
  env = dict(os.environ, SPOT_JAX_VOCAB=tiny_vocab.sentencepiece_model_file,
             MOCKED_TFDS_DATA_DIR=mocked_tfds.write_split_metadata(tmp_path / "tfds",
                                                                   GLUE_SPLITS),
             TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS="--xla_backend_optimization_level=0")
  out = tmp_path / "study"
  args = ["spot_jax.pipeline", "--gin_file=test/tiny_model.gin", "--gin_file=runs/study.gin",
          f"--gin.STUDY_DIR={out}", f"--gin.INITIAL_CHECKPOINT_PATH={backbone}",
          "--gin.TASK_MODULES=['spot_jax.tasks.all']",
          "--gin.SOURCES=['spot_glue_rte_v200', 'spot_glue_mrpc_v200']",
          "--gin.TARGETS=['spot_super_glue_cb_v102']",
          "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}",
          "--gin.FEATURE_LENGTHS={'spot_glue_mrpc_v200': {'inputs': 48, 'targets': 4}}",
          "--gin.SOURCE_SEEDS=(0,)", "--gin.TARGET_SEEDS=(0, 1)", "--gin.SOURCE_STEPS=4",
          "--gin.EMBEDDING_STEP=2", "--gin.TARGET_STEPS=2", "--gin.MIXTURE_STEPS=2",
          "--gin.BATCH_SIZE=4", "--gin.PROMPT_LENGTH=4", "--gin.NUM_EVAL_EXAMPLES=8",
          "--gin.TOP_K=1", "--gin.MESH_SHAPE=(1, 1)"]
  proc = subprocess.run([sys.executable, str(REPO / "tests" / "mocked_tfds.py"), *args],
                        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
  data = json.loads((out / "study.json").read_text())
  assert data["config"]["sources"] == ["spot_glue_rte_v200", "spot_glue_mrpc_v200"]
  # Label words and families from the registry: CB's verbalizers, SPoT's NLI family.
  assert {r["init"] for r in data["results"]} == set(study.INITS) | {study.AVERAGE_SOURCE}
  assert data["similarity"]["families"] == {"spot_glue_rte_v200": "nli",
                                            "spot_glue_mrpc_v200": "paraphrase",
                                            "spot_super_glue_cb_v102": "nli"}
  # Per-task feature lengths reached the trainer: MRPC's source run read 48-piece inputs.
  mrpc = [r for r in json.loads((out / "summary.json").read_text())["data"]
          if r["task"] == "spot_glue_mrpc_v200"]
  assert mrpc and all(r["examples"] > 0 for r in mrpc)
  assert (out / "report.md").is_file() and (out / "results.md").is_file()
  assert PromptLibrary(str(out / "library")).verify().ok
