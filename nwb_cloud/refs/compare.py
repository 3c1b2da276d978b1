"""Is what a reader returns the file? A recursive comparison of two reads of one NWB file.

Two levels, both needed: the *builders* (every group, dataset, attribute, link and value as hdmf reads
the file, before any NWB type is applied) and the *containers* (every pynwb object, with every field).
Values are read in full and compared exactly, including the type that carries them: a numpy scalar is not
a Python number, an array is not a list, ``np.bytes_`` is not ``str`` (user code that works on the local
file must work on the other read). Arrays are compared by dtype, shape and values (NaN equal to NaN),
references by what they point at (a builder's path, a container's place in the file), strings as text.

Only the carriers of lazily read datasets legitimately differ between backends: an ``h5py.Dataset`` and
a ``zarr.Array`` are both an "array", ``BuilderH5TableDataset`` and ``BuilderZarrTableDataset`` both a
"BuilderTableDataset"; their dtype, shape and values are compared. Containers are matched by their path
in the file (an object ID is compared where the file stores one: pynwb makes up new ones for old files).

Use :func:`compare_ios` (or :func:`assert_same_nwb`) with two open IO objects (``NWBHDF5IO`` as the
reference, any other reader as the candidate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime

import h5py
import numpy as np
import zarr
from hdmf.build import Builder, DatasetBuilder, GroupBuilder, LinkBuilder, ReferenceBuilder
from hdmf.container import AbstractContainer
from hdmf.data_utils import DataIO
from hdmf.query import HDMFDataset

MAX_DIFFERENCES = 50


@dataclass(frozen=True)
class Ref:
    """A resolved reference: the target's path (of its builder, or of its container in the file)."""

    target: str | None


@dataclass(frozen=True)
class Typed:
    """A value and the type that carries it (``numpy.float64``, ``ndarray <i8 (3,)``, ``numpy.bytes_``...)."""

    kind: str
    value: object


@dataclass(frozen=True)
class Stored:
    """A dataset read from storage: its carrier, dtype, shape and the values."""

    carrier: str
    dtype: str
    shape: tuple
    values: object


def normalize(value):
    """``value`` as plain comparable Python data (see the module docstring)."""
    if isinstance(value, AbstractContainer):
        return Ref(container_path(value))
    if isinstance(value, (ReferenceBuilder, LinkBuilder)):
        return Ref(value.builder.path)
    if isinstance(value, Builder):
        return Ref(value.path)
    if isinstance(value, DataIO):
        return normalize(value.data)
    if isinstance(value, (h5py.Dataset, zarr.Array)):
        return _stored("array", value, value[()])
    if isinstance(value, HDMFDataset):  # reference and compound wrappers resolve what the dataset holds
        carrier = type(value).__name__.replace("H5", "").replace("Zarr", "")
        return _stored(carrier, value.dataset, value[:] if len(value) else [])
    if isinstance(value, h5py.Empty):
        return Typed(f"h5py.Empty {value.dtype.str}", None)
    if isinstance(value, np.bytes_):
        return Typed(f"numpy.bytes_ {value.dtype.str}", _text(value))
    if isinstance(value, bytes):
        return Typed("bytes", _text(value))
    if isinstance(value, np.void):
        fields = value.tolist() if value.dtype.names is None else [value[name] for name in value.dtype.names]
        return Typed(f"numpy.void {_dtype_text(value.dtype)}", [normalize(item) for item in fields])
    if isinstance(value, np.generic):
        return Typed(f"numpy {value.dtype.str}", value.item())
    if isinstance(value, np.ndarray):
        kind = f"ndarray {_dtype_text(value.dtype)} {value.shape}"
        if value.ndim == 0:
            return Typed(kind, normalize(value[()]))
        return Typed(kind, [normalize(item) for item in value])
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, (datetime, date)):
        return Typed(type(value).__name__, value.isoformat())
    return value


def container_path(container) -> str:
    """Where a pynwb object sits in the file: its builder's path (or its parents' names, without a read IO)."""
    builder = _builder_of(container)
    if builder is not None:
        return "/" + builder.path.removeprefix("root").lstrip("/")
    names = []
    while container.parent is not None:
        names.append(container.name)
        container = container.parent
    return "/" + "/".join(reversed(names))


