"""HDF5 attributes in the index: a JSON value hdmf-zarr can read, and a type tag that gives back h5py's value.

JSON has numbers, text and lists; h5py gives numpy scalars (``np.float64``, ``np.int32``, ``np.bool_``),
numpy arrays of a given dtype and byte order, ``np.bytes_`` for fixed-length strings, object arrays of
``str`` for variable-length ones and ``h5py.Empty`` for a null dataspace. User code that runs on the local
file (``series.starting_frame.shape``, ``attr.dtype``) breaks on the plain JSON value. So every attribute is
stored as

* its JSON value under its own name in ``.zattrs`` (what any Zarr or hdmf-zarr reader sees), and
* for every value that is not a plain ``str``, a tag under ``.zattrs[TYPES_KEY][name]``: ``{"dtype": numpy
  dtype, "shape": [...]}`` (no ``shape``: a numpy scalar), ``{"empty": dtype}`` for ``h5py.Empty``.

:func:`typed` undoes the encoding exactly. Text that is not valid UTF-8 (a Latin-1 micro sign) is kept as
h5py keeps it in a ``str``: undecodable bytes as lone surrogates (``surrogateescape``), which JSON escapes
(``"\\udcb5"``) and :func:`typed` turns back into the same bytes. Non-finite floats are the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"`` (JSON has no such numbers). Complex values are ``[real, imaginary]`` pairs;
compound values are lists of fields. The format is written down in ``docs/index-format.md``.
"""

from __future__ import annotations

import math

import h5py
import numpy as np

from nwb_cloud.refs.format import TYPES_KEY

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


class NoJsonForm(ValueError):
    """An attribute value has no JSON form (the caller names the object)."""


# -- encoding (the build) ----------------------------------------------------------------------------------------
def encode(value) -> tuple[object, dict | None]:
    """``(JSON value, tag or None)`` of an attribute value as h5py returns it (references are not handled here)."""
    if isinstance(value, str):
        return value, None
    if isinstance(value, h5py.Empty):
        return None, {"empty": _dtype_json(value.dtype)}
    if isinstance(value, bytes) and not isinstance(value, np.bytes_):
        return _text(value), {"dtype": "bytes"}
    if isinstance(value, np.generic):
        return _json(np.asarray(value)), {"dtype": _dtype_json(value.dtype)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            if not all(isinstance(item, str) for item in value.flat):
                kinds = sorted({type(item).__name__ for item in value.flat})
                raise NoJsonForm(f"attribute array of {', '.join(kinds)} objects has no JSON form")
            return value.tolist(), {"dtype": "str", "shape": list(value.shape)}
        return _json(value), {"dtype": _dtype_json(value.dtype), "shape": list(value.shape)}
    raise NoJsonForm(f"attribute of type {type(value).__name__} has no JSON form")


def _dtype_json(dtype: np.dtype):
    if dtype.names is not None:
        if any(dtype[name].hasobject or dtype[name].names is not None for name in dtype.names):
            raise NoJsonForm(f"compound attribute of dtype {dtype} (object or nested fields) has no JSON form")
        return [[name, _dtype_json(dtype[name])] for name in dtype.names]
    if dtype.subdtype is not None or dtype.kind not in "biufcS":
        raise NoJsonForm(f"attribute of dtype {dtype} has no JSON form")
    return dtype.str


def _json(array: np.ndarray):
    """A numpy array (or 0-d array) as JSON: numbers, text, [re, im] pairs, field lists."""
    dtype = array.dtype
    if dtype.names is not None:
        return _nested(array, lambda row: [_json(np.asarray(row[name])) for name in dtype.names])
    if dtype.kind == "S":
        return _nested(array, _text)
    if dtype.kind == "c":
        return _nested(array, lambda z: [_number(z.real), _number(z.imag)])
    if dtype.kind == "f":
        return _nested(array, _number)
    return array.tolist()


def _nested(array: np.ndarray, convert):
    if array.ndim == 0:
        return convert(array[()])
    return [_nested(item, convert) if isinstance(item, np.ndarray) else convert(item) for item in array]


def _number(value):
    value = float(value)
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _text(value: bytes) -> str:
    return bytes(value).decode("utf-8", errors="surrogateescape")


# -- decoding (the read) -----------------------------------------------------------------------------------------
def typed(attributes: dict) -> dict:
    """``attributes`` of a ``.zattrs`` with every tagged value as h5py gives it, and the tags removed."""
    tags = attributes.get(TYPES_KEY)
    if not tags:
        return {k: v for k, v in attributes.items() if k != TYPES_KEY}
    return {k: (decode(v, tags[k]) if k in tags else v) for k, v in attributes.items() if k != TYPES_KEY}


def decode(value, tag: dict):
    """The value h5py gives for a JSON ``value`` and its ``tag`` (see the module docstring)."""
    if "empty" in tag:
        return h5py.Empty(np.dtype(_dtype(tag["empty"])))
    kind = tag["dtype"]
    if kind == "bytes":
        return value.encode("utf-8", errors="surrogateescape")
    if kind == "str":
        array = np.empty(tuple(tag["shape"]), dtype=object)
        _fill(array, value, lambda item: item)
        return array
    dtype = np.dtype(_dtype(kind))
    shape = tuple(tag["shape"]) if "shape" in tag else ()
    array = np.empty(shape, dtype=dtype)
    _fill(array, value, lambda item: _item(item, dtype))
    return array if "shape" in tag else array[()]


def _fill(array: np.ndarray, value, convert) -> None:
    if array.ndim == 0:
        array[()] = convert(value)
        return
    for index in np.ndindex(array.shape):
        item = value
        for position in index:
            item = item[position]
        array[index] = convert(item)


def _item(item, dtype: np.dtype):
    if dtype.names is not None:
        return tuple(_item(field, dtype[name]) for field, name in zip(item, dtype.names, strict=True))
    if dtype.kind == "S":
        return item.encode("utf-8", errors="surrogateescape")
    if dtype.kind == "c":
        return complex(_float(item[0]), _float(item[1]))
    if dtype.kind == "f":
        return _float(item)
    return item


def _float(item) -> float:
    return _NON_FINITE[item] if isinstance(item, str) else float(item)


def _dtype(spec):
    if isinstance(spec, list):
        return [(name, _dtype(field)) for name, field in spec]
    return spec
