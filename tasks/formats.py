"""Text-to-text formatters: raw TFDS/TSV rows -> {"inputs", "targets", ...} strings.

GLUE, SuperGLUE and SQuAD follow T5's preprocessors (`t5/data/preprocessors.py`:
`glue`, `stsb`, `wsc`, `record`, `squad`) string for string; the other SPoT tasks use
the prompt-tuning SPoT convention `"<task> <key>: <text> ..."`. `docs/tasks.md` lists
every format with an example.
"""
from typing import Mapping, Optional, Sequence

import seqio
import tensorflow as tf

UNK = "<unk>"


def label_text(label: tf.Tensor, label_names: Sequence[str]) -> tf.Tensor:
  """Class id -> its name; -1 (unlabelled test rows) -> "<unk>", as in T5."""
  label = tf.cast(label, tf.int64)
  return tf.cond(tf.equal(label, -1), lambda: tf.constant(UNK),
                 lambda: tf.gather(tf.constant(list(label_names)), label))


def join(parts) -> tf.Tensor:
  """T5's GLUE joining: one space between parts, texts left as they are."""
  return tf.strings.join(list(parts), separator=" ")


def join_collapsed(parts) -> tf.Tensor:
  """T5's `_string_join` (SQuAD, and SPoT's own tasks): runs of whitespace -> one space."""
  return tf.strings.regex_replace(join(parts), r"\s+", " ")


def pad_punctuation(text: tf.Tensor) -> tf.Tensor:
  """T5's SQuAD spacing: a space either side of every non-word character."""
  text = tf.strings.regex_replace(text, r"([^_\s\p{N}\p{L}\p{M}])", r" \1 ")
  return tf.strings.regex_replace(text, r"\s+", " ")


def _regex_escape(text: tf.Tensor) -> tf.Tensor:
  return tf.strings.regex_replace(text, r"([\\.^$|?*+()\[\]{}])", r"\\\1")


# ------------------------------------------------------------------ GLUE / SuperGLUE


@seqio.map_over_dataset
def glue(x, benchmark_name: str, label_names: Sequence[str],
         feature_names: Optional[Sequence[str]] = None):
  """`"<benchmark> <key>: <text> ..."` with keys sorted unless given -> label name."""
  keys = feature_names or sorted(set(x.keys()) - {"label", "idx"})
  parts = [benchmark_name]
  for key in keys:
    parts += [f"{key}:", x[key]]
  joined = join(parts)
  ex = {}
  if benchmark_name == "multirc":
    joined = tf.strings.regex_replace(joined, "<br>", " ")
    joined = tf.strings.regex_replace(joined, "<(/)?b>", "")
    for k in ("paragraph", "question", "answer"):
      ex[f"idx/{k}"] = x["idx"][k]
  else:
    ex["idx"] = x["idx"]
  ex["inputs"] = joined
  ex["targets"] = label_text(x["label"], label_names)
  return ex


@seqio.map_over_dataset
def stsb(x, benchmark_name: str = "stsb"):
  """Regression as text: the score rounded to the nearest 0.2, one decimal ("3.4")."""
  return {
      "inputs": join([benchmark_name, "sentence1:", x["sentence1"],
                      "sentence2:", x["sentence2"]]),
      "targets": tf.strings.as_string(
          tf.round(tf.cast(x["label"], tf.float32) * 5) / 5, precision=1),
      "idx": x["idx"],
  }


@seqio.map_over_dataset
def wsc(x):
  """WSC: `*` marks the noun span and `#` the pronoun in the text; target True/False."""

  def mark_span(text, span_text, span_index, mark):
    pattern = tf.strings.join(
        ["^((?:\\S+\\s){", tf.strings.as_string(span_index), "})(",
         _regex_escape(span_text), ")"])
    return tf.strings.regex_replace(text, pattern, r"\1{0} \2 {0}".format(mark))

  text = mark_span(x["text"], x["span1_text"], x["span1_index"], "*")
  # Marking span 1 added two words before span 2 when span 1 comes first.
  span2_index = x["span2_index"] + 2 * tf.cast(
      x["span1_index"] < x["span2_index"], x["span2_index"].dtype)
  text = mark_span(text, x["span2_text"], span2_index, "#")
  return {"inputs": join(["wsc text:", text]),
          "targets": label_text(x["label"], ["False", "True"]),
          "idx": x["idx"]}


# T5's `_wsc_inputs` rewrites two WSC texts whose span2_index does not point at the pronoun.
WSC_SPECIAL_CASES = {
    ('The boy continued to whip the pony , and eventually the pony threw him over. John '
     'laughed out quite loud. "Good for him," he said. '):
        ('The boy continued to whip the pony , and eventually the pony threw him over. '
         'John laughed out quite loud. "Good for X ," he said.'),
    ('When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the '
     'magic pebble in an iron safe . Some day they might want to use it , but really for '
     'now, what more could they wish for?'):
        ('When they had eventually calmed down a bit , and had gotten home, Mr. Farley put '
         'the magic pebble in an iron safe . Some day they might want to use X , but really '
         'for now, what more could they wish for?'),
}