def _builder_of(container):
    io = container.get_read_io() if hasattr(container, "get_read_io") else None
    try:
        return io.manager.get_builder(container)
    except Exception:  # noqa: BLE001 - no IO, or the object was not read from a file
        return None


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8", errors="surrogateescape")


def _dtype_text(dtype: np.dtype) -> str:
    return dtype.str if dtype.names is None else str([(name, dtype[name].str) for name in dtype.names])


def _stored(carrier: str, dataset, values) -> Stored:
    """Strings, references and compound records with such fields are all objects ("|O") in both backends."""
    dtype = dataset.dtype
    kind = _dtype_text(dtype)
    if dtype.names is None and dtype.kind in "biufc" and isinstance(values, np.ndarray | np.generic):
        return Stored(carrier, kind, tuple(dataset.shape), np.asarray(values))  # compared as arrays
    return Stored(carrier, kind, tuple(dataset.shape), _values(values))


def _values(values):
    """The values of a dataset: text and numbers as such (the dataset's dtype is compared on its own)."""
    if isinstance(values, np.ndarray):
        if values.ndim == 0:
            return _values(values[()])
        return [_values(item) for item in values]
    if isinstance(values, (list, tuple)):
        return [_values(item) for item in values]
    if isinstance(values, np.void):
        return [_values(values[name]) for name in values.dtype.names] if values.dtype.names else values.tolist()
    if isinstance(values, (bytes, np.bytes_)):
        return _text(values)
    if isinstance(values, np.generic):
        return values.item()
    return normalize(values)


def differences(expected, actual, where: str, found: list[str]) -> None:
    """Append to ``found`` every place where the normalised values differ."""
    if len(found) >= MAX_DIFFERENCES:
        return
    if isinstance(expected, Stored) or isinstance(actual, Stored):
        if not (isinstance(expected, Stored) and isinstance(actual, Stored)):
            found.append(f"{where}: stored dataset on one side only ({_short(expected)} vs {_short(actual)})")
            return
        if expected.carrier != actual.carrier:
            found.append(f"{where}: read as {expected.carrier} vs {actual.carrier}")
            return
        if expected.dtype != actual.dtype or expected.shape != actual.shape:
            found.append(f"{where}: dtype/shape {expected.dtype}{expected.shape} vs {actual.dtype}{actual.shape}")
            return
        if isinstance(expected.values, np.ndarray) and isinstance(actual.values, np.ndarray):
            _array_differences(expected.values, actual.values, where, found)
            return
        differences(expected.values, actual.values, where, found)
        return
    if isinstance(expected, Typed) or isinstance(actual, Typed):
        if not (isinstance(expected, Typed) and isinstance(actual, Typed)) or expected.kind != actual.kind:
            found.append(f"{where}: type {_kind(expected)} vs {_kind(actual)} ({_short(expected)} vs {_short(actual)})")
            return
        differences(expected.value, actual.value, where, found)
        return
    if isinstance(expected, dict) and isinstance(actual, dict):
        if set(expected) != set(actual):
            found.append(f"{where}: keys differ: only expected {sorted(set(expected) - set(actual))}, "
                         f"only actual {sorted(set(actual) - set(expected))}")  # fmt: skip
        for key in sorted(set(expected) & set(actual), key=str):
            differences(expected[key], actual[key], f"{where}.{key}", found)
        return
    if isinstance(expected, (list, tuple)) and isinstance(actual, (list, tuple)):
        if len(expected) != len(actual):
            found.append(f"{where}: length {len(expected)} vs {len(actual)}")
            return
        for index, (left, right) in enumerate(zip(expected, actual, strict=True)):
            differences(left, right, f"{where}[{index}]", found)
        return
    if not _equal(expected, actual):
        found.append(f"{where}: {_short(expected)} != {_short(actual)}")


def _array_differences(expected: np.ndarray, actual: np.ndarray, where: str, found: list[str]) -> None:
    nan = expected.dtype.kind in "fc"
    if expected.shape == actual.shape and np.array_equal(expected, actual, equal_nan=nan):
        return
    unequal = ~((expected == actual) | (np.isnan(expected) & np.isnan(actual)) if nan else expected == actual)
    first = tuple(int(i) for i in np.argwhere(np.atleast_1d(unequal))[0])
    index = "".join(f"[{i}]" for i in first)
    found.append(f"{where}{index}: {np.atleast_1d(expected)[first]!r} != {np.atleast_1d(actual)[first]!r} "
                 f"({int(np.count_nonzero(unequal))} of {expected.size} values differ)")  # fmt: skip


