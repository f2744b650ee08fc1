"""A small generated language: an invented lexicon with attributes, and sentence makers.

Content words are invented (syllables drawn from a crc32-seeded RNG, so every process gets
the same lexicon); the glue is a few English function words so examples stay readable.
The lexicon carries the latent structure the synthetic tasks test:

- polarity adjectives (positive / negative) and neutral ones, nouns in review domains;
- attributes with two opposite poles, each pole said with two synonyms (antonymy and
  synonymy over invented words);
- subjects of three kinds (people, animals, towns) with relations: a person or animal
  lives in a town, a person owns an animal, a town is known for a product.

`corpus_example` writes the backbone's prefix-LM documents in the same language. TensorFlow
free, so the vocabulary tool and the tests can use it cheaply.
"""
import dataclasses
import zlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

Fact = Tuple[str, str, object]  # (subject, relation, value): ("mira", "attr", (3, 1)), ...

ENGLISH = frozenset("""
a an and are as at ate bad bought but different distinct does duplicate entailment
equivalent false for good great i in is it its known live lives maybe meal neutral negative
no not of overall owns place positive read right same says short so that the this true
unknown was watched we what where who wrong yes contradiction awful fine place food book
movie product restaurant words other mean thing things sentence first second question
premise hypothesis review opinion comment text claim context passage answer them also
""".split())

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr",
          "pl", "gr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
CODAS = ("", "", "", "n", "r", "s", "l", "x")

DOMAINS = ("movie", "product", "restaurant", "book")
NUM_ATTRIBUTES = 8

# Words a review's closing verdict and a claim's judgement use in the corpus (and the
# task label words are drawn from these, so the frozen decoder has emitted them before).
VERDICTS = {1: ("good", "great", "positive", "fine"), 0: ("bad", "awful", "negative", "poor")}
JUDGEMENTS = {"entailment": ("yes", "true", "right", "entailment"),
              "contradiction": ("no", "false", "wrong", "contradiction"),
              "neutral": ("unknown", "maybe", "neutral")}
SAMENESS = {1: ("same", "equivalent", "duplicate"), 0: ("different", "distinct")}
NLI_CLASSES = ("entailment", "neutral", "contradiction")


@dataclasses.dataclass(frozen=True)
class Lexicon:
  """The language's words by role; built once from a fixed seed."""
  domain_nouns: Dict[str, Tuple[str, ...]]
  positive: Tuple[str, ...]
  negative: Tuple[str, ...]
  neutral: Tuple[str, ...]
  # attributes[a][pole] = the synonyms that say pole `pole` (0 or 1) of attribute `a`.
  attributes: Tuple[Tuple[Tuple[str, ...], Tuple[str, ...]], ...]
  people: Tuple[str, ...]
  animals: Tuple[str, ...]
  towns: Tuple[str, ...]

  def value_word(self, attr: int, pole: int, rng: np.random.RandomState) -> str:
    forms = self.attributes[attr][pole]
    return forms[rng.randint(len(forms))]

  def pole_of(self, word: str) -> Tuple[int, int]:
    """(attribute, pole) a value word says; KeyError for other words."""
    return _VALUE_INDEX[word]

  def polarity_of(self, adjective: str) -> int:
    """1 positive, 0 negative, -1 neutral."""
    if adjective in self.positive:
      return 1
    if adjective in self.negative:
      return 0
    if adjective in self.neutral:
      return -1
    raise KeyError(adjective)


def seeded_rng(*keys: object) -> np.random.RandomState:
  """A RandomState seeded from the keys' text; the same in every process."""
  # crc32, not hash(): str hashes change between processes.
  return np.random.RandomState(zlib.crc32("/".join(map(str, keys)).encode()))


def _invent(rng: np.random.RandomState, n: int, used: set, syllables=(2, 3)) -> Tuple[str, ...]:
  words = []
  while len(words) < n:
    k = rng.randint(syllables[0], syllables[1] + 1)
    w = "".join(ONSETS[rng.randint(len(ONSETS))] + VOWELS[rng.randint(len(VOWELS))]
                for _ in range(k)) + CODAS[rng.randint(len(CODAS))]
    if w in used:
      continue
    used.add(w)
    words.append(w)
  return tuple(words)


