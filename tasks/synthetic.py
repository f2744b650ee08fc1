"""The bundled offline SPoT suite: four task families over a generated language.

Every example comes from `synthetic_language` (invented words, crc32-seeded RNGs: the same
rows in every process, nothing downloaded). Tasks within a family share one latent rule and
differ in surface: subject domain, template (field words, order) and label words. Across
families the rules differ:

- sentiment: a review's polar phrases all agree ("not" flips an adjective); the label is
  that polarity. Domains movie / product / restaurant.
- nli: premise facts vs. a hypothesis fact: same key and value -> entailment, same key and
  other value (the antonym pole, another town ...) -> contradiction, key unstated ->
  neutral. Subjects people / animals / towns; synonyms make it more than string match.
- paraphrase: two descriptions of one subject say the same facts (reordered, synonyms) or
  one fact (or the subject) differs. People / animals / towns.
- qa: extract the span that answers a relation question from a few facts about several
  subjects: where a person lives, who owns an animal, what a town is known for.

Each family has two source tasks and one held-out target (SOURCE_TASKS, TARGET_TASKS,
FAMILY_OF). A classification target shares its label words with one of its sources
and not the other.

No task-name prefix: in SPoT the prompt is what tells the frozen model which task it is
solving, and the task embeddings are those prompts; a prefix would hand the model the task
identity for free. Inputs only carry field words ("premise:", "question:"), which differ
between tasks of a family as part of their surface.

What the backbone saw (`synth_backbone`, a prefix-LM over `synthetic_language` documents):
the same language used plainly, as an LM-adapted T5 saw web text — reviews of all four
domains closing on a verdict word, facts followed by a claim and whether it holds
("so , mira is tall ? yes"), restatements and whether they mean the same, recalls of a
stated fact ("where does mira live ? zunto"). So the label words and the skills exist in the
frozen model; the task formats, field words, label mappings (e.g. neutral -> "no") and the
task rows (separate RNG streams) do not: the prompt has to ask for them.

TensorFlow, seqio and the metrics are imported on registration only, so the vocabulary
tool and tests can generate rows cheaply.
"""
import functools
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from spot_jax.tasks import synthetic_language as lang

# Every row fits (longest input 74 pieces + EOS, targets one label piece + EOS; tested):
# the encoder cost is linear in the padded length, so no slack beyond that.
TASK_FEATURE_LENGTHS = {"inputs": 80, "targets": 4}
# The corpus cuts documents to <= 26 words (< 64 pieces): shorter rows, a cheaper build.
BACKBONE_FEATURE_LENGTHS = {"inputs": 64, "targets": 8}
SOURCE_SIZES = {"train": 4000, "validation": 200}
TARGET_SIZES = {"train": 1000, "validation": 200}
CORPUS_SIZES = {"train": 50_000, "validation": 500}
BACKBONE_MIXTURE = "synth_backbone"
CORPUS_TASK = "synth_corpus_prefix_lm"


# ------------------------------------------------------------------------- row makers
# Each maker: (rng) -> {"inputs": str, "targets": str, "answers": [str]}.


def _sentiment(domain: str, frame: str, labels: Tuple[str, str], rng):
  pol = rng.randint(2)
  noun = lang.pick(rng, lang.LEXICON.domain_nouns[domain])
  phrases = lang.polar_phrases(rng, pol, rng.randint(1, 5))
  return frame.format(n=noun, a=lang.join_list(phrases)), labels[pol]


def _nli(kind: str, frame: str, labels: Dict[str, str], rng):
  classes = sorted(set(labels.values()))
  target = classes[rng.randint(len(classes))]
  # A two-way task draws its "not" class from neutral and contradiction alike.
  latent = [c for c in lang.NLI_CLASSES if labels[c] == target]
  premise, hyp = lang.nli_pair(kind, latent[rng.randint(len(latent))], rng)
  text = " ".join(lang.fact_text(kind, f, rng) + " ." for f in premise)
  return frame.format(p=text, h=lang.fact_text(kind, hyp, rng)), target


