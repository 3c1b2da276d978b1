"""Is what a reader returns the file? A recursive comparison of two reads of one NWB file.

Two levels, both needed: the *builders* (every group, dataset, attribute, link and value as hdmf reads
the file, before any NWB type is applied) and the *containers* (every pynwb object by object ID, with every
field). Values are read in full and compared exactly: arrays by dtype, shape and values (NaN equal to NaN),
references by what they point at (a builder's path, a container's object ID), strings as text.

Backends legitimately differ in the Python type that carries a value: an attribute array is a numpy array
from h5py and a list from JSON, a reference column is an ``H5`` or a ``Zarr`` reference dataset. Those
carriers are normalised away; the values they carry are not. Lazily read datasets (h5py or zarr arrays)
are compared including their dtype.

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
    """A resolved reference: the target's path (builders) or object ID (containers)."""

    target: str | None


@dataclass(frozen=True)
class Stored:
    """A dataset read from storage: dtype, shape and the values (as nested lists)."""

    dtype: str
    shape: tuple
    values: object


def normalize(value):
    """``value`` as plain comparable Python data (see the module docstring)."""
    if isinstance(value, AbstractContainer):
        return Ref(value.object_id)
    if isinstance(value, ReferenceBuilder):
        return Ref(value.builder.path)
    if isinstance(value, LinkBuilder):
        return Ref(value.builder.path)
    if isinstance(value, Builder):
        return Ref(value.path)
    if isinstance(value, DataIO):
        return normalize(value.data)
    if isinstance(value, (h5py.Dataset, zarr.Array)):
        return _stored(value, value[()])
    if isinstance(value, HDMFDataset):  # reference and compound wrappers resolve what the dataset holds
        return _stored(value.dataset, value[:] if len(value) else [])
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    if isinstance(value, np.void):
        return (
            tuple(normalize(item) for item in value.tolist())
            if value.dtype.names is None
            else tuple(normalize(value[name]) for name in value.dtype.names)
        )
    if isinstance(value, np.generic):
        return value.item() if value.dtype.kind != "S" else normalize(value.item())
    if isinstance(value, np.ndarray):
        if value.dtype.names is not None:
            return [normalize(row) for row in value.reshape(-1)] if value.ndim else normalize(value[()])
        if value.ndim == 0:
            return normalize(value[()])
        return [normalize(item) for item in value]
    if isinstance(value, dict):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalize(item) for item in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value


def _stored(dataset, values) -> Stored:
    """Strings, references and compound records with such fields are all objects ("|O") in both backends."""
    dtype = dataset.dtype
    kind = dtype.str if dtype.names is None else str([(name, dtype[name].str) for name in dtype.names])
    if dtype.names is None and dtype.kind in "biufc" and isinstance(values, np.ndarray | np.generic):
        return Stored(dtype=kind, shape=tuple(dataset.shape), values=np.asarray(values))  # compared as arrays
    return Stored(dtype=kind, shape=tuple(dataset.shape), values=normalize(values))


def differences(expected, actual, where: str, found: list[str]) -> None:
    """Append to ``found`` every place where the normalised values differ."""
    if len(found) >= MAX_DIFFERENCES:
        return
    if isinstance(expected, Stored) or isinstance(actual, Stored):
        if not (isinstance(expected, Stored) and isinstance(actual, Stored)):
            found.append(f"{where}: stored dataset on one side only ({_short(expected)} vs {_short(actual)})")
            return
        if expected.dtype != actual.dtype or expected.shape != actual.shape:
            found.append(f"{where}: dtype/shape {expected.dtype}{expected.shape} vs {actual.dtype}{actual.shape}")
            return
        if isinstance(expected.values, np.ndarray) and isinstance(actual.values, np.ndarray):
            _array_differences(expected.values, actual.values, where, found)
            return
        differences(expected.values, actual.values, where, found)
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
    if isinstance(left, bool) != isinstance(right, bool):
        return False
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    return type(left) is type(right) and left == right


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
    """Every pynwb object (by object ID) of two ``NWBFile`` reads: type, name, parent and every field."""
    found: list[str] = []
    left, right = expected.objects, actual.objects
    if set(left) != set(right):
        found.append(f"object IDs differ: only expected {sorted(set(left) - set(right))[:5]}, "
                     f"only actual {sorted(set(right) - set(left))[:5]}")  # fmt: skip
    for object_id in sorted(set(left) & set(right)):
        one, other = left[object_id], right[object_id]
        where = f"{type(one).__name__} {one.name!r} ({object_id})"
        if type(one) is not type(other):
            found.append(f"{where}: type {type(one).__name__} vs {type(other).__name__}")
            continue
        parents = [normalize(c.parent) if c.parent is not None else None for c in (one, other)]
        differences(one.name, other.name, f"{where}.name", found)
        differences(parents[0], parents[1], f"{where}.parent", found)
        differences(normalize(dict(one.fields)), normalize(dict(other.fields)), where, found)
    return found


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
