"""The shipped gin files and the command lines: every model x prompt x run combination
parses, t5x-style flags mean what they say, and `python -m spot_jax.train` / `eval` /
`infer` run end to end on the toy tasks with the tiny model."""
import glob
import json
import os
import pathlib
import re
import subprocess
import sys

import gin
import pytest

from spot_jax.cli import gin_flags
from spot_jax.training import data
from spot_jax.model.config import T5Config

import compile_flags  # tests/, on the path

REPO = pathlib.Path(__file__).resolve().parents[1]
GIN = pathlib.Path(gin_flags.gin_dir())
SIZES = ("small", "base", "large", "xl", "xxl")
MODELS = [f"models/t5_1_1_lm100k_{s}.gin" for s in SIZES] + ["test/tiny_model.gin"]
PROMPTS = [None] + sorted(f"prompts/{p.name}" for p in (GIN / "prompts").glob("*.gin"))
RUNS = sorted(f"runs/{p.name}" for p in (GIN / "runs").glob("*.gin"))
REQUIRED = {
    "runs/prompt_tuning.gin": {"MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS",
                               "TRAIN_STEPS"},
    "runs/model_tuning.gin": {"MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS",
                              "TRAIN_STEPS", "EXPORT_PARAMS_PATH"},
    "runs/eval.gin": {"MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "PROMPT_FILE",
                      "EVAL_OUTPUT_DIR"},
    "runs/infer.gin": {"MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS", "PROMPT_FILE",
                       "INFER_OUTPUT_DIR"},
    "runs/spot.gin": {"SPOT_DIR", "SOURCE_TASKS", "TARGET_TASK", "TASK_FEATURE_LENGTHS"},
    "runs/study.gin": {"STUDY_DIR", "SOURCES", "TARGETS", "TASK_FEATURE_LENGTHS"},
    "runs/projector_tuning.gin": {"MODEL_DIR", "MIXTURE_OR_TASK_NAME", "TASK_FEATURE_LENGTHS",
                                  "TRAIN_STEPS", "SOURCE_PROMPT_FILE"},
}
PROMPT_REQUIRED = {"prompts/from_class_labels.gin": {"CLASS_LABELS"},
                   "prompts/from_string.gin": {"PROMPT_TEXT"},
                   "prompts/from_file.gin": {"PROMPT_FILE"},
                   "prompts/from_library.gin": {"LIBRARY_DIR", "TARGET_EMBEDDING"}}
MESHES = {"partitioning/data_parallel.gin": "(-1, 1)",
          "partitioning/model_parallel.gin": "(-1, %MODEL_PARALLEL)",
          "partitioning/xxl_pod.gin": "(-1, 8)"}
# The SPoT recipes at the top: (required macros, mixture, steps).
RECIPES = {
    "spot_source.gin": ({"MODEL_DIR"}, "spot_glue_v200_mix", 262144),
    "spot_glue.gin": ({"MODEL_DIR", "PROMPT_FILE"}, "spot_glue_v200_mix", 100000),
    "spot_superglue.gin": ({"MODEL_DIR", "PROMPT_FILE"}, "spot_super_glue_v102_mix", 100000),
}
# T5X's layer (gin/t5x/, under python -m t5x.*) and its test model: parsed and run by
# tests/t5x_integration/.
T5X_LAYER = {"t5x/runs/prompt_tuning.gin", "t5x/runs/eval.gin", "t5x/runs/infer.gin",
             "t5x/prompted_t5.gin", "t5x/prompt_from_file.gin", "test/t5x_tiny_model.gin",
             "spot_eval.gin", "spot_infer.gin"}
# Which entry point each run file configures (its other bindings must not leak in).
ENTRY = {"runs/prompt_tuning.gin": "train", "runs/model_tuning.gin": "train",
         "runs/projector_tuning.gin": "train",
         "runs/eval.gin": "evaluate", "runs/infer.gin": "infer", "runs/spot.gin": "train",
         "runs/study.gin": "train"}
# The study recipes (python -m spot_jax.pipeline): run by tests/integration/pipeline_test.py
# and, the GLUE one, parsed below.
STUDIES = {"study/embedded.gin", "study/glue_base.gin"}


@pytest.fixture(autouse=True)
def _clean_gin():
  gin.clear_config()
  yield
  gin.clear_config()


def _parse(files, bindings=()):
  gin_flags.parse_gin([f for f in files if f], bindings, finalize=False)


