"""The main job's command (`python -m spot_jax.pipeline`): settings checked before any run,
resume only with the same settings, relative paths and flags from the environment; and the
same command on real registered tasks (GLUE / SuperGLUE, TFDS mocked) from a gin file.
Every artifact of the study on the bundled suite, its console and its resume are checked on
the README's own command (tests/integration/readme_test.py)."""
import json
import os
import pathlib
import subprocess
import sys

import pytest

from spot_jax import pipeline
from spot_jax.transfer import study
from spot_jax.transfer.prompt_library import PromptLibrary

import compile_flags  # tests/, on the path

REPO = pathlib.Path(__file__).resolve().parents[2]


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
             TF_CPP_MIN_LOG_LEVEL="3", XLA_FLAGS=compile_flags.with_fast_compile())
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
