"""Prompts and models to and from other tools' formats.

  python -m spot_jax.cli.convert to-peft PROMPT OUT_DIR [--base-model HF_DIR]
  python -m spot_jax.cli.convert from-peft ADAPTER_DIR OUT_PROMPT --task T \\
      --model-name M --vocabulary SPM_FILE [--d-model D]
  python -m spot_jax.cli.convert to-npy PROMPT OUT            # prompt-tuning's numpy
  python -m spot_jax.cli.convert from-npy NPY OUT_PROMPT --task T --model-name M \\
      --vocabulary SPM_FILE [--d-model D] [--step S]
  python -m spot_jax.cli.convert model-to-hf CHECKPOINT OUT_DIR (--size S | --config F)

PROMPT and OUT_PROMPT are spot_jax prompt files (`dir/name`: `.npy` + `.json`). A PEFT adapter
is a directory PEFT's `PeftModel.from_pretrained` reads (encoder-only prompt tuning); `to-npy`
writes the bare `[P, D]` array google-research/prompt-tuning saves (OUT a file, or a directory
that receives `numpy_checkpoints/checkpoint_<step>/encoder.prompt.prompt.prompt`). Imports carry
no model metadata of their own, so the task, model name and vocabulary are given here.
`model-to-hf` writes a spot_jax / T5X / Orbax checkpoint as a Hugging Face T5 v1.1 directory.
"""
import argparse
import sys
from typing import Optional, Sequence

from spot_jax import paths
from spot_jax.prompts import interchange, prompt_files


def _vocabulary_hash(args) -> str:
  if args.vocabulary_hash:
    return args.vocabulary_hash
  if "://" in args.vocabulary:
    raise ValueError(f"--vocabulary {args.vocabulary!r}: give a local copy of the SentencePiece "
                     "model (or its sha256 with --vocabulary-hash)")
  return prompt_files.vocabulary_hash(paths.absolute(args.vocabulary))


def _import(args, prompt, source) -> int:
  path = interchange.save_imported(
      prompt, paths.absolute(args.output), task=args.task, model_name=args.model_name,
      vocabulary_hash=_vocabulary_hash(args), source=source, step=args.step)
  print(f"wrote {path} [{prompt.shape[0]}x{prompt.shape[1]}]")
  return 0


def _cmd_to_peft(args) -> int:
  out = interchange.export_peft(paths.absolute(args.prompt), paths.absolute(args.output),
                                num_heads=args.num_heads, num_layers=args.num_layers,
                                base_model=args.base_model)
  print(f"wrote {out}")
  return 0


def _cmd_from_peft(args) -> int:
  source = paths.absolute(args.adapter)
  return _import(args, interchange.read_peft(source, d_model=args.d_model), source)


def _cmd_to_npy(args) -> int:
  out = interchange.write_prompt_tuning_npy(paths.absolute(args.prompt),
                                            paths.absolute(args.output))
  print(f"wrote {out}")
  return 0


def _cmd_from_npy(args) -> int:
  source = paths.absolute(args.npy)
  return _import(args, interchange.read_prompt_tuning_npy(source, d_model=args.d_model), source)


def model_config(args):
  """The T5Config a command line names: `--config FILE` or `--size S` [`--name N`]."""
  from spot_jax.model import config as config_lib
  if args.config:
    return config_lib.config_from_json(paths.absolute(args.config))
  return config_lib.get_config(args.size, **({"name": args.name} if args.name else {}))


def model_args(p, *, required: bool) -> None:
  """`--size`/`--config` (one of them) and `--name`: the model a command loads."""
  shape = p.add_mutually_exclusive_group(required=required)
  shape.add_argument("--size", help="a named size (tiny, small, base, large, xl, xxl)")
  shape.add_argument("--config", help="a JSON file of T5Config fields (e.g. the shipped "
                                      "backbone's config.json)")
  p.add_argument("--name", help="the model's name in the config (with --size)")


def _cmd_model_to_hf(args) -> int:
  from spot_jax.model import checkpoints, hf_checkpoint
  config = model_config(args)
  params = checkpoints.load_params(paths.absolute(args.checkpoint), config)
  out = hf_checkpoint.write_hf_checkpoint(params, config, paths.absolute(args.output))
  print(f"wrote {out} ({config.name}: {config.num_encoder_layers}+{config.num_decoder_layers} "
        f"layers, d_model {config.emb_dim})")
  return 0


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m spot_jax.cli.convert",
                                   description=__doc__.split("\n\n")[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)

  def metadata_args(p):
    p.add_argument("output", help="the spot_jax prompt file to write (dir/name)")
    p.add_argument("--task", required=True, help="the task the prompt was trained on")
    p.add_argument("--model-name", required=True,
                   help="the model it belongs to, as spot_jax names it "
                        "(e.g. t5_1_1_lm100k_base)")
    vocab = p.add_mutually_exclusive_group(required=True)
    vocab.add_argument("--vocabulary", help="the model's SentencePiece file (hashed)")
    vocab.add_argument("--vocabulary-hash", help="its sha256, if the file is not at hand")
    p.add_argument("--d-model", type=int, help="the model's width: refuse any other")
    p.add_argument("--step", type=int, default=0, help="the training step it was taken at")

  p = sub.add_parser("to-peft", help="a prompt file -> a PEFT prompt-tuning adapter directory")
  p.add_argument("prompt")
  p.add_argument("output")
  p.add_argument("--base-model", help="base_model_name_or_path for the adapter config")
  p.add_argument("--num-heads", type=int)
  p.add_argument("--num-layers", type=int)
  p.set_defaults(func=_cmd_to_peft)

  p = sub.add_parser("from-peft", help="a PEFT prompt-tuning adapter -> a prompt file")
  p.add_argument("adapter")
  metadata_args(p)
  p.set_defaults(func=_cmd_from_peft)

  p = sub.add_parser("to-npy", help="a prompt file -> prompt-tuning's bare numpy file")
  p.add_argument("prompt")
  p.add_argument("output")
  p.set_defaults(func=_cmd_to_npy)

  p = sub.add_parser("from-npy", help="prompt-tuning's numpy file -> a prompt file")
  p.add_argument("npy")
  metadata_args(p)
  p.set_defaults(func=_cmd_from_npy)

  p = sub.add_parser("model-to-hf", help="a model checkpoint -> a Hugging Face directory")
  p.add_argument("checkpoint", help="T5X msgpack / tensorstore / Orbax checkpoint, or HF dir")
  p.add_argument("output")
  model_args(p, required=True)
  p.set_defaults(func=_cmd_model_to_hf)
  return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
  args = _parser().parse_args(argv)
  try:
    return args.func(args)
  except (interchange.InterchangeError, prompt_files.PromptFileError, ValueError, KeyError,
          OSError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
