"""Every registered task yields tokenized examples from mocked TFDS or small local files."""
import logging

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from spot_jax.tasks import names
from spot_jax.tasks import pipeline

PREFIX = "tiny_"  # as registered by the `tiny_tasks` fixture
LENGTHS = {"inputs": 32, "targets": 8}
LOCAL = names.LOCAL_TASKS
HAND_MOCKED = (names.HELLASWAG, names.RACE_MIDDLE, names.RACE_HIGH,
               names.super_glue_task("wsc"), names.SENTIMENT140)
TFDS_TASKS = [n for n in names.ALL_TASKS if n not in LOCAL + HAND_MOCKED]
TEST_ONLY = {names.glue_task("ax"), names.super_glue_task("axb"),
             names.super_glue_task("axg")}


def check_tokenized(examples, vocab_size):
  assert examples, "no examples"
  for ex in examples:
    for key in ("inputs", "targets"):
      tokens = ex[key]
      assert tokens.dtype == np.int32
      assert 2 <= len(tokens) <= LENGTHS[key]
      assert tokens[-1] == 1, f"{key} must end in EOS"
      assert tokens.max() < vocab_size


@pytest.mark.parametrize("name", TFDS_TASKS)
def test_task_yields_tokenized_examples(name, tiny_tasks, tiny_vocab, tfds_metadata):
  task = seqio.get_mixture_or_task(PREFIX + name)
  split = "test" if name in TEST_ONLY else "validation"
  with tfds.testing.mock_data(num_examples=2, num_sub_examples=3, data_dir=tfds_metadata):
    ds = task.get_dataset(LENGTHS, split=split, shuffle=False)
    examples = list(ds.take(4).as_numpy_iterator())
  check_tokenized(examples, tiny_vocab.vocab_size)


@pytest.mark.parametrize("name,expected", [(names.HELLASWAG, 1), (names.RACE_MIDDLE, 3),
                                           (names.RACE_HIGH, 3)])
def test_multiple_choice_tasks_from_hand_rows(name, expected, tiny_tasks, tiny_vocab,
                                              tfds_metadata, hand_rows):
  task = seqio.get_mixture_or_task(PREFIX + name)
  with tfds.testing.mock_data(as_dataset_fn=hand_rows, data_dir=tfds_metadata):
    examples = list(task.get_dataset(LENGTHS, split="validation", shuffle=False)
                    .as_numpy_iterator())
    counted = pipeline.count_examples(task, LENGTHS, "validation")
  check_tokenized(examples, tiny_vocab.vocab_size)
  assert len(examples) == expected == counted["examples"]
  assert counted["rows_dropped"] == (1 if name == names.HELLASWAG else 0)


OTHER_LOCAL = {
    names.ART: ("art obs1: Tom was hungry. obs2: Tom ate well. hyp1: He cooked. hyp2: He "
                "slept.", ["hyp1", "hyp2"]),
    names.SOCIAL_IQA: ("social_iqa context: Ann lost. question: How does Ann feel? answerA: "
                       "sad answerB: happy answerC: bored", ["answerA", "answerB"]),
    names.LAPTOP: ("laptop sentence: The screen is great. aspect: screen",
                   ["positive", "negative"]),
    names.RESTAURANT: ("restaurant sentence: The soup was fine. aspect: soup",
                       ["neutral", "negative"]),
    names.TWEET_EVAL: ("tweet_eval_sentiment text: love this day", ["positive", "neutral"]),
    names.ETHICS_DEONTOLOGY: ("ethics_deontology scenario: Can you drive me? excuse: No, my "
                              "car broke.", ["reasonable", "unreasonable"]),
    names.ETHICS_JUSTICE: ("ethics_justice scenario: I deserve pay since I worked.",
                           ["reasonable", "unreasonable"]),
}


@pytest.mark.parametrize("name", sorted(OTHER_LOCAL))
def test_other_local_file_tasks(name, tiny_tasks, tiny_vocab):
  task = seqio.get_mixture_or_task(PREFIX + name)
  examples = list(task.get_dataset(LENGTHS, split="validation", shuffle=False)
                  .as_numpy_iterator())
  raw = list(task.get_dataset(None, split="validation", shuffle=False).as_numpy_iterator())
  first_input, targets = OTHER_LOCAL[name]
  check_tokenized(examples, tiny_vocab.vocab_size)
  assert raw[0]["inputs_pretokenized"].decode() == first_input
  assert [ex["targets_pretokenized"].decode() for ex in raw] == targets
  assert pipeline.count_examples(task, LENGTHS, "validation")["rows_dropped"] == 1
  assert task.num_input_examples("train") == 3


