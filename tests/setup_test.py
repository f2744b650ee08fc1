"""A fresh install months from now gets the versions the suite passed with."""
import ast
import pathlib

import pytest

SETUP = pathlib.Path(__file__).resolve().parents[1] / "setup.py"


def _lists():
  tree = ast.parse(SETUP.read_text())
  return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body
          if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
          and node.targets[0].id.endswith("_REQUIRES")}


def test_every_requirement_is_pinned_exactly():
  lists = _lists()
  assert {"INSTALL_REQUIRES", "TEST_REQUIRES", "T5X_REQUIRES"} <= set(lists)
  loose = [req for reqs in lists.values() for req in reqs if "==" not in req]
  assert not loose, f"pin these to the versions the suite passes with: {loose}"


def test_the_test_install_brings_t5xs_registry_dependencies():
  """The suite runs the real t5x.train; `.[test]` must install what t5x imports."""
  text = SETUP.read_text()
  assert '"test": TEST_REQUIRES + T5X_REQUIRES' in text and '"t5x": T5X_REQUIRES' in text


def test_accelerator_extras_pin_the_same_jax():
  lists = _lists()
  jax_pin = next(r for r in lists["INSTALL_REQUIRES"] if r.startswith("jax=="))
  version = jax_pin.split("==")[1]
  assert lists["CUDA_REQUIRES"] == [f"jax[cuda12]=={version}"]
  assert lists["TPU_REQUIRES"] == [f"jax[tpu]=={version}"]


def test_the_build_backend_is_declared_and_pinned():
  """pyproject.toml names the backend, so `pip install -e .` builds once (without it pip
  ran the deprecated `setup.py develop`, which started a second pip), at a pinned version."""
  tomllib = pytest.importorskip("tomllib")  # Python 3.11+; setup.py allows 3.10
  system = tomllib.loads(SETUP.with_name("pyproject.toml").read_text())["build-system"]
  assert system["build-backend"] == "setuptools.build_meta"
  assert all("==" in req for req in system["requires"]), system["requires"]
