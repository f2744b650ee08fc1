"""The bundled offline SPoT suite: four task families over a generated language.

Every example comes from `language.py` (invented words, crc32-seeded RNGs: the same
rows in every process, nothing downloaded). Tasks within a family share one latent rule and
one label set (as Su et al.'s task types do, so a prompt can transfer zero-shot within a
family); they differ in domain and template (field words, order). Each target uses a
template and a domain (or subject kind) that no source of its family uses.

- sentiment (bad / good): a review's polar phrases all agree ("not" flips an adjective).
- topic (book / game / hotel / movie): sentences about invented items of one domain.
- nli (yes / maybe / no): premise facts vs. a hypothesis about an attribute: stated with
  the same pole -> yes, with the other pole -> no, unstated -> maybe. Synonyms make it
  more than string match; facts of other relations are distractors.
- paraphrase (different / same): two descriptions of one subject say the same facts
  (reordered, synonyms) or one attribute's pole differs.

`synth_topic_goodbad` is the control: the topic skill (book vs game) answered with the
sentiment family's label words, so a study can tell transfer of a skill from transfer of
label words (it is a source of another family that shares the sentiment target's labels).

No task-name prefix: in SPoT the prompt is what tells the frozen model which task it is
solving, and the task embeddings are those prompts; a prefix would hand the model the task
identity for free. Inputs only carry field words ("premise:", "question:").

What the backbone saw (`synth_backbone`, a prefix-LM over `language.py` documents):
the same language used plainly, as an LM-adapted T5 saw web text: reviews closing on a
verdict, texts about items closing on their topic, facts followed by a claim and whether it
holds ("so , mira is tall ? yes"), two descriptions and whether they are the same. So the
label words and the skills exist in the frozen model; the task templates, field words and
rows (separate RNG streams) do not: the prompt has to ask for them.

TensorFlow, seqio and the metrics are imported on registration only, so the vocabulary
tool and tests can generate rows cheaply.
"""
import functools
from typing import Dict, Iterator, List, Optional, Tuple

import numpy as np

from spot_jax.embedded import language as lang
from spot_jax.tasks import metadata

# Every row fits (longest input + EOS, targets one label word + EOS; tested): the encoder
# cost is linear in the padded length, so no slack beyond that.
TASK_FEATURE_LENGTHS = {"inputs": 36, "targets": 2}
# Whole corpus documents fit (at most 34 words + EOS); continuations are 1-3 words.
BACKBONE_FEATURE_LENGTHS = {"inputs": 36, "targets": 4}
SOURCE_SIZES = {"train": 4000, "validation": 200}
TARGET_SIZES = {"train": 1000, "validation": 200}
CORPUS_SIZES = {"train": 200_000, "validation": 1000}
BACKBONE_MIXTURE = "synth_backbone"
CORPUS_TASK = "synth_corpus_prefix_lm"

LABEL_SETS = {"sentiment": ("bad", "good"), "topic": ("book", "game", "hotel", "movie"),
              "nli": ("yes", "maybe", "no"), "paraphrase": ("different", "same")}


# ------------------------------------------------------------------------- row makers
# Each maker: (rng) -> (inputs, target label word).


def _sentiment(domain: str, frame: str, rng):
  pol = rng.randint(2)
  noun = lang.pick(rng, lang.LEXICON.domain_nouns[domain])
  phrases = lang.polar_phrases(rng, pol, rng.randint(1, 4))
  return frame.format(n=noun, a=lang.join_list(phrases)), lang.VERDICTS[pol]


def _topic(frame: str, labels: Dict[str, str], num_sentences: Tuple[int, int], rng):
  domain = lang.pick(rng, sorted(labels))
  text = " ".join(lang.topic_sentences(rng, domain, rng.randint(num_sentences[0],
                                                                num_sentences[1] + 1)))
  return frame.format(s=text), labels[domain]


def _nli(kind: str, frame: str, rng):
  label = lang.pick(rng, lang.NLI_CLASSES)
  premise, hyp = lang.nli_pair(kind, label, rng)
  return (frame.format(p=lang.facts_text(kind, premise, rng), h=lang.fact_text(kind, hyp, rng)),
          lang.JUDGEMENTS[label])


def _paraphrase(kind: str, frame: str, rng):
  same = rng.randint(2)
  a, b = lang.paraphrase_pair(kind, same, rng)
  return (frame.format(a=lang.describe(kind, a, rng), b=lang.describe(kind, b, rng)),
          lang.SAMENESS[same])