def _build_lexicon() -> Lexicon:
  rng = seeded_rng("synthetic_language", "lexicon", 1)
  used = set(ENGLISH)
  return Lexicon(
      domain_nouns={d: _invent(rng, 32, used) for d in DOMAINS},
      positive=_invent(rng, 16, used), negative=_invent(rng, 16, used),
      neutral=_invent(rng, 8, used),
      attributes=tuple((_invent(rng, 2, used), _invent(rng, 2, used))
                       for _ in range(NUM_ATTRIBUTES)),
      people=_invent(rng, 100, used), animals=_invent(rng, 30, used),
      towns=_invent(rng, 40, used))


LEXICON = _build_lexicon()
_VALUE_INDEX = {w: (a, p) for a, poles in enumerate(LEXICON.attributes)
                for p, forms in enumerate(poles) for w in forms}


def pick(rng: np.random.RandomState, seq: Sequence):
  """One element of `seq`, uniformly."""
  return seq[rng.randint(len(seq))]


# ----------------------------------------------------------------------------- reviews


def polar_phrases(rng: np.random.RandomState, polarity: int, n: int,
                  negation_rate: float = 0.25, neutral_rate: float = 0.25) -> List[str]:
  """`n` adjective phrases whose polar ones all say `polarity`: a same-polarity adjective,
  or "not" + an opposite one; at least one phrase is polar."""
  lex = LEXICON
  phrases = []
  for i in range(n):
    if i > 0 and rng.rand() < neutral_rate:
      phrases.append(pick(rng, lex.neutral))
    elif rng.rand() < negation_rate:
      phrases.append("not " + pick(rng, lex.negative if polarity else lex.positive))
    else:
      phrases.append(pick(rng, lex.positive if polarity else lex.negative))
  order = rng.permutation(n)
  return [phrases[i] for i in order]


def join_list(items: Sequence[str]) -> str:
  if len(items) == 1:
    return items[0]
  return " , ".join(items[:-1]) + " and " + items[-1]


# ------------------------------------------------------------------------------- facts


def subjects(kind: str) -> Tuple[str, ...]:
  return {"person": LEXICON.people, "animal": LEXICON.animals, "town": LEXICON.towns}[kind]


def subject_text(kind: str, name: str) -> str:
  return "the " + name if kind == "animal" else name


def fact_text(kind: str, fact: Fact, rng: np.random.RandomState) -> str:
  """One clause stating `fact`; value words are a random synonym of their pole."""
  subj, rel, value = fact
  s = subject_text(kind, subj)
  if rel == "attr":
    return f"{s} is {LEXICON.value_word(value[0], value[1], rng)}"
  if rel == "lives":
    return f"{s} lives in {value}"
  if rel == "owns":
    return f"{s} owns a {value}"
  if rel == "known":
    return f"{s} is known for its {value}"
  raise ValueError(rel)


def relations(kind: str) -> Tuple[str, ...]:
  return {"person": ("attr", "lives", "owns"), "animal": ("attr", "lives"),
          "town": ("attr", "known")}[kind]


def random_fact(kind: str, subj: str, rel: str, rng: np.random.RandomState) -> Fact:
  if rel == "attr":
    return (subj, rel, (rng.randint(NUM_ATTRIBUTES), rng.randint(2)))
  if rel == "lives":
    return (subj, rel, pick(rng, LEXICON.towns))
  if rel == "owns":
    return (subj, rel, pick(rng, LEXICON.animals))
  if rel == "known":
    return (subj, rel, pick(rng, LEXICON.domain_nouns["product"]))
  raise ValueError(rel)


def fact_set(kind: str, subj: str, n: int, rng: np.random.RandomState) -> List[Fact]:
  """`n` facts about `subj` with distinct (relation, attribute) keys."""
  facts, keys = [], set()
  while len(facts) < n:
    f = random_fact(kind, subj, pick(rng, relations(kind)), rng)
    key = fact_key(f)
    if key not in keys:
      keys.add(key)
      facts.append(f)
  return facts


def fact_key(fact: Fact):
  """What a fact is about: (subject, relation[, attribute]); its value is what it says."""
  subj, rel, value = fact
  return (subj, rel, value[0]) if rel == "attr" else (subj, rel)