def _equal(left, right) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return type(left) is type(right) and left == right


def _kind(value) -> str:
    return value.kind if isinstance(value, Typed) else type(value).__name__


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 120 else text[:117] + "..."


# -- builders ------------------------------------------------------------------------------------------------
def compare_builders(expected: GroupBuilder, actual: GroupBuilder) -> list[str]:
    """Every group, dataset, link, attribute and value of two builder trees."""
    found: list[str] = []
    _compare_group(expected, actual, "/", found)
    return found


def _compare_group(expected: GroupBuilder, actual: GroupBuilder, where: str, found: list[str]) -> None:
    differences(normalize(dict(expected.attributes)), normalize(dict(actual.attributes)), f"{where}@", found)
    for kind in ("groups", "datasets", "links"):
        left, right = getattr(expected, kind), getattr(actual, kind)
        if set(left) != set(right):
            found.append(f"{where}: {kind} differ: only expected {sorted(set(left) - set(right))}, "
                         f"only actual {sorted(set(right) - set(left))}")  # fmt: skip
        for name in sorted(set(left) & set(right)):
            path = f"{where.rstrip('/')}/{name}"
            if kind == "groups":
                _compare_group(left[name], right[name], path, found)
            elif kind == "datasets":
                _compare_dataset(left[name], right[name], path, found)
            else:
                differences(normalize(left[name]), normalize(right[name]), f"{path} (link)", found)


def _compare_dataset(expected: DatasetBuilder, actual: DatasetBuilder, where: str, found: list[str]) -> None:
    differences(normalize(dict(expected.attributes)), normalize(dict(actual.attributes)), f"{where}@", found)
    differences(normalize(expected.data), normalize(actual.data), where, found)


# -- containers ----------------------------------------------------------------------------------------------
def compare_containers(expected, actual) -> list[str]:
    """Every pynwb object (by its path in the file) of two ``NWBFile`` reads: type, name, parent, object ID
    (where the file stores one) and every field."""
    found: list[str] = []
    left, right = _by_path(expected.objects.values()), _by_path(actual.objects.values())
    if set(left) != set(right):
        found.append(f"objects differ: only expected {sorted(set(left) - set(right))[:5]}, "
                     f"only actual {sorted(set(right) - set(left))[:5]}")  # fmt: skip
    for path in sorted(set(left) & set(right)):
        one, other = left[path], right[path]
        where = f"{type(one).__name__} {path}"
        if _type_names(one) != _type_names(other):
            found.append(f"{where}: type {_type_names(one)} vs {_type_names(other)}")
            continue
        stored_id = _stored_object_id(one)
        if stored_id is not None:
            differences(stored_id, other.object_id, f"{where}.object_id", found)
        parents = [normalize(c.parent) if c.parent is not None else None for c in (one, other)]
        differences(one.name, other.name, f"{where}.name", found)
        differences(parents[0], parents[1], f"{where}.parent", found)
        differences(normalize(dict(one.fields)), normalize(dict(other.fields)), where, found)
    return found


def _by_path(containers) -> dict[str, object]:
    found: dict[str, object] = {}
    for container in containers:
        path = container_path(container)
        while path in found:  # two objects at one place (never in a valid file): keep both, apart
            path += "~"
        found[path] = container
    return found


def _type_names(container) -> list[str]:
    """The class and its bases by name: an extension's classes are made anew for every read of its spec."""
    return [cls.__qualname__ for cls in type(container).__mro__]


def _stored_object_id(container) -> str | None:
    """The object ID the file stores for ``container`` (None: the file has none and pynwb made one up)."""
    builder = _builder_of(container)
    value = builder.attributes.get("object_id") if builder is not None else None
    return value.decode() if isinstance(value, bytes) else value


