"""Every real task and mixture's training pipeline can be checkpointed: its tf.data iterator
saved (through the trainer's own orbax checkpointer) and restored gives the same batches. A
few representative ones also train two steps with a checkpoint after the first, stop, resume,
and equal an uninterrupted run bit for bit.

The data is TFDS's mocked rows read the way a prepared dataset is read (serialized records
decoded by the dataset's features), so the only thing that could make the iterator
impossible to save is the task's own pipeline (as a `tf.py_function` once did)."""
import jax
import numpy as np
import pytest
import seqio
import tensorflow_datasets as tfds

from spot_jax.model import config as config_lib
from spot_jax.tasks import glue, names, pipeline
from spot_jax.training import checkpointing, data, trainer

PREFIX = "tiny_"  # as registered by the `tiny_tasks` fixture
LENGTHS = {"inputs": 32, "targets": 8}
TEST_ONLY = {names.glue_task("ax"), names.super_glue_task("axb"),
             names.super_glue_task("axg")}  # no train split: evaluation only
# spot_all_mix is left out: it is the union of the family mixtures' tasks, each checked here
# (its membership: task_mixtures_test), and alone it costs a minute of pipeline building.
TRAINABLE = ([n for n in names.ALL_TASKS if n not in TEST_ONLY]
             + [m for m in names.ALL_MIXTURES if m != "spot_all_mix"])
# Trained and resumed end to end: a classification task, ReCoRD's multi-answer rows, a
# generation task scored with ROUGE, and a family mixture.
TRAINED = [names.glue_task("rte"), names.super_glue_task("record"),
           next(iter(names.SUMMARIZATION)), "spot_nli_mix"]
CONFIG = config_lib.get_config("tiny", vocab_size=256, emb_dim=16, num_heads=2, head_dim=8,
                               mlp_dim=32, dropout_rate=0.1, name="tiny_tasks")


def _train(model_dir, name, steps):
  return trainer.train(model_dir=str(model_dir), mixture_or_task_name=PREFIX + name,
                       task_feature_lengths=LENGTHS, model_config=CONFIG,
                       initial_checkpoint=None, train_steps=steps, prompt_length=3,
                       batch_size=2, checkpoint_period=1, prompt_save_steps=(),
                       log_period=1, mesh_shape=(1, 1))


def _saves_and_restores(name, tmp_path):
  """Reads two batches past a checkpoint of the iterator, restores it, reads them again."""
  ds = data.train_dataset(name, task_feature_lengths=LENGTHS, batch_size=2, seed=3)
  it = iter(ds)
  next(it)
  ckpt = checkpointing.RunCheckpointer(tmp_path / "run")
  ckpt.save(1, {"step": np.zeros((), np.int32)}, it)  # the trainer's save of the iterator
  after = [next(it) for _ in range(2)]
  ckpt.restore(1, {"step": jax.ShapeDtypeStruct((), np.int32)}, it)  # back to batch 2
  again = [next(it) for _ in range(2)]
  ckpt.close()
  for a, b in zip(after, again):
    assert set(a) == set(b)
    for key in a:
      np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)


# The inner loop (`-m "not slow"`) keeps the four trained ones; CI runs every task.
@pytest.mark.parametrize("name", [
    n if n in TRAINED else pytest.param(n, marks=pytest.mark.slow) for n in TRAINABLE])
def test_the_training_pipeline_checkpoints_and_restores(name, tiny_tasks, tfds_metadata,
                                                        checkpointable_rows, tmp_path):
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows, data_dir=tfds_metadata):
    _saves_and_restores(PREFIX + name, tmp_path)


def test_the_default_shuffle_buffer_checkpoints_and_restores(tiny_tasks, tiny_vocab,
                                                             tfds_metadata,
                                                             checkpointable_rows, tmp_path):
  """The tiny tasks shuffle over a small buffer (tests/tasks/conftest.py); the buffer users
  get by default (seqio's and T5's 1000 examples) restores to the same batches too."""
  assert seqio.get_mixture_or_task(PREFIX + names.glue_task("rte")).shuffle_buffer_size < 1000
  opts = pipeline.Options(vocabulary=tiny_vocab, prefix="default_buffer_")
  glue.register(opts)
  name = opts.name(names.glue_task("rte"))
  assert seqio.get_mixture_or_task(name).shuffle_buffer_size == 1000
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows, data_dir=tfds_metadata):
    _saves_and_restores(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINED)
def test_trains_checkpoints_and_resumes_exactly(name, tiny_tasks, tfds_metadata,
                                                checkpointable_rows, tmp_path):
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows, data_dir=tfds_metadata):
    whole = _train(tmp_path / "whole", name, 2)
    first = _train(tmp_path / "split", name, 1)
    resumed = _train(tmp_path / "split", name, 2)
  assert first["final_step"] == 1 and resumed["final_step"] == 2
  for a, b in zip(jax.tree.leaves(whole["final_state"]), jax.tree.leaves(resumed["final_state"])):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert not np.array_equal(np.asarray(first["final_state"].params),
                            np.asarray(resumed["final_state"].params)), "the prompt moved"
  assert resumed["data"] and all(r["split"] == "train" for r in resumed["data"])


@pytest.mark.slow
def test_truncation_is_a_warning_and_in_the_summary(tiny_tasks, tfds_metadata,
                                                    checkpointable_rows, tmp_path, caplog):
  caplog.set_level("WARNING", logger="spot_jax")
  name = PREFIX + names.glue_task("mnli")
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows, data_dir=tfds_metadata):
    out = trainer.train(model_dir=str(tmp_path / "run"), mixture_or_task_name=name,
                        task_feature_lengths={"inputs": 6, "targets": 8}, model_config=CONFIG,
                        initial_checkpoint=None, train_steps=1, prompt_length=3, batch_size=2,
                        prompt_save_steps=(), mesh_shape=(1, 1))
  [report] = out["data"]
  assert report == {"task": name, "split": "train", "examples": 8, "complete": True,
                    "truncated_inputs": 8, "truncated_targets": 0, "rows_dropped": 0}
  assert (f"{name} (train): 8 of 8 examples have inputs longer than 6 tokens" in caplog.text)
  assert "TASK_FEATURE_LENGTHS['inputs']" in caplog.text


def test_mixture_counts_per_task(tiny_tasks, tfds_metadata, checkpointable_rows):
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows, data_dir=tfds_metadata):
    reports = data.check_data(PREFIX + names.GLUE_MIXTURE, task_feature_lengths=LENGTHS,
                              split="train", max_examples=5)
  assert sorted(r["task"] for r in reports) == sorted(PREFIX + t for t in names.GLUE_TASKS)
  assert all(r["examples"] == 5 and not r["complete"] for r in reports)
