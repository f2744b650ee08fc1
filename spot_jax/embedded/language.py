"""A small generated language: an invented lexicon with attributes, and sentence makers.

Content words are invented (syllables drawn from a crc32-seeded RNG, so every process gets
the same lexicon); the glue is a few English function words so examples stay readable.
Every word is one piece of the shipped vocabulary (`build.py` trains a word-level
SentencePiece model), as a pretrained LM's vocabulary covers its frequent words.

The language has four rules, and its corpus (`corpus_document`) states each the way web
text states things, never in a task's template:

- sentiment: a review's polar phrases all agree ("not" flips an adjective) and it may end
  on a verdict, "overall it was good|bad";
- topic: items belong to domains (movie, book, ...); a text about items may end "the
  topic is <domain>";
- nli: facts about a subject, then a claim about one of its attributes and whether it
  follows: "so , mira is tall ? yes|no|maybe" (the attribute stated with that pole, stated
  with the other, not stated; each pole has two synonyms; facts of other relations, where
  someone lives, what they own, stand beside them);
- paraphrase: two descriptions of a subject, then "the two sentences are same|different"
  (the same facts reordered and in synonyms, or one attribute's pole changed).

`corpus_example` cuts a document into a prefix-LM pair, mostly just before the word a
reader infers (the salient word). TensorFlow free, so the vocabulary tool and the tests can
use it cheaply.
"""
import dataclasses
import zlib
from typing import Dict, List, Sequence, Tuple

import numpy as np

Fact = Tuple[str, str, object]  # (subject, relation, value): ("mira", "attr", (3, 1)), ...

DOMAINS = ("movie", "book", "product", "restaurant", "game", "hotel")
NUM_ATTRIBUTES = 6

# The one word the corpus uses for each class of each rule: what the frozen model predicts.
VERDICTS = {1: "good", 0: "bad"}
JUDGEMENTS = {"entailment": "yes", "contradiction": "no", "neutral": "maybe"}
SAMENESS = {1: "same", 0: "different"}
NLI_CLASSES = ("entailment", "neutral", "contradiction")
# The salient words of each rule, as the build's acceptance check scores them.
SALIENT_WORDS = {
    "sentiment": (VERDICTS[0], VERDICTS[1]),
    "topic": DOMAINS,
    "nli": tuple(JUDGEMENTS[c] for c in NLI_CLASSES),
    "paraphrase": (SAMENESS[0], SAMENESS[1]),
}
FAMILIES = tuple(SALIENT_WORDS)

ENGLISH = frozenset("""
a about after all also and are as at ate bad book bought but by claim comment dinner
different do does first for from game good had have hotel how i in is it its known last
later lives live liked maybe meal movie new night no not of on one opinion other overall
owns people played popular post product read restaurant review said same say saw says
second sentence sentences slept so stayed story talk talked that the these they this
to topic two used was watched we what where which with words yes finished people's
""".split())

ONSETS = ("b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z", "sh", "tr",
          "pl", "gr")
VOWELS = ("a", "e", "i", "o", "u", "ai", "ou")
CODAS = ("", "", "", "n", "r", "s", "l", "x")


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

  def words(self) -> Tuple[str, ...]:
    """Every invented word."""
    out = [w for d in DOMAINS for w in self.domain_nouns[d]]
    out += [*self.positive, *self.negative, *self.neutral, *self.people, *self.animals,
            *self.towns]
    out += [w for poles in self.attributes for forms in poles for w in forms]
    return tuple(out)


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
  rng = seeded_rng("synthetic_language", "lexicon", 2)
  used = set(ENGLISH)
  return Lexicon(
      domain_nouns={d: _invent(rng, 10, used) for d in DOMAINS},
      positive=_invent(rng, 8, used), negative=_invent(rng, 8, used),
      neutral=_invent(rng, 6, used),
      attributes=tuple((_invent(rng, 2, used), _invent(rng, 2, used))
                       for _ in range(NUM_ATTRIBUTES)),
      people=_invent(rng, 24, used), animals=_invent(rng, 12, used),
      towns=_invent(rng, 12, used))


LEXICON = _build_lexicon()


def pick(rng: np.random.RandomState, seq: Sequence):
  """One element of `seq`, uniformly."""
  return seq[rng.randint(len(seq))]


def join_list(items: Sequence[str]) -> str:
  if len(items) == 1:
    return items[0]
  return " , ".join(items[:-1]) + " and " + items[-1]


# ----------------------------------------------------------------------------- reviews


def polar_phrases(rng: np.random.RandomState, polarity: int, n: int,
                  negation_rate: float = 0.3, neutral_rate: float = 0.25) -> List[str]:
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