def test_import_gin_from_the_repository_root_is_gin_config():
  # pytest runs from the repository root, where gin/ (spot_jax.gin) is on sys.path.
  assert hasattr(gin, "parse_config_files_and_bindings")
  assert not pathlib.Path(gin.__file__).resolve().is_relative_to(REPO / "gin")


def test_shipped_gin_files_are_all_covered():
  shipped = {str(p.relative_to(GIN)) for p in GIN.rglob("*.gin")}
  covered = set(MODELS) | {p for p in PROMPTS if p} | set(RUNS) | set(RECIPES) | set(MESHES) | {
      "models/t5_1_1_lm100k.gin"} | T5X_LAYER | STUDIES
  assert shipped == covered, "a new gin file needs a place in this test's combinations"
  assert set(RUNS) == set(REQUIRED)


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("prompt", PROMPTS)
@pytest.mark.parametrize("model", MODELS)
def test_every_combination_parses(model, prompt, run):
  _parse([model, prompt, run])
  want = REQUIRED[run] | (PROMPT_REQUIRED.get(prompt, set()) if prompt else set())
  assert set(gin_flags.missing_required_macros()) == want
  config = gin_flags.register_configurables()["get_config"]()
  assert isinstance(config, T5Config)
  if model.startswith("models/"):
    size = model.split("_")[-1][:-len(".gin")]
    assert config.name == f"t5_1_1_lm100k_{size}" and config.vocab_size == 32128
    assert config.dropout_rate == 0.1
    assert gin_flags.query_macro("INITIAL_CHECKPOINT_PATH") == (
        f"gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_{size}/checkpoint_1100000")
    assert gin_flags.query_macro("VOCABULARY_FILE") == (
        "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model")
  assert str(gin.query_parameter(f"{ENTRY[run]}.mixture_or_task_name")) == (
      "%MIXTURE_OR_TASK_NAME")


@pytest.mark.parametrize("run", RUNS)
@pytest.mark.parametrize("mesh", sorted(MESHES))
def test_partitioning_files_set_the_mesh_after_a_run(mesh, run):
  _parse(["models/t5_1_1_lm100k_xxl.gin", run, mesh], ["MODEL_PARALLEL = 4"])
  assert str(gin_flags.query_macro("MESH_SHAPE")).replace("'", "") == MESHES[mesh]
  assert str(gin.query_parameter(f"{ENTRY[run]}.mesh_shape")) == "%MESH_SHAPE"
  if mesh.endswith("model_parallel.gin"):
    assert gin_flags.query_macro("MODEL_PARALLEL") == 4


def test_the_tiny_test_run_needs_only_a_model_dir():
  _parse([str(REPO / "tests" / "gin" / "tiny.gin")])
  assert gin_flags.missing_required_macros() == ["MODEL_DIR"]
  assert gin_flags.query_macro("TASK_MODULES") == ["toy_tasks:register"]
  assert gin_flags.query_macro("INITIAL_CHECKPOINT_PATH") is None
  assert gin_flags.register_configurables()["get_config"]().emb_dim == 64


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_spot_recipes_target_registered_names(recipe):
  from spot_jax.tasks import names
  required, mixture, steps = RECIPES[recipe]
  _parse([recipe])
  assert set(gin_flags.missing_required_macros()) == required
  assert gin_flags.query_macro("MIXTURE_OR_TASK_NAME") == mixture
  assert mixture in names.ALL_MIXTURES
  assert gin_flags.query_macro("TRAIN_STEPS") == steps
  assert gin_flags.query_macro("PROMPT_LENGTH") == 100
  assert gin_flags.register_configurables()["get_config"]().name == "t5_1_1_lm100k_base"
  init = "@prompts.sampled_vocab()" if recipe == "spot_source.gin" else "@prompts.prompt_file()"
  assert str(gin.query_parameter("prompts.choice.scheme")) == init
  gin.clear_config()
  _parse([recipe, "models/t5_1_1_lm100k_xxl.gin"])  # another size after the recipe
  assert gin_flags.register_configurables()["get_config"]().emb_dim == 4096
  assert "t5_1_1_lm100k_xxl" in gin_flags.query_macro("INITIAL_CHECKPOINT_PATH")


