"""Prompts as files: a `[P, D]` float32 `.npy` plus a JSON sidecar of metadata.

A prompt file is the unit SPoT moves around: the trainer writes one at configured
steps, at the best validation score and at the end; the prompt library stores them;
the `from_file` initializer reads them. Files live outside checkpoint retention.

Writes are atomic per file (temporary name in the same directory, fsync,
`os.replace`), the `.npy` is committed before the `.json`, and the sidecar records
the sha256 of the array. A reader therefore never accepts a half pair: a missing
sidecar means the write has not finished, and a sidecar whose hash does not match
the array (a torn overwrite, a corrupted file) is an error.
"""
import dataclasses
import datetime
import hashlib
import io
import json
import math
import operator
import os
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from spot_jax import atomic_files

FORMAT_VERSION = 1
NPY_SUFFIX = ".npy"
NPY_MAGIC = b"\x93NUMPY"
JSON_SUFFIX = ".json"

# Roles a prompt plays in SPoT (§3.2-3.3): the early checkpoint (10K steps) is the
# task's embedding; the best-validation checkpoint is what gets transferred.
TASK_EMBEDDING = "task_embedding"
TRANSFER = "transfer"
ROLES = (TASK_EMBEDDING, TRANSFER)

PathLike = Union[str, "os.PathLike[str]"]


class PromptFileError(ValueError):
  """A prompt file or its metadata is missing, malformed or inconsistent."""


class ModelMismatchError(ValueError):
  """A prompt comes from another model (d_model or vocabulary) than the one asked for."""


@dataclasses.dataclass(frozen=True)
class PromptMetadata:
  """What a prompt is: which task, run, model, vocabulary, step and score it came from.

  `d_model` and `prompt_length` may be left None when saving; they are taken from
  the array. `created` and `array_sha256` are filled in by `save_prompt`.
  """
  task: str
  model_name: str
  vocabulary_hash: str
  step: int
  d_model: Optional[int] = None
  prompt_length: Optional[int] = None
  run: str = ""
  seed: Optional[int] = None
  metric_name: Optional[str] = None
  metric_value: Optional[float] = None
  role: Optional[str] = None
  created: str = ""
  array_sha256: str = ""
  extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  format_version: int = FORMAT_VERSION

  def __post_init__(self):
    for name in ("task", "model_name", "vocabulary_hash"):
      value = getattr(self, name)
      if not isinstance(value, str) or not value:
        raise PromptFileError(f"metadata.{name} must be a non-empty string, got {value!r}")
    # Plain Python numbers, so numpy or jax scalars from a trainer serialise as JSON.
    object.__setattr__(self, "step", _as_int("step", self.step, minimum=0))
    for name in ("d_model", "prompt_length"):
      if getattr(self, name) is not None:
        object.__setattr__(self, name, _as_int(name, getattr(self, name), minimum=1))
    if self.seed is not None:
      object.__setattr__(self, "seed", _as_int("seed", self.seed, minimum=None))
    if not isinstance(self.run, str):
      raise PromptFileError(f"metadata.run must be a string, got {self.run!r}")
    if self.metric_value is not None:
      object.__setattr__(self, "metric_value", _as_finite_float(self.metric_value))
    if self.metric_value is not None and not self.metric_name:
      raise PromptFileError("metadata.metric_value is set but metadata.metric_name is not")
    if self.role is not None and self.role not in ROLES:
      raise PromptFileError(f"metadata.role must be one of {ROLES} or None, got {self.role!r}")
    if not isinstance(self.extra, Mapping):
      raise PromptFileError(f"metadata.extra must be a mapping, got {type(self.extra).__name__}")
    if self.format_version != FORMAT_VERSION:
      raise PromptFileError(f"prompt file format_version {self.format_version!r} is not "
                            f"supported (this code reads version {FORMAT_VERSION})")

  @property
  def shape(self) -> Tuple[Optional[int], Optional[int]]:
    """The `[P, D]` shape the metadata describes."""
    return (self.prompt_length, self.d_model)

  @property
  def run_key(self) -> str:
    """The run's name: `run` if set, else `seed<seed>`, else empty."""
    if self.run:
      return self.run
    return f"seed{self.seed}" if self.seed is not None else ""

  def replace(self, **changes: Any) -> "PromptMetadata":
    return dataclasses.replace(self, **changes)

  def to_dict(self) -> dict:
    out = dataclasses.asdict(self)
    out["extra"] = dict(self.extra)
    return out

  @classmethod
  def from_dict(cls, data: Mapping[str, Any]) -> "PromptMetadata":
    """Builds metadata from a mapping; unknown keys are an error (typos fail loudly)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
      raise PromptFileError(f"unknown prompt metadata keys {unknown}; known keys: {sorted(known)}")
    return cls(**dict(data))


@dataclasses.dataclass(frozen=True)
class ModelSignature:
  """What makes prompts interchangeable: the model, its width and its vocabulary."""
  model_name: str
  d_model: int
  vocabulary_hash: str

  @classmethod
  def of(cls, metadata: "PromptMetadata") -> "ModelSignature":
    return cls(metadata.model_name, int(metadata.d_model), metadata.vocabulary_hash)

  def describe(self) -> str:
    return (f"model {self.model_name!r} (d_model={self.d_model}, "
            f"vocabulary sha256 {self.vocabulary_hash[:12]})")


def check_same_model(prompt: ModelSignature, query: ModelSignature, *,
                     what: str = "library prompt", match_model_name: bool = True,
                     wanted_by: str = "the query") -> None:
  """Raises ModelMismatchError, naming both models, unless `prompt` fits the query's model."""
  differs = []
  if prompt.d_model != query.d_model:
    differs.append("d_model")
  if prompt.vocabulary_hash != query.vocabulary_hash:
    differs.append("vocabulary")
  if match_model_name and prompt.model_name != query.model_name:
    differs.append("model name")
  if differs:
    raise ModelMismatchError(
        f"{what} comes from {prompt.describe()} but {wanted_by} is for {query.describe()} "
        f"({', '.join(differs)} differ); a prompt is never truncated or padded across "
        f"models: project it with spot_jax.prompts.projector instead")


