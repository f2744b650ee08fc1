"""Reads model parameters (never optimizer state) from T5X checkpoints.

Layouts, all written by T5X itself:
  * single-file msgpack (`checkpoint_N` file): arrays inline as msgpack ext type 1;
  * directory (`checkpoint_N/checkpoint` + `target.*/` zarr folders): the msgpack leaves are
    tensorstore specs with paths relative to the directory, read through tensorstore for local
    and `gs://` paths alike (the official LM-adapted checkpoints are in this layout);
  * Orbax: the legacy layout (`checkpoint` msgpack with `PLACEHOLDER://name` leaves beside zarr
    folders) through tensorstore, the current one (`_METADATA`) through orbax.
Arrays are opened lazily (`CheckpointArray`) and read one at a time, cast while reading, so a
large checkpoint is materialised once and only in the dtype asked for.
"""
import json
import math
import os
import re
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

import ml_dtypes
import msgpack
import numpy as np
import tensorstore as ts

DTypeLike = Union[str, np.dtype, type, None]

_GCS_RE = re.compile(r"^gs://([^/]+)/?(.*)$", re.DOTALL)
_PLACEHOLDER = "PLACEHOLDER://"
_CHUNKED = "__msgpack_chunked_array__"
# Where T5X states keep the model parameters, tried in this order.
PARAM_SUBTREES = ("optimizer/target", "_optimizer/target", "target", "params")
# First bytes of a zarr chunk, by compressor (legacy Orbax arrays that lost their .zarray).
_CHUNK_MAGIC = ((b"\x1f\x8b", {"id": "gzip", "level": 1}),
                (b"\x28\xb5\x2f\xfd", {"id": "zstd", "level": 1}))


class CheckpointFormatError(ValueError):
  """The checkpoint is not in a layout this module understands, or lacks what was asked."""


class CheckpointKeyError(KeyError):
  """A variable or subtree that the checkpoint does not have."""

  def __str__(self):
    return str(self.args[0])


def as_dtype(dtype: DTypeLike) -> Optional[np.dtype]:
  """numpy dtype for 'float32', 'bfloat16', numpy or jax dtypes; None stays None."""
  if dtype is None:
    return None
  if isinstance(dtype, str) and dtype == "bfloat16":
    return np.dtype(ml_dtypes.bfloat16)
  return np.dtype(dtype)


def _cast(x: np.ndarray, dtype: Optional[np.dtype]) -> np.ndarray:
  return x if dtype is None or x.dtype == dtype else x.astype(dtype)


# --- lazy arrays ---------------------------------------------------------------------------


class CheckpointArray:
  """One array of a checkpoint: shape and dtype known up front, data read by `read()`."""

  def __init__(self, shape: Sequence[int], dtype: np.dtype, source: str):
    self.shape = tuple(int(d) for d in shape)
    self.dtype = np.dtype(dtype)
    self.source = source  # where the data lives, for error messages

  def read(self, dtype: DTypeLike = None) -> np.ndarray:
    raise NotImplementedError

  def __repr__(self):
    return f"{type(self).__name__}(shape={self.shape}, dtype={self.dtype}, {self.source!r})"


class InlineArray(CheckpointArray):
  """An array already in memory (stored inline in a msgpack file)."""

  def __init__(self, value: np.ndarray, source: str):
    super().__init__(value.shape, value.dtype, source)
    self._value = value

  def read(self, dtype: DTypeLike = None) -> np.ndarray:
    return _cast(np.asarray(self._value), as_dtype(dtype))