def test_the_glue_study_recipe_is_a_base_study_of_registered_tasks():
  from spot_jax.tasks import names
  _parse(["study/glue_base.gin"], ["STUDY_DIR = '/runs/study'"])
  assert gin_flags.missing_required_macros() == []
  cfg = gin_flags.register_configurables()["study"]()
  assert cfg.model_config.name == "t5_1_1_lm100k_base" and cfg.prompt_length == 100
  assert (cfg.source_steps, cfg.embedding_step, cfg.target_steps) == (262144, 10000, 100000)
  assert (cfg.source_seeds, cfg.target_seeds, cfg.top_k) == ((0, 1, 2), (0, 1, 2), 3)
  assert cfg.source_batch_size == cfg.target_batch_size == 32
  assert cfg.initial_checkpoint.endswith("t5_1_1_lm100k_base/checkpoint_1100000")
  assert cfg.problems(known_tasks=names.ALL_TASKS) == []
  assert {cfg.family(t) for t in cfg.targets} == {"nli", None}  # BoolQ is in no family
  # SPoT's protocol: the best validation checkpoint's score, SPoT's similarity.
  assert (cfg.target_score, cfg.target_eval_points, cfg.metric) == ("best", 1,
                                                                     "cosine_per_token")
  assert all(cfg.task_labels(t) for t in (*cfg.sources, *cfg.targets))


def test_the_embedded_study_is_the_main_jobs_default():
  from spot_jax import embedded, pipeline
  _parse([pipeline.DEFAULT_GIN])
  assert gin_flags.missing_required_macros() == []
  cfg = gin_flags.register_configurables()["study"]()
  assert cfg.model_config == embedded.backbone_config()
  assert cfg.initial_checkpoint == embedded.backbone_path()
  assert cfg.out_dir == os.path.abspath("spot_jax_demo")
  assert cfg.probe_token == embedded.probe_token_id()  # the shipped vocabulary's '.'


def test_prompt_tuning_defaults_are_spots():
  _parse(["models/t5_1_1_lm100k_base.gin", "runs/prompt_tuning.gin"])
  q = gin.query_parameter
  assert gin_flags.query_macro("PROMPT_LENGTH") == 100
  assert gin_flags.query_macro("BATCH_SIZE") == 32
  assert gin_flags.query_macro("EVAL_PERIOD") == 500
  assert gin_flags.query_macro("PROMPT_SAVE_STEPS") == (10000,)
  assert gin_flags.query_macro("LEARNING_RATE") == 0.3
  assert q("optim.adafactor.decay_rate") == 0.8
  assert q("optim.adafactor.weight_decay_rate") == 1e-5
  assert q("optim.adafactor.multiply_by_parameter_scale") is False
  assert q("train.mode") == "prompt"
  assert gin_flags.query_macro("TASK_MODULES") == ["spot_jax.tasks.all"]


def test_prompt_files_choose_the_initializer_and_the_command_line_wins():
  _parse(["models/t5_1_1_lm100k_small.gin", "prompts/from_class_labels.gin",
          "runs/prompt_tuning.gin"],
         ["CLASS_LABELS = ['yes', 'no']", "PROMPT_LENGTH = 50"])
  assert str(gin.query_parameter("prompts.choice.scheme")) == "@prompts.class_labels()"
  assert gin_flags.query_macro("CLASS_LABELS") == ["yes", "no"]
  assert gin_flags.query_macro("PROMPT_LENGTH") == 50
  assert gin_flags.missing_required_macros() == ["MIXTURE_OR_TASK_NAME", "MODEL_DIR",
                                                 "TASK_FEATURE_LENGTHS", "TRAIN_STEPS"]


@pytest.mark.parametrize("value, gin_text", [
    ("'/tmp/x'", "'/tmp/x'"), ("/tmp/x", "'/tmp/x'"), ("gs://bucket/ckpt", "'gs://bucket/ckpt'"),
    ("toy_parity", "'toy_parity'"), ("10", "10"), ("1e-5", "1e-5"), ("None", "None"),
    ("False", "False"), ("(-1, 1)", "(-1, 1)"), ("{'inputs': 512, 'targets': 8}",
                                                 "{'inputs': 512, 'targets': 8}"),
    ("['toy_tasks:register']", "['toy_tasks:register']"), ("@prompts.text()", "@prompts.text()"),
    ("%MODEL_DIR", "%MODEL_DIR"), ("", "''")])
def test_binding_values_quote_bare_strings_only(value, gin_text):
  assert gin_flags.binding_value(value) == gin_text


