"""Postprocessors: decoded strings (and their examples) -> values the metrics score.

They follow seqio's signature `fn(output, example=None, is_target=False)` and T5's
conventions: a string outside the label set maps to `INVALID` (-1), so it scores as
wrong and is counted by `metrics.num_invalid`, never raises.
"""
from typing import Any, Mapping, Optional, Sequence

INVALID = -1
INVALID_FLOAT = -1.0


def as_text(value: Any) -> str:
  """bytes / numpy bytes / str -> str (seqio hands either, depending on the path)."""
  if isinstance(value, bytes):
    return value.decode("utf-8", errors="replace")
  if hasattr(value, "item") and not isinstance(value, str):
    return as_text(value.item())
  return str(value)


def string_label_to_class_id(string_label: Any,
                             example: Optional[Mapping[str, Any]] = None,
                             is_target: bool = False,
                             *,
                             label_classes: Sequence[str]) -> int:
  """Index of the label string in `label_classes`, or INVALID (-1) when absent."""
  del example, is_target
  text = as_text(string_label).strip()
  try:
    return list(label_classes).index(text)
  except ValueError:
    return INVALID


def string_to_float(string: Any,
                    example: Optional[Mapping[str, Any]] = None,
                    is_target: bool = False,
                    *,
                    default: float = INVALID_FLOAT) -> float:
  """Parses a regression string ("3.4"); anything unparsable becomes `default`."""
  del example, is_target
  try:
    value = float(as_text(string).strip())
  except ValueError:
    return default
  if value != value:  # NaN would poison Pearson/Spearman: treat as invalid.
    return default
  return value


def text(answer: Any, example: Optional[Mapping[str, Any]] = None,
         is_target: bool = False) -> str:
  """Generated text as it is (translation, summaries): BLEU and ROUGE read strings."""
  del example, is_target
  return as_text(answer)


def label_set(answer: Any, example: Optional[Mapping[str, Any]] = None,
              is_target: bool = False) -> frozenset:
  """A comma-separated label list ("joy, love") -> the set of labels, for exact-set accuracy
  (GoEmotions); order and spacing do not matter."""
  del example, is_target
  return frozenset(p.strip() for p in as_text(answer).split(",") if p.strip())


def multirc(string_label: Any,
            example: Optional[Mapping[str, Any]] = None,
            is_target: bool = False) -> dict:
  """{"value": class id, "group": question id (targets only)} for grouped metrics."""
  result = {"value": string_label_to_class_id(string_label,
                                              label_classes=("False", "True"))}
  if is_target:
    # Question indices are grouped within their paragraph.
    result["group"] = (int(example["idx/paragraph"]), int(example["idx/question"]))
  return result


def record(answer: Any,
           example: Optional[Mapping[str, Any]] = None,
           is_target: bool = False) -> dict:
  """Prediction -> {"value": text}; target -> all gold answers plus its group key."""
  if is_target:
    return {
        "value": [as_text(a) for a in example["answers"]],
        "group": (int(example["idx/passage"]), int(example["idx/query"])),
    }
  return {"value": as_text(answer)}


def qa(answer: Any,
       example: Optional[Mapping[str, Any]] = None,
       is_target: bool = False):
  """Prediction -> text; target -> the list of all gold answers (SQuAD-style)."""
  if is_target:
    return [as_text(a) for a in example["answers"]]
  return as_text(answer)


WSC_DETERMINERS = frozenset({
    "a", "an", "few", "her", "his", "each", "every", "many", "much", "my", "our", "some",
    "that", "the", "their", "these", "this", "those", "which", "whose", "your"})


def wsc_simple(prediction: Any, example: Optional[Mapping[str, Any]] = None,
               is_target: bool = False) -> int:
  """T5's `wsc_simple`: target -> the row's label; prediction -> 1 when it names the
  referent the row proposes (span1, ignoring case and determiners, either word set inside
  the other, a possessive only matching a possessive), else 0; -1 for an empty prediction."""
  if is_target:
    return int(example["label"])

  def clean(text):
    text = as_text(text).strip().lower()
    return " ".join(w for w in text.split(" ") if w not in WSC_DETERMINERS)

  prediction = clean(prediction)
  if not prediction:
    return INVALID
  referent = clean(example["targets_pretokenized"])
  if ("'" in prediction) != ("'" in referent):
    return 0
  said, meant = set(prediction.split(" ")), set(referent.split(" "))
  return int(said <= meant or meant <= said)