class TensorStoreArray(CheckpointArray):
  """A zarr array behind a tensorstore spec, opened on read and cast chunk by chunk."""

  def __init__(self, spec: Dict[str, Any], shape, dtype, source: str, *,
               assume_metadata: bool = False, view_as: Optional[np.dtype] = None):
    super().__init__(shape, view_as if view_as is not None else dtype, source)
    self.spec = spec
    self._assume_metadata = assume_metadata
    self._view_as = view_as  # T5X format < 3 wrote bfloat16 bit patterns as uint16

  def open(self) -> ts.TensorStore:
    # A missing chunk is an error, never a silent block of fill values (zeros).
    spec = dict(self.spec, fill_missing_data_reads=False)
    if self._assume_metadata:
      return ts.open(spec, open=True, read=True, assume_metadata=True).result()
    # Like T5X, drop chunks/compressor so an array rewritten with other chunks still opens.
    metadata = spec.get("metadata", {})
    relaxed = dict(spec, metadata={k: v for k, v in metadata.items()
                                   if k not in ("chunks", "compressor")})
    try:
      return ts.open(relaxed, open=True, read=True).result()
    except ValueError as e:
      if ".zarray" not in str(e) or not {"shape", "chunks", "compressor"} <= set(metadata):
        raise
    # No `.zarray` beside the chunks (copied without dotfiles), but the spec is complete.
    return ts.open(spec, open=True, read=True, assume_metadata=True).result()

  def read(self, dtype: DTypeLike = None) -> np.ndarray:
    dtype = as_dtype(dtype)
    try:
      store = self.open()
      if self._view_as is not None:
        return _cast(np.asarray(store.read().result()).view(self._view_as), dtype)
      if dtype is not None and dtype != self.dtype:
        store = ts.cast(store, ts.dtype(dtype.name))
      return np.asarray(store.read().result())
    except ValueError as e:
      error = FileNotFoundError if "NOT_FOUND" in str(e) else CheckpointFormatError
      raise error(f"cannot read array {self.source}: {e}") from e


class OrbaxArray(CheckpointArray):
  """A leaf of a current-format Orbax checkpoint, read by orbax's partial restore."""

  def __init__(self, directory: str, keys: Tuple[str, ...], shape, dtype):
    super().__init__(shape, dtype, f"{directory} [{'/'.join(keys)}]")
    self.directory = directory
    self.keys = keys

  def read(self, dtype: DTypeLike = None) -> np.ndarray:
    return _orbax_restore(self.directory, [self.keys], as_dtype(dtype))[self.keys]


# --- storage access -------------------------------------------------------------------------


def kvstore_spec(base: str, relative: str = "") -> Dict[str, Any]:
  """Tensorstore kvstore for `relative` under `base`: `gcs` for gs://bucket/..., else `file`."""
  m = _GCS_RE.match(base)
  if m:
    path = "/".join(p.strip("/") for p in (m.group(2), relative) if p.strip("/"))
    return {"driver": "gcs", "bucket": m.group(1),
            "path": path + "/" if relative.endswith("/") or not relative else path}
  path = os.path.join(os.path.abspath(base), relative).rstrip("/")
  is_dir = relative.endswith("/") or (not relative and base.endswith("/"))
  return {"driver": "file", "path": path + "/" if is_dir else path}


def _is_gcs(path: str) -> bool:
  return bool(_GCS_RE.match(path))


def _join(base: str, name: str) -> str:
  return base.rstrip("/") + "/" + name if _is_gcs(base) else os.path.join(base, name)


def _dirname(path: str) -> str:
  return path.rstrip("/").rsplit("/", 1)[0] if _is_gcs(path) else os.path.dirname(path)


def _read_bytes(path: str) -> Optional[bytes]:
  """Contents of a file (local, or gs:// through tensorstore's kvstore); None if absent."""
  if not _is_gcs(path):
    if not os.path.isfile(path):
      return None
    with open(path, "rb") as f:
      return f.read()
  parent, name = path.rstrip("/").rsplit("/", 1)
  result = ts.KvStore.open(kvstore_spec(parent + "/")).result().read(name).result()
  return None if result.state == "missing" else bytes(result.value)


def _list_keys(directory: str) -> list:
  kv = ts.KvStore.open(kvstore_spec(directory.rstrip("/") + "/")).result()
  return sorted(k.decode() for k in kv.list().result())


# --- msgpack --------------------------------------------------------------------------------


