"""Metrics against scikit-learn / scipy on hand-made predictions, and hand-computed QA."""
import numpy as np
import pytest
import scipy.stats
import sklearn.metrics

from spot_jax.evaluation import metrics
from spot_jax.evaluation import postprocessors

TARGETS = [1, 0, 1, 1, 0, 1, 0, 0, 1, 1]
PREDICTIONS = [1, 0, 0, 1, 1, 1, 0, -1, 1, 0]  # one invalid (-1)


def test_accuracy_counts_invalid_as_wrong():
  assert metrics.accuracy(TARGETS, PREDICTIONS)["accuracy"] == pytest.approx(
      100 * sklearn.metrics.accuracy_score(TARGETS, PREDICTIONS))
  assert metrics.accuracy(TARGETS, PREDICTIONS)["accuracy"] == pytest.approx(60.0)


def test_matthews_corrcoef_matches_sklearn():
  valid_preds = [1, 0, 0, 1, 1, 1, 0, 0, 1, 0]
  for preds in (valid_preds, PREDICTIONS):
    assert metrics.matthews_corrcoef(TARGETS, preds)["matthews_corrcoef"] == pytest.approx(
        100 * sklearn.metrics.matthews_corrcoef(TARGETS, preds))


def test_f1_with_invalid_flips_invalid_to_wrong():
  flipped = [1, 0, 0, 1, 1, 1, 0, 1, 1, 0]  # the -1 at a 0 target becomes a 1
  assert metrics.f1_score_with_invalid(TARGETS, PREDICTIONS)["f1"] == pytest.approx(
      100 * sklearn.metrics.f1_score(TARGETS, flipped))
  # Hand count: TP=4, FP=2, FN=2 -> F1 = 8 / 12.
  assert metrics.f1_score_with_invalid(TARGETS, PREDICTIONS)["f1"] == pytest.approx(
      100 * 8 / 12)


def test_mean_multiclass_f1_matches_sklearn_macro():
  targets = [0, 1, 2, 2, 1, 0, 2]
  preds = [0, 2, 2, 1, -1, 0, 2]
  expected = sklearn.metrics.f1_score(targets, preds, labels=[0, 1, 2], average="macro")
  got = metrics.mean_multiclass_f1(3)(targets, preds)["mean_3class_f1"]
  assert got == pytest.approx(100 * expected)


def test_correlations_match_scipy():
  targets = [0.0, 1.2, 3.4, 5.0, 2.2, 4.6]
  preds = [0.4, 1.0, 3.0, 4.8, 2.6, -1.0]
  assert metrics.pearson_corrcoef(targets, preds)["pearson_corrcoef"] == pytest.approx(
      100 * scipy.stats.pearsonr(targets, preds)[0])
  assert metrics.spearman_corrcoef(targets, preds)["spearman_corrcoef"] == pytest.approx(
      100 * scipy.stats.spearmanr(targets, preds)[0])
  assert metrics.num_invalid_in_range(0, 5)(targets, preds)["invalid_predictions"] == 1


def test_num_invalid_counts_minus_one_values_and_dicts():
  assert metrics.num_invalid(TARGETS, PREDICTIONS)["invalid_predictions"] == 1
  assert metrics.num_invalid(None, [{"value": -1}, {"value": 1}])["invalid_predictions"] == 1


def test_squad_hand_computed():
  targets = [["The Cat sat", "a cat"], ["blue whale"], ["42"]]
  predictions = ["cat sat.", "whale", "forty two"]
  # 1: normalised "cat sat" == "cat sat" -> EM 1, F1 1.
  # 2: EM 0; overlap 1, precision 1/1, recall 1/2 -> F1 2/3.
  # 3: EM 0, F1 0.
  got = metrics.squad(targets, predictions)
  assert got["em"] == pytest.approx(100 / 3)
  assert got["f1"] == pytest.approx(100 * (1 + 2 / 3) / 3)


def test_normalize_squad():
  assert metrics.normalize_squad("  The  Quick, brown-fox!  ") == "quick brownfox"


