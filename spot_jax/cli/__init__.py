"""spot_jax's commands: every command line is parsed here, and the library modules below it
take plain arguments.

  gin_flags   t5x's flag contract (`--gin_file`, `--gin.NAME=value`, `--gin_search_paths`)
              for `python -m spot_jax.{train,eval,infer,spot,pipeline}` and the registry of
              what gin files may name
  library     `python -m spot_jax.cli.library`: the prompt library and SPoT's retrieval
  zero_shot   `python -m spot_jax.cli.zero_shot`: Su et al.'s zero-shot transfer matrix
  indicators  `python -m spot_jax.cli.indicators`: which indicator predicts transfer
  convert     `python -m spot_jax.cli.convert`: prompts and models to and from PEFT,
              transformers and prompt-tuning's numpy files
  startup     how a command imports its libraries: the garbage collector paused, then
              what they built frozen
"""
