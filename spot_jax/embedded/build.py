"""Builds the embedded default's two assets: the synthetic language's SentencePiece model and
the tiny frozen backbone model-tuned on its corpus. The command lines are
`tools/build_synthetic_vocab.py` and `tools/build_backbone.py`.

The vocabulary is word-level: every word of the language (the lexicon, the glue words, every
task's field words) is one piece, as a pretrained LM's vocabulary covers its frequent words,
so the backbone reads and emits whole words. The text is generated (the lexicon, task rows
and corpus documents); the trainer runs single-threaded on unshuffled input, so a rebuild is
byte-identical. Ids as T5: pad 0, eos 1, unk 2, no bos.

The backbone trains from scratch with `trainer.train(mode='model')` on `synth_backbone`, a
prefix-LM over generated documents of the synthetic language (reviews with verdicts, facts
with claims, restatements and recalls), never the suite's tasks; it writes
`backbone.msgpack` (T5X msgpack) and `config.json` (`T5Config` fields, the vocabulary's
sha256, steps, final loss, wall time and the acceptance check). Data and initialisation are
seeded, but float reductions may differ across machines and XLA versions, so the built file
is shipped rather than rebuilt on first use. The acceptance check
(`spot_jax.embedded.salient_accuracy`): on held-out corpus documents, the salient word of
each rule (verdict, topic, judgement, sameness) must be ranked first among its family's
words at least ACCEPTANCE percent of the time, per family.
"""
import dataclasses
import io
import json
import os
import shutil
import tempfile
import time

from spot_jax import embedded
from spot_jax.embedded import language as lang
from spot_jax.embedded import tasks as synthetic
from spot_jax.embedded.tasks import CORPUS_TASK, SPECS, iter_rows

DEFAULT_VOCABULARY_OUT = os.path.join(embedded.ASSETS_DIR, embedded.VOCAB_FILE)
DEFAULT_BACKBONE_OUT = os.path.join(embedded.ASSETS_DIR, embedded.BACKBONE_DIR)
ROWS_PER_TASK = 1000  # vocabulary: task rows per task in its training text
CORPUS_EXAMPLES = 5000  # and corpus documents
STEPS = 3600  # backbone: model-tuning steps
LEARNING_RATE = 1e-2
BATCH_SIZE = 64
SEED = 0
ACCEPTANCE = 90.0  # percent, per family


def training_lines():
  """Generated text: every word of the lexicon, task rows of every synthetic task, then
  corpus examples."""
  yield " ".join(sorted(lang.ENGLISH)) + " " + " ".join(lang.LEXICON.words())
  for name in SPECS:
    for inputs, targets in iter_rows(name, "train", ROWS_PER_TASK):
      yield inputs
      yield targets
  for inputs, targets in iter_rows(CORPUS_TASK, "train", CORPUS_EXAMPLES):
    yield inputs + " " + targets


def train_vocabulary() -> bytes:
  """The SentencePiece model's bytes, trained on `training_lines()`."""
  import sentencepiece as spm
  lines = list(training_lines())
  words = {w for line in lines for w in line.split()}
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_writer=model, vocab_size=len(words) + 3,
      model_type="word", character_coverage=1.0, pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
      num_threads=1, shuffle_input_sentence=False, input_sentence_size=0,
      byte_fallback=False, minloglevel=2)
  return model.getvalue()



def backbone_config(vocab_size: int):
  """emb 128, 4 heads x 32, mlp 512, 4 encoder + 2 decoder layers (~1.8M parameters; the
  rules are read by the encoder, the targets are a word or three); vocab padded to 128."""
  from spot_jax.model.config import T5Config
  return T5Config(vocab_size=-(-vocab_size // 128) * 128, emb_dim=128, num_heads=4,
                  head_dim=32, mlp_dim=512, num_encoder_layers=4, num_decoder_layers=2,
                  dropout_rate=0.0, name="synthetic_backbone")


def build_backbone(out: str = DEFAULT_BACKBONE_OUT, steps: int = STEPS,
                   learning_rate: float = LEARNING_RATE, model_dir: str = None,
                   seed: int = SEED) -> dict:
  """Trains the backbone and writes `backbone.msgpack` and `config.json` into `out`;
  returns the config.json's content (with the acceptance check's verdict)."""
  from spot_jax.training import optimizer, trainer
  synthetic.register()
  vocab = embedded.synthetic_vocabulary()
  config = backbone_config(vocab.vocab_size)
  t0 = time.time()
  work = model_dir or tempfile.mkdtemp(prefix="spot_jax_backbone_")
  os.makedirs(out, exist_ok=True)
  ckpt = os.path.join(out, embedded.BACKBONE_CHECKPOINT)
  result = trainer.train(
      model_dir=work, mixture_or_task_name=synthetic.BACKBONE_MIXTURE,
      task_feature_lengths=synthetic.BACKBONE_FEATURE_LENGTHS, model_config=config,
      initial_checkpoint=None, train_steps=steps, mode="model", seed=seed,
      tx=optimizer.model_tuning_optimizer(learning_rate=learning_rate), batch_size=BATCH_SIZE,
      eval_period=steps, checkpoint_period=steps, log_period=max(steps // 20, 1),
      num_eval_examples=256, export_params_path=ckpt)
  from spot_jax.model import checkpoints
  salient = embedded.salient_accuracy(checkpoints.load_params(ckpt, config), config)
  train_logs = [h for h in result["history"] if "loss" in h]
  meta = {
      "config": dataclasses.asdict(config),
      "vocabulary_sha256": embedded.vocabulary_sha256(),
      "vocabulary_file": embedded.VOCAB_FILE,
      "mixture": synthetic.BACKBONE_MIXTURE,
      "task_feature_lengths": synthetic.BACKBONE_FEATURE_LENGTHS,
      "train_steps": steps, "batch_size": BATCH_SIZE, "learning_rate": learning_rate,
      "seed": seed,
      "final_train_loss": train_logs[-1]["loss"] if train_logs else None,
      "final_train_token_accuracy": train_logs[-1]["accuracy"] if train_logs else None,
      "validation": result["best"],
      "wall_seconds": round(time.time() - t0, 1),
      "salient_accuracy": salient,
      "acceptance": {"threshold": ACCEPTANCE,
                     "passed": all(v >= ACCEPTANCE for v in salient.values())},
  }
  with open(os.path.join(out, embedded.BACKBONE_CONFIG), "w") as f:
    json.dump(meta, f, indent=2, sort_keys=True)
    f.write("\n")
  if model_dir is None:
    shutil.rmtree(work, ignore_errors=True)
  return meta
