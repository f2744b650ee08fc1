"""Headline scores average a task's metrics the GLUE/SuperGLUE way."""
import pytest

from spot_jax.evaluation import scores


@pytest.mark.parametrize("metrics,expected", [
    ({"matthews_corrcoef": 60.0, "invalid_predictions": 2.0}, 60.0),
    ({"pearson_corrcoef": 90.0, "spearman_corrcoef": 88.0}, 89.0),
    ({"mean_3class_f1": 80.0, "accuracy": 90.0}, 85.0),
    ({"f1": 88.0, "accuracy": 84.0, "invalid_predictions": 0.0}, 86.0),
    ({"f1": 70.0, "exact_match": 30.0}, 50.0),
    ({"em": 80.0, "f1": 90.0}, 85.0),
    ({"accuracy": 77.0}, 77.0),
])
def test_task_score(metrics, expected):
  assert scores.task_score(metrics) == pytest.approx(expected)


def test_unknown_metrics_raise():
  with pytest.raises(ValueError, match="no headline metric"):
    scores.task_score({"rouge": 1.0})


def test_benchmark_average():
  assert scores.benchmark_average({"a": 80.0, "b": 90.0}) == pytest.approx(85.0)
