"""Mixture rates are min(n_train, 2^19) from the (mocked) TFDS split sizes."""
import pytest
import seqio
import tensorflow_datasets as tfds

from spot_jax.tasks import names
from spot_jax.tasks import pipeline
from spot_jax.tasks import registration

PREFIX = "tiny_"  # as registered by the `tiny_tasks` fixture
K = 2**19


def train_size(task: seqio.Task, split_sizes) -> int:
  # TFDS members read their "train" split; local-file members (CR, CxC) count their lines.
  tfds_dataset = getattr(task.source, "tfds_dataset", None)
  if tfds_dataset is None:
    return task.num_input_examples("train")
  mapping = tfds_dataset._split_map or {}  # e.g. WinoGrande's train_xl  pylint: disable=protected-access
  return split_sizes[tfds_dataset.name][mapping.get("train", "train")]


@pytest.mark.parametrize("mixture_name", names.ALL_MIXTURES)
def test_rates_are_capped_train_sizes(mixture_name, tiny_tasks, tfds_metadata,
                                      split_sizes):
  mixture = seqio.get_mixture_or_task(PREFIX + mixture_name)
  with tfds.testing.mock_data(num_examples=1, data_dir=tfds_metadata):
    for task in mixture.tasks:
      assert mixture.get_rate(task) == min(train_size(task, split_sizes), K), task.name


def test_known_rates(tiny_tasks, tfds_metadata):
  with tfds.testing.mock_data(num_examples=1, data_dir=tfds_metadata):
    glue_mix = seqio.get_mixture_or_task(PREFIX + names.GLUE_MIXTURE)
    rates = {t.name[len(PREFIX):]: glue_mix.get_rate(t) for t in glue_mix.tasks}
    assert rates[names.glue_task("mnli")] == 392702
    assert rates[names.glue_task("cola")] == 8551
    c4_mix = seqio.get_mixture_or_task(PREFIX + names.C4 + "_mix")
    assert c4_mix.get_rate(c4_mix.tasks[0]) == K  # 365M examples, capped


def test_mixture_yields_examples(tiny_tasks, tfds_metadata):
  mixture = seqio.get_mixture_or_task(PREFIX + names.SUPER_GLUE_MIXTURE)
  with tfds.testing.mock_data(num_examples=2, num_sub_examples=2, data_dir=tfds_metadata):
    ds = mixture.get_dataset({"inputs": 32, "targets": 8}, split="train", shuffle=False,
                             seed=0)
    examples = list(ds.take(6).as_numpy_iterator())
  assert len(examples) == 6


def test_custom_mixture_for_top_k_sources(tiny_tasks, tfds_metadata):
  tasks = [PREFIX + names.glue_task("rte"), PREFIX + names.super_glue_task("cb")]
  mixture = pipeline.add_mixture("tiny_custom_mix", tasks, maximum=1000)
  with tfds.testing.mock_data(num_examples=1, data_dir=tfds_metadata):
    assert [mixture.get_rate(t) for t in mixture.tasks] == [1000, 250]


def test_unprepared_data_gives_a_clear_error(tiny_vocab, tmp_path):
  registration.register_all(tiny_vocab, prefix="unprepared_", tfds_data_dir=str(tmp_path))
  mixture = seqio.get_mixture_or_task("unprepared_" + names.GLUE_MIXTURE)
  with pytest.raises(pipeline.DataNotPreparedError, match="not prepared|Prepare the data"):
    mixture.get_rate(mixture.tasks[0])