def test_gin_dot_flags_become_bindings_and_parse():
  args = gin_flags.rewrite_gin_args(["--gin_file=x.gin", "--gin.MODEL_DIR=/tmp/run",
                                     "--gin.train.seed=3", '--gin.MODEL_DIR="\'/tmp/q\'"'])
  assert args == ["--gin_file=x.gin", "--gin_bindings=MODEL_DIR = '/tmp/run'",
                  "--gin_bindings=train.seed = 3", "--gin_bindings=MODEL_DIR = \"'/tmp/q'\""]
  with pytest.raises(ValueError, match="--gin.NAME=value"):
    gin_flags.rewrite_gin_args(["--gin.MODEL_DIR"])


def test_gin_paths_resolve_from_anywhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert gin_flags.resolve_gin_file("gin/runs/eval.gin") == str(GIN / "runs" / "eval.gin")
  (tmp_path / "mine").mkdir()
  (tmp_path / "mine" / "extra.gin").write_text("BATCH_SIZE = 4\n")
  gin_flags.parse_gin(["models/t5_1_1_lm100k_xl.gin", "runs/eval.gin", "extra.gin"],
                      search_paths=[str(tmp_path / "mine")], finalize=False)
  assert gin_flags.query_macro("BATCH_SIZE") == 4


def test_missing_required_macros_stop_the_command_naming_the_flags(capsys):
  with pytest.raises(SystemExit):
    gin_flags.parse_command_line(["--gin_file=models/t5_1_1_lm100k_small.gin",
                                  "--gin_file=runs/prompt_tuning.gin",
                                  "--gin.MODEL_DIR=/tmp/x"], "test")
  err = capsys.readouterr().err
  assert "MIXTURE_OR_TASK_NAME, TASK_FEATURE_LENGTHS, TRAIN_STEPS" in err
  assert "--gin.TRAIN_STEPS=..." in err and "MODEL_DIR," not in err


# --- End to end: subprocesses, as a user runs them -------------------------------------------

STEP_LINE = re.compile(r"step \d+/20 loss \d+\.\d+ acc \d\.\d+ +\d+\.\d+ steps/s +\d+\.\d+ "
                       r"examples/s +ETA \d+:\d\d:\d\d")


def _env():
  """One CPU device, as a user has (not the suite's 8), and XLA's quicker backend for tiny
  models, as the suite's other commands (the train/eval/infer test: 76 s of CPU with full
  backend optimisation, 67 s without, both from an empty compilation cache)."""
  env = dict(os.environ)
  env.update(JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3",
             XLA_FLAGS=compile_flags.with_fast_compile())
  return env


def _start(module, *args):
  return subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, env=_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc, timeout=120):
  out, _ = proc.communicate(timeout=timeout)
  assert proc.returncode == 0, out[-4000:]
  return out


