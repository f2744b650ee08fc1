"""What a run trains, one registered `Mode` each: its first state, how the trained and frozen
trees give the model's weights and the prompt, how they are sharded, its optimizer when none
is configured, and whether it writes prompt files.

  prompt     prompt tuning (SPoT, Lester et al.): a `[P, D]` prompt; the model stays frozen
  model      model tuning: every weight of the model (the ModelTuning baselines, the
             embedded default's backbone); no prompt
  projector  Su et al.'s projector task tuning: a projector's weights; the prompt is its
             projection of a fixed source prompt of another model; the model stays frozen

`trainer.train(mode=...)`, the train step and its shardings ask the registry; a new mode is
one `Mode(...)` and one `register(...)` line.
"""
import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from spot_jax.training import optimizer as optimizer_lib

PROMPT_TUNING = "prompt"
MODEL_TUNING = "model"
PROJECTOR = "projector"


@dataclasses.dataclass(frozen=True)
class Setup:
  """What a mode builds a run's first state from."""
  model_params: Any  # the frozen model's weights (numpy)
  model_config: Any
  vocabulary: Any
  prompt_length: int
  prompt_init: Optional[Callable]  # a prompt-init factory; None: sampled vocabulary
  rng: jax.Array  # the init key
  source_prompt: Optional[np.ndarray] = None  # projector mode: the fixed source prompt
  projector: Any = None


@dataclasses.dataclass(frozen=True)
class Mode:
  """One thing a run can train.

  split: `(trainable, frozen, projector) -> (model params, prompt or None)`, inside the step.
  shardings: `(model sharding, replicated) -> (frozen tree's, trained tree's)` sharding.
  setup: `Setup -> (frozen tree or None, trainable tree)`, the run's first state.
  default_optimizer: the optimizer when the run configures none.
  prompt_tokens: `(prompt_length, source_prompt) -> ` tokens before the inputs (memory).
  writes_prompts: whether the run writes prompt files (the prompt the model reads).
  trains_model: whether the trained tree is the model (its weights may be exported).
  needs_projector: whether a projector and a source prompt file are required.
  sized_by_prompt_length: whether `prompt_length` sizes what is trained (and a resumed run
    must keep it).
  """
  name: str
  split: Callable[..., Tuple[Any, Any]]
  shardings: Callable[[Any, Any], Tuple[Any, Any]]
  setup: Callable[[Setup], Tuple[Any, Any]]
  default_optimizer: Callable[[], Any]
  prompt_tokens: Callable[[int, Optional[np.ndarray]], int] = lambda length, source: 0
  writes_prompts: bool = True
  trains_model: bool = False
  needs_projector: bool = False
  sized_by_prompt_length: bool = False


_REGISTRY: Dict[str, Mode] = {}


def register(mode: Mode) -> Mode:
  if mode.name in _REGISTRY:
    raise ValueError(f"mode {mode.name!r} is already registered")
  _REGISTRY[mode.name] = mode
  return mode


def names() -> Tuple[str, ...]:
  return tuple(_REGISTRY)


def get(name: str) -> Mode:
  if name not in _REGISTRY:
    raise ValueError(f"mode must be one of {names()}, got {name!r}")
  return _REGISTRY[name]


def split_params(mode: str, trainable, frozen, projector=None):
  """(model params, prompt) from the trained and frozen trees of `mode`."""
  return get(mode).split(trainable, frozen, projector)


# --- the built-in modes ------------------------------------------------------------------

def _prompt_setup(s: Setup):
  from spot_jax.prompts import initializers  # pylint: disable=g-import-not-at-top
  factory = s.prompt_init or initializers.sampled_vocab()
  prompt = factory(s.model_params["token_embedder"]["embedding"], s.vocabulary,
                   s.model_config.name)(s.rng, (s.prompt_length, s.model_config.emb_dim))
  if not np.all(np.isfinite(np.asarray(prompt, np.float32))):
    raise ValueError(f"the initial prompt ({getattr(factory, '__name__', factory)!r}) holds "
                     "NaN or infinite values; check the prompt init (a file, a projection)")
  return s.model_params, jnp.asarray(prompt, jnp.float32)


def _projector_setup(s: Setup):
  from spot_jax.prompts.projector import init_projector  # pylint: disable=g-import-not-at-top
  frozen = {"model": s.model_params, "source": jnp.asarray(s.source_prompt)}
  return frozen, init_projector(s.projector, s.rng, s.source_prompt.shape[1])


register(Mode(
    PROMPT_TUNING,
    split=lambda trainable, frozen, projector: (frozen, trainable),
    shardings=lambda model, replicated: (model, replicated),
    setup=_prompt_setup,
    default_optimizer=optimizer_lib.spot_prompt_optimizer,
    prompt_tokens=lambda length, source: length, sized_by_prompt_length=True))
register(Mode(
    MODEL_TUNING,
    # frozen: an optional fixed prompt (or None)
    split=lambda trainable, frozen, projector: (trainable, frozen),
    shardings=lambda model, replicated: (replicated, model),
    setup=lambda s: (None, jax.tree.map(jnp.asarray, s.model_params)),
    default_optimizer=optimizer_lib.model_tuning_optimizer,
    writes_prompts=False, trains_model=True))
register(Mode(
    PROJECTOR,
    # frozen: {"model": params, "source": [P, d_src] prompt}; the prompt is its projection
    split=lambda trainable, frozen, projector: (frozen["model"],
                                                projector.apply(trainable, frozen["source"])),
    shardings=lambda model, replicated: ({"model": model, "source": replicated}, replicated),
    setup=_projector_setup,
    default_optimizer=optimizer_lib.projector_optimizer,
    prompt_tokens=lambda length, source: 0 if source is None else source.shape[0],
    needs_projector=True))
MODES = names()