# -- both ----------------------------------------------------------------------------------------------------
def compare_ios(expected_io, actual_io) -> list[str]:
    """Builders, then containers, of two open IO objects over the same NWB file."""
    found = compare_builders(expected_io.read_builder(), actual_io.read_builder())
    expected = expected_io.read()
    try:
        actual = actual_io.read()
    except Exception as error:  # noqa: BLE001 - a candidate pynwb cannot construct is a difference, reported
        return [*found, f"pynwb cannot construct the candidate's objects: {type(error).__name__}: {error}"]
    return found + compare_containers(expected, actual)


def assert_same_nwb(expected_io, actual_io) -> None:
    found = compare_ios(expected_io, actual_io)
    if found:
        raise AssertionError(f"{len(found)} difference(s):\n" + "\n".join(found))


# -- the raw tree: h5py against the index, without hdmf -----------------------------------------------------
def compare_raw(h5_path, index: dict) -> list[str]:
    """Every group, dataset, attribute and link of the HDF5 file at ``h5_path`` (walked with h5py alone)
    against the same in ``index`` (walked with zarr over the index's store): kinds, values and the types that
    carry them, as h5py returns them. Objects reached by several paths (hard links) are compared once, and a
    reference or link may name any path of its target."""
    from nwb_cloud.refs.handle import IndexHandle
    from nwb_cloud.refs.local import FileReader

    found: list[str] = []
    with h5py.File(h5_path, "r") as file, IndexHandle(index, FileReader(h5_path)) as handle:
        paths = _hdf5_paths(file)
        expected = _hdf5_tree(file, paths)
        actual = _index_tree(zarr.open(handle.store, mode="r"), paths)
    differences(expected, actual, "", found)
    return found


def _hdf5_paths(file: h5py.File) -> dict[str, str]:
    """Every path of every object -> the object's canonical path (the first of its paths in sorted order)."""
    by_object: dict[tuple, list[str]] = {}

    def visit(name: str, obj) -> None:
        info = h5py.h5o.get_info(obj.id)
        by_object.setdefault((info.fileno, info.addr), []).append("/" + name)

    by_object[(h5py.h5o.get_info(file.id).fileno, h5py.h5o.get_info(file.id).addr)] = ["/"]
    names: list[str] = []
    file.visit_links(names.append)
    for name in names:
        if isinstance(file.get(name, getlink=True), (h5py.SoftLink, h5py.ExternalLink)):
            continue  # a hard link of this file is an object of it; the others point somewhere
        obj = file.get(name)
        if obj is not None:
            visit(name, obj)
    return {path: min(group) for group in by_object.values() for path in group}


def _hdf5_tree(file: h5py.File, paths: dict[str, str]) -> dict:
    tree: dict = {"/": _hdf5_node(file, paths)}
    names: list[str] = []
    file.visit_links(names.append)
    for name in names:
        path = "/" + name
        link = file.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            tree[path] = Typed("soft link", paths.get(link.path, link.path))
        elif isinstance(link, h5py.ExternalLink):
            tree[path] = Typed("external link", [link.filename, link.path])
        elif paths[path] != path:
            tree[path] = Typed("hard link", paths[path])
        else:
            tree[path] = _hdf5_node(file[name], paths)
    return tree


def _hdf5_node(obj, paths: dict[str, str]) -> dict:
    attrs = {}
    for key in obj.attrs:
        value = obj.attrs[key]
        attrs[key] = _h5_ref(obj.file, value, paths) if isinstance(value, h5py.Reference) else normalize(value)
    if isinstance(obj, h5py.Group):
        return {"kind": "group", "attrs": attrs}
    return {"kind": "dataset", "attrs": attrs, "data": _h5_data(obj, paths)}


def _h5_ref(file, ref, paths):
    target = file[ref]
    path = paths.get(target.name, target.name)
    if isinstance(ref, h5py.RegionReference):
        return Typed("region", [path, _values(np.asarray(target[ref]).reshape(-1))])
    return Typed("reference", path)


def _h5_data(dataset: h5py.Dataset, paths: dict[str, str]):
    values = dataset[()]
    dtype = dataset.dtype
    if h5py.check_ref_dtype(dtype) is not None:
        refs = [_h5_ref(dataset.file, ref, paths) for ref in np.asarray(values).reshape(-1)]
        return Typed(f"references {dataset.shape}", refs)
    if dtype.names is not None:
        rows = [[_h5_ref(dataset.file, row[name], paths) if h5py.check_ref_dtype(dtype[name]) else _values(row[name])
                 for name in dtype.names] for row in np.asarray(values).reshape(-1)]  # fmt: skip
        return Typed(f"records {_dtype_text(_record_dtype(dtype))} {dataset.shape}", rows)
    if dtype.kind == "O":  # variable-length strings (h5py gives bytes; the index str or bytes)
        return Typed(f"text {dataset.shape}", _values(values))
    return Stored("array", dtype.str, dataset.shape, np.asarray(values))


