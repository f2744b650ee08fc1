"""spot_jax's prompted T5 as a T5X model, in process, on the T5X-written fixture model:
restored under its own names, the same logits and decodes as spot_jax's own T5, only the
prompt trained, prompt inits from the frozen checkpoint."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from t5x import adafactor, train_state as train_state_lib

from spot_jax.model import config as config_lib
from spot_jax.model import decoding as spot_decoding
from spot_jax.model import t5x_checkpoint
from spot_jax.model.t5 import T5
from spot_jax.prompts import initializers, prompt_files
from spot_jax.prompts.prompt import prefix_prompt
from spot_jax.t5x_integration import models, module

CONFIG = config_lib.get_config("tiny", dropout_rate=0.0, name="t5x_tiny")
P = 3


@pytest.fixture(scope="module")
def frozen(fixtures_dir):
  return t5x_checkpoint.read_t5x_params(str(fixtures_dir / "t5x/test_t5_tiny.checkpoint_0"))


@pytest.fixture(scope="module")
def prompt():
  return np.random.RandomState(0).uniform(-0.5, 0.5, (P, CONFIG.emb_dim)).astype(np.float32)


def _model(tiny_vocab, prompt, decode_fn=None):
  return models.PromptEncoderDecoderModel(
      module=module.PromptedT5(CONFIG, P, initializers.from_array(prompt)),
      input_vocabulary=tiny_vocab, output_vocabulary=tiny_vocab,
      optimizer_def=models.prompt_only(adafactor.Adafactor(
          decay_rate=0.8, step_offset=0, multiply_by_parameter_scale=False,
          weight_decay_rate=1e-5, factored=False)),
      decode_fn=decode_fn or models.decode_fn(beam_size=1))


def _batch():
  rng = np.random.RandomState(1)
  enc = rng.randint(2, 300, (2, 7)).astype(np.int32)
  enc[1, 5:] = 0  # padding
  tgt = rng.randint(2, 300, (2, 4)).astype(np.int32)
  tgt[0, 3] = 0
  dec_in = np.concatenate([np.zeros((2, 1), np.int32), tgt[:, :-1]], axis=1)
  return {"encoder_input_tokens": enc, "decoder_input_tokens": dec_in,
          "decoder_target_tokens": tgt, "decoder_loss_weights": (tgt > 0).astype(np.int32)}


def _variables(model, batch):
  shapes = {k: v.shape for k, v in batch.items()}
  types = {k: v.dtype for k, v in batch.items()}
  return model.get_initial_variables(jax.random.PRNGKey(0), shapes, types)


def test_the_t5x_checkpoint_restores_under_its_own_names(tiny_vocab, prompt, frozen):
  variables = _variables(_model(tiny_vocab, prompt), _batch())
  ours = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params"]), sep="/")
  theirs = flax.traverse_util.flatten_dict(frozen, sep="/")
  assert set(ours) - set(theirs) == {module.PROMPT_PARAM}, "only the prompt is new"
  assert set(theirs) - set(ours) == set()
  for name, value in theirs.items():
    assert ours[name].shape == value.shape, name
  axes = flax.traverse_util.flatten_dict(flax.core.unfreeze(variables["params_axes"]), sep="/")
  assert axes["prompt_axes"].names == ("prompt", "embed")
  assert axes["encoder/layers_0/mlp/wi_0/kernel_axes"].names == ("embed", "mlp")


def test_logits_equal_spot_jax_t5_with_the_prompt_in_front(tiny_vocab, prompt, frozen):
  batch = _batch()
  model = _model(tiny_vocab, prompt)
  params = dict(frozen, prompt=jnp.asarray(prompt))
  theirs = model._compute_logits(params, batch)  # pylint: disable=protected-access
  t5 = T5(CONFIG)
  emb = t5.apply({"params": frozen}, batch["encoder_input_tokens"], method=T5.embed)
  x, mask = prefix_prompt(prompt, emb, batch["encoder_input_tokens"] > 0)
  encoded = t5.apply({"params": frozen}, x, mask, method=T5.encode)
  ours = t5.apply({"params": frozen}, encoded, mask, batch["decoder_input_tokens"],
                  batch["decoder_target_tokens"] > 0, method=T5.decode)
  np.testing.assert_array_equal(np.asarray(theirs), np.asarray(ours))


def test_frozen_weights_have_no_optimizer_state_and_only_the_prompt_moves(tiny_vocab, prompt,
                                                                          frozen):
  model = _model(tiny_vocab, prompt)
  variables = flax.core.unfreeze(_variables(model, _batch()))
  variables["params"] = dict(frozen, prompt=prompt)
  state = train_state_lib.FlaxOptimTrainState.create(model.optimizer_def, variables)
  states = flax.traverse_util.flatten_dict(
      flax.core.unfreeze(state.param_states), sep="/", is_leaf=lambda _, v: v is None)
  stateful = {k.split("/")[0] for k, v in states.items() if v is not None}
  assert stateful == {module.PROMPT_PARAM}
  grads = jax.tree.map(lambda p: jnp.ones_like(p), state.params)  # every leaf has a gradient
  for _ in range(2):
    state = state.apply_gradient(grads, learning_rate=0.3)
  after = flax.traverse_util.flatten_dict(flax.core.unfreeze(state.params), sep="/")
  for name, value in flax.traverse_util.flatten_dict(frozen, sep="/").items():
    np.testing.assert_array_equal(np.asarray(after[name]), value, err_msg=name)
  assert not np.array_equal(np.asarray(after[module.PROMPT_PARAM]), prompt), "the prompt moved"


def _eos_shifted(frozen, eos_logit):
  """The model with EOS's output column shifted: -1.5 makes it end rows at various steps."""
  frozen = jax.tree.map(np.copy, frozen)
  frozen["decoder"]["logits_dense"]["kernel"][:, 1] += eos_logit  # id 1 = EOS
  return frozen


