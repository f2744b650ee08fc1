"""Trains the synthetic language's SentencePiece model and writes it into the package.

  python tools/build_synthetic_vocab.py            # writes spot_jax/assets/synthetic_spm.model
  python tools/build_synthetic_vocab.py --check    # retrains in memory, compares with the file

A word-level model: every word of the language (the lexicon, the glue words, every task's
field words) is one piece, as a pretrained LM's vocabulary covers its frequent words, so the
backbone reads and emits whole words. The text is generated (the lexicon, task rows and
corpus documents); the trainer runs single-threaded on unshuffled input, so a rebuild is
byte-identical. Ids as T5: pad 0, eos 1, unk 2, no bos.
"""
import argparse
import hashlib
import io
import os
import sys

import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "spot_jax", "assets", "synthetic_spm.model")
ROWS_PER_TASK = 1000
CORPUS_EXAMPLES = 5000


def training_lines():
  """Generated text: every word of the lexicon, task rows of every synthetic task, then
  corpus examples."""
  from spot_jax.tasks import synthetic_language as lang
  from spot_jax.tasks.synthetic import CORPUS_TASK, SPECS, iter_rows
  yield " ".join(sorted(lang.ENGLISH)) + " " + " ".join(lang.LEXICON.words())
  for name in SPECS:
    for inputs, targets in iter_rows(name, "train", ROWS_PER_TASK):
      yield inputs
      yield targets
  for inputs, targets in iter_rows(CORPUS_TASK, "train", CORPUS_EXAMPLES):
    yield inputs + " " + targets


def train() -> bytes:
  lines = list(training_lines())
  words = {w for line in lines for w in line.split()}
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_writer=model, vocab_size=len(words) + 3,
      model_type="word", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
      byte_fallback=False, minloglevel=2)
  return model.getvalue()


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=DEFAULT_OUT)
  parser.add_argument("--check", action="store_true",
                      help="retrain and compare with --out instead of writing it")
  args = parser.parse_args()
  data = train()
  digest = hashlib.sha256(data).hexdigest()
  if args.check:
    with open(args.out, "rb") as f:
      shipped = f.read()
    same = shipped == data
    print(f"retrained sha256 {digest}; shipped {hashlib.sha256(shipped).hexdigest()}: "
          f"{'identical' if same else 'DIFFERENT'}")
    sys.exit(0 if same else 1)
  os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
  with open(args.out, "wb") as f:
    f.write(data)
  print(f"wrote {args.out} ({len(data)} bytes, sha256 {digest})")


if __name__ == "__main__":
  main()