def _ext_hook(code: int, data: bytes):
  """flax/T5X msgpack extensions: 1 ndarray, 3 numpy scalar as (shape, dtype, bytes), 2 complex."""
  if code in (1, 3):
    shape, name, buffer = msgpack.unpackb(data, raw=False)
    value = np.frombuffer(buffer, dtype=as_dtype(name)).reshape(shape)  # a view, no copy
    return value if code == 1 else value[()]
  if code == 2:
    real, imag = msgpack.unpackb(data, raw=False)
    return complex(real, imag)
  raise CheckpointFormatError(f"unknown msgpack extension type {code}")


def _unchunk(tree: Any) -> Any:
  """Reassembles the arrays flax splits into flat chunks (those over ~1 GiB)."""
  if not isinstance(tree, dict):
    return tree
  if tree.get(_CHUNKED):
    shape = tuple(tree["shape"][str(i)] for i in range(len(tree["shape"])))
    chunks = [tree["chunks"][str(i)] for i in range(len(tree["chunks"]))]
    return np.concatenate(chunks).reshape(shape)
  return {k: _unchunk(v) for k, v in tree.items()}


def _unpack(data: bytes, source: str) -> Dict[str, Any]:
  try:
    tree = msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)
  except (ValueError, TypeError, msgpack.exceptions.UnpackException) as e:
    raise CheckpointFormatError(f"{source} is not a T5X msgpack checkpoint: {e}") from e
  if not isinstance(tree, dict):
    raise CheckpointFormatError(f"{source} is not a T5X msgpack checkpoint "
                                f"(its top level is a {type(tree).__name__}, not a map)")
  return _unchunk(tree)


# --- leaves ---------------------------------------------------------------------------------


def _is_ts_spec(value: Any) -> bool:
  return isinstance(value, dict) and {"driver", "metadata"} <= set(value) and (
      "kvstore" in value or "path" in value)


def spec_array(value: Dict[str, Any], base: str, source: str = "", version: int = 3
               ) -> TensorStoreArray:
  """A T5X tensorstore spec, its relative path rebased onto the checkpoint directory `base`.

  The stored kvstore driver (`gfile`, `file`, `gcs` with a dummy bucket) is replaced by the one
  for where the checkpoint is read from now.
  """
  kv = value.get("kvstore", {})
  relative = kv.get("path", value.get("path"))  # tensorstore < 0.1.14 kept `path` on top
  if relative is None:
    raise CheckpointFormatError(f"{source}: tensorstore spec without a path: {value}")
  spec = {k: v for k, v in value.items() if k not in ("kvstore", "path")}
  spec["kvstore"] = kvstore_spec(base, relative)
  metadata = spec.get("metadata", {})
  dtype = as_dtype(spec.get("dtype") or metadata.get("dtype"))
  view_as = np.dtype(ml_dtypes.bfloat16) if version < 3 and dtype == np.uint16 else None
  return TensorStoreArray(spec, metadata.get("shape", ()), dtype, source, view_as=view_as)


def _grid(keys: Sequence[str], rank: int) -> Tuple[int, ...]:
  """Chunks per dimension from zarr chunk keys like `0.0`, `1.0`."""
  counts = [1] * rank
  for key in keys:
    parts = key.split(".")
    if len(parts) == rank and all(p.isdigit() for p in parts):
      counts = [max(c, int(p) + 1) for c, p in zip(counts, parts)]
  return tuple(counts)


