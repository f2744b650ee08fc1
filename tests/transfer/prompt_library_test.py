"""Prompt library: add/list/remove/verify, crash safety, concurrent writers, model guard."""
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spot_jax.prompts import prompt_files
from spot_jax.transfer import prompt_library
from spot_jax.transfer.prompt_library import LibraryError, ModelSignature, PromptLibrary

VOCAB = "cd" * 32


def _metadata(task="mnli", run="seed0", role="transfer", step=100, d_model=8, **extra):
  fields = dict(task=task, run=run, role=role, step=step, model_name="t5_1_1_lm100k_small",
                vocabulary_hash=VOCAB, d_model=d_model)
  fields.update(extra)
  return fields


def _prompt(seed=0, p=4, d=8):
  return np.random.default_rng(seed).normal(size=(p, d)).astype(np.float32)


def _snapshot(root):
  """Every file under the library with its bytes, except the lock file."""
  out = {}
  for directory, _, names in os.walk(root):
    for name in names:
      path = os.path.join(directory, name)
      if name != prompt_library.LOCK:
        with open(path, "rb") as f:
          out[os.path.relpath(path, root)] = f.read()
  return out


def test_add_list_get_remove(tmp_path):
  library = PromptLibrary(tmp_path / "lib", create=True)
  a = library.add(_prompt(0), _metadata(task="mnli", metric_name="acc", metric_value=0.8))
  b = library.add(_prompt(1), _metadata(task="qqp", role="task_embedding"))
  assert [e.id for e in library.entries()] == [a.id, b.id]
  assert [e.task for e in library.entries(role="task_embedding")] == ["qqp"]
  assert library.tasks() == ["mnli", "qqp"]
  assert library.get(a.id).metadata.metric_value == 0.8
  np.testing.assert_array_equal(library.load(a), _prompt(0))
  assert library.path(a).endswith(".npy") and os.path.exists(library.path(a))
  # The manifest is human-readable JSON lines.
  lines = open(library.manifest_path).read().splitlines()
  assert len(lines) == 2 and '"task": "mnli"' in lines[0]
  assert [e.id for e in library.remove([a.id])] == [a.id]
  assert [e.id for e in library.entries()] == [b.id]
  with pytest.raises(LibraryError, match="cannot be used: .* does not exist"):
    library.path(a)  # the files are gone, and no path to them is handed out
  assert library.verify().ok and not library.verify().orphans


def test_refusals(tmp_path):
  library = PromptLibrary(tmp_path / "lib", create=True)
  with pytest.raises(ValueError, match="needs a role"):
    library.add(_prompt(), _metadata(role=None))
  library.add(_prompt(), _metadata())
  with pytest.raises(LibraryError, match="already holds mnli/seed0/transfer@100"):
    library.add(_prompt(1), _metadata())
  with pytest.raises(KeyError, match="nope"):
    library.remove(["nope"])
  with pytest.raises(LibraryError, match="not a prompt library"):
    PromptLibrary(tmp_path / "missing")
  assert len(library.entries()) == 1


def test_add_file_and_role_override(tmp_path):
  prompt_files.save_prompt(tmp_path / "run" / "step100", _prompt(), _metadata(role=None))
  library = PromptLibrary(tmp_path / "lib", create=True)
  entry = library.add_file(tmp_path / "run" / "step100", role="task_embedding")
  assert entry.role == "task_embedding"
  assert library.verify().ok


def test_verify_finds_broken_entries(tmp_path):
  library = PromptLibrary(tmp_path / "lib", create=True)
  a = library.add(_prompt(0), _metadata(task="a"))
  b = library.add(_prompt(1), _metadata(task="b"))
  np.save(library.path(a), _prompt(5))   # silently changed array
  os.remove(library.path(b))             # lost file
  report = library.verify()
  assert not report.ok and len(report.problems) == 2
  assert "a/seed0/transfer@100" in report.problems[0] and "sha256" in report.problems[0]
  assert "does not exist" in report.problems[1]