def _record_dtype(dtype: np.dtype) -> np.dtype:
    """A compound dtype as both sides can state it: object fields (strings, references) as "|O"."""
    return np.dtype([(name, "O" if dtype[name].kind == "O" else dtype[name].str) for name in dtype.names])


def _index_tree(root, paths: dict[str, str]) -> dict:
    from nwb_cloud.refs.attrs import typed

    tree: dict = {}
    specloc = root.attrs.get(".specloc")

    def node(path: str, obj) -> None:
        raw = dict(obj.attrs.asdict())  # a copy: zarr hands out its cached dict
        links = raw.pop("zarr_link", [])
        raw.pop("zarr_dtype", None)
        attrs = {}
        for key, value in typed(raw).items():
            if key == ".specloc":
                attrs[key] = Typed("reference", paths.get("/" + value.lstrip("/"), value))
            elif isinstance(value, dict) and value.get("zarr_dtype") == "object":
                attrs[key] = _zarr_ref(root, value["value"], paths)
            else:
                attrs[key] = normalize(value)
        if isinstance(obj, zarr.Array):
            data = _zarr_data(root, obj, paths)
            if specloc and path.startswith(f"/{specloc}/") and isinstance(data, Typed) and data.kind == "text (1,)":
                data = Typed("text ()", data.value[0])  # the format stores these scalars with shape (1,)
            tree[path] = {"kind": "dataset", "attrs": attrs, "data": data}
        else:
            tree[path] = {"kind": "group", "attrs": attrs}
            for link in links:
                if link.get("source", ".") != ".":
                    tree[f"{path.rstrip('/')}/{link['name']}"] = Typed("external link", [link["source"], link["path"]])
                    continue
                target = paths.get(link["path"], link["path"])
                tree[f"{path.rstrip('/')}/{link['name']}"] = Typed("hard link" if link.get("hard") else "soft link",
                                                                   target)  # fmt: skip
            for name, child in obj.items():
                node(f"{path.rstrip('/')}/{name}", child)

    node("/", root)
    return tree


def _zarr_ref(root, reference: dict, paths: dict[str, str]):
    path = paths.get(reference["path"], reference["path"])
    if "region" not in reference:
        return Typed("reference", path)
    return Typed("region", [path, _values(_select(root[reference["path"].lstrip("/")][()], reference["region"]))])


def _select(values: np.ndarray, region):
    """The elements of a region (the index's encoding of it), in the order HDF5 reads them: C order."""
    if region == "all":
        return values.reshape(-1)
    if region == "none":
        return values.reshape(-1)[:0]
    if "points" in region:
        points = np.asarray(region["points"], dtype=int).reshape(-1, values.ndim)
        return values[tuple(points.T)]
    mask = np.zeros(values.shape, dtype=bool)
    for first, last in region["blocks"]:
        mask[tuple(slice(a, b + 1) for a, b in zip(first, last, strict=True))] = True
    return values[mask]


def _zarr_data(root, array, paths: dict[str, str]):
    values = array[()]
    kind = array.attrs.get("zarr_dtype")
    if kind == "object":
        return Typed(f"references {array.shape}", [_zarr_ref(root, ref, paths) for ref in values.reshape(-1)])
    if array.dtype.names is not None:  # compound: with references (TableJSON rows) or numeric records
        fields = kind if isinstance(kind, list) else [{"name": name, "dtype": None} for name in array.dtype.names]
        rows = [[_zarr_ref(root, row[i], paths) if field["dtype"] == "object" else _values(row[i])
                 for i, field in enumerate(fields)] for row in np.asarray(values).reshape(-1)]  # fmt: skip
        return Typed(f"records {_dtype_text(array.dtype)} {array.shape}", rows)
    if array.dtype.kind == "O":
        return Typed(f"text {array.shape}", _values(values))
    return Stored("array", array.dtype.str, array.shape, np.asarray(values))