def item_nouns(rng: np.random.RandomState, domain: str, n: int) -> List[str]:
  nouns = LEXICON.domain_nouns[domain]
  return [nouns[i] for i in rng.choice(len(nouns), n, replace=False)]


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
    return f"{s} owns the {value}"
  if rel == "known":
    return f"{s} is known for the {value}"
  raise ValueError(rel)


def relations(kind: str) -> Tuple[str, ...]:
  return {"person": ("attr", "attr", "lives", "owns"), "animal": ("attr", "attr", "lives"),
          "town": ("attr", "attr", "known")}[kind]


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


def fact_key(fact: Fact):
  """What a fact is about: (subject, relation[, attribute]); its value is what it says."""
  subj, rel, value = fact
  return (subj, rel, value[0]) if rel == "attr" else (subj, rel)


def fact_set(kind: str, subj: str, n: int, rng: np.random.RandomState) -> List[Fact]:
  """`n` facts about `subj` with distinct keys."""
  facts, keys = [], set()
  while len(facts) < n:
    f = random_fact(kind, subj, pick(rng, relations(kind)), rng)
    if fact_key(f) not in keys:
      keys.add(fact_key(f))
      facts.append(f)
  return facts


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


def nli_pair(kind: str, label: str, rng: np.random.RandomState, num_facts=(1, 3),
             two_subjects: float = 0.0):
  """(premise facts, hypothesis fact) with class `label`: the hypothesis is an attribute of
  the premise's (first) subject; other relations are there to be skipped."""
  names = [subjects(kind)[i] for i in rng.choice(len(subjects(kind)), 2, replace=False)]
  n = rng.randint(num_facts[0], num_facts[1] + 1)
  premise = fact_set(kind, names[0], n, rng)
  if rng.rand() < two_subjects:
    premise += fact_set(kind, names[1], 1, rng)
  premise = [premise[i] for i in rng.permutation(len(premise))]
  if label != "neutral" and not any(f[1] == "attr" for f in premise):
    premise[0] = random_fact(kind, premise[0][0], "attr", rng)
    if len({fact_key(f) for f in premise}) < len(premise):
      premise = premise[:1]
  if label == "neutral":
    while True:
      hyp = random_fact(kind, names[0], "attr", rng)
      if entailment_class(premise, hyp) == "neutral":
        break
  else:
    base = pick(rng, [f for f in premise if f[1] == "attr"])
    hyp = base if label == "entailment" else altered(kind, base, rng)
  return premise, hyp


def paraphrase_pair(kind: str, same: int, rng: np.random.RandomState, num_facts=(2, 2)):
  """(facts A, facts B) about one subject, at least one an attribute: B says the same facts
  as A (same=1) or flips the pole of one attribute."""
  subj = pick(rng, subjects(kind))
  a = [random_fact(kind, subj, "attr", rng)]
  while len(a) < rng.randint(num_facts[0], num_facts[1] + 1):
    f = random_fact(kind, subj, pick(rng, relations(kind)), rng)
    if fact_key(f) not in {fact_key(x) for x in a}:
      a.append(f)
  b = list(a)
  if not same:
    i = pick(rng, [j for j, f in enumerate(b) if f[1] == "attr"])
    b[i] = altered(kind, b[i], rng)
  return a, [b[i] for i in rng.permutation(len(b))]


def describe(kind: str, facts: Sequence[Fact], rng: np.random.RandomState) -> str:
  """Facts about one subject in one sentence: "mira is X , lives in Y and owns the Z"."""
  s = subject_text(kind, facts[0][0])
  clauses = [fact_text(kind, f, rng)[len(s) + 1:] for f in facts]
  return s + " " + join_list(clauses)


def facts_text(kind: str, facts: Sequence[Fact], rng: np.random.RandomState) -> str:
  return " ".join(fact_text(kind, f, rng) + " ." for f in facts)


# ------------------------------------------------------------------------------- topics

TOPIC_SENTENCES = ("people talk about the {n} .", "the {n} is new .", "{p} liked the {n} .",
                   "{p} said the {n} is popular .", "the {n} and the {m} are popular .",
                   "{p} talked about the {n} with {q} .", "one {n} is like the {m} .")


def topic_sentences(rng: np.random.RandomState, domain: str, n: int) -> List[str]:
  """`n` sentences about items of `domain` that never name the domain."""
  out = []
  for _ in range(n):
    a, b = item_nouns(rng, domain, 2)
    p, q = item_people(rng)
    out.append(pick(rng, TOPIC_SENTENCES).format(n=a, m=b, p=p, q=q))
  return out


def item_people(rng: np.random.RandomState) -> List[str]:
  return [LEXICON.people[i] for i in rng.choice(len(LEXICON.people), 2, replace=False)]


# ------------------------------------------------------------------------------ corpus

