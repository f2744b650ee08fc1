"""Label strings (verbalizers) of every classification task, importable without TensorFlow.

Order is the class-id order of the TFDS features, so `labels[i]` is the target text
of class i. Used by the task formatters and, e.g., by class-label prompt initialization.
"""
from spot_jax.tasks import names

GLUE = {
    "cola": ("unacceptable", "acceptable"),
    "sst2": ("negative", "positive"),
    "mrpc": ("not_equivalent", "equivalent"),
    "qqp": ("not_duplicate", "duplicate"),
    "mnli": ("entailment", "neutral", "contradiction"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "wnli": ("not_entailment", "entailment"),
    "ax": ("entailment", "neutral", "contradiction"),
}
SUPER_GLUE = {
    "boolq": ("False", "True"),
    "cb": ("entailment", "contradiction", "neutral"),
    "copa": ("choice1", "choice2"),
    "multirc": ("False", "True"),
    "rte": ("entailment", "not_entailment"),
    "wic": ("False", "True"),
    "wsc_bool": ("False", "True"),
    "axb": ("entailment", "not_entailment"),
    "axg": ("entailment", "not_entailment"),
}
DOC_NLI = ("not_entailment", "entailment")
SENTIMENT = ("negative", "positive")  # Yelp-2 (TFDS "1", "2") and CR (0, 1)
WINOGRANDE = ("option1", "option2")
HELLASWAG = ("ending0", "ending1", "ending2", "ending3")
COSMOS_QA = ("answer0", "answer1", "answer2", "answer3")
RACE = ("A", "B", "C", "D")
NLI3 = ("entailment", "neutral", "contradiction")  # ANLI (TFDS e, n, c) and SNLI
SENTIMENT140 = ("negative", "neutral", "positive")  # TFDS polarity 0, 2, 4
PIQA = ("sol1", "sol2")
SENTIMENT3 = ("negative", "neutral", "positive")  # TweetEval, SemEval-2014 laptop/restaurant
ETHICS = ("unreasonable", "reasonable")  # ETHICS deontology (excuse), justice (scenario)
# GoEmotions' 28 labels in TFDS feature order; a target names every label set on a row.
GOEMOTIONS = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion",
    "curiosity", "desire", "disappointment", "disapproval", "disgust", "embarrassment",
    "excitement", "fear", "gratitude", "grief", "joy", "love", "nervousness", "optimism",
    "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral")

BY_TASK = {
    **{names.glue_task(c): v for c, v in GLUE.items()},
    **{names.super_glue_task(c): v for c, v in SUPER_GLUE.items()},
    names.DOC_NLI: DOC_NLI,
    names.YELP_POLARITY: SENTIMENT,
    names.CR: SENTIMENT,
    names.WINOGRANDE: WINOGRANDE,
    names.HELLASWAG: HELLASWAG,
    names.COSMOS_QA: COSMOS_QA,
    names.RACE_MIDDLE: RACE,
    names.RACE_HIGH: RACE,
    **{names.anli_task(r): NLI3 for r in names.ANLI_ROUNDS},
    names.SNLI: NLI3,
    names.SENTIMENT140: SENTIMENT140,
    names.IMDB: SENTIMENT,
    names.MOVIE_RATIONALES: SENTIMENT,
    names.PIQA: PIQA,
    names.ART: ("hyp1", "hyp2"),
    names.SOCIAL_IQA: ("answerA", "answerB", "answerC"),
    names.LAPTOP: SENTIMENT3,
    names.RESTAURANT: SENTIMENT3,
    names.TWEET_EVAL: SENTIMENT3,
    names.ETHICS_DEONTOLOGY: ETHICS,
    names.ETHICS_JUSTICE: ETHICS,
}


def task_labels(task_name: str, prefix: str = ""):
  """The label strings of a (possibly prefixed) task; None for generative/regression."""
  if prefix and task_name.startswith(prefix):
    task_name = task_name[len(prefix):]
  return BY_TASK.get(task_name)