def _placeholder_leaf(base: str, name: str, source: str,
                      like: Optional[Tuple[Sequence[int], np.dtype]]) -> TensorStoreArray:
  """A legacy Orbax array: zarr folder `name` beside the `checkpoint` file."""
  directory = _join(base, name)
  zarray = _read_bytes(_join(directory, ".zarray"))
  if zarray is not None:
    meta = json.loads(zarray)
    spec = {"driver": "zarr", "kvstore": kvstore_spec(base, name + "/")}
    return TensorStoreArray(spec, meta["shape"], as_dtype(meta["dtype"]).newbyteorder("="),
                            source)
  if like is None:
    raise CheckpointFormatError(
        f"{source}: the zarr metadata {_join(directory, '.zarray')} is missing, so the shape and "
        "dtype of this array are unknown; pass `like` with the expected shapes and dtypes")
  shape, dtype = tuple(like[0]), as_dtype(like[1])
  keys = [k for k in _list_keys(directory) if not k.startswith(".")]
  if not keys:
    raise FileNotFoundError(f"{source}: no data in {directory}")
  grid = _grid(keys, len(shape)) if shape else ()
  chunks = [math.ceil(s / g) for s, g in zip(shape, grid)]
  head = _read_bytes(_join(directory, keys[0]))[:4]
  compressor = next((c for magic, c in _CHUNK_MAGIC if head.startswith(magic)), None)
  if compressor is None:
    raise CheckpointFormatError(f"{source}: cannot tell the compression of {directory}")
  spec = {"driver": "zarr", "dtype": ts.dtype(dtype.name).name,
          "kvstore": kvstore_spec(base, name + "/"),
          "metadata": {"shape": list(shape), "chunks": chunks, "compressor": compressor}}
  return TensorStoreArray(spec, shape, dtype, source, assume_metadata=True)


def _leaf(value: Any, base: str, source: str, version: int, like) -> Optional[CheckpointArray]:
  if value is None:
    return None
  if isinstance(value, np.ndarray):
    return InlineArray(value, source)
  if isinstance(value, (np.generic, int, float, bool, complex)):
    return InlineArray(np.asarray(value), source)
  if _is_ts_spec(value):
    return spec_array(value, base, source, version)
  if isinstance(value, str) and value.startswith(_PLACEHOLDER):
    return _placeholder_leaf(base, value[len(_PLACEHOLDER):], source, like)
  raise CheckpointFormatError(f"{source}: unsupported leaf of type {type(value).__name__}: "
                              f"{str(value)[:80]}")


# --- trees ----------------------------------------------------------------------------------


def flatten(tree: Mapping[str, Any], is_leaf=None, prefix: str = "") -> Dict[str, Any]:
  """{'a': {'b': x}} -> {'a/b': x}; empty dicts vanish."""
  flat = {}
  for key, value in tree.items():
    name = f"{prefix}{key}"
    if isinstance(value, Mapping) and not (is_leaf and is_leaf(value)):
      flat.update(flatten(value, is_leaf, name + "/"))
    else:
      flat[name] = value
  return flat


def unflatten(flat: Mapping[str, Any]) -> Dict[str, Any]:
  """{'a/b': x} -> {'a': {'b': x}}."""
  tree: Dict[str, Any] = {}
  for name, value in flat.items():
    node = tree
    *parents, last = name.split("/")
    for part in parents:
      node = node.setdefault(part, {})
    node[last] = value
  return tree


def _get(tree: Mapping[str, Any], path: str) -> Any:
  node = tree
  for part in path.strip("/").split("/"):
    if not isinstance(node, Mapping) or part not in node:
      raise CheckpointKeyError(path)
    node = node[part]
  return node


def _select(tree: Dict[str, Any], subtree: Optional[str], path: str) -> Tuple[str, Any]:
  """The subtree asked for, or the parameters (T5X `optimizer/target`, Orbax `target`, ...)."""
  if subtree is not None:
    try:
      return subtree, _get(tree, subtree) if subtree.strip("/") else tree
    except CheckpointKeyError:
      raise CheckpointKeyError(f"{path} has no subtree {subtree!r}; its top-level keys are "
                               f"{sorted(tree)}") from None
  for candidate in PARAM_SUBTREES:
    try:
      node = _get(tree, candidate)
    except CheckpointKeyError:
      continue
    if isinstance(node, Mapping) and not flatten(node):
      raise CheckpointFormatError(
          f"{path} holds no model parameters: {candidate!r} is empty (top-level keys "
          f"{sorted(tree)}); pass `subtree` to read another part of the state")
    return candidate, node
  raise CheckpointFormatError(f"{path} has no parameter tree (looked for {list(PARAM_SUBTREES)}); "
                              f"its top-level keys are {sorted(tree)}")


