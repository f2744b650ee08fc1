"""tools/show_tasks.py lists tasks, examples, metrics and mixtures offline (--mock)."""
import importlib.util
import io
import os

from spot_jax.tasks import names

TOOL = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "show_tasks.py")


def load_tool():
  spec = importlib.util.spec_from_file_location("show_tasks", TOOL)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


def test_lists_tasks_examples_metrics_and_mixtures():
  out = io.StringIO()
  assert load_tool().main(["--mock", "--filter", "glue_cola|super_glue_wsc|glue_v200_mix"],
                          out=out) == 0
  text = out.getvalue()
  assert "spot_glue_cola_v200  [SPoT target (CoLA)]" in text
  assert "TFDS glue/cola:2.0.0" in text
  assert "inputs:  cola sentence: " in text
  assert "metrics: matthews_corrcoef, num_invalid" in text
  assert "spot_super_glue_wsc_v102  [SPoT target (WSC)]" in text
  assert "example: (none: every row was dropped (random mock rows fail" in text
  assert "spot_super_glue_wsc_bool_v102  [extra]" in text and "inputs:  wsc text: " in text
  assert "spot_glue_v200_mix  [mixture" in text
  assert "3 tasks" in text and "1 mixtures" in text


def test_names_only_listing_counts_everything():
  out = io.StringIO()
  load_tool().main(["--mock", "--no_examples"], out=out)
  text = out.getvalue()
  for name in names.ALL_TASKS + names.ALL_MIXTURES:
    assert f"\n{name}  [" in "\n" + text, name
  assert f"{len(names.ALL_TASKS)} tasks ({len(names.CORE_TASKS)} of the 26 SPoT" in text


def test_sizes_and_rates_from_metadata(tfds_metadata):
  out = io.StringIO()
  load_tool().main(["--mock", "--tfds_data_dir", tfds_metadata, "--no_examples",
                    "--filter", "glue_cola|c4_prefix_lm_v310_mix"], out=out)
  text = out.getvalue()
  assert "sizes:   train=8551, validation=1043, test=1063" in text
  assert "spot_c4_prefix_lm_v310: 524288" in text  # 365M examples capped at 2^19
