"""SPoT end to end on the tiny toy backbone: two source prompts trained and registered, a
target embedded, sources retrieved, and the target tuned by each strategy."""
import functools
import os

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
from spot_jax.tasks import toy
from spot_jax.training import trainer
from spot_jax.transfer import workflow
from spot_jax.transfer.prompt_library import ModelMismatchError, PromptLibrary

LENGTHS = {"inputs": 16, "targets": 8}
SOURCES = ("toy_first", "toy_last")
EMBEDDING_STEP = 20


@pytest.fixture(scope="module")
def spot_setup(toy_backbone, tmp_path_factory):
  toy.register()
  config, path, _ = toy_backbone
  root = tmp_path_factory.mktemp("spot")
  common = dict(task_feature_lengths=LENGTHS, model_config=config, initial_checkpoint=path,
                prompt_length=8, batch_size=16, log_period=20, mesh_shape=(1, 1))
  library = PromptLibrary(str(root / "library"), create=True)
  for task in SOURCES:
    run_dir = str(root / "sources" / task)
    trainer.train(model_dir=run_dir, mixture_or_task_name=task, train_steps=40,
                  eval_period=40, checkpoint_period=40, prompt_save_steps=(EMBEDDING_STEP,),
                  num_eval_examples=32, **common)
    workflow.register_run(library, run_dir, embedding_step=EMBEDDING_STEP, run="seed0")
  target_embedding = workflow.embed_task(
      model_dir=str(root / "target_embedding"), embedding_step=EMBEDDING_STEP,
      train=trainer.train, mixture_or_task_name="toy_parity", checkpoint_period=EMBEDDING_STEP,
      **common)

  def run_target(init_path, run_dir):
    from spot_jax.prompts import initializers
    out = trainer.train(model_dir=run_dir, mixture_or_task_name="toy_parity", train_steps=20,
                        prompt_init=initializers.prompt_file(init_path), eval_period=20,
                        checkpoint_period=20, prompt_save_steps=(), num_eval_examples=32,
                        **common)
    return out["best"]["metric_value"]

  def run_mixture_source(mixture, run_dir):
    trainer.train(model_dir=run_dir, mixture_or_task_name=mixture, train_steps=20,
                  checkpoint_period=20, prompt_save_steps=(), **common)
    return os.path.join(run_dir, "prompts", "final")

  return library, target_embedding, root, run_target, run_mixture_source


@pytest.mark.slow
def test_library_holds_keys_and_values_of_each_source(spot_setup):
  library, target_embedding, *_ = spot_setup
  assert library.verify().ok
  for task in SOURCES:
    roles = sorted(e.role for e in library.entries(task=task))
    assert roles == [prompt_files.TASK_EMBEDDING, prompt_files.TRANSFER]
    key = library.entries(task=task, role=prompt_files.TASK_EMBEDDING)[0]
    assert key.step == EMBEDDING_STEP
  _, meta = prompt_files.load_prompt(target_embedding)
  assert meta.task == "toy_parity" and meta.step == EMBEDDING_STEP


@pytest.mark.slow
@pytest.mark.parametrize("strategy,k,runs", [("best_of_top_k", 1, 1),
                                             ("top_k_weighted_average", 2, 1),
                                             ("top_k_mixture", 1, 1), ("oracle", 1, 2)])
def test_each_strategy_tunes_the_target_from_retrieved_prompts(spot_setup, strategy, k, runs):
  library, target_embedding, root, run_target, run_mixture_source = spot_setup
  result = workflow.transfer(strategy, library, target_embedding, target_task="toy_parity",
                             out_dir=str(root / strategy), run_target=run_target, k=k,
                             run_mixture_source=run_mixture_source)
  assert [r.task for r in result.ranked] and set(r.task for r in result.ranked) == set(SOURCES)
  assert len(result.runs) == runs
  for run in result.runs:
    assert 0.0 <= run["score"] <= 100.0
    # The target run really started from the retrieved prompt.
    init = prompt_files.load_prompt_array(run["init"])
    first = _first_checkpoint_prompt_distance(run["run_dir"], init)
    assert first < 5.0
  if strategy == "best_of_top_k":
    top = result.ranked[0].task
    assert result.runs[0]["source"] == top
    value = [e for e in library.entries(task=top, role=prompt_files.TRANSFER)][0]
    np.testing.assert_array_equal(prompt_files.load_prompt_array(result.runs[0]["init"]),
                                  library.load(value))
  if strategy == "top_k_weighted_average":
    entries = {e.task: library.load(e) for e in library.entries(role=prompt_files.TRANSFER)}
    sims = {r.task: r.score for r in result.ranked}
    total = sum(sims.values())
    want = sum(sims[t] / total * entries[t] for t in SOURCES)
    np.testing.assert_allclose(prompt_files.load_prompt_array(result.runs[0]["init"]), want,
                               rtol=1e-5, atol=1e-6)
  if strategy == "top_k_mixture":
    import seqio
    mixture = seqio.get_mixture_or_task(result.runs[0]["mixture"])
    assert sorted(t.name for t in mixture.tasks) == sorted([result.ranked[0].task,
                                                            "toy_parity"])
    # Example-proportional rates capped at K = 2^19: min(n_train, K) = 4000 here.
    assert [mixture.get_rate(t) for t in mixture.tasks] == [min(4000, 2**19)] * 2


def _first_checkpoint_prompt_distance(run_dir, init):
  """How far the target's final prompt moved from its init (20 steps at lr 0.3)."""
  final = prompt_files.load_prompt_array(os.path.join(run_dir, "prompts", "final"))
  return float(np.sqrt(np.mean((final - init) ** 2)))


def test_a_prompt_of_another_model_is_refused(spot_setup, tmp_path):
  library, target_embedding, root, run_target, _ = spot_setup
  arr, meta = prompt_files.load_prompt(target_embedding)
  other = prompt_files.save_prompt(str(tmp_path / "other"), np.zeros((8, 32), np.float32),
                                   meta.replace(d_model=32, model_name="other-model",
                                                array_sha256="", created=""))
  with pytest.raises(ModelMismatchError, match="other-model"):
    workflow.transfer("best_of_top_k", library, other, target_task="toy_parity",
                      out_dir=str(tmp_path / "x"), run_target=run_target)