def vocabulary_hash_of(vocabulary: Any) -> str:
  """The `vocabulary_hash` a prompt records for a seqio-style vocabulary: sha256 of its
  SentencePiece model (`sp_model` bytes), or a name for vocabularies with no model file."""
  sp_model = getattr(vocabulary, "sp_model", None)
  if isinstance(sp_model, (bytes, bytearray)):
    return vocabulary_hash(sp_model)
  return f"{type(vocabulary).__name__}:{vocabulary.vocab_size}"


def _as_int(name: str, value: Any, *, minimum: Optional[int]) -> int:
  try:
    if isinstance(value, (bool, float, str, bytes)):
      raise TypeError
    value = operator.index(value)
  except TypeError:
    raise PromptFileError(f"metadata.{name} must be an integer, got {value!r}") from None
  if minimum is not None and value < minimum:
    raise PromptFileError(f"metadata.{name} must be >= {minimum}, got {value!r}")
  return value


def _as_finite_float(value: Any) -> float:
  try:
    if isinstance(value, (bool, str, bytes)):
      raise TypeError
    number = float(value)
  except (TypeError, ValueError):
    number = math.nan
  if not math.isfinite(number):
    raise PromptFileError(f"metadata.metric_value must be a finite number or None, got {value!r}")
  return number


def check_prompt_shape(actual: Union[np.ndarray, Sequence[int]],
                       expected: Sequence[Optional[int]], *, what: str = "prompt") -> None:
  """Raises ValueError naming both shapes unless `actual` is `expected` (None matches any)."""
  shape = tuple(int(s) for s in (actual.shape if hasattr(actual, "shape") else actual))
  expected = tuple(expected)
  if len(shape) != len(expected) or any(
      e is not None and s != e for s, e in zip(shape, expected)):
    readable = "[" + ", ".join("?" if e is None else str(int(e)) for e in expected) + "]"
    raise ValueError(f"{what} has shape {list(shape)} but {readable} "
                     f"([prompt_length, d_model]) was expected; prompts are never "
                     f"truncated or padded")


def array_sha256(prompt: np.ndarray) -> str:
  """sha256 of the prompt as little-endian float32 in C order (what the `.npy` holds)."""
  data = np.ascontiguousarray(np.asarray(prompt, dtype="<f4"))
  return hashlib.sha256(data.tobytes()).hexdigest()


