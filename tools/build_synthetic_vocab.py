"""Trains the synthetic language's SentencePiece model and writes it into the package.

  python tools/build_synthetic_vocab.py            # writes spot_jax/assets/synthetic_spm.model
  python tools/build_synthetic_vocab.py --check    # retrains in memory, compares with the file

The text is generated (task rows of every synthetic task plus corpus documents), the
trainer runs single-threaded on unshuffled input, so a rebuild is byte-identical. Ids as T5:
pad 0, eos 1, unk 2, no bos.
"""
import argparse
import hashlib
import io
import os
import sys

import numpy as np
import sentencepiece as spm

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_OUT = os.path.join(ROOT, "spot_jax", "assets", "synthetic_spm.model")
VOCAB_SIZE = 512
ROWS_PER_TASK = 1000
CORPUS_DOCUMENTS = 20000


def training_lines():
  """Generated text: inputs and targets of every synthetic task, then corpus documents."""
  from spot_jax.tasks import synthetic_language as lang
  from spot_jax.tasks.synthetic import SPECS, iter_rows
  for name in SPECS:
    for inputs, targets in iter_rows(name, "train", ROWS_PER_TASK):
      yield inputs
      yield targets
  rng = np.random.RandomState(20)
  for _ in range(CORPUS_DOCUMENTS):
    yield " ".join(lang.corpus_document(rng)[0])


def train(vocab_size: int = VOCAB_SIZE) -> bytes:
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=training_lines(), model_writer=model, vocab_size=vocab_size,
      model_type="unigram", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
      split_digits=True, byte_fallback=False, minloglevel=2)
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