@pytest.mark.slow
def test_train_then_eval_and_infer_on_the_prompt_it_wrote(tmp_path):
  run = tmp_path / "run"
  out = _finish(_start("spot_jax.train", "--gin_file=tests/gin/tiny.gin",
                       f"--gin.MODEL_DIR={run}", "--gin.TRAIN_STEPS=20"))
  assert len(STEP_LINE.findall(out)) == 4, out[-3000:]
  summary = json.loads(out.strip().splitlines()[-1])
  assert summary["final_step"] == 20 and summary["best"]["step"] in (10, 20)
  config = (run / "config.gin").read_text()
  # gin breaks a long line after "=" (e.g. under pytest-xdist's longer temporary paths)
  assert re.search(r"MODEL_DIR = (\\\n\s*)?'(.*?)'", config).group(2) == str(run)
  assert "TRAIN_STEPS = 20" in config
  operative = (run / "operative_config.gin").read_text()
  assert "train.prompt_length = %PROMPT_LENGTH" in operative
  assert "adafactor.learning_rate = %LEARNING_RATE" in operative
  for logs in ("train", "eval"):
    assert glob.glob(str(run / logs / "events.out.tfevents.*")), f"no TensorBoard events in {logs}"
  for name in ("step_10", "best", "final"):
    assert (run / "prompts" / f"{name}.npy").exists() and (run / "prompts" / f"{name}.json").exists()

  common = ["--gin_file=gin/test/tiny_model.gin", "--gin.TASK_MODULES=['toy_tasks:register']",
            "--gin.MIXTURE_OR_TASK_NAME=toy_parity",
            "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 8}",
            f"--gin.PROMPT_FILE='{run / 'prompts' / 'best'}'", "--gin.BATCH_SIZE=8"]
  (tmp_path / "inputs.txt").write_text("1 2 3 4\n5 6 7 8\n")
  procs = [
      _start("spot_jax.eval", *common, "--gin_file=runs/eval.gin", "--gin.NUM_EVAL_EXAMPLES=16",
             f"--gin.EVAL_OUTPUT_DIR={tmp_path / 'eval'}"),
      _start("spot_jax.infer", *common, "--gin_file=runs/infer.gin", "--gin.NUM_EXAMPLES=5",
             f"--gin.INFER_OUTPUT_DIR={tmp_path / 'infer'}"),
  ]
  eval_out, infer_out = [_finish(p) for p in procs]

  printed = json.loads(eval_out.strip().splitlines()[-1])
  report = json.loads((tmp_path / "eval" / "metrics.json").read_text())
  assert report["metrics"] == printed and set(printed) == {"toy_parity"}
  assert 0.0 <= printed["toy_parity"]["accuracy"] <= 100.0
  assert report["prompt_file"].endswith("best") and report["step"] == summary["best"]["step"]
  assert (tmp_path / "eval" / "config.gin").exists()

  rows = [json.loads(line) for line in
          (tmp_path / "infer" / "predictions.jsonl").read_text().splitlines()]
  assert len(rows) == 5, infer_out[-2000:]
  assert all(set(r) == {"task", "input", "target", "prediction"} for r in rows)
  assert all(r["task"] == "toy_parity" and r["target"] in ("even", "odd") for r in rows)
  assert re.fullmatch(r"\d \d \d \d", rows[0]["input"])

  # The library side of `infer` on a file of inputs, in this process.
  import toy_tasks as toy
  from spot_jax.training import inference
  toy.register()
  config = gin_flags.register_configurables()["get_config"](
      "tiny", name="tiny_test", vocab_size=384, emb_dim=64, num_heads=4, head_dim=16,
      mlp_dim=128, dropout_rate=0.0)
  count = inference.infer(mixture_or_task_name="toy_parity", model_config=config,
                          task_feature_lengths={"inputs": 16, "targets": 8},
                          checkpoint_path=None, prompt_file=str(run / "prompts" / "final"),
                          input_file=str(tmp_path / "inputs.txt"), batch_size=4,
                          output_dir=str(tmp_path / "infer_file"))
  rows = [json.loads(line) for line in
          (tmp_path / "infer_file" / "predictions.jsonl").read_text().splitlines()]
  assert count == 2 and [r["input"] for r in rows] == ["1 2 3 4", "5 6 7 8"]
  assert all(isinstance(r["prediction"], str) for r in rows)

  # `evaluate` on a model-tuned checkpoint (T5X msgpack, no prompt), in this process.
  import jax
  from spot_jax.model import t5, t5x_export
  t5x_export.write_t5x_msgpack(jax.device_get(t5.init_params(config, jax.random.PRNGKey(1))),
                               str(tmp_path / "tuned.msgpack"))
  metrics = inference.evaluate(mixture_or_task_name="toy_parity", model_config=config,
                               task_feature_lengths={"inputs": 16, "targets": 8},
                               checkpoint_path=str(tmp_path / "tuned.msgpack"), prompt_file=None,
                               batch_size=4, num_examples=8, output_dir=str(tmp_path / "mt_eval"))
  report = json.loads((tmp_path / "mt_eval" / "metrics.json").read_text())
  assert set(metrics) == {"toy_parity"} and report["metrics"] == metrics
  assert report["prompt_file"] is None and report["checkpoint_path"].endswith("tuned.msgpack")


def _sentencepiece(path, text):
  import sentencepiece as spm
  corpus = path.with_suffix(".txt")
  corpus.write_text(text * 50)
  spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(path.with_suffix("")),
                                 vocab_size=40, model_type="char", minloglevel=2)
  return str(path)


def test_the_task_must_tokenize_with_the_models_vocabulary(tmp_path):
  import shutil

  import seqio
  import toy_tasks as toy
  model_vocab = _sentencepiece(tmp_path / "model.model", "the quick brown fox jumps\n")
  other_vocab = _sentencepiece(tmp_path / "other.model", "lorem ipsum dolor sit amet\n")
  same_bytes = str(tmp_path / "copy.model")
  shutil.copy(model_vocab, same_bytes)
  vocab = seqio.SentencePieceVocabulary(model_vocab)
  feature = seqio.Feature(vocab)
  seqio.TaskRegistry.remove("gin_test_sp_task")
  seqio.TaskRegistry.add(
      "gin_test_sp_task", source=seqio.FunctionDataSource(lambda split, shuffle_files: None,
                                                          splits=["train"]),
      preprocessors=[], output_features={"inputs": feature, "targets": feature})
  try:
    data.prepare_tasks(modules=["toy_tasks:register"],
                            mixture_or_task_name="gin_test_sp_task", vocabulary_file=model_vocab)
    data.check_task_vocabulary("gin_test_sp_task", same_bytes)
    with pytest.raises(ValueError, match="vocabulary mismatch.*other.model"):
      data.check_task_vocabulary("gin_test_sp_task", other_vocab)
  finally:
    seqio.TaskRegistry.remove("gin_test_sp_task")
  toy.register()
  with pytest.raises(ValueError, match="ByteVocabulary"):
    data.check_task_vocabulary("toy_parity", model_vocab)
  with pytest.raises(ImportError, match="no_such_tasks_module"):
    data.prepare_tasks(modules=["no_such_tasks_module"])



