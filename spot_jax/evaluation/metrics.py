"""T5-compatible metrics: `fn(targets, predictions) -> {name: value}`, scaled to 0-100.

Names and scaling follow T5 (`t5/evaluation/metrics.py`) so numbers compare with the
papers. Predictions that fell outside a task's label set arrive as `INVALID` (-1)
from the postprocessors: they score as wrong here and `num_invalid` counts them.
"""
import collections
import re
import string
from typing import Any, Callable, Dict, Hashable, List, Sequence

from absl import logging
import numpy as np
import scipy.stats
import sklearn.metrics

from spot_jax.evaluation import postprocessors

Metrics = Dict[str, float]


def accuracy(targets: Sequence[Any], predictions: Sequence[Any]) -> Metrics:
  return {"accuracy": 100 * float(np.mean(
      [t == p for t, p in zip(targets, predictions)])) if len(targets) else 0.0}


def matthews_corrcoef(targets: Sequence[int], predictions: Sequence[int]) -> Metrics:
  """CoLA's metric; an invalid prediction (-1) is just one more wrong class."""
  return {"matthews_corrcoef":
          100 * float(sklearn.metrics.matthews_corrcoef(targets, predictions))}


def f1_score_with_invalid(targets: Sequence[int],
                          predictions: Sequence[int]) -> Metrics:
  """Binary F1 (positive class 1); any prediction not in {0, 1} is flipped to wrong."""
  targets = np.asarray(targets, dtype=np.int64)
  predictions = np.array(predictions, dtype=np.int64)
  invalid = (predictions != 0) & (predictions != 1)
  predictions[invalid] = 1 - targets[invalid]
  return {"f1": 100 * float(sklearn.metrics.f1_score(targets, predictions))}


def mean_multiclass_f1(num_classes: int) -> Callable[..., Metrics]:
  """Macro F1 over classes 0..num_classes-1 (CB uses 3); invalid ids count as misses."""

  def metric_fn(targets, predictions):
    f1 = sklearn.metrics.fbeta_score(
        targets, predictions, beta=1, labels=list(range(num_classes)),
        average="macro", zero_division=0)
    return {f"mean_{num_classes}class_f1": 100 * float(f1)}

  metric_fn.__name__ = f"mean_{num_classes}class_f1"
  return metric_fn


def pearson_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> Metrics:
  return {"pearson_corrcoef":
          100 * float(scipy.stats.pearsonr(targets, predictions)[0])}


def spearman_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> Metrics:
  return {"spearman_corrcoef":
          100 * float(scipy.stats.spearmanr(targets, predictions)[0])}


def num_invalid(targets: Sequence[Any], predictions: Sequence[Any]) -> Metrics:
  """Counts predictions the postprocessor could not map into the label set."""
  del targets
  values = [p["value"] if isinstance(p, dict) else p for p in predictions]
  count = int(sum(1 for v in values if v == postprocessors.INVALID))
  if count:
    logging.warning("%d of %d predictions were outside the label set (scored wrong).",
                    count, len(values))
  return {"invalid_predictions": float(count)}


def num_invalid_in_range(low: float, high: float) -> Callable[..., Metrics]:
  """Counts regression predictions that did not parse or fall outside [low, high]."""

  def metric_fn(targets, predictions):
    del targets
    count = int(sum(1 for p in predictions if not low <= p <= high))
    if count:
      logging.warning("%d of %d predictions were not a number in [%g, %g].",
                      count, len(predictions), low, high)
    return {"invalid_predictions": float(count)}

  metric_fn.__name__ = "num_invalid_in_range"
  return metric_fn


# ---------------------------------------------------------------- QA (SQuAD-style)


def normalize_squad(text: str) -> str:
  """Official SQuAD normalisation: lower case, no punctuation, no articles."""
  text = text.lower()
  text = "".join(ch for ch in text if ch not in set(string.punctuation))
  text = re.sub(r"\b(a|an|the)\b", " ", text)
  return " ".join(text.split())