_TOPICS = {d: d for d in LABEL_SETS["topic"]}

# name -> (family, role, maker, label words); role "control": a source whose label words
# are another family's.
SPECS = {
    "synth_sentiment_movie": (
        "sentiment", "source",
        functools.partial(_sentiment, "movie", "review: the {n} was {a} ."),
        LABEL_SETS["sentiment"]),
    "synth_sentiment_product": (
        "sentiment", "source",
        functools.partial(_sentiment, "product", "opinion: {a} . that is the {n} i bought ."),
        LABEL_SETS["sentiment"]),
    "synth_sentiment_restaurant": (
        "sentiment", "target",
        functools.partial(_sentiment, "restaurant",
                          "comment: {a} , that is how the {n} was for us ."),
        LABEL_SETS["sentiment"]),
    "synth_topic_news": (
        "topic", "source", functools.partial(_topic, "headline: {s}", _TOPICS, (1, 1)),
        LABEL_SETS["topic"]),
    "synth_topic_forum": (
        "topic", "source", functools.partial(_topic, "post: {s} what do you say ?", _TOPICS,
                                             (2, 2)),
        LABEL_SETS["topic"]),
    "synth_topic_chat": (
        "topic", "target", functools.partial(_topic, "message: {s} which topic is this ?",
                                             _TOPICS, (1, 2)),
        LABEL_SETS["topic"]),
    "synth_topic_goodbad": (
        "topic", "control", functools.partial(_topic, "note: {s}",
                                              {"book": "good", "game": "bad"}, (1, 2)),
        LABEL_SETS["sentiment"]),
    "synth_nli_people": (
        "nli", "source", functools.partial(_nli, "person", "premise: {p} hypothesis: {h} ."),
        LABEL_SETS["nli"]),
    "synth_nli_animals": (
        "nli", "source", functools.partial(_nli, "animal", "text: {p} claim: {h} ."),
        LABEL_SETS["nli"]),
    "synth_nli_towns": (
        "nli", "target", functools.partial(_nli, "town", "hypothesis: {h} . premise: {p}"),
        LABEL_SETS["nli"]),
    "synth_paraphrase_people": (
        "paraphrase", "source",
        functools.partial(_paraphrase, "person", "sentence1: {a} . sentence2: {b} ."),
        LABEL_SETS["paraphrase"]),
    "synth_paraphrase_animals": (
        "paraphrase", "source", functools.partial(
            _paraphrase, "animal",
            "question1: is it true that {a} ? question2: is it true that {b} ?"),
        LABEL_SETS["paraphrase"]),
    "synth_paraphrase_towns": (
        "paraphrase", "target",
        functools.partial(_paraphrase, "town", "first: {a} . second: {b} ."),
        LABEL_SETS["paraphrase"]),
}

SOURCE_TASKS = tuple(n for n, s in SPECS.items() if s[1] in ("source", "control"))
TARGET_TASKS = tuple(n for n, s in SPECS.items() if s[1] == "target")
CONTROL_TASKS = tuple(n for n, s in SPECS.items() if s[1] == "control")
FAMILY_OF = {n: s[0] for n, s in SPECS.items()}
LABELS = {n: s[3] for n, s in SPECS.items()}


def _task_rng(name: str, split: str) -> np.random.RandomState:
  # Distinct streams per task and split; the corpus uses its own ("corpus", split).
  return lang.seeded_rng("synthetic_tasks", name, split)


def sizes(name: str) -> Dict[str, int]:
  if name == CORPUS_TASK:
    return CORPUS_SIZES
  return TARGET_SIZES if SPECS[name][1] == "target" else SOURCE_SIZES


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
  one runs select and studies compare with the majority class, and answering "same" every
  time scores F1 66.7 on these balanced classes, accuracy 50. The corpus scores exact
  continuation match."""
  from spot_jax.evaluation import metrics
  if name != CORPUS_TASK and FAMILY_OF[name] == "paraphrase":
    return [metrics.accuracy, metrics.f1_score_with_invalid]
  return [metrics.accuracy]


def _postprocess_fn(name: str):
  """Label words -> class ids (INVALID for anything else)."""
  if name == CORPUS_TASK:
    return None
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
  """Registers the thirteen tasks, the corpus task and the backbone mixture (idempotent)."""
  import seqio
  from spot_jax.tasks import pipeline
  features = output_features()
  names = list(SPECS) + [CORPUS_TASK]
  for name in SPECS:  # what the study reads of each task: its family and label words
    metadata.describe(name, family=FAMILY_OF[name], labels=LABELS[name])
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
