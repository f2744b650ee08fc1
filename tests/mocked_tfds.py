"""Offline stand-ins for what real users download: a tiny SentencePiece model and TFDS rows
for `tfds.testing.mock_data` that a task pipeline reads like a prepared dataset.

Also a launcher: `python tests/mocked_tfds.py MODULE ARGS...` runs `python -m MODULE ARGS...`
(e.g. t5x.train) with TFDS mocked by `checkpointable_rows`, so a real command line reads
the real task pipelines offline."""
import gc
import importlib
import os
import pathlib
import random
import runpy
import sys
import zlib

if __name__ == "__main__":  # the launcher: imports with the garbage collector paused (main)
  gc.disable()
import sentencepiece as spm  # noqa: E402
import tensorflow as tf  # noqa: E402

WORDS = ("cola sst2 mrpc qqp stsb mnli qnli rte wnli boolq cb copa multirc record wic "
         "wsc drop race cr cxc winogrande hellaswag cosmos_qa doc_nli yelp_polarity_reviews "
         "sentence sentence1 sentence2 question question1 question2 premise hypothesis "
         "passage paragraph answer query entities context text option1 option2 ending0 "
         "ending1 ending2 ending3 answer0 answer1 answer2 answer3 article choice1 choice2 "
         "word acceptable unacceptable positive negative entailment not_entailment neutral "
         "contradiction equivalent not_equivalent duplicate not_duplicate True False "
         "the a of cat sat mat dog").split()


def train_tiny_vocab(directory: pathlib.Path) -> str:
  """A ~200-piece SentencePiece model trained on the task vocabulary and letters, written
  into `directory`; returns the `.model` path."""
  rng = random.Random(0)
  letters = "abcdefghij"
  lines = []
  for _ in range(2000):
    words = [rng.choice(WORDS) for _ in range(6)]
    words += ["".join(rng.choice(letters) for _ in range(rng.randint(1, 6)))
              for _ in range(4)]
    rng.shuffle(words)
    lines.append(" ".join(words) + rng.choice([".", ":", "?", ",", " 3.4", " <unk>"]))
  corpus = directory / "corpus.txt"
  corpus.write_text("\n".join(lines))
  prefix = str(directory / "tiny")
  spm.SentencePieceTrainer.train(
      input=str(corpus), model_prefix=prefix, vocab_size=200, model_type="unigram",
      character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      minloglevel=2, num_threads=1)
  return prefix + ".model"


# WSC rows: span2 must be the pronoun at span2_index, which random rows never are. Two
# correct referents, one wrong one, one malformed row (span2_index off the pronoun).
WSC_ROWS = {
    "text": ["Mitchell asked Tom if he could lend some money.",
             "The cat sat on the mat because it was tired.",
             "The cat sat on the mat because it was tired.",
             "Ann thanked Sue because she helped."],
    "span1_text": ["Tom", "The cat", "the mat", "Sue"], "span1_index": [2, 0, 4, 2],
    "span2_text": ["he", "it", "it", "she"], "span2_index": [4, 7, 7, 3],
    "label": [1, 1, 0, 1], "idx": [0, 1, 2, 3]}


def _is_wsc(builder) -> bool:
  return builder.name == "super_glue" and builder.builder_config.name == "wsc.fixed"


# Sentiment140: polarity is 0/2/4, which random integers never are; the last row is not.
SENTIMENT140_ROWS = {"text": ["I love it", "meh, fine", "worst day", "odd row"],
                     "polarity": [4, 2, 0, 3], "date": ["d"] * 4, "query": ["q"] * 4,
                     "user": ["u"] * 4}
HAND_ROW_DATASETS = ("hellaswag", "race", "sentiment140")


def hand_rows(builder, split, **unused_kwargs):
  """Rows for the datasets whose nested features or constraints TFDS's mock cannot fill."""
  del split
  if _is_wsc(builder):
    rows = dict(WSC_ROWS)
  elif builder.name == "sentiment140":
    rows = dict(SENTIMENT140_ROWS)
  elif builder.name == "hellaswag":
    rows = {"context": ["He opens the door.", "She sings."],
            "endings": [["a", "b", "c", "d"], ["e", "f", "g"]],  # second is malformed
            "activity_label": ["x", "y"], "label": [3, 0],
            "split_type": ["indomain", "indomain"], "source_id": ["s1", "s2"]}
    rows["endings"] = tf.ragged.constant(rows["endings"])
  else:
    rows = {"article": ["Tom is ten.", "Ann is six."],
            "questions": tf.ragged.constant([["Age?", "Name?"], ["Age?"]]),
            "answers": tf.ragged.constant([["B", "A"], ["C"]]),
            "options": tf.ragged.constant([[["9", "10", "11", "12"],
                                            ["Tom", "Bob", "Ann", "Sue"]],
                                           [["4", "5", "6", "7"]]]),
            "example_id": ["r1", "r2"]}
  return tf.data.Dataset.from_tensor_slices(rows)


def checkpointable_rows(builder, split, *, num_examples=8, **unused_kwargs):
  """TFDS's random examples, serialized and decoded as a prepared dataset is read: from
  in-memory records through `features.deserialize_example`. Unlike mock_data's default
  (`from_generator`, a Python op), this dataset's iterator can be checkpointed."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  if builder.name in HAND_ROW_DATASETS or _is_wsc(builder):
    return hand_rows(builder, split)
  features = builder.info.features
  records = list(tfds.testing.mocking.SerializedRandomFakeGenerator(
      features, num_examples=num_examples, seed=zlib.crc32(split.encode()),
      constant_dynamic_shape=True))
  return tf.data.Dataset.from_tensor_slices(records).map(features.deserialize_example)



def write_split_metadata(directory: pathlib.Path, split_sizes) -> str:
  """A TFDS data_dir of dataset_info.json files declaring `split_sizes`
  ({'name/config:version': {split: n}}), for `mock_data(data_dir=...)`."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  for name, sizes in split_sizes.items():
    with tfds.testing.mock_data(num_examples=1):
      info = tfds.builder(name).info
    info.set_splits(tfds.core.SplitDict([
        tfds.core.SplitInfo(name=split, shard_lengths=[n], num_bytes=0)
        for split, n in sizes.items()]))
    target = pathlib.Path(directory) / info.full_name
    target.mkdir(parents=True, exist_ok=True)
    info.write_to_directory(str(target))
  return str(directory)


def main(argv) -> None:
  """`MOCKED_TFDS_DATA_DIR` (from `write_split_metadata`) gives the mocked splits' sizes.
  The command's package (e.g. t5x, which imports its trainer, models and seqio) is imported
  before the collector resumes, and what the imports built is frozen, as spot_jax's own
  commands do (`spot_jax.cli.startup`)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  module, args = argv[1], argv[2:]
  importlib.import_module(module.split(".")[0])
  gc.freeze()
  gc.enable()
  sys.argv = [module] + args
  with tfds.testing.mock_data(as_dataset_fn=checkpointable_rows,
                              data_dir=os.environ.get("MOCKED_TFDS_DATA_DIR")):
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main(sys.argv)
