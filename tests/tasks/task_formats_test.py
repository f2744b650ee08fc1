"""Hand-written rows -> the exact text every formatter must produce."""
import functools

import numpy as np
import pytest
import seqio
import tensorflow as tf

from spot_jax.tasks import formats
from spot_jax.tasks import glue
from spot_jax.tasks import super_glue


def run(formatter, row):
  """Formats one row; returns the list of output examples as Python values."""
  ds = formatter(tf.data.Dataset.from_tensors(row))
  out = []
  for ex in ds.as_numpy_iterator():
    out.append({k: (v.decode() if isinstance(v, bytes) else v) for k, v in ex.items()})
  return out


def glue_formatter(config, benchmark=None, feature_names=None, labels=None):
  return functools.partial(formats.glue, benchmark_name=benchmark or config,
                           label_names=labels or glue.LABELS[config],
                           feature_names=feature_names)


def test_mnli_keys_sorted_like_t5():
  [ex] = run(glue_formatter("mnli"), {"premise": "A man is awake.",
                                      "hypothesis": "A man sleeps.", "label": 2, "idx": 7})
  assert ex["inputs"] == "mnli hypothesis: A man sleeps. premise: A man is awake."
  assert ex["targets"] == "contradiction"
  assert ex["idx"] == 7


def test_unlabelled_test_row_gets_unk():
  [ex] = run(glue_formatter("cola"), {"sentence": "Him went.", "label": -1, "idx": 0})
  assert ex["inputs"] == "cola sentence: Him went."
  assert ex["targets"] == "<unk>"


def test_copa():
  row = {"premise": "The man broke his toe.", "question": "cause",
         "choice1": "He dropped a hammer.", "choice2": "He got a hole in his sock.",
         "label": 0, "idx": 1}
  [ex] = run(glue_formatter("copa", labels=super_glue.LABELS["copa"]), row)
  assert ex["inputs"] == ("copa choice1: He dropped a hammer. choice2: He got a hole in "
                          "his sock. premise: The man broke his toe. question: cause")
  assert ex["targets"] == "choice1"


def test_multirc_strips_html_and_keeps_indices():
  row = {"paragraph": "<b>Sent 1: </b>Hi.<br><b>Sent 2: </b>Bye.<br>",
         "question": "Who left?", "answer": "Bob", "label": 1,
         "idx": {"paragraph": 3, "question": 4, "answer": 5}}
  [ex] = run(glue_formatter("multirc", labels=super_glue.LABELS["multirc"],
                            feature_names=super_glue.FEATURE_NAMES["multirc"]), row)
  assert ex["inputs"] == ("multirc question: Who left? answer: Bob paragraph: "
                          "Sent 1: Hi. Sent 2: Bye. ")
  assert ex["targets"] == "True"
  assert (ex["idx/paragraph"], ex["idx/question"], ex["idx/answer"]) == (3, 4, 5)


def test_wic_uses_t5_field_order():
  row = {"sentence1": "He sat on the bank.", "sentence2": "The bank closed.",
         "word": "bank", "start1": 14, "end1": 18, "start2": 4, "end2": 8,
         "label": 0, "idx": 2}
  [ex] = run(glue_formatter("wic", labels=super_glue.LABELS["wic"],
                            feature_names=super_glue.FEATURE_NAMES["wic"]), row)
  assert ex["inputs"] == ("wic sentence1: He sat on the bank. sentence2: The bank "
                          "closed. word: bank")
  assert ex["targets"] == "False"


@pytest.mark.parametrize("score,expected", [(3.35, "3.4"), (0.0, "0.0"), (4.93, "5.0")])
def test_stsb_rounds_to_point_two(score, expected):
  [ex] = run(formats.stsb, {"sentence1": "A cat.", "sentence2": "A dog.",
                            "label": np.float32(score), "idx": 0})
  assert ex["inputs"] == "stsb sentence1: A cat. sentence2: A dog."
  assert ex["targets"] == expected


