"""Adafactor as SPoT uses it (constant lr 0.3, decay 0.8, weight decay 1e-5, no parameter
scaling), the ModelTuning variant (lr 1e-3) and Su et al.'s projector optimizer (AdamW)."""
import functools

import optax


@functools.lru_cache(maxsize=None)  # equal settings, one object: compiled steps are reused
def adafactor(*, learning_rate: float = 0.3, decay_rate: float = 0.8,
              weight_decay_rate: float = 1e-5, multiply_by_parameter_scale: bool = False,
              clipping_threshold: float = 1.0, factored: bool = False,
              min_dim_size_to_factor: int = 128) -> optax.GradientTransformation:
  """Adafactor with a constant learning rate.

  Prompt tuning keeps second moments unfactored (prompt-tuning sets the prompt's
  factor rules to NONE); model tuning factors matrices as T5 does (`factored=True`).
  """
  return optax.adafactor(learning_rate=learning_rate, decay_rate=decay_rate,
                         weight_decay_rate=weight_decay_rate,
                         multiply_by_parameter_scale=multiply_by_parameter_scale,
                         clipping_threshold=clipping_threshold, factored=factored,
                         min_dim_size_to_factor=min_dim_size_to_factor, momentum=None)


@functools.lru_cache(maxsize=None)  # one object, so compiled steps are shared across runs
def spot_prompt_optimizer() -> optax.GradientTransformation:
  """SPoT's prompt-tuning optimizer (Vu et al. 2022, §2.1.4; prompt-tuning gin)."""
  return adafactor()


@functools.lru_cache(maxsize=None)
def model_tuning_optimizer(learning_rate: float = 1e-3) -> optax.GradientTransformation:
  """T5's fine-tuning optimizer for the ModelTuning baselines: Adafactor, lr 1e-3, with
  T5X's defaults (factored moments, updates scaled by the parameter's RMS)."""
  return adafactor(learning_rate=learning_rate, weight_decay_rate=0.0, factored=True,
                   multiply_by_parameter_scale=True)


@functools.lru_cache(maxsize=None)
def projector_optimizer(learning_rate: float = 5e-3,
                        weight_decay: float = 0.01) -> optax.GradientTransformation:
  """Su et al.'s projector optimizer: AdamW, lr 0.005 (`train_tool_cross.py`)."""
  return optax.adamw(learning_rate, weight_decay=weight_decay)
