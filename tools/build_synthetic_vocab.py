"""Trains the synthetic language's SentencePiece model and writes it into the package.

  python tools/build_synthetic_vocab.py            # writes spot_jax/embedded/assets/synthetic_spm.model
  python tools/build_synthetic_vocab.py --check    # retrains in memory, compares with the file

The build itself is `spot_jax.embedded.build.train_vocabulary` (byte-identical on rebuild).
"""
import argparse
import hashlib
import os
import sys

from spot_jax.embedded import build


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default=build.DEFAULT_VOCABULARY_OUT)
  parser.add_argument("--check", action="store_true",
                      help="retrain and compare with --out instead of writing it")
  args = parser.parse_args()
  data = build.train_vocabulary()
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