WSC_ROW = {"text": "Mitchell asked Tom if he could lend some money.",
           "span1_text": "Tom", "span1_index": 2, "span2_text": "he", "span2_index": 4,
           "label": 1, "idx": 0}


def test_wsc_is_t5s_simple_form():
  [ex] = run(formats.wsc_simple, WSC_ROW)
  assert ex["inputs"] == "wsc: Mitchell asked Tom if *he* could lend some money."
  assert ex["targets"] == "Tom" and ex["label"] == 1
  wrong = dict(WSC_ROW, span1_text="Mitchell", label=0)
  assert run(functools.partial(formats.wsc_simple, correct_referent_only=True), wrong) == []
  [ex] = run(formats.wsc_simple, wrong)
  assert ex["targets"] == "Mitchell" and ex["label"] == 0


def test_wsc_simple_keeps_t5s_special_cases():
  text, _ = list(formats.WSC_SPECIAL_CASES.items())[0]
  row = dict(WSC_ROW, text=text, span1_text="the pony", span2_text="him", span2_index=22)
  [ex] = run(formats.wsc_simple, row)
  assert ex["inputs"].endswith('John laughed out quite loud. "Good for *him* ," he said.')
  ok = lambda r: bool(formats.wsc_row_is_well_formed(
      {k: tf.constant(v) for k, v in r.items()}).numpy())
  assert ok(row) and ok(WSC_ROW)
  assert not ok(dict(WSC_ROW, span2_index=5)) and not ok(dict(WSC_ROW, span2_index=0))
  assert not ok(dict(WSC_ROW, span2_index=99))


def test_axb_is_cast_as_rte_with_t5s_field_names():
  row = {"sentence1": "The cat sat.", "sentence2": "A cat sat.", "label": 0, "idx": 3}
  rekeyed = functools.partial(formats.rekey, key_map=super_glue.AXB_AS_RTE)
  [ex] = run(lambda ds: glue_formatter("axb", benchmark="rte",
                                       labels=super_glue.LABELS["axb"])(rekeyed(ds)), row)
  assert ex["inputs"] == "rte hypothesis: A cat sat. premise: The cat sat."
  assert ex["targets"] == "entailment"


def test_wsc_bool_marks_spans():
  row = WSC_ROW
  [ex] = run(formats.wsc, row)
  assert ex["inputs"] == "wsc text: Mitchell asked * Tom * if # he # could lend some money."
  assert ex["targets"] == "True"


def test_wsc_span_with_regex_characters():
  row = {"text": "We saw (Bob) and he waved.", "span1_text": "(Bob)",
         "span1_index": 2, "span2_text": "he", "span2_index": 4, "label": 0, "idx": 0}
  [ex] = run(formats.wsc, row)
  assert ex["inputs"] == "wsc text: We saw * (Bob) * and # he # waved."


def test_record_one_example_per_answer():
  row = {"passage": "A dog barked.\n@highlight\nDogs bark\n@highlight\nLoud",
         "query": "The @placeholder barked", "entities": ["dog", "Dogs"],
         "answers": ["dog", "Dogs"], "idx": {"passage": 1, "query": 2}}
  exs = run(formats.record, row)
  assert [e["targets"] for e in exs] == ["dog", "Dogs"]
  assert exs[0]["inputs"] == ("record query: The @placeholder barked entities: dog, Dogs "
                              "passage: A dog barked. Dogs bark. Loud")
  assert list(exs[1]["answers"]) == [b"dog", b"Dogs"]
  assert (exs[1]["idx/passage"], exs[1]["idx/query"]) == (1, 2)


def test_record_test_row_without_answers():
  row = {"passage": "P.", "query": "Q @placeholder", "entities": ["E"],
         "answers": tf.constant([], tf.string), "idx": {"passage": 0, "query": 0}}
  [ex] = run(formats.record, row)
  assert ex["targets"] == "<unk>"


