"""Task -> postprocessor -> metrics, on mocked examples: gold scores perfectly,
garbage is scored wrong and counted, nothing raises."""
import pytest
import seqio
import tensorflow_datasets as tfds

from spot_jax.tasks import names

# A few identical mocked STS-B rows make the correlations undefined (NaN), as in T5.
pytestmark = pytest.mark.filterwarnings("ignore::scipy.stats.ConstantInputWarning")

PREFIX = "tiny_"  # as registered by the `tiny_tasks` fixture
# WSC is scored against its rows' labels, not its targets (task_registration_test).
SCORED = [n for n in names.CORE_TASKS + names.FAMILY_TASKS
          if n not in (names.C4, names.CR, names.CXC, names.HELLASWAG, names.RACE_MIDDLE,
                       names.super_glue_task("wsc"), names.SENTIMENT140)]


def scored_examples(task, tfds_metadata):
  with tfds.testing.mock_data(num_examples=3, num_sub_examples=2, data_dir=tfds_metadata):
    ds = task.get_dataset(None, split="validation", shuffle=False)
    return list(ds.take(6).as_numpy_iterator())


@pytest.mark.parametrize("name", SCORED)
def test_gold_predictions_score_perfectly(name, tiny_tasks, tfds_metadata):
  task = seqio.get_mixture_or_task(PREFIX + name)
  examples = scored_examples(task, tfds_metadata)
  targets = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=True)
             for ex in examples]
  gold = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=False)
          for ex in examples]
  garbage = [task.postprocess_fn(b"banana", example=ex, is_target=False)
             for ex in examples]
  results = {}
  for fn in task.metric_fns:
    results.update(fn(targets, gold))
    bad = fn(targets, garbage)
    if "invalid_predictions" in bad:
      assert bad["invalid_predictions"] == len(examples), name
    for key in ("accuracy", "em", "exact_match"):
      if key in bad:
        assert bad[key] == 0.0, (name, key)
  assert results, f"{name} has no metrics"
  # (Macro F1 and correlations are not 100 on a few mocked rows, as in T5; nor are BLEU and
  # ROUGE-2 on random strings of under four or two words.)
  for key in ("accuracy", "em", "exact_match", "rouge1", "rougeLsum"):
    if key in results:
      assert results[key] == pytest.approx(100.0), (name, key, results)
    if key in bad and key.startswith("rouge"):
      assert bad[key] == pytest.approx(0.0), (name, key)
  if "invalid_predictions" in results:
    assert results["invalid_predictions"] == 0