@pytest.mark.parametrize("eos_logit", [0.0, -1.5])
def test_greedy_decoding_equals_spot_jax_greedy(tiny_vocab, prompt, frozen, eos_logit):
  batch = _batch()
  frozen = _eos_shifted(frozen, eos_logit)
  params = dict(frozen, prompt=jnp.asarray(prompt))
  theirs = np.asarray(_model(tiny_vocab, prompt).predict_batch(params, batch))
  ours = _spot_jax_decode(frozen, prompt, batch, beam_size=1)
  np.testing.assert_array_equal(theirs, ours)
  assert (eos_logit != 0) == bool(np.any(ours == 1))


@pytest.mark.parametrize("eos_logit", [0.0, -1.5])
def test_beam_search_equals_spot_jax_beam_search(tiny_vocab, prompt, frozen, eos_logit):
  """Unfinished beams (random weights), and with EOS made likely, finished ones."""
  batch = _batch()
  frozen = _eos_shifted(frozen, eos_logit)
  params = dict(frozen, prompt=jnp.asarray(prompt))
  model = _model(tiny_vocab, prompt, decode_fn=models.decode_fn(beam_size=3))
  theirs, aux = model.predict_batch_with_aux(params, batch, num_decodes=3,
                                             return_all_decodes=True)
  seqs, scores = _spot_jax_decode(frozen, prompt, batch, beam_size=3)
  # T5X sorts beams by increasing score, spot_jax best first.
  np.testing.assert_array_equal(np.asarray(theirs)[:, ::-1], seqs)
  np.testing.assert_allclose(np.asarray(aux["scores"])[:, ::-1], scores, rtol=1e-5, atol=1e-5)
  assert (eos_logit != 0) == bool(np.any(seqs == 1)), "the changed model ends its beams"


def _spot_jax_decode(frozen, prompt, batch, beam_size):
  t5 = T5(CONFIG)
  enc = batch["encoder_input_tokens"]
  emb = t5.apply({"params": frozen}, enc, method=T5.embed)
  x, mask = prefix_prompt(prompt, emb, enc > 0)
  encoded = t5.apply({"params": frozen}, x, mask, method=T5.encode)
  length = batch["decoder_input_tokens"].shape[1]
  if beam_size == 1:
    return np.asarray(spot_decoding.greedy_decode(t5, frozen, encoded, mask, max_length=length))
  seqs, scores = spot_decoding.beam_search(t5, frozen, encoded, mask, max_length=length,
                                           beam_size=beam_size, alpha=0.6)
  return np.asarray(seqs), np.asarray(scores)


def test_prompt_initializers_read_the_frozen_embedding_only_when_they_use_it(
    tiny_vocab, frozen, t5x_checkpoint_dir, tmp_path):
  table = frozen["token_embedder"]["embedding"]
  init = models.prompt_initializer(scheme=initializers.sampled_vocab(population_size=50),
                                   checkpoint_path=t5x_checkpoint_dir, vocabulary=tiny_vocab,
                                   model_name="t5x_tiny", config=CONFIG)
  rows = np.asarray(init(jax.random.PRNGKey(0), (P, CONFIG.emb_dim)))
  for row in rows:  # each row is one of the 50 most frequent pieces' embeddings
    assert np.any(np.all(table[:50] == row, axis=1))
  # Class labels: row i is the mean embedding of label i's pieces, in the task's vocabulary.
  init = models.prompt_initializer(scheme=initializers.class_labels(["entailment", "neutral"]),
                                   checkpoint_path=t5x_checkpoint_dir, vocabulary=tiny_vocab,
                                   model_name="t5x_tiny", config=CONFIG)
  rows = np.asarray(init(jax.random.PRNGKey(0), (P, CONFIG.emb_dim)))
  for i, label in enumerate(["entailment", "neutral"]):
    np.testing.assert_allclose(rows[i], table[tiny_vocab.encode(label)].mean(axis=0), rtol=1e-6)
  # A prompt file never touches the checkpoint (here: a path that does not exist).
  array = np.full((P, CONFIG.emb_dim), 0.25, np.float32)
  prompt_files.save_prompt(tmp_path / "p", array, dict(
      task="t", model_name="t5x_tiny", step=1,
      vocabulary_hash=prompt_files.vocabulary_hash_of(tiny_vocab)))
  init = models.prompt_initializer(scheme=initializers.prompt_file(str(tmp_path / "p")),
                                   checkpoint_path=str(tmp_path / "missing"),
                                   vocabulary=tiny_vocab, model_name="t5x_tiny", config=CONFIG)
  np.testing.assert_array_equal(np.asarray(init(jax.random.PRNGKey(0), array.shape)), array)
  with pytest.raises(prompt_files.ModelMismatchError):
    models.prompt_initializer(scheme=initializers.prompt_file(str(tmp_path / "p")),
                              checkpoint_path=None, vocabulary=tiny_vocab,
                              model_name="another_model", config=CONFIG)(
                                  jax.random.PRNGKey(0), array.shape)


def test_packed_examples_and_prefill_are_refused_by_name(tiny_vocab, prompt, frozen):
  batch = dict(_batch(), encoder_segment_ids=np.ones((2, 7), np.int32))
  with pytest.raises(ValueError, match="encoder_segment_ids"):
    _model(tiny_vocab, prompt)._compute_logits(  # pylint: disable=protected-access
        dict(frozen, prompt=jnp.asarray(prompt)), batch)
  assert models.is_prompt("/prompt") and not models.is_prompt("/encoder/prompt_norm/scale")
  with pytest.raises(ValueError, match="BEAM_SIZE"):
    models.decode_fn(beam_size=0)