@pytest.mark.parametrize("name", (names.CR, names.CXC))
def test_local_file_tasks_drop_and_count_bad_rows(name, tiny_tasks, tiny_vocab):
  task = seqio.get_mixture_or_task(PREFIX + name)
  examples = list(task.get_dataset(LENGTHS, split="train", shuffle=False)
                  .as_numpy_iterator())
  check_tokenized(examples, tiny_vocab.vocab_size)
  dropped = pipeline.count_examples(task, LENGTHS, "train")["rows_dropped"]
  if name == names.CR:
    assert (len(examples), dropped) == (3, 3)
    assert [tiny_vocab.decode(e["targets"].tolist()) for e in examples] == [
        "positive", "negative", "positive"]
  else:
    assert (len(examples), dropped) == (2, 2)
    assert tiny_vocab.decode(examples[1]["targets"].tolist()) == "0.2"
  assert task.num_input_examples("train") == (6 if name == names.CR else 4)
  assert list(task.splits) == ["train", "validation"]  # no test.tsv written


def test_sentiment140_polarity_0_2_4_is_negative_neutral_positive(tiny_tasks, tiny_vocab,
                                                                   tfds_metadata, hand_rows):
  task = seqio.get_mixture_or_task(PREFIX + names.SENTIMENT140)
  with tfds.testing.mock_data(as_dataset_fn=hand_rows, data_dir=tfds_metadata):
    examples = list(task.get_dataset(None, split="validation", shuffle=False)
                    .as_numpy_iterator())
    counted = pipeline.count_examples(task, LENGTHS, "validation")
  assert [ex["inputs_pretokenized"].decode() for ex in examples] == [
      "sentiment140 text: I love it", "sentiment140 text: meh, fine",
      "sentiment140 text: worst day"]
  assert [ex["targets_pretokenized"].decode() for ex in examples] == [
      "positive", "neutral", "negative"]
  assert counted["rows_dropped"] == 1


def test_wsc_trains_on_correct_referents_and_scores_every_row(tiny_tasks, tfds_metadata,
                                                              hand_rows):
  from spot_jax.evaluation import metrics, postprocessors
  task = seqio.get_mixture_or_task(PREFIX + names.super_glue_task("wsc"))
  with tfds.testing.mock_data(as_dataset_fn=hand_rows, data_dir=tfds_metadata):
    train = list(task.get_dataset(None, split="train", shuffle=False).as_numpy_iterator())
    valid = list(task.get_dataset(None, split="validation", shuffle=False)
                 .as_numpy_iterator())
    counted = pipeline.count_examples(task, LENGTHS, "validation")
  text = lambda ex, key: ex[f"{key}_pretokenized"].decode()
  assert [text(ex, "targets") for ex in train] == ["Tom", "The cat"]
  assert [text(ex, "targets") for ex in valid] == ["Tom", "The cat", "the mat"]
  assert text(valid[0], "inputs") == "wsc: Mitchell asked Tom if *he* could lend some money."
  assert counted["rows_dropped"] == 1  # the row whose span2_index misses the pronoun
  # T5's scoring: a prediction names span1 (1) or not (0), compared with the row's label.
  targets = [task.postprocess_fn(None, example=ex, is_target=True) for ex in valid]
  right = [task.postprocess_fn(p, example=ex) for p, ex in
           zip([b"tom", b"the cat", b"the cat"], valid)]
  wrong = [task.postprocess_fn(p, example=ex) for p, ex in
           zip([b"Mitchell", b"mat", b"mat"], valid)]
  assert targets == [1, 1, 0] and right == [1, 1, 0] and wrong == [0, 0, 1]
  assert metrics.accuracy(targets, right)["accuracy"] == 100.0
  assert metrics.accuracy(targets, wrong)["accuracy"] == 0.0
  assert postprocessors.wsc_simple(b"  ", example=valid[0]) == postprocessors.INVALID
  assert postprocessors.wsc_simple(b"Tom's", example=valid[0]) == 0


