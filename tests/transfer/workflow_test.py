"""SPoT's steps on the tiny toy backbone: two source prompts trained and registered, a
target embedded, and a prompt initialised from a library query (the study that runs every
init is tests/transfer/study_test.py)."""

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
import toy_tasks as toy
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

  return library, target_embedding, root


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
def test_a_library_query_gives_the_top_source_or_the_weighted_average(spot_setup):
  library, target_embedding, _ = spot_setup
  emb, meta = prompt_files.load_prompt(target_embedding)
  from spot_jax.transfer import retrieval
  from spot_jax.transfer.prompt_library import ModelSignature
  ranked = retrieval.rank_library(emb, library, query=ModelSignature.of(meta),
                                  exclude_tasks=["toy_parity"], step=EMBEDDING_STEP)
  assert {r.task for r in ranked} == set(SOURCES)
  values = {e.task: library.load(e) for e in library.entries(role=prompt_files.TRANSFER)}
  for rank in (0, 1):
    got = workflow.retrieved_prompt(library.root, target_embedding, target_task="toy_parity",
                                    k=2, rank=rank)
    np.testing.assert_array_equal(got, values[ranked[rank].task])
  if all(r.score > 0 for r in ranked):
    total = sum(r.score for r in ranked)
    want = sum(r.score / total * values[r.task] for r in ranked)
    got = workflow.retrieved_prompt(library.root, target_embedding, target_task="toy_parity",
                                    strategy="top_k_weighted_average", k=2)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  with pytest.raises(ValueError, match="rank 2 is not among the top k=2"):
    workflow.retrieved_prompt(library.root, target_embedding, target_task="toy_parity", k=2,
                              rank=2)


@pytest.mark.slow
def test_a_prompt_of_another_model_is_refused(spot_setup, tmp_path):
  library, target_embedding, _ = spot_setup
  arr, meta = prompt_files.load_prompt(target_embedding)
  other = prompt_files.save_prompt(str(tmp_path / "other"), np.zeros((8, 32), np.float32),
                                   meta.replace(d_model=32, model_name="other-model",
                                                array_sha256="", created=""))
  with pytest.raises(ModelMismatchError, match="other-model"):
    workflow.retrieved_prompt(library.root, other, target_task="toy_parity")