def test_squad_pads_punctuation():
  row = {"question": "Who's there?", "context": "Knock,  knock.",
         "answers": ["me!", "I"], "qid": "q1"}
  [ex] = run(formats.squad, row)
  assert ex["inputs"] == "question: Who ' s there ? context: Knock , knock . "
  assert ex["targets"] == "me ! "
  assert list(ex["answers"]) == [b"me ! ", b"I"]


def test_drop_keeps_all_answers():
  row = {"question": "How many?", "passage": "Two  cats.", "answer": "2",
         "validated_answers": ["two", ""], "query_id": "d1"}
  [ex] = run(formats.drop, row)
  assert ex["inputs"] == "drop question: How many? context: Two cats."
  assert ex["targets"] == "2"
  assert list(ex["answers"]) == [b"2", b"two"]


def test_text_classification_and_similarity():
  fmt = functools.partial(formats.text_classification, task_prefix="doc_nli",
                          text_keys=("premise", "hypothesis"),
                          label_names=("not_entailment", "entailment"))
  [ex] = run(fmt, {"premise": "It rains.", "hypothesis": "It is wet.", "label": 1})
  assert ex["inputs"] == "doc_nli premise: It rains. hypothesis: It is wet."
  assert ex["targets"] == "entailment"
  sim = functools.partial(formats.text_similarity, task_prefix="cxc")
  [ex] = run(sim, {"sentence1": "A dog.", "sentence2": "A cat.",
                   "label": np.float32(3.13)})
  assert ex["inputs"] == "cxc sentence1: A dog. sentence2: A cat."
  assert ex["targets"] == "3.2"


def test_multiple_choice_formats():
  [ex] = run(formats.winogrande, {"sentence": "Sam hid the ball in the box because _ "
                                               "was small.", "option1": "ball",
                                  "option2": "box", "label": 1})
  assert ex["inputs"] == ("winogrande sentence: Sam hid the ball in the box because _ "
                          "was small. option1: ball option2: box")
  assert ex["targets"] == "option2"
  [ex] = run(formats.hellaswag, {"context": "He opens the door.",
                                 "endings": ["a", "b", "c", "d"], "label": 3})
  assert ex["inputs"] == ("hellaswag context: He opens the door. ending0: a ending1: b "
                          "ending2: c ending3: d")
  assert ex["targets"] == "ending3"
  row = {"context": "I was late.", "question": "Why?", "answer0": "Rain",
         "answer1": "Traffic", "answer2": "Sleep", "answer3": "None", "label": 1}
  [ex] = run(formats.cosmos_qa, row)
  assert ex["inputs"] == ("cosmos_qa context: I was late. question: Why? answer0: Rain "
                          "answer1: Traffic answer2: Sleep answer3: None")
  assert ex["targets"] == "answer1"


def test_race_one_example_per_question():
  row = {"article": "Tom is ten.", "questions": ["Age?", "Name?"],
         "answers": ["B", "A"],
         "options": [["9", "10", "11", "12"], ["Tom", "Bob", "Ann", "Sue"]],
         "example_id": "r1"}
  exs = run(formats.race, row)
  assert [e["inputs"] for e in exs] == [
      "race article: Tom is ten. question: Age? A: 9 B: 10 C: 11 D: 12",
      "race article: Tom is ten. question: Name? A: Tom B: Bob C: Ann D: Sue"]
  assert [e["targets"] for e in exs] == ["B", "A"]
  assert bool(formats.race_row_is_well_formed(
      {k: tf.constant(v) for k, v in row.items()}))
  bad = dict(row, answers=["B", "E"])
  assert not bool(formats.race_row_is_well_formed(
      {k: tf.constant(v) for k, v in bad.items()}))