def _paraphrase(kind: str, frame: str, labels: Tuple[str, str], rng):
  same = rng.randint(2)
  a, b = lang.paraphrase_pair(kind, same, rng)
  return frame.format(a=lang.describe(kind, a, rng), b=lang.describe(kind, b, rng)), labels[same]


QA_QUESTIONS = {"lives": "where does {s} live ?", "owns": "who owns the {v} ?",
                "known": "what is {s} known for ?"}


def _qa(kind: str, rel: str, frame: str, rng):
  sentences, (subj, _, value) = lang.qa_context(kind, rel, rng)
  q = QA_QUESTIONS[rel].format(s=lang.subject_text(kind, subj), v=value)
  answer = subj if rel == "owns" else value
  return frame.format(q=q, c=" ".join(sentences)), answer


# name -> (family, role, maker, label words or None for extractive QA)
SPECS = {
    "synth_sentiment_movie": (
        "sentiment", "source", functools.partial(
            _sentiment, "movie", "review: i watched the {n} . it was {a} .",
            ("negative", "positive")), ("negative", "positive")),
    "synth_sentiment_product": (
        "sentiment", "source", functools.partial(
            _sentiment, "product", "opinion: the {n} i bought is {a} .", ("bad", "good")),
        ("bad", "good")),
    "synth_sentiment_restaurant": (
        "sentiment", "target", functools.partial(
            _sentiment, "restaurant", "comment: {a} , that is how the {n} felt to us .",
            ("negative", "positive")), ("negative", "positive")),
    "synth_nli_people": (
        "nli", "source", functools.partial(
            _nli, "person", "premise: {p} hypothesis: {h} .",
            {c: c for c in lang.NLI_CLASSES}), ("entailment", "neutral", "contradiction")),
    "synth_nli_animals": (
        "nli", "source", functools.partial(
            _nli, "animal", "text: {p} claim: {h} .",
            {"entailment": "yes", "neutral": "no", "contradiction": "no"}), ("no", "yes")),
    "synth_nli_towns": (
        "nli", "target", functools.partial(
            _nli, "town", "hypothesis: {h} . premise: {p}",
            {c: c for c in lang.NLI_CLASSES}), ("entailment", "neutral", "contradiction")),
    "synth_paraphrase_people": (
        "paraphrase", "source", functools.partial(
            _paraphrase, "person", "sentence1: {a} . sentence2: {b} .",
            ("different", "equivalent")), ("different", "equivalent")),
    "synth_paraphrase_animals": (
        "paraphrase", "source", functools.partial(
            _paraphrase, "animal", "question1: is it true that {a} ? question2: is it true "
            "that {b} ?", ("distinct", "duplicate")), ("distinct", "duplicate")),
    "synth_paraphrase_towns": (
        "paraphrase", "target", functools.partial(
            _paraphrase, "town", "first: {a} . second: {b} .", ("different", "equivalent")),
        ("different", "equivalent")),
    "synth_qa_people": (
        "qa", "source", functools.partial(_qa, "person", "lives", "question: {q} context: {c}"),
        None),
    "synth_qa_pets": (
        "qa", "source", functools.partial(_qa, "person", "owns", "context: {c} question: {q}"),
        None),
    "synth_qa_towns": (
        "qa", "target", functools.partial(_qa, "town", "known", "question: {q} passage: {c}"),
        None),
}

SOURCE_TASKS = tuple(n for n, s in SPECS.items() if s[1] == "source")
TARGET_TASKS = tuple(n for n, s in SPECS.items() if s[1] == "target")
FAMILY_OF = {n: s[0] for n, s in SPECS.items()}
LABELS = {n: s[3] for n, s in SPECS.items() if s[3] is not None}


def _task_rng(name: str, split: str) -> np.random.RandomState:
  # Distinct streams per task and split; the corpus uses its own ("corpus", split).
  return lang.seeded_rng("synthetic_tasks", name, split)


def sizes(name: str) -> Dict[str, int]:
  if name == CORPUS_TASK:
    return CORPUS_SIZES
  return SOURCE_SIZES if SPECS[name][1] == "source" else TARGET_SIZES