def vocabulary_hash(source: Union[bytes, PathLike]) -> str:
  """sha256 (hex) of a SentencePiece model: its serialized bytes or a local file path.

  Hash the model file itself; a proto re-serialised by a library (e.g. with extra
  ids added) hashes differently. For remote files, read the bytes first.
  """
  if isinstance(source, (bytes, bytearray, memoryview)):
    return hashlib.sha256(bytes(source)).hexdigest()
  digest = hashlib.sha256()
  with open(os.fspath(source), "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def prompt_paths(path: PathLike) -> Tuple[str, str]:
  """(`.npy` path, `.json` path) for a prompt named `dir/name`, `dir/name.npy` or `.json`."""
  path = os.fspath(path)
  for suffix in (NPY_SUFFIX, JSON_SUFFIX):
    if path.endswith(suffix):
      path = path[:-len(suffix)]
      break
  if not os.path.basename(path):
    raise PromptFileError(f"prompt path {path!r} has no file name")
  return path + NPY_SUFFIX, path + JSON_SUFFIX


def as_prompt_array(prompt: Any) -> np.ndarray:
  """A `[P, D]` prompt (numpy, jax, bfloat16, ...) as C-ordered float32; refuses non-finite ones."""
  array = np.asarray(prompt)
  if array.ndim != 2:
    raise ValueError(f"a prompt must be a [P, D] matrix, got shape {list(array.shape)}")
  if not (np.issubdtype(array.dtype, np.floating) or array.dtype.name == "bfloat16"):
    raise ValueError(f"a prompt must hold floats, got dtype {array.dtype}")
  array = np.ascontiguousarray(array.astype("<f4"))
  if not np.all(np.isfinite(array)):
    raise ValueError("the prompt holds NaN or infinite values; refusing to save it")
  return array


def complete_metadata(prompt: np.ndarray, metadata: Union[PromptMetadata, Mapping[str, Any]]
                      ) -> PromptMetadata:
  """Metadata with shape, array hash and creation time filled in and checked against `prompt`."""
  if not isinstance(metadata, PromptMetadata):
    metadata = PromptMetadata.from_dict(metadata)
  check_prompt_shape(prompt, metadata.shape, what="prompt")
  return metadata.replace(
      prompt_length=int(prompt.shape[0]), d_model=int(prompt.shape[1]),
      array_sha256=array_sha256(prompt),
      created=metadata.created or datetime.datetime.now(datetime.timezone.utc).isoformat(
          timespec="seconds"))


def _read_bytes(path: str) -> bytes:
  if atomic_files.is_uri(path):
    if not atomic_files.gfile().exists(path):
      raise FileNotFoundError(path)
    with atomic_files.gfile().GFile(path, "rb") as f:
      return f.read()
  with open(path, "rb") as f:
    return f.read()


def _exists(path: str) -> bool:
  return atomic_files.gfile().exists(path) if atomic_files.is_uri(path) else os.path.exists(path)


def _makedirs(directory: str) -> None:
  if atomic_files.is_uri(directory):
    atomic_files.gfile().makedirs(directory)
  else:
    os.makedirs(directory, exist_ok=True)


def npy_bytes(array: np.ndarray) -> bytes:
  """`array` as the bytes of a `.npy` file (no pickle)."""
  buffer = io.BytesIO()
  np.save(buffer, array, allow_pickle=False)
  return buffer.getvalue()


def save_prompt(path: PathLike, prompt: Any,
                metadata: Union[PromptMetadata, Mapping[str, Any]]) -> str:
  """Writes `prompt` `[P, D]` as float32 `.npy` plus its `.json` sidecar; returns the `.npy` path.

  `path` is `dir/name` (a `.npy` or `.json` suffix is ignored); missing directories
  are created. Non-finite prompts and metadata that disagrees with the shape are refused.
  """
  npy_path, json_path = prompt_paths(path)
  array = as_prompt_array(prompt)
  metadata = complete_metadata(array, metadata)
  _makedirs(os.path.dirname(
      npy_path if atomic_files.is_uri(npy_path) else os.path.abspath(npy_path)))
  sidecar = json.dumps(metadata.to_dict(), indent=2, sort_keys=True) + "\n"
  atomic_files.write_atomically(npy_path, npy_bytes(array))
  atomic_files.write_atomically(json_path, sidecar)  # The sidecar commits the pair.
  return npy_path


def prompt_exists(path: PathLike) -> bool:
  """Whether the prompt file at `path` is complete (its `.json` sidecar is written)."""
  return _exists(prompt_paths(path)[1])


def load_metadata(path: PathLike) -> PromptMetadata:
  """The sidecar metadata of a prompt file, without reading the array."""
  _, json_path = prompt_paths(path)
  try:
    data = json.loads(_read_bytes(json_path).decode("utf-8"))
  except FileNotFoundError:
    raise PromptFileError(f"prompt metadata {json_path} does not exist (a prompt file is "
                          f"complete only once its .json sidecar is written)") from None
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise PromptFileError(f"prompt metadata {json_path} is not valid JSON: {e}") from None
  if not isinstance(data, dict):
    raise PromptFileError(f"prompt metadata {json_path} must hold a JSON object")
  return PromptMetadata.from_dict(data)


def read_npy(npy_path: PathLike) -> np.ndarray:
  """The `[P, D]` float32 array of the numpy file at exactly `npy_path` (any name),
  never unpickling anything."""
  npy_path = os.fspath(npy_path)
  try:
    data = _read_bytes(npy_path)
  except FileNotFoundError:
    raise PromptFileError(f"prompt array {npy_path} does not exist") from None
  magic = data[:len(NPY_MAGIC)]
  if magic != NPY_MAGIC:  # np.load would take any other bytes for a pickle
    raise PromptFileError(f"prompt array {npy_path} is not a .npy file: it does not start "
                          f"with numpy's header {NPY_MAGIC!r} (got {magic!r})")
  try:
    array = np.load(io.BytesIO(data), allow_pickle=False)
  except ValueError as e:
    raise PromptFileError(f"prompt array {npy_path} is not a plain numeric .npy: {e}") from None
  if not isinstance(array, np.ndarray) or array.ndim != 2:
    raise PromptFileError(f"prompt array {npy_path} must be a [P, D] matrix, "
                          f"got shape {list(getattr(array, 'shape', ()))}")
  if not np.issubdtype(array.dtype, np.floating):
    raise PromptFileError(f"prompt array {npy_path} must hold floats, got dtype {array.dtype}")
  array = np.ascontiguousarray(array.astype(np.float32, copy=False))
  finite = np.isfinite(array)
  if not finite.all():
    raise PromptFileError(
        f"prompt array {npy_path} holds {int(finite.size - finite.sum())} NaN or infinite "
        f"values (of {finite.size}, beyond float32's range included); a prompt must be "
        "finite. Use another file, or the run's prompts/best or an earlier step_N.")
  return array


def load_prompt_array(path: PathLike) -> np.ndarray:
  """The `[P, D]` float32 array of a prompt file's `.npy`, never unpickling anything."""
  return read_npy(prompt_paths(path)[0])


def load_prompt(path: PathLike, *, expected_shape: Optional[Sequence[Optional[int]]] = None,
                require_metadata: bool = True
                ) -> Tuple[np.ndarray, Optional[PromptMetadata]]:
  """Reads a prompt file: (`[P, D]` float32 array, metadata), checking shape and hash.

  With `require_metadata=False` a bare `.npy` (e.g. a prompt released by
  google-research/prompt-tuning) loads with metadata None.
  """
  npy_path, json_path = prompt_paths(path)
  if not require_metadata and not _exists(json_path):
    array, metadata = load_prompt_array(npy_path), None
  else:
    metadata = load_metadata(json_path)
    array = load_prompt_array(npy_path)
    check_prompt_shape(array, metadata.shape, what=f"prompt array {npy_path}")
    if metadata.array_sha256 and array_sha256(array) != metadata.array_sha256:
      raise PromptFileError(
          f"prompt array {npy_path} does not match the sha256 recorded in {json_path} "
          f"(a torn overwrite or a corrupted file); refusing to use it")
  if expected_shape is not None:
    check_prompt_shape(array, expected_shape, what=f"prompt {npy_path}")
  return array, metadata