def _wsc_words(x):
  return tf.strings.split(x["text"], sep=" ")


def wsc_row_is_well_formed(x) -> tf.Tensor:
  """T5's `_wsc_inputs` asserts the pronoun is a word inside the text at span2_index; a
  row where it is not (other than T5's two special cases) is dropped instead."""
  words = _wsc_words(x)
  index = tf.cast(x["span2_index"], tf.int32)
  inside = tf.logical_and(index > 0, index < tf.size(words))
  at_index = tf.equal(tf.gather(words, tf.clip_by_value(index, 0, tf.size(words) - 1)),
                      x["span2_text"])
  special = tf.reduce_any(tf.equal(x["text"], list(WSC_SPECIAL_CASES)))
  return tf.logical_or(special, tf.logical_and(inside, at_index))


def wsc_simple(dataset: tf.data.Dataset, correct_referent_only: bool = False,
               label: str = "wsc:") -> tf.data.Dataset:
  """T5's simplified WSC (`wsc_simple`): the pronoun between `*`, the referent as target,
  `wsc: Mitchell asked Tom if *he* could lend some money.` -> `Tom`. For training
  (`correct_referent_only`) rows whose span1 is not the pronoun's referent are left out."""

  def inputs(x):
    words = _wsc_words(x)
    index = tf.cast(x["span2_index"], tf.int32)
    blanked = tf.strings.join([tf.strings.reduce_join(words[:index], separator=" "), "X",
                               tf.strings.reduce_join(words[index + 1:], separator=" ")],
                              separator=" ")
    for text, replacement in WSC_SPECIAL_CASES.items():
      blanked = tf.where(tf.equal(x["text"], text), replacement, blanked)
    return blanked

  def to_text(x):
    marked = tf.strings.regex_replace(
        inputs(x), " X ", tf.strings.join([" *", x["span2_text"], "* "]))
    return {"inputs": join([label, marked]), "targets": x["span1_text"],
            "label": tf.cast(x["label"], tf.int64), "idx": x["idx"]}

  if correct_referent_only:
    dataset = dataset.filter(lambda x: tf.equal(tf.cast(x["label"], tf.int64), 1))
  return dataset.map(to_text, num_parallel_calls=tf.data.AUTOTUNE)


@seqio.map_over_dataset
def with_label(x, label_fn):
  """Adds `label` (a class id) computed from the row, e.g. Sentiment140's polarity // 2."""
  return dict(x, label=label_fn(x))


@seqio.map_over_dataset
def rekey(x, key_map: Mapping[str, str]):
  """T5's `rekey`: new name -> old name (e.g. AX-b's sentence1/2 as RTE's premise/hypothesis)."""
  return {new: x[old] for new, old in key_map.items()}