def test_prefix_lm_splits_each_chunk():
  tokens = tf.range(2, 12, dtype=tf.int32)  # 10 tokens -> chunks of 4, 4, 2
  ds = tf.data.Dataset.from_tensors({"targets": tokens})
  with seqio.utils.map_seed_manager(42):
    out = list(formats.prefix_lm(ds, {"inputs": 5, "targets": 5}).as_numpy_iterator())
  assert len(out) == 3
  rebuilt = np.concatenate([np.concatenate([e["inputs"], e["targets"]]) for e in out])
  np.testing.assert_array_equal(rebuilt, np.arange(2, 12))
  assert all(len(e["inputs"]) >= 1 and len(e["targets"]) >= 1 for e in out)


# --- SPoT Table 1 families and Su et al.'s tasks ------------------------------------------

def test_translation_is_t5s():
  [ex] = run(functools.partial(formats.translate, source="en", target="de"),
             {"en": "That is good.", "de": "Das ist gut."})
  assert ex == {"inputs": "translate English to German: That is good.",
                "targets": "Das ist gut."}


def test_summarization_is_t5s():
  [ex] = run(functools.partial(formats.summarize, document="dialogue", summary="summary"),
             {"dialogue": "A: hi\nB: hello", "summary": "They greet.", "id": "1"})
  assert ex == {"inputs": "summarize: A: hi\nB: hello", "targets": "They greet."}


def test_anli_reads_its_context_as_the_premise():
  from spot_jax.tasks import labels
  rekeyed = functools.partial(formats.rekey, key_map={
      "premise": "context", "hypothesis": "hypothesis", "label": "label"})
  classify = functools.partial(formats.text_classification, task_prefix="anli",
                               text_keys=("premise", "hypothesis"), label_names=labels.NLI3)
  [ex] = run(lambda ds: classify(rekeyed(ds)), {"uid": "u", "context": "A cat sat.",
                                                "hypothesis": "An animal sat.", "label": 0})
  assert ex == {"inputs": "anli premise: A cat sat. hypothesis: An animal sat.",
                "targets": "entailment"}


def test_goemotions_names_every_label_set():
  from spot_jax.tasks import labels
  row = {name: False for name in labels.GOEMOTIONS}
  row.update(comment_text="Thanks, love it!", gratitude=True, love=True)
  [ex] = run(functools.partial(formats.multi_label_classification, task_prefix="goemotions",
                               text_key="comment_text", label_names=labels.GOEMOTIONS), row)
  assert ex == {"inputs": "goemotions comment_text: Thanks, love it!",
                "targets": "gratitude, love"}


def test_piqa_and_nq_open():
  [ex] = run(formats.piqa, {"id": "1", "goal": "Open a jar.", "sol1": "Twist the lid.",
                            "sol2": "Eat the jar.", "label": 0})
  assert ex == {"inputs": "piqa goal: Open a jar. sol1: Twist the lid. sol2: Eat the jar.",
                "targets": "sol1"}
  [ex] = run(formats.open_qa, {"question": "who wrote hamlet",
                               "answer": ["Shakespeare", "William Shakespeare"]})
  assert ex["inputs"] == "nq question: who wrote hamlet" and ex["targets"] == "Shakespeare"
  assert list(ex["answers"]) == [b"Shakespeare", b"William Shakespeare"]


def test_gem_inputs_linearize_lists_and_triples():
  [ex] = run(functools.partial(formats.data_to_text, task_prefix="dart",
                               input_keys=("tripleset",)),
             {"tripleset": tf.ragged.constant([["Ann", "born in", "Rome"],
                                               ["Rome", "capital of", "Italy"]]),
              "target": "Ann was born in Rome, Italy's capital."})
  assert ex == {"inputs": "dart tripleset: Ann | born in | Rome ; Rome | capital of | Italy",
                "targets": "Ann was born in Rome, Italy's capital."}
  [ex] = run(functools.partial(formats.data_to_text, task_prefix="common_gen",
                               input_keys=("concepts",)),
             {"concepts": ["dog", "frisbee", "catch"], "target": "A dog catches a frisbee."})
  assert ex["inputs"] == "common_gen concepts: dog ; frisbee ; catch"