def test_record_scores_each_query_once():
  # Query (0, 0) has two gold answers, so T5 emits two examples for it.
  targets = [
      {"value": ["Paris", "Paris, France"], "group": (0, 0)},
      {"value": ["Paris", "Paris, France"], "group": (0, 0)},
      {"value": ["Obama"], "group": (0, 1)},
  ]
  predictions = [{"value": "paris"}, {"value": "paris"}, {"value": "Barack Obama"}]
  got = metrics.record_squad(targets, predictions)
  assert got["em"] == pytest.approx(50.0)
  # Second query: precision 1/2, recall 1 -> F1 2/3.
  assert got["f1"] == pytest.approx(100 * (1 + 2 / 3) / 2)


def test_multirc_grouped_metrics():
  targets = [
      {"value": 1, "group": (0, 0)}, {"value": 0, "group": (0, 0)},
      {"value": 1, "group": (0, 1)}, {"value": 1, "group": (0, 1)},
      {"value": 0, "group": (1, 0)},
  ]
  predictions = [{"value": 1}, {"value": 0}, {"value": 1}, {"value": 0}, {"value": -1}]
  em = metrics.multirc_exact_match(targets, predictions)["exact_match"]
  assert em == pytest.approx(100 / 3)  # only question (0, 0) fully right
  f1a = metrics.multirc_f1_over_all_answers(targets, predictions)["f1"]
  # The invalid prediction at a 0 target is flipped to 1: TP=2, FP=1, FN=1.
  assert f1a == pytest.approx(100 * sklearn.metrics.f1_score(
      [1, 0, 1, 1, 0], [1, 0, 1, 0, 1]))


def test_postprocessors_never_raise_on_garbage():
  labels = ("not_entailment", "entailment")
  assert postprocessors.string_label_to_class_id(b"entailment", label_classes=labels) == 1
  assert postprocessors.string_label_to_class_id("maybe", label_classes=labels) == -1
  assert postprocessors.string_to_float(b"3.4") == pytest.approx(3.4)
  assert postprocessors.string_to_float("three") == -1.0
  assert postprocessors.string_to_float("nan") == -1.0
  example = {"idx/paragraph": np.int32(2), "idx/question": np.int32(5)}
  assert postprocessors.multirc(b"True", example, is_target=True) == {
      "value": 1, "group": (2, 5)}
  assert postprocessors.multirc(b"Perhaps") == {"value": -1}
  record_ex = {"answers": [b"Paris"], "idx/passage": 3, "idx/query": 4}
  assert postprocessors.record(b"x", record_ex, is_target=True) == {
      "value": ["Paris"], "group": (3, 4)}
  assert postprocessors.qa(b"x", {"answers": [b"a", b"b"]}, is_target=True) == ["a", "b"]


def test_bleu_is_sacrebleus_with_t5s_settings():
  import sacrebleu
  targets = ["The cat sat on the mat.", "A dog barked loudly at night."]
  preds = ["The cat sat on a mat.", "A dog barked at night."]
  want = sacrebleu.corpus_bleu(preds, [targets], smooth_method="exp", tokenize="intl").score
  assert metrics.bleu(targets, preds)["bleu"] == pytest.approx(want)
  assert metrics.bleu(targets, targets)["bleu"] == pytest.approx(100.0)
  assert metrics.bleu(targets, ["banana", ""])["bleu"] == pytest.approx(0.0)
  # Several references per example: each position is one reference stream.
  multi = [["The cat sat on the mat.", "A cat sat on the mat."], ["A dog barked."]]
  streams = [["The cat sat on the mat.", "A dog barked."],
             ["A cat sat on the mat.", "A dog barked."]]
  assert metrics.bleu(multi, preds)["bleu"] == pytest.approx(sacrebleu.corpus_bleu(
      preds, streams, smooth_method="exp", tokenize="intl").score)


def test_rouge_is_rouge_scores_f_measure():
  from rouge_score import rouge_scorer
  targets = ["the cat sat on the mat . it was warm", "a dog barked"]
  preds = ["the cat sat on a mat . it was cold", "a dog barked loudly"]
  got = metrics.rouge(targets, preds)
  scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeLsum"])
  for key in ("rouge1", "rouge2"):
    per = [scorer.score(t, p)[key].fmeasure for t, p in zip(targets, preds)]
    assert got[key] == pytest.approx(100 * np.mean(per), abs=1e-6)
  assert metrics.rouge(targets, targets) == {k: pytest.approx(100.0) for k in metrics.ROUGE_KEYS}
  assert metrics.rouge(targets, ["zzz", "qqq"])["rouge1"] == 0.0
