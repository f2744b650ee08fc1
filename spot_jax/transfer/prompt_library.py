"""The prompt library: a directory of prompt files and one JSON-lines manifest.

Layout::

  <root>/manifest.jsonl   one entry per line: id, file, and the prompt's metadata
  <root>/prompts/         <task>__<run>__<role>__s<step>__<uid>.npy/.json (prompt_files format)
  <root>/.lock            flock target serialising writers

Writes are crash-safe: `add` writes the prompt files under a fresh name, then
replaces the manifest atomically (temporary file, fsync, `os.replace`); a crash
before the replace leaves only orphan files, which `verify(clean=True)` removes.
`remove` commits the manifest first and deletes files afterwards. Writers hold an
exclusive `fcntl.flock` around read-modify-write, so concurrent writers (threads
or processes on one host) never lose entries. Readers need no lock.

Prompts of another model are never truncated or padded: `check_same_model`
refuses them with a message that names both models.
"""
import contextlib
import dataclasses
import fcntl
import json
import os
import re
import uuid
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from spot_jax import atomic_files
from spot_jax.prompts import prompt_files
from spot_jax.prompts.prompt_files import (ModelMismatchError, ModelSignature, PromptMetadata,
                                           ROLES, check_same_model)

MANIFEST = "manifest.jsonl"
LOCK = ".lock"
PROMPTS_DIR = "prompts"

PathLike = Union[str, "os.PathLike[str]"]


class LibraryError(RuntimeError):
  """The library on disk is missing, malformed, or an operation on it is refused."""


def _crash_point(name: str) -> None:
  """No-op marking a step of a write; tests replace it to kill the process right there."""
  del name


@dataclasses.dataclass(frozen=True)
class LibraryEntry:
  """One manifest line: an id, the prompt file's stem relative to the root, its metadata."""
  id: str
  file: str
  metadata: PromptMetadata

  @property
  def task(self) -> str:
    return self.metadata.task

  @property
  def run(self) -> str:
    return self.metadata.run_key

  @property
  def role(self) -> Optional[str]:
    return self.metadata.role

  @property
  def step(self) -> int:
    return self.metadata.step

  @property
  def signature(self) -> ModelSignature:
    return ModelSignature.of(self.metadata)

  @property
  def key(self) -> tuple:
    """Identity of an entry: at most one per (model, task, run, role, step)."""
    m = self.metadata
    return (m.model_name, m.task, self.run, m.role, m.step)

  def describe(self) -> str:
    return f"{self.task}/{self.run or '-'}/{self.role}@{self.step} [{self.id}]"

  def to_json(self) -> str:
    """One manifest line; the fields a reader scans for come first."""
    fields = self.metadata.to_dict()
    head = {"id": self.id}
    for name in ("task", "run", "seed", "role", "step", "metric_name", "metric_value",
                 "model_name", "d_model", "prompt_length"):
      head[name] = fields.pop(name)
    return json.dumps({**head, "file": self.file, **fields})

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> "LibraryEntry":
    data = dict(data)
    try:
      entry_id, file = data.pop("id"), data.pop("file")
    except KeyError as e:
      raise LibraryError(f"manifest entry lacks the field {e.args[0]!r}") from None
    return cls(str(entry_id), str(file), PromptMetadata.from_dict(data))


@dataclasses.dataclass
class VerificationReport:
  """What `verify` found: broken entries (problems), crash debris (orphans), what it deleted."""
  entries: int
  problems: List[str]
  orphans: List[str]
  removed: List[str]

  @property
  def ok(self) -> bool:
    """Every entry loads and matches the manifest; orphans alone do not fail a library."""
    return not self.problems


def _slug(text: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:48] or "x"


