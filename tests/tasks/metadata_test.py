"""What tasks say about themselves (family, label words), recorded where they register."""
from spot_jax.embedded import tasks as synthetic
from spot_jax.tasks import metadata, names

PREFIX = "tiny_"  # as registered by the `tiny_tasks` fixture


def test_the_bundled_suite_describes_its_tasks_when_it_registers():
  synthetic.register()
  for name in synthetic.SPECS:
    assert metadata.family(name) == synthetic.FAMILY_OF[name]
    assert metadata.label_words(name) == tuple(synthetic.LABELS[name])
  assert metadata.family("synth_topic_goodbad") == "topic"  # the label control ...
  assert metadata.label_words("synth_topic_goodbad") == metadata.label_words(
      "synth_sentiment_restaurant")  # ... answers with the sentiment family's words


def test_spot_tasks_answer_from_spots_tables_before_registration():
  assert metadata.family(names.glue_task("rte")) == "nli"
  assert metadata.label_words(names.glue_task("rte")) == ("entailment", "not_entailment")
  assert metadata.family(names.super_glue_task("boolq")) is None  # in no Table 1 family
  assert metadata.label_words("no_such_task") is None and metadata.family("no_such_task") is None


def test_a_users_task_module_describes_its_own_task():
  metadata.describe("metadata_test_reviews", family="sentiment", labels=["bad", "good"])
  assert metadata.family("metadata_test_reviews") == "sentiment"
  assert metadata.label_words("metadata_test_reviews") == ("bad", "good")


def test_register_all_describes_every_task_under_its_registered_name(tiny_tasks):
  rte = PREFIX + names.glue_task("rte")
  assert rte in tiny_tasks
  assert metadata.family(rte) == "nli"
  assert metadata.label_words(rte) == ("entailment", "not_entailment")