def _like_flat(like: Any) -> Dict[str, Tuple[Sequence[int], Any]]:
  """`like` (nested shapes, (shape, dtype) pairs, arrays or ShapeDtypeStructs), flattened."""
  if like is None:
    return {}
  is_shape = lambda v: isinstance(v, tuple) and all(isinstance(d, int) for d in v)
  out = {}
  for name, value in flatten(like, is_leaf=None).items():
    if is_shape(value):
      out[name] = (value, np.float32)
    elif (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], (tuple, list))
          and is_shape(tuple(value[0]))):
      out[name] = (tuple(value[0]), value[1])
    else:
      out[name] = (tuple(value.shape), value.dtype)
  return out


# --- layouts --------------------------------------------------------------------------------


def checkpoint_layout(path: str) -> str:
  """'msgpack' (single file or directory with a `checkpoint` file) or 'orbax' (`_METADATA`)."""
  return _locate(path)[0]


def _t5x_orbax_step(path: str) -> str:
  """A step directory that T5X saved through Orbax (`checkpoint_<N>/state/_METADATA`, beside
  `dataset/`) -> its `state` folder; any other path as given."""
  exists = ((lambda p: _read_bytes(p) is not None) if _is_gcs(path) else os.path.isfile)
  if (not exists(_join(path, "_METADATA")) and not exists(_join(path, "checkpoint"))
      and exists(_join(_join(path, "state"), "_METADATA"))):
    return _join(path, "state")
  return path


def _locate(path: str) -> Tuple[str, str, Optional[bytes]]:
  """(layout, base directory, msgpack bytes or None) for a checkpoint file or directory."""
  path = os.fspath(path)
  if not _is_gcs(path) and not os.path.exists(path):
    raise FileNotFoundError(f"checkpoint path does not exist: {path}")
  if not _is_gcs(path) and os.path.isfile(path):
    return "msgpack", _dirname(os.path.abspath(path)), _read_bytes(path)
  data = _read_bytes(_join(path, "checkpoint"))
  if data is not None:
    return "msgpack", path, data
  if _read_bytes(_join(path, "_METADATA")) is not None:
    return "orbax", path, None
  if _is_gcs(path):
    data = _read_bytes(path)
    if data is not None:
      return "msgpack", _dirname(path), data
    raise FileNotFoundError(f"no T5X checkpoint at {path} (no `checkpoint` or `_METADATA` file)")
  raise FileNotFoundError(f"{path} is a directory without a T5X `checkpoint` file or an Orbax "
                          "`_METADATA` file")


def _orbax_metadata_tree(directory: str) -> Dict[str, Any]:
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top  (slow import)
  meta = ocp.PyTreeCheckpointer().metadata(directory)
  meta = getattr(meta, "item_metadata", meta)
  tree = getattr(meta, "tree", meta)
  if not isinstance(tree, Mapping):
    raise CheckpointFormatError(f"{directory}: unreadable Orbax metadata ({type(tree).__name__})")
  return tree


def _orbax_restore(directory: str, keys: Sequence[Tuple[str, ...]],
                   dtype: Optional[np.dtype]) -> Dict[Tuple[str, ...], np.ndarray]:
  """Restores just the leaves at `keys` as numpy arrays, cast to `dtype` while restoring."""
  import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top
  item, restore_args = {}, {}
  for key in keys:
    node, args = item, restore_args
    for part in key[:-1]:
      node, args = node.setdefault(part, {}), args.setdefault(part, {})
    node[key[-1]] = 0
    args[key[-1]] = ocp.RestoreArgs(restore_type=np.ndarray, dtype=dtype)
  restored = ocp.PyTreeCheckpointer().restore(directory, args=ocp.args.PyTreeRestore(
      item=item, restore_args=restore_args, partial_restore=True))
  return {key: np.asarray(_get(restored, "/".join(key))) for key in keys}