class PromptLibrary:
  """A prompt library rooted at a directory (see the module docstring for the layout)."""

  def __init__(self, root: PathLike, *, create: bool = False):
    self.root = os.path.abspath(os.fspath(root))
    if create:
      os.makedirs(os.path.join(self.root, PROMPTS_DIR), exist_ok=True)
      with self._locked():
        if not os.path.exists(self.manifest_path):
          self._write_manifest([])
    elif not os.path.isfile(self.manifest_path):
      raise LibraryError(f"{self.root} is not a prompt library (no {MANIFEST}); create it "
                         "first (e.g. `python -m spot_jax.cli.library add`, or create=True)")

  @property
  def manifest_path(self) -> str:
    return os.path.join(self.root, MANIFEST)

  def __repr__(self) -> str:
    return f"PromptLibrary({self.root!r})"

  @contextlib.contextmanager
  def _locked(self) -> Iterator[None]:
    fd = os.open(os.path.join(self.root, LOCK), os.O_CREAT | os.O_RDWR, 0o644)
    try:
      fcntl.flock(fd, fcntl.LOCK_EX)
      yield
    finally:
      os.close(fd)  # Closing the descriptor releases the lock.

  def _read_manifest(self) -> List[LibraryEntry]:
    try:
      with open(self.manifest_path, "r", encoding="utf-8") as f:
        lines = f.read().splitlines()
    except FileNotFoundError:
      raise LibraryError(f"{self.manifest_path} does not exist") from None
    entries = []
    for number, line in enumerate(lines, start=1):
      if not line.strip():
        continue
      try:
        entries.append(LibraryEntry.from_dict(json.loads(line)))
      except (json.JSONDecodeError, ValueError, TypeError, LibraryError) as e:
        raise LibraryError(f"{self.manifest_path} line {number} is not a valid entry: {e}"
                           ) from None
    return entries

  def _write_manifest(self, entries: Sequence[LibraryEntry]) -> None:
    atomic_files.write_atomically(
        self.manifest_path, "".join(e.to_json() + "\n" for e in entries),
        before_commit=lambda: _crash_point("manifest_temp_written"))

  def _resolve(self, entry: LibraryEntry) -> str:
    """Absolute stem of an entry's prompt files; refuses paths that leave the library."""
    path = os.path.normpath(os.path.join(self.root, entry.file))
    if os.path.commonpath([path, self.root]) != self.root:
      raise LibraryError(f"entry {entry.id} points outside the library: {entry.file!r}")
    return path

  def entries(self, *, task: Optional[str] = None, role: Optional[str] = None,
              model_name: Optional[str] = None, run: Optional[str] = None
              ) -> List[LibraryEntry]:
    """Manifest entries, in insertion order, optionally filtered."""
    return [e for e in self._read_manifest()
            if (task is None or e.task == task) and (role is None or e.role == role)
            and (model_name is None or e.metadata.model_name == model_name)
            and (run is None or e.run == run)]

  def get(self, entry_id: str) -> LibraryEntry:
    for entry in self._read_manifest():
      if entry.id == entry_id:
        return entry
    raise KeyError(f"no entry {entry_id!r} in the prompt library {self.root}")

  def tasks(self, *, role: Optional[str] = None) -> List[str]:
    """Distinct task names, sorted."""
    return sorted({e.task for e in self.entries(role=role)})

  def path(self, entry: LibraryEntry) -> str:
    """The `.npy` path of an entry (for `from_file` initialisation of a target run), once
    its files are checked: a path handed out as a launch target must hold that prompt."""
    try:
      self.load(entry)
    except prompt_files.PromptFileError as e:
      raise LibraryError(f"library entry {entry.describe()} cannot be used: {e}; run "
                         "`verify`") from None
    return self._resolve(entry) + prompt_files.NPY_SUFFIX

  def add(self, prompt: Any, metadata: Union[PromptMetadata, Mapping[str, Any]], *,
          role: Optional[str] = None) -> LibraryEntry:
    """Adds a `[P, D]` prompt with its metadata; `role` overrides the metadata's role.

    The role must be `task_embedding` or `transfer`; an entry with the same
    (model, task, run, role, step) is refused (remove it first).
    """
    array = prompt_files.as_prompt_array(prompt)
    metadata = prompt_files.complete_metadata(array, metadata)
    if role is not None:
      metadata = metadata.replace(role=role)
    if metadata.role not in ROLES:
      raise ValueError(f"a library prompt needs a role in {ROLES}, got {metadata.role!r} "
                       f"(task {metadata.task!r}, step {metadata.step})")
    uid = uuid.uuid4().hex[:12]
    stem = "__".join([_slug(metadata.task), _slug(metadata.run_key or "run"),
                      metadata.role, f"s{metadata.step}", uid])
    entry = LibraryEntry(id=uid, file=f"{PROMPTS_DIR}/{stem}", metadata=metadata)
    with self._locked():
      existing = self._read_manifest()
      for other in existing:
        if other.key == entry.key:
          raise LibraryError(f"the library already holds {other.describe()} for model "
                             f"{metadata.model_name!r}; remove it before adding another")
      prompt_files.save_prompt(self._resolve(entry), array, metadata)
      try:
        _crash_point("prompt_written")
        self._write_manifest(existing + [entry])
      except Exception:
        for suffix in (prompt_files.NPY_SUFFIX, prompt_files.JSON_SUFFIX):
          with contextlib.suppress(OSError):
            os.remove(self._resolve(entry) + suffix)
        raise
    return entry

  def add_file(self, path: PathLike, *, role: Optional[str] = None,
               **overrides: Any) -> LibraryEntry:
    """Copies a saved prompt file (verified on load) into the library."""
    array, metadata = prompt_files.load_prompt(path)
    if overrides:
      metadata = metadata.replace(**overrides)
    return self.add(array, metadata, role=role)

  def remove(self, entry_ids: Iterable[str]) -> List[LibraryEntry]:
    """Removes entries by id; unknown ids are an error and then nothing is removed."""
    wanted = list(dict.fromkeys(entry_ids))
    with self._locked():
      existing = self._read_manifest()
      known = {e.id for e in existing}
      missing = [i for i in wanted if i not in known]
      if missing:
        raise KeyError(f"no entries {missing} in the prompt library {self.root}")
      removed = [e for e in existing if e.id in wanted]
      self._write_manifest([e for e in existing if e.id not in wanted])
      _crash_point("manifest_committed")
      for entry in removed:
        for suffix in (prompt_files.NPY_SUFFIX, prompt_files.JSON_SUFFIX):
          with contextlib.suppress(FileNotFoundError):
            os.remove(self._resolve(entry) + suffix)
    return removed

  def load(self, entry: LibraryEntry) -> np.ndarray:
    """The `[P, D]` float32 prompt of an entry, checked against the manifest's shape and hash."""
    array, metadata = prompt_files.load_prompt(self._resolve(entry))
    m = entry.metadata
    prompt_files.check_prompt_shape(array, m.shape, what=f"library prompt {entry.describe()}")
    if metadata.array_sha256 != m.array_sha256 or prompt_files.array_sha256(array) != (
        m.array_sha256):
      raise LibraryError(f"library prompt {entry.describe()} does not match the sha256 in "
                         f"the manifest; run `verify`")
    return array

  def load_stack(self, entries: Sequence[LibraryEntry], *, query: ModelSignature,
                 match_model_name: bool = True) -> np.ndarray:
    """The prompts of `entries` as `[N, P, D]`, after refusing any from another model."""
    for entry in entries:
      check_same_model(entry.signature, query, what=f"library prompt {entry.describe()}",
                       match_model_name=match_model_name)
    lengths = sorted({e.metadata.prompt_length for e in entries})
    if len(lengths) > 1:
      raise ValueError(f"library prompts of different lengths {lengths} cannot be stacked; "
                       f"select entries of one prompt length")
    if not entries:
      return np.zeros((0, 0, query.d_model), np.float32)
    return np.stack([self.load(e) for e in entries])

  def verify(self, *, clean: bool = False) -> VerificationReport:
    """Checks every entry's files, shape and hashes; lists (and with `clean`, deletes) orphans.

    Orphans are prompt files no entry names and temporary files left by a crashed
    write. The scan runs under the writers' lock, so a write in flight is never
    mistaken for debris.
    """
    with self._locked():
      entries = self._read_manifest()
      problems = []
      seen_ids, seen_keys = set(), {}
      for entry in entries:
        if entry.id in seen_ids:
          problems.append(f"duplicate entry id {entry.id}")
        seen_ids.add(entry.id)
        if entry.key in seen_keys:
          problems.append(f"{entry.describe()} duplicates {seen_keys[entry.key]}")
        seen_keys[entry.key] = entry.describe()
        try:
          self.load(entry)
          sidecar = prompt_files.load_metadata(self._resolve(entry))
          if sidecar != entry.metadata:
            problems.append(f"{entry.describe()}: the file's metadata differs from the manifest")
        except (ValueError, LibraryError, OSError) as e:
          problems.append(f"{entry.describe()}: {e}")
      referenced = set()
      for entry in entries:
        with contextlib.suppress(LibraryError):
          stem = self._resolve(entry)
          referenced.update({stem + prompt_files.NPY_SUFFIX, stem + prompt_files.JSON_SUFFIX})
      orphans = []
      prompts_dir = os.path.join(self.root, PROMPTS_DIR)
      if os.path.isdir(prompts_dir):
        for name in sorted(os.listdir(prompts_dir)):
          path = os.path.join(prompts_dir, name)
          if os.path.isfile(path) and path not in referenced:
            orphans.append(path)
      orphans += [os.path.join(self.root, n) for n in sorted(os.listdir(self.root))
                  if n.startswith(f".{MANIFEST}.") and n.endswith(".tmp")]
      removed = []
      if clean:
        for path in orphans:
          with contextlib.suppress(FileNotFoundError):
            os.remove(path)
            removed.append(path)
    return VerificationReport(entries=len(entries), problems=problems, orphans=orphans,
                              removed=removed)


def entries_by_task(entries: Iterable[LibraryEntry]) -> Dict[str, List[LibraryEntry]]:
  """Entries grouped by task, tasks and entries in their original order."""
  groups: Dict[str, List[LibraryEntry]] = {}
  for entry in entries:
    groups.setdefault(entry.task, []).append(entry)
  return groups