def record(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """ReCoRD: one example per gold answer (T5), entities listed, highlights joined."""

  def per_answer(x):
    answers = x["answers"]
    n = tf.size(answers)
    targets = tf.cond(n > 0, lambda: answers, lambda: tf.constant([UNK]))
    copies = tf.maximum(n, 1)
    passage = tf.strings.regex_replace(
        x["passage"], r"(\.|\?|\!|\"|\')\n@highlight\n", r"\1 ")
    passage = tf.strings.regex_replace(passage, r"\n@highlight\n", ". ")
    inputs = join(["record query:", x["query"], "entities:",
                   tf.strings.reduce_join(x["entities"], separator=", "),
                   "passage:", passage])
    def repeat(t):
      return tf.repeat(tf.expand_dims(t, 0), copies, axis=0)
    return tf.data.Dataset.from_tensor_slices({
        "inputs": repeat(inputs),
        "targets": targets,
        "idx/passage": repeat(x["idx"]["passage"]),
        "idx/query": repeat(x["idx"]["query"]),
        "answers": tf.repeat(tf.expand_dims(answers, 0), copies, axis=0),
    })

  return dataset.flat_map(per_answer)


# ------------------------------------------------------------------ QA


@seqio.map_over_dataset
def squad(x):
  """MRQA/SQuAD as T5: `"question: <q> context: <c>"` -> first answer, punctuation padded."""
  answers = pad_punctuation(x["answers"])
  return {
      "inputs": join_collapsed(["question:", pad_punctuation(x["question"]),
                                "context:", pad_punctuation(x["context"])]),
      "targets": answers[0],
      "answers": answers,
      "idx": x["qid"],
  }


@seqio.map_over_dataset
def drop(x):
  """DROP: `"drop question: <q> context: <passage>"` -> answer; all answers kept."""
  answers = tf.concat([[x["answer"]], x["validated_answers"]], axis=0)
  answers = tf.boolean_mask(answers, tf.strings.length(tf.strings.strip(answers)) > 0)
  return {
      "inputs": join_collapsed(["drop question:", x["question"], "context:", x["passage"]]),
      "targets": x["answer"],
      "answers": answers,
      "idx": x["query_id"],
  }


# ------------------------------------------------------------------ classification


@seqio.map_over_dataset
def text_classification(x, task_prefix: str, text_keys: Sequence[str],
                        label_names: Sequence[str]):
  """SPoT's `"<task> <key_a>: <a> [<key_b>: <b>]"` -> label name."""
  parts = [task_prefix]
  for key in text_keys:
    parts += [f"{key}:", x[key]]
  return {"inputs": join_collapsed(parts), "targets": label_text(x["label"], label_names)}


@seqio.map_over_dataset
def multi_label_classification(x, task_prefix: str, text_key: str,
                               label_names: Sequence[str]):
  """GoEmotions-style: one boolean feature per label -> the set labels, comma-joined in
  label order (`"joy, love"`); `"<task> <key>: <text>"` as the input."""
  on = tf.stack([tf.cast(x[name], tf.bool) for name in label_names])
  return {"inputs": join_collapsed([task_prefix, f"{text_key}:", x[text_key]]),
          "targets": tf.strings.reduce_join(tf.boolean_mask(list(label_names), on),
                                            separator=", ")}


@seqio.map_over_dataset
def translate(x, source: str, target: str):
  """T5's `translate`: `"translate English to German: <en>"` -> the German text."""
  language = {"en": "English", "de": "German", "fr": "French", "ro": "Romanian"}
  return {"inputs": join([f"translate {language[source]} to {language[target]}:", x[source]]),
          "targets": x[target]}


@seqio.map_over_dataset
def summarize(x, document: str, summary: str):
  """T5's `summarize`: `"summarize: <document>"` -> the summary."""
  return {"inputs": join(["summarize:", x[document]]), "targets": x[summary]}


def linearize(value, separators: Sequence[str] = (" ; ", " | ")) -> tf.Tensor:
  """A text field of any nesting as one string: a list joined by `separators[0]`, a list of
  lists (DART's triples) by `separators[1]` inside and `separators[0]` between."""
  if isinstance(value, tf.RaggedTensor) or value.shape.rank == 2:
    value = tf.strings.reduce_join(value, axis=-1, separator=separators[1])
  if value.shape.rank == 1:
    value = tf.strings.reduce_join(value, separator=separators[0])
  return value


@seqio.map_over_dataset
def data_to_text(x, task_prefix: str, input_keys: Sequence[str], target_key: str = "target"):
  """GEM's data-to-text and simplification sets: `"<task> <key>: <linearized value> ..."` ->
  the reference text."""
  parts = [task_prefix]
  for key in input_keys:
    parts += [f"{key}:", linearize(x[key])]
  return {"inputs": join_collapsed(parts), "targets": x[target_key]}


@seqio.map_over_dataset
def open_qa(x, task_prefix: str = "nq"):
  """Closed-book QA (NQ-Open): `"nq question: <q>"` -> the first answer; all answers kept."""
  return {"inputs": join_collapsed([f"{task_prefix} question:", x["question"]]),
          "targets": x["answer"][0], "answers": x["answer"]}


@seqio.map_over_dataset
def piqa(x):
  """PIQA in SPoT's multiple-choice convention: `"piqa goal: .. sol1: .. sol2: .."` -> key."""
  return {"inputs": join_collapsed(["piqa goal:", x["goal"], "sol1:", x["sol1"],
                                    "sol2:", x["sol2"]]),
          "targets": tf.gather(tf.constant(["sol1", "sol2"]), tf.cast(x["label"], tf.int32))}


@seqio.map_over_dataset
def text_similarity(x, task_prefix: str):
  """STS-B-style regression for CxC: score rounded to 0.2 as a one-decimal string."""
  score = tf.cast(x["label"], tf.float32)
  return {
      "inputs": join_collapsed([task_prefix, "sentence1:", x["sentence1"],
                                "sentence2:", x["sentence2"]]),
      "targets": tf.strings.as_string(tf.round(score * 5) / 5, precision=1),
  }


# ------------------------------------------------------------------ multiple choice


def choice_names(prefix: str, n: int, start: int = 0):
  return [f"{prefix}{i}" for i in range(start, start + n)]


@seqio.map_over_dataset
def winogrande(x):
  """`"winogrande sentence: <s> option1: <a> option2: <b>"` -> "option1"/"option2"."""
  return {
      "inputs": join_collapsed(["winogrande sentence:", x["sentence"],
                                "option1:", x["option1"], "option2:", x["option2"]]),
      "targets": label_text(x["label"], choice_names("option", 2, start=1)),
  }


@seqio.map_over_dataset
def hellaswag(x):
  """`"hellaswag context: <c> ending0: .. ending3: .."` -> "ending<k>"."""
  parts = ["hellaswag context:", x["context"]]
  for i in range(4):
    parts += [f"ending{i}:", x["endings"][i]]
  return {"inputs": join_collapsed(parts),
          "targets": label_text(x["label"], choice_names("ending", 4))}


@seqio.map_over_dataset
def cosmos_qa(x):
  """`"cosmos_qa context: <c> question: <q> answer0: .. answer3: .."` -> "answer<k>"."""
  parts = ["cosmos_qa context:", x["context"], "question:", x["question"]]
  for i in range(4):
    parts += [f"answer{i}:", x[f"answer{i}"]]
  return {"inputs": join_collapsed(parts),
          "targets": label_text(x["label"], choice_names("answer", 4))}


RACE_LETTERS = ("A", "B", "C", "D")


def race(dataset: tf.data.Dataset) -> tf.data.Dataset:
  """RACE rows hold an article and its questions: one example per question.

  `"race article: <a> question: <q> A: .. B: .. C: .. D: .."` -> the answer letter.
  """

  def per_question(x):
    options = x["options"]
    if isinstance(options, tf.RaggedTensor):
      options = options.to_tensor(default_value="", shape=[None, 4])
    n = tf.size(x["questions"])
    return tf.data.Dataset.from_tensor_slices({
        "article": tf.repeat(tf.expand_dims(x["article"], 0), n, axis=0),
        "question": x["questions"],
        "answer": x["answers"],
        "options": options[:n],
        "idx": tf.repeat(tf.expand_dims(x["example_id"], 0), n, axis=0),
    })

  def to_text(ex):
    parts = ["race article:", ex["article"], "question:", ex["question"]]
    for i, letter in enumerate(RACE_LETTERS):
      parts += [f"{letter}:", ex["options"][i]]
    return {"inputs": join_collapsed(parts), "targets": ex["answer"], "idx": ex["idx"]}

  return dataset.flat_map(per_question).map(
      to_text, num_parallel_calls=tf.data.AUTOTUNE)


def race_row_is_well_formed(x) -> tf.Tensor:
  """Every question has an answer letter and four options."""
  options = x["options"]
  if isinstance(options, tf.RaggedTensor):
    widths = options.row_lengths()
  else:
    widths = tf.fill([tf.shape(options)[0]], tf.shape(options)[1])
  n = tf.size(x["questions"])
  return tf.logical_and(
      tf.logical_and(tf.equal(n, tf.size(x["answers"])), tf.equal(n, tf.size(widths))),
      tf.logical_and(tf.reduce_all(tf.equal(widths, 4)),
                     tf.reduce_all(tf.strings.regex_full_match(x["answers"], "[ABCD]"))))


# ------------------------------------------------------------------ C4


@seqio.map_over_dataset
def text_to_targets(x):
  return {"targets": x["text"]}


def prefix_lm(dataset: tf.data.Dataset,
              sequence_length: Optional[Mapping] = None,
              output_features=None,
              default_chunk: int = 512) -> tf.data.Dataset:
  """Prefix-LM (the LM adaptation objective): split token chunks at a random point.

  Each document's tokens are cut into chunks of `inputs` length - 1 (room for EOS);
  each chunk of >= 2 tokens is split uniformly at random into inputs (prefix) and
  targets (continuation). Token-level, so it runs after tokenization.
  """
  del output_features
  chunk = default_chunk
  if sequence_length and sequence_length.get("inputs"):
    chunk = max(2, int(sequence_length["inputs"]) - 1)

  def to_chunks(x):
    tokens = x["targets"]
    n = tf.size(tokens, out_type=tf.int64)
    full = n // chunk
    lengths = tf.concat([tf.fill([full], tf.constant(chunk, tf.int64)),
                         tf.reshape(n - full * chunk, [1])], axis=0)
    lengths = tf.boolean_mask(lengths, lengths > 0)
    return tf.data.Dataset.from_tensor_slices(
        tf.RaggedTensor.from_row_lengths(tokens, lengths))

  @seqio.map_over_dataset(num_seeds=1)
  def split(tokens, seed):
    n = tf.size(tokens)
    k = tf.random.stateless_uniform([], seed, minval=1, maxval=n, dtype=tf.int32)
    return {"inputs": tokens[:k], "targets": tokens[k:]}

  chunks = dataset.flat_map(to_chunks).filter(lambda t: tf.size(t) >= 2)
  return split(chunks)