def open_t5x_checkpoint(path: str, subtree: Optional[str] = None,
                        like: Any = None) -> Dict[str, CheckpointArray]:
  """Lazy arrays of a T5X checkpoint's parameters (or of `subtree`), by '/'-joined name.

  `path` is a single msgpack file, a checkpoint directory (local or gs://) or an Orbax step
  directory. `like` (a nested dict of shapes, arrays or ShapeDtypeStructs) is only needed for
  legacy Orbax arrays whose zarr metadata was lost.
  """
  path = os.fspath(path)
  if _is_gcs(path) or os.path.isdir(path):
    path = _t5x_orbax_step(path)
  layout, base, data = _locate(path)
  if layout == "orbax":
    tree = _orbax_metadata_tree(path)
    prefix, node = _select(tree, subtree, path)
    keys = tuple(p for p in prefix.strip("/").split("/") if p)
    flat = flatten(node, is_leaf=lambda v: not isinstance(v, Mapping)) if isinstance(
        node, Mapping) else {"": node}
    out = {}
    for name, meta in flat.items():
      if meta is None:
        continue
      leaf_keys = keys + tuple(p for p in name.split("/") if p)
      out[name] = OrbaxArray(path, leaf_keys, getattr(meta, "shape", ()),
                             getattr(meta, "dtype", np.float32))
    return out
  tree = _unpack(data, path)
  version = tree.get("version", 0)  # 0: a plain flax state dict; T5X writes 3 since 2021
  version = int(version) if isinstance(version, (int, np.integer)) else 0
  prefix, node = _select(tree, subtree, path)
  if not isinstance(node, Mapping):
    node = {"": node}
  likes = _like_flat(like)
  out = {}
  for name, value in flatten(node, is_leaf=_is_ts_spec).items():
    source = f"{path} [{'/'.join(p for p in (prefix.strip('/'), name) if p)}]"
    leaf = _leaf(value, base, source, version, likes.get(name))
    if leaf is not None:
      out[name] = leaf
  return out


def read_arrays(arrays: Mapping[str, CheckpointArray],
                dtype: DTypeLike = None) -> Dict[str, np.ndarray]:
  """Reads lazy arrays one after another (Orbax ones in one restore), cast to `dtype`."""
  dtype = as_dtype(dtype)
  out = {}
  orbax = [(n, a) for n, a in arrays.items() if isinstance(a, OrbaxArray)]
  if orbax:
    restored = _orbax_restore(orbax[0][1].directory, [a.keys for _, a in orbax], dtype)
    out.update({n: restored[a.keys] for n, a in orbax})
  for name, array in arrays.items():
    if not isinstance(array, OrbaxArray):
      out[name] = array.read(dtype)
  return {name: out[name] for name in arrays}


def read_t5x_params(path: str, dtype: DTypeLike = None, subtree: Optional[str] = None,
                    like: Any = None) -> Dict[str, Any]:
  """The parameters (or `subtree`) of a T5X checkpoint as a nested dict of numpy arrays."""
  arrays = open_t5x_checkpoint(path, subtree=subtree, like=like)
  values = read_arrays(arrays, dtype)
  if set(values) == {""}:
    return values[""]
  return unflatten(values)


def read_t5x_variable(path: str, name: str, dtype: DTypeLike = None) -> np.ndarray:
  """One parameter (e.g. 'token_embedder/embedding') without reading the others."""
  arrays = open_t5x_checkpoint(path)
  if name.strip("/") not in arrays:
    close = sorted(n for n in arrays if n.split("/")[-1] == name.split("/")[-1])[:5]
    raise CheckpointKeyError(f"{path} has no parameter {name!r}"
                             + (f"; similar: {close}" if close else
                                f" ({len(arrays)} parameters, e.g. {sorted(arrays)[:3]})"))
  return arrays[name.strip("/")].read(dtype)