def _f1_tokens(target: List[str], prediction: List[str]) -> float:
  common = collections.Counter(prediction) & collections.Counter(target)
  num_same = sum(common.values())
  if num_same == 0:
    return 0.0
  precision = num_same / len(prediction)
  recall = num_same / len(target)
  return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> Metrics:
  """Exact match and token F1, each the max over the gold answers, averaged (0-100)."""
  if not targets:
    return {"em": 0.0, "f1": 0.0}
  em_total, f1_total = 0.0, 0.0
  for answers, prediction in zip(targets, predictions):
    if isinstance(answers, (str, bytes)):
      answers = [answers]
    gold = [normalize_squad(postprocessors.as_text(a)) for a in answers]
    pred = normalize_squad(postprocessors.as_text(prediction))
    em_total += max(float(pred == g) for g in gold) if gold else 0.0
    f1_total += max(_f1_tokens(g.split(), pred.split()) for g in gold) if gold else 0.0
  return {"em": 100 * em_total / len(targets), "f1": 100 * f1_total / len(targets)}


# ---------------------------------------------------------------- grouped metrics


def _group(targets: Sequence[dict], predictions: Sequence[dict]):
  groups: Dict[Hashable, List[tuple]] = collections.OrderedDict()
  for t, p in zip(targets, predictions):
    groups.setdefault(t["group"], []).append((t["value"], p["value"]))
  return groups


def record_squad(targets: Sequence[dict], predictions: Sequence[dict]) -> Metrics:
  """ReCoRD: one scored example per (passage, query) group, first prediction kept.

  T5 writes one training example per gold answer, so a query appears once per
  answer; scoring every copy would weight queries by their number of answers.
  """
  groups = _group(targets, predictions)
  gold = [pairs[0][0] for pairs in groups.values()]
  preds = [pairs[0][1] for pairs in groups.values()]
  return squad(gold, preds)


def multirc_f1_over_all_answers(targets: Sequence[dict],
                                predictions: Sequence[dict]) -> Metrics:
  """MultiRC F1a: binary F1 over every (question, answer) pair."""
  return f1_score_with_invalid([t["value"] for t in targets],
                               [p["value"] for p in predictions])


def multirc_exact_match(targets: Sequence[dict], predictions: Sequence[dict]) -> Metrics:
  """MultiRC EM: share of questions whose answer labels are all right (0-100)."""
  groups = _group(targets, predictions)
  if not groups:
    return {"exact_match": 0.0}
  matches = [all(t == p for t, p in pairs) for pairs in groups.values()]
  return {"exact_match": 100 * float(np.mean(matches))}


# ------------------------------------------------------------------ generation (T5's)


def bleu(targets: Sequence[Any], predictions: Sequence[str]) -> Metrics:
  """Corpus BLEU with sacrebleu as T5 scores translation ("intl" tokenization,
  exponential smoothing); `targets` are strings, or lists of references per example."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  predictions = [postprocessors.as_text(p) for p in predictions]
  if targets and isinstance(targets[0], (list, tuple)):
    width = max(len(t) for t in targets)  # sacrebleu: one stream per reference position
    references = [[postprocessors.as_text(t[min(i, len(t) - 1)]) for t in targets]
                  for i in range(width)]
  else:
    references = [[postprocessors.as_text(t) for t in targets]]
  score = sacrebleu.corpus_bleu(predictions, references, smooth_method="exp",
                                smooth_value=0.0, force=False, lowercase=False,
                                tokenize="intl", use_effective_order=False)
  return {"bleu": float(score.score)}


ROUGE_KEYS = ("rouge1", "rouge2", "rougeLsum")


def rouge(targets: Sequence[str], predictions: Sequence[str]) -> Metrics:
  """ROUGE-1/2/Lsum F-measure (x100, bootstrap mid) with rouge-score, as T5 scores
  summaries: sentences (" . ") on their own lines so that ROUGE-Lsum sees them."""
  from rouge_score import rouge_scorer, scoring  # pylint: disable=g-import-not-at-top
  scorer = rouge_scorer.RougeScorer(list(ROUGE_KEYS))
  aggregator = scoring.BootstrapAggregator()
  lines = lambda text: postprocessors.as_text(text).replace(" . ", " .\n")
  for target, prediction in zip(targets, predictions):
    aggregator.add_scores(scorer.score(target=lines(target), prediction=lines(prediction)))
  result = aggregator.aggregate()
  return {key: float(result[key].mid.fmeasure * 100) for key in ROUGE_KEYS}