def iter_rows(name: str, split: str, n: Optional[int] = None) -> Iterator[Tuple[str, str]]:
  """The first `n` (inputs, targets) rows of a task's split (all of them by default)."""
  n = sizes(name)[split] if n is None else n
  if name == CORPUS_TASK:
    rng, make = lang.corpus_rng(split), lang.corpus_example
  else:
    rng, make = _task_rng(name, split), SPECS[name][2]
  for _ in range(n):
    yield make(rng)


@functools.lru_cache(maxsize=None)
def _columns(name: str, split: str) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
  """The split's (inputs, targets), generated once per process: a study builds a task's
  dataset once per run, and generating 4,000 rows takes about half a second."""
  inputs, targets = zip(*iter_rows(name, split))
  return inputs, targets


def _dataset_fn(name: str, split: str, shuffle_files: bool, seed=None):
  """A `tf.data.Dataset` of the split's rows, materialized: the trainer checkpoints the
  data iterator, which a Python generator source cannot be."""
  del shuffle_files, seed
  import tensorflow as tf
  inputs, targets = _columns(name, split)
  return tf.data.Dataset.from_tensor_slices({"inputs": list(inputs), "targets": list(targets)})


def _metric_fns(name: str):
  """Accuracy; F1 (positive = "same") too for paraphrase, second: the first metric is the
  one runs select and studies compare with chance, and answering "same" every time scores
  F1 66.7 on these balanced classes, accuracy 50. SQuAD EM/F1 for QA; the corpus scores
  exact continuation match."""
  from spot_jax.evaluation import metrics
  if name == CORPUS_TASK or FAMILY_OF[name] not in ("paraphrase", "qa"):
    return [metrics.accuracy]
  if FAMILY_OF[name] == "paraphrase":
    return [metrics.accuracy, metrics.f1_score_with_invalid]
  return [metrics.squad]


def _qa_postprocessor(answer, example=None, is_target=False):
  """Text; a target becomes the list of its gold answers (one here), as SQuAD's metric wants."""
  del example
  from spot_jax.evaluation import postprocessors
  return [postprocessors.as_text(answer)] if is_target else postprocessors.as_text(answer)


def _postprocess_fn(name: str):
  """Label words -> class ids (INVALID for anything else); QA answers stay text."""
  if name == CORPUS_TASK:
    return None
  if name not in LABELS:
    return _qa_postprocessor
  from spot_jax.evaluation import postprocessors
  return functools.partial(postprocessors.string_label_to_class_id, label_classes=LABELS[name])


def output_features():
  """inputs and targets over the shipped vocabulary, both ending in EOS (as T5)."""
  import seqio
  from spot_jax import embedded
  vocab = embedded.synthetic_vocabulary()
  return {"inputs": seqio.Feature(vocab, add_eos=True, required=False),
          "targets": seqio.Feature(vocab, add_eos=True)}


def register() -> List[str]:
  """Registers the twelve tasks, the corpus task and the backbone mixture (idempotent)."""
  import seqio
  from spot_jax.tasks import pipeline
  features = output_features()
  names = list(SPECS) + [CORPUS_TASK]
  for name in names:
    if name in seqio.TaskRegistry.names():
      continue
    split_sizes = dict(sizes(name))
    seqio.TaskRegistry.add(
        name,
        source=seqio.FunctionDataSource(functools.partial(_dataset_fn, name),
                                        splits=list(split_sizes),
                                        num_input_examples=split_sizes),
        preprocessors=[seqio.preprocessors.tokenize, pipeline.flag_truncation,
                       seqio.preprocessors.append_eos_after_trim],
        output_features=features, postprocess_fn=_postprocess_fn(name),
        metric_fns=_metric_fns(name))
  if BACKBONE_MIXTURE not in seqio.MixtureRegistry.names():
    seqio.MixtureRegistry.add(BACKBONE_MIXTURE, [CORPUS_TASK], default_rate=1.0)
  return names + [BACKBONE_MIXTURE]
