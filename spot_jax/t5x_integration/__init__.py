"""spot_jax under T5X: the prompted T5 as a T5X model (`models`, `module`) and the prompt
files a `t5x.train` run writes (`prompt_export`). Only this package imports t5x; gin files
reach it from gin/t5x/ (see spot_jax/gin_engines.py)."""