# --- Bad flags stop the command before anything trains, naming the flag ----------------------

def _train_cli(tmp_path, *flags):
  from spot_jax import train
  return train.main([f"--gin_file={REPO / 'tests' / 'gin' / 'tiny.gin'}",
                     f"--gin.MODEL_DIR={tmp_path / 'run'}",
                     *flags])


def test_a_misspelled_macro_is_refused_with_the_close_match(tmp_path, capsys):
  with pytest.raises(SystemExit):
    _train_cli(tmp_path, "--gin.TRAIN_STEPZ=5")
  err = capsys.readouterr().err
  assert "--gin.TRAIN_STEPZ is not used by any loaded gin file; did you mean --gin.TRAIN_STEPS?" \
      in err
  assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("flag,message", [
    ("--gin.TRAIN_STEPS=10.5", "--gin.TRAIN_STEPS=10.5: train.train_steps expects a positive "
                               "integer"),
    ("--gin.TRAIN_STEPS='ten'", "--gin.TRAIN_STEPS='ten': train.train_steps expects a positive "
                                "integer"),
    ("--gin.BATCH_SIZE='8'", "--gin.BATCH_SIZE='8': train.batch_size expects a positive integer"),
    ("--gin.NUM_MICROBATCHES=0", "--gin.NUM_MICROBATCHES=0: train.num_microbatches expects a "
                                 "positive integer or None"),
    ("--gin.ACTIVATION_MEMORY_GB=0", "--gin.ACTIVATION_MEMORY_GB=0: train.activation_memory_gb "
                                     "expects a positive number or None"),
    ("--gin.EVAL_PERIOD=-1", "--gin.EVAL_PERIOD=-1: train.eval_period expects a non-negative "
                             "integer"),
])
def test_a_value_of_the_wrong_type_names_the_flag(tmp_path, flag, message):
  with pytest.raises(SystemExit) as e:
    _train_cli(tmp_path, flag)
  assert str(e.value.code) == f"error: {message}"
  assert not (tmp_path / "run" / "checkpoints").exists()


@pytest.mark.slow
def test_an_exploding_prompt_stops_the_run_naming_the_step(tmp_path):
  with pytest.raises(FloatingPointError, match=r"training diverged at step 0: the loss was not "
                                               r"finite or the update took a trained value "
                                               r"beyond \|x\| <= 1e\+06"):
    _train_cli(tmp_path, "--gin.LEARNING_RATE=1e30")
  prompts = tmp_path / "run" / "prompts"
  assert not prompts.exists() or not list(prompts.iterdir()), "nothing exploded is saved"


def test_a_relative_model_dir_trains_checkpoints_and_resumes(tmp_path, monkeypatch):
  from spot_jax import train
  monkeypatch.chdir(tmp_path)
  flags = [f"--gin_file={REPO / 'tests' / 'gin' / 'tiny.gin'}", "--gin.MODEL_DIR='relrun'", "--gin.EVAL_PERIOD=0",
           "--gin.CHECKPOINT_PERIOD=2", "--gin.PROMPT_SAVE_STEPS=(2,)", "--gin.LOG_PERIOD=1"]
  first = train.main(flags + ["--gin.TRAIN_STEPS=2"])
  gin.clear_config()
  again = train.main(flags + ["--gin.TRAIN_STEPS=4"])
  assert first["model_dir"] == again["model_dir"] == str(tmp_path / "relrun")
  assert sorted(p.name for p in (tmp_path / "relrun" / "checkpoints").iterdir()
                if p.name.isdigit()) == ["2", "4"], "the latest and one to fall back to"
  assert again["history"][0]["step"] == 3, "resumed after step 2"
  assert (tmp_path / "relrun" / "prompts" / "step_2.json").exists()