def altered(kind: str, fact: Fact, rng: np.random.RandomState) -> Fact:
  """The same question answered differently: the other pole, another town/animal/product."""
  subj, rel, value = fact
  if rel == "attr":
    return (subj, rel, (value[0], 1 - value[1]))
  while True:
    new = random_fact(kind, subj, rel, rng)
    if new[2] != value:
      return new


def entailment_class(premise: Sequence[Fact], hypothesis: Fact) -> str:
  """The NLI rule: same key and value -> entailment; same key, other value -> contradiction;
  key not stated -> neutral."""
  for f in premise:
    if fact_key(f) == fact_key(hypothesis):
      return "entailment" if f[2] == hypothesis[2] else "contradiction"
  return "neutral"


def nli_pair(kind: str, label: str, rng: np.random.RandomState, num_facts=(1, 3)):
  """(premise facts, hypothesis fact) about one or two subjects of `kind` with class `label`."""
  names = [subjects(kind)[i] for i in rng.choice(len(subjects(kind)), 2, replace=False)]
  n = rng.randint(num_facts[0], num_facts[1] + 1)
  premise = fact_set(kind, names[0], n, rng) if rng.rand() < 0.5 else \
      fact_set(kind, names[0], (n + 1) // 2, rng) + fact_set(kind, names[1], n // 2, rng)
  order = rng.permutation(len(premise))
  premise = [premise[i] for i in order]
  if label == "neutral":
    while True:
      subj = pick(rng, [f[0] for f in premise])
      hyp = random_fact(kind, subj, "attr", rng)
      if entailment_class(premise, hyp) == "neutral":
        break
  else:
    base = premise[rng.randint(len(premise))]
    hyp = base if label == "entailment" else altered(kind, base, rng)
  return premise, hyp


def paraphrase_pair(kind: str, same: int, rng: np.random.RandomState):
  """(facts A, facts B): B says the same facts as A (same=1) or changes exactly one of them."""
  subj = pick(rng, subjects(kind))
  a = fact_set(kind, subj, rng.randint(2, 4), rng)
  b = list(a)
  if not same:
    if rng.rand() < 0.2:
      other = pick(rng, [s for s in subjects(kind) if s != subj])
      b = [(other, r, v) for _, r, v in b]
    else:
      i = rng.randint(len(b))
      b[i] = altered(kind, b[i], rng)
  order = rng.permutation(len(b))
  return a, [b[i] for i in order]


def describe(kind: str, facts: Sequence[Fact], rng: np.random.RandomState) -> str:
  """Facts about one subject in one sentence: "mira is X , lives in Y and owns a Z"."""
  s = subject_text(kind, facts[0][0])
  clauses = [fact_text(kind, f, rng)[len(s) + 1:] for f in facts]
  return s + " " + join_list(clauses)


def qa_context(kind: str, rel: str, rng: np.random.RandomState, num_subjects=(2, 2)):
  """(context sentences, question subject, answer) where `rel` facts have unique answers."""
  names = [subjects(kind)[i] for i in
           rng.choice(len(subjects(kind)), rng.randint(num_subjects[0], num_subjects[1] + 1),
                      replace=False)]
  facts, answers = [], set()
  for name in names:
    while True:
      f = random_fact(kind, name, rel, rng)
      if f[2] not in answers:
        answers.add(f[2])
        break
    facts.append(f)
    for extra in fact_set(kind, name, rng.randint(0, 3), rng):
      if extra[1] != rel:
        facts.append(extra)
  target = facts[[i for i, f in enumerate(facts) if f[1] == rel][rng.randint(len(names))]]
  order = rng.permutation(len(facts))
  sentences = [fact_text(kind, facts[i], rng) + " ." for i in order]
  return sentences, target


# ------------------------------------------------------------------------------ corpus

REVIEW_FRAMES = {
    "movie": ("i watched the {n} .", "the {n} is a movie .", "we saw the {n} ."),
    "product": ("i bought the {n} .", "the {n} is a product .", "we used the {n} ."),
    "restaurant": ("we ate at the {n} .", "the {n} is a restaurant .", "i had a meal at the {n} ."),
    "book": ("i read the {n} .", "the {n} is a book .", "we read the {n} ."),
}


def _corpus_review(rng) -> Tuple[List[str], List[int]]:
  domain = pick(rng, DOMAINS)
  pol = rng.randint(2)
  words = pick(rng, REVIEW_FRAMES[domain]).format(n=pick(rng, LEXICON.domain_nouns[domain]))
  words += " it was " + join_list(polar_phrases(rng, pol, rng.randint(1, 4))) + " ."
  words = words.split()
  salient = []
  if rng.rand() < 0.8:
    words += ["overall", "it", "was"]
    salient.append(len(words))
    words += [pick(rng, VERDICTS[pol]), "."]
  return words, salient


def _corpus_facts(rng) -> Tuple[List[str], List[int]]:
  kind = pick(rng, ("person", "animal", "town"))
  names = [subjects(kind)[i] for i in rng.choice(len(subjects(kind)), 2, replace=False)]
  facts = fact_set(kind, names[0], rng.randint(1, 4), rng)
  if rng.rand() < 0.3:
    facts += fact_set(kind, names[1], rng.randint(1, 3), rng)
  words = " ".join(fact_text(kind, facts[i], rng) + " ." for i in rng.permutation(len(facts)))
  words, salient = words.split(), []
  style = rng.randint(3)
  if style == 0:  # a claim about what was said, and whether it holds
    label = NLI_CLASSES[rng.randint(3)]
    if label == "neutral":
      hyp = random_fact(kind, pick(rng, [f[0] for f in facts]), "attr", rng)
      label = entailment_class(facts, hyp)
    else:
      base = facts[rng.randint(len(facts))]
      hyp = base if label == "entailment" else altered(kind, base, rng)
    words += ("so , " + fact_text(kind, hyp, rng) + " ?").split()
    salient.append(len(words))
    words += [pick(rng, JUDGEMENTS[label]), "."]
  elif style == 1:  # a restatement that may or may not say the same thing
    same = rng.randint(2)
    a, b = paraphrase_pair(kind, same, rng)
    words += ("in other words " + describe(kind, a, rng) + " ; " + describe(kind, b, rng)
              + " . these mean").split()
    salient.append(len(words))
    words += [pick(rng, SAMENESS[same]), "things", "."]
  else:  # recall of a stated fact
    f = facts[rng.randint(len(facts))]
    subj = subject_text(kind, f[0])
    if f[1] == "lives":
      words += f"where does {subj} live ?".split()
      salient.append(len(words))
      words += [f[2], "."]
    elif f[1] == "owns":
      words += f"who owns the {f[2]} ?".split()
      salient.append(len(words))
      words += [f[0], "."]
    elif f[1] == "known":
      words += f"what is {subj} known for ?".split()
      salient.append(len(words))
      words += [f[2], "."]
    else:
      words += ("so " + subj + " is").split()
      salient.append(len(words))
      words += [LEXICON.value_word(f[2][0], f[2][1], rng), "."]
  return words, salient


def corpus_document(rng: np.random.RandomState) -> Tuple[List[str], List[int]]:
  """One or two paragraphs (a review, or facts with a claim, restatement or recall);
  returns the words and the indices of salient words (verdicts, judgements, answers)."""
  words, salient = [], []
  for _ in range(1 if rng.rand() < 0.75 else 2):
    w, s = (_corpus_review if rng.rand() < 0.5 else _corpus_facts)(rng)
    salient += [i + len(words) for i in s]
    words += w
  return words, salient


def corpus_example(rng: np.random.RandomState, max_input_words: int = 26,
                   salient_rate: float = 0.8) -> Tuple[str, str]:
  """A prefix-LM pair (inputs, targets): a document cut at a word, the next 1-4 words.

  Most cuts fall just before a salient word, so the continuation to predict is mostly what
  a reader infers (a verdict, a judgement, a recalled fact) rather than glue words: a tiny
  model trained for minutes learns those associations only if they are dense.
  """
  words, salient = corpus_document(rng)
  if salient and rng.rand() < salient_rate:
    cut = pick(rng, salient)
  else:
    cut = rng.randint(2, len(words))
  return (" ".join(words[max(0, cut - max_input_words):cut]),
          " ".join(words[cut:cut + rng.randint(1, 5)]))


def corpus_rng(split: str) -> np.random.RandomState:
  return seeded_rng("synthetic_language", "corpus", split)