def test_local_task_without_directory_says_what_to_do(tiny_vocab):
  from spot_jax.tasks import registration  # pylint: disable=g-import-not-at-top
  registration.register_all(tiny_vocab, prefix="nodir_")
  task = seqio.get_mixture_or_task("nodir_" + names.CR)
  with pytest.raises(ValueError, match="SPOT_JAX_CR_DIR"):
    task.get_dataset(LENGTHS, split="train")


@pytest.mark.parametrize("size", [0, -5, 2.5, "1000", True, None])
def test_a_bad_shuffle_buffer_is_refused_before_anything_registers(size, tiny_vocab):
  from spot_jax.tasks import registration  # pylint: disable=g-import-not-at-top
  with pytest.raises(ValueError, match=r"shuffle_buffer_size=.*expected a positive integer"):
    registration.register_all(tiny_vocab, prefix="badbuffer_", shuffle_buffer_size=size)
  assert not [n for n in seqio.TaskRegistry.names() if n.startswith("badbuffer_")]


def test_long_inputs_truncated_with_eos_and_counted(tiny_tasks, tfds_metadata):
  task = seqio.get_mixture_or_task(PREFIX + names.glue_task("mnli"))
  lengths = {"inputs": 6, "targets": 8}
  with tfds.testing.mock_data(num_examples=3, data_dir=tfds_metadata):
    examples = list(task.get_dataset(lengths, split="train", shuffle=False)
                    .as_numpy_iterator())
    counted = pipeline.count_examples(task, lengths, "train")
    first_two = pipeline.count_examples(task, lengths, "train", max_examples=2)
  assert len(examples) == 3
  for ex in examples:
    assert len(ex["inputs"]) == 6 and ex["inputs"][-1] == 1
    assert not set(pipeline.TRUNCATED.values()) & set(ex), "flags only while accounting"
  assert counted == {"task": task.name, "split": "train", "examples": 3, "complete": True,
                     "truncated_inputs": 3, "truncated_targets": 0, "rows_dropped": 0}
  assert (first_two["examples"], first_two["complete"], first_two["truncated_inputs"]) == (
      2, False, 2)


def test_empty_rows_dropped_and_counted(tiny_tasks, tfds_metadata, caplog):
  caplog.set_level(logging.WARNING, logger="absl")
  task = seqio.get_mixture_or_task(PREFIX + names.glue_task("cola"))

  def rows(builder, split, **unused_kwargs):
    del builder, split
    return tf.data.Dataset.from_tensor_slices(
        {"sentence": ["Good one.", "  ", ""], "label": [1, 0, 1], "idx": [0, 1, 2]})

  with tfds.testing.mock_data(as_dataset_fn=rows, data_dir=tfds_metadata):
    examples = list(task.get_dataset(LENGTHS, split="train", shuffle=False)
                    .as_numpy_iterator())
    counted = pipeline.count_examples(task, LENGTHS, "train")
  assert len(examples) == 1
  assert (counted["examples"], counted["rows_dropped"]) == (1, 2)
  assert f"{task.name}: dropped 1 empty or malformed rows so far" in caplog.text


def test_unknown_name_suggests_closest(tiny_tasks):
  with pytest.raises(ValueError, match="tiny_spot_glue_cola_v200"):
    pipeline.get_task_or_mixture("tiny_spot_glue_cola_v20")


def test_catalogue_counts():
  assert len(names.SOURCE_TASKS) == 16 and len(names.TARGET_TASKS) == 10
  assert len(set(names.GLUE_TASKS) | set(names.SUPER_GLUE_TASKS)) == 16
  # 26 SPoT tasks + 16 benchmark tasks, overlaps counted once (15 shared).
  assert len(names.CORE_TASKS) == 27
  assert len(set(names.ALL_TASKS)) == len(names.ALL_TASKS)


def test_every_catalogued_name_is_registered(tiny_tasks):
  assert sorted(tiny_tasks) == sorted(PREFIX + n for n in
                                      names.ALL_TASKS + names.ALL_MIXTURES)


def test_label_table_matches_each_task(tiny_tasks):
  from spot_jax.tasks import labels  # pylint: disable=g-import-not-at-top
  for name, label_strings in labels.BY_TASK.items():
    task = seqio.get_mixture_or_task(PREFIX + name)
    assert labels.task_labels(task.name, prefix=PREFIX) == label_strings
    for i, label in enumerate(label_strings):
      value = task.postprocess_fn(label.encode(), example={}, is_target=False)
      assert (value["value"] if isinstance(value, dict) else value) == i, (name, label)