REVIEW_FRAMES = {
    "movie": ("i watched the {n} .", "the {n} is a movie .", "we saw the {n} last night ."),
    "book": ("i read the {n} .", "the {n} is a book .", "we finished the {n} ."),
    "product": ("i bought the {n} .", "the {n} is a product .", "we used the {n} ."),
    "restaurant": ("we ate at the {n} .", "the {n} is a restaurant .",
                   "i had dinner at the {n} ."),
    "game": ("i played the {n} .", "the {n} is a game .", "we played the {n} ."),
    "hotel": ("we stayed at the {n} .", "the {n} is a hotel .", "i slept at the {n} ."),
}


def _review(rng) -> Tuple[List[str], List[Tuple[int, str]]]:
  domain = pick(rng, DOMAINS)
  pol = rng.randint(2)
  text = pick(rng, REVIEW_FRAMES[domain]).format(n=pick(rng, LEXICON.domain_nouns[domain]))
  text += " it was " + join_list(polar_phrases(rng, pol, rng.randint(1, 4))) + " ."
  words = text.split()
  if rng.rand() < 0.85:
    words += ["overall", "it", "was"]
    return words + [VERDICTS[pol], "."], [(len(words), "sentiment")]
  return words, []


def _topic(rng) -> Tuple[List[str], List[Tuple[int, str]]]:
  domain = pick(rng, DOMAINS)
  words = " ".join(topic_sentences(rng, domain, rng.randint(1, 3))).split()
  words += ["the", "topic", "is"]
  return words + [domain, "."], [(len(words), "topic")]


def _claim(rng) -> Tuple[List[str], List[Tuple[int, str]]]:
  kind = pick(rng, ("person", "animal", "town"))
  label = pick(rng, NLI_CLASSES)
  premise, hyp = nli_pair(kind, label, rng)
  words = (facts_text(kind, premise, rng) + " so , " + fact_text(kind, hyp, rng)
           + " ?").split()
  return words + [JUDGEMENTS[label], "."], [(len(words), "nli")]


def _restatement(rng) -> Tuple[List[str], List[Tuple[int, str]]]:
  kind = pick(rng, ("person", "animal", "town"))
  same = rng.randint(2)
  a, b = paraphrase_pair(kind, same, rng)
  words = (describe(kind, a, rng) + " . " + describe(kind, b, rng)
           + " . the two sentences are").split()
  return words + [SAMENESS[same], "."], [(len(words), "paraphrase")]


PARAGRAPHS = {"sentiment": _review, "topic": _topic, "nli": _claim,
              "paraphrase": _restatement}
# How often each rule's paragraphs appear: the harder rules (a lookup across facts) more.
PARAGRAPH_RATES = {"sentiment": 0.25, "topic": 0.1, "nli": 0.35, "paraphrase": 0.3}


def _paragraph(rng: np.random.RandomState):
  family = FAMILIES[rng.choice(len(FAMILIES), p=[PARAGRAPH_RATES[f] for f in FAMILIES])]
  return PARAGRAPHS[family](rng)


def corpus_document(rng: np.random.RandomState, max_words: int = 34
                    ) -> Tuple[List[str], List[Tuple[int, str]]]:
  """One paragraph of one rule, sometimes after an unrelated one; returns the words and the
  (index, family) of each salient word (verdict, topic, judgement, sameness)."""
  words, salient = _paragraph(rng)
  if rng.rand() < 0.2:
    before, _ = _paragraph(rng)
    if len(before) + len(words) <= max_words:
      salient = [(i + len(before), f) for i, f in salient]
      words = before + words
  return words, salient


def corpus_example(rng: np.random.RandomState, salient_rate: float = 0.9) -> Tuple[str, str]:
  """A prefix-LM pair (inputs, targets): a whole document cut at a word, and what follows.

  Most cuts fall just before a salient word and the continuation is that word alone (then
  EOS), as a task's target is a label word alone: the continuation to predict is mostly what
  a reader infers rather than glue words, and a tiny model learns those associations in
  minutes only if they are dense. Other cuts continue with the next 1-3 words.
  """
  words, salient = corpus_document(rng)
  if salient and rng.rand() < salient_rate:
    cut = pick(rng, salient)[0]
    return " ".join(words[:cut]), words[cut]
  cut = rng.randint(2, len(words))
  return " ".join(words[:cut]), " ".join(words[cut:cut + rng.randint(1, 4)])


def salient_examples(split: str, family: str, n: int) -> List[Tuple[str, str]]:
  """`n` (prefix, salient word) pairs of `family` from the corpus's `split` documents."""
  rng = seeded_rng("synthetic_language", "salient", split, family)
  out = []
  while len(out) < n:
    words, salient = corpus_document(rng)
    for i, f in salient:
      if f == family:
        out.append((" ".join(words[:i]), words[i]))
  return out[:n]


def corpus_rng(split: str) -> np.random.RandomState:
  return seeded_rng("synthetic_language", "corpus", split)