def test_model_guard_names_both_models(tmp_path):
  library = PromptLibrary(tmp_path / "lib", create=True)
  entry = library.add(_prompt(d=8), _metadata(d_model=8, model_name="t5_1_1_lm100k_base"))
  query = ModelSignature("t5_1_1_lm100k_small", 4, VOCAB)
  with pytest.raises(prompt_library.ModelMismatchError) as e:
    library.load_stack([entry], query=query)
  assert "t5_1_1_lm100k_base" in str(e.value) and "t5_1_1_lm100k_small" in str(e.value)
  assert "d_model=8" in str(e.value) and "d_model=4" in str(e.value)
  with pytest.raises(prompt_library.ModelMismatchError, match="vocabulary differ"):
    library.load_stack([entry], query=ModelSignature("t5_1_1_lm100k_base", 8, "ef" * 32))
  assert library.load_stack([entry], query=entry.signature).shape == (1, 4, 8)


_WRITER = textwrap.dedent("""
    import os, signal, sys
    import numpy as np
    from spot_jax.transfer import prompt_library
    root, crash_at, task, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    def crash(name):
      if name == crash_at:
        os.kill(os.getpid(), signal.SIGKILL)
    prompt_library._crash_point = crash
    library = prompt_library.PromptLibrary(root, create=True)
    for i in range(count):
      library.add(np.full((4, 8), i, np.float32),
                  dict(task=task, run=f"seed{i}", role="transfer", step=100,
                       model_name="t5_1_1_lm100k_small", vocabulary_hash="cd" * 32))
    if crash_at == "manifest_committed":
      library.remove([library.entries()[0].id])
""")


def _run_writer(root, crash_at, task="rte", count=1):
  return subprocess.Popen([sys.executable, "-c", _WRITER, str(root), crash_at, task, str(count)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("crash_at", ["prompt_written", "manifest_temp_written"])
def test_a_crash_during_add_leaves_the_library_as_it_was(tmp_path, crash_at):
  root = tmp_path / "lib"
  library = PromptLibrary(root, create=True)
  library.add(_prompt(0), _metadata(task="mnli"))
  before = _snapshot(root)
  before_entries = library.entries()
  proc = _run_writer(root, crash_at)
  _, err = proc.communicate(timeout=60)
  assert proc.returncode == -signal.SIGKILL, err.decode()
  after = _snapshot(root)
  assert after[prompt_library.MANIFEST] == before[prompt_library.MANIFEST]
  assert library.entries() == before_entries
  assert set(after) - set(before)  # the crash left debris ...
  report = library.verify()
  assert report.ok and report.orphans   # ... which verify reports but does not fail on
  assert library.verify(clean=True).removed == report.orphans
  assert _snapshot(root) == before and library.verify().ok


def test_a_crash_during_remove_commits_or_not_but_never_breaks(tmp_path):
  root = tmp_path / "lib"
  PromptLibrary(root, create=True)
  proc = _run_writer(root, "manifest_committed", count=2)
  proc.communicate(timeout=60)
  assert proc.returncode == -signal.SIGKILL
  library = PromptLibrary(root)
  assert [e.run for e in library.entries()] == ["seed1"]
  report = library.verify(clean=True)
  assert report.ok and len(report.removed) == 2   # the removed entry's .npy and .json


def test_concurrent_writers_lose_no_entries(tmp_path):
  root = tmp_path / "lib"
  PromptLibrary(root, create=True)
  procs = [_run_writer(root, "never", task=f"task{w}", count=15) for w in range(4)]
  for proc in procs:
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
  library = PromptLibrary(root)
  entries = library.entries()
  assert len(entries) == 60
  assert sorted({(e.task, e.run) for e in entries}) == sorted(
      (f"task{w}", f"seed{i}") for w in range(4) for i in range(15))
  report = library.verify()
  assert report.ok and not report.orphans


def test_a_failed_manifest_write_removes_the_new_prompt_files(tmp_path, monkeypatch):
  library = PromptLibrary(tmp_path / "lib", create=True)
  library.add(_prompt(0), _metadata(task="mnli"))
  before = _snapshot(library.root)

  def fail(name):
    if name == "manifest_temp_written":
      raise OSError("disk full")
  monkeypatch.setattr(prompt_library, "_crash_point", fail)
  with pytest.raises(OSError, match="disk full"):
    library.add(_prompt(1), _metadata(task="qqp"))
  assert _snapshot(library.root) == before
