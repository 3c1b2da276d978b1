"""Kerchunk's HDF5 translation, completed with what NWB needs and written in hdmf-zarr's v2 conventions.

kerchunk's ``SingleHdf5ToZarr`` finds every chunk of every dataset in the HDF5 B-trees and describes it as
a byte range; that part is kept as it is. What it does to NWB is not: references become ``None`` or are
dropped, links are skipped, compound datasets become JSON lists, fletcher32 pipelines are refused, inline
chunks that happen to parse as JSON are rewritten, and a failure on one object is a warning.
:class:`NwbHdf5ToZarr` overrides its per-object hooks so that

* groups, links and attributes follow hdmf-zarr: attributes that are object references become
  ``{"zarr_dtype": "object", "value": {"source": ".", "path", "object_id", "source_object_id"}}``, soft
  links and extra hard links become ``zarr_link`` entries of their parent, the root's ``.specloc`` is the
  path of the cached specifications;
* every dataset gets hdmf-zarr's ``zarr_dtype``; scalars are embedded 0-d arrays marked ``"scalar"`` (shape
  ``(1,)`` under the cached specifications, which hdmf-zarr reads as ``dataset[0]``); variable-length
  strings, reference datasets and compound datasets holding references or strings are embedded (they live
  in the HDF5 global heap, not in chunks, so they cannot be byte ranges);
* numeric datasets, packed numeric compounds included, stay kerchunk byte ranges (small chunks inlined
  below ``inline_threshold``); a fletcher32 checksum is kept and verified by numcodecs' ``Fletcher32``;
* anything without a faithful form raises :class:`~nwb_cloud.refs.errors.Unrepresentable` naming the
  object, and a final pass checks that every HDF5 object reached the index: nothing is dropped silently.

References always point at an object's *primary* path: the path under which the object is translated
(the first one HDF5's visit order meets), so a reference through a second hard link still resolves.
"""

from __future__ import annotations

import base64
import json

import h5py
import numcodecs
import numpy as np
import zarr
from kerchunk.hdf import SingleHdf5ToZarr
from zarr.storage import KVStore

from nwb_cloud.refs.codecs import TableJSON
from nwb_cloud.refs.errors import RefsError, Unrepresentable

URL_TEMPLATE = "{{u}}"  # chunk URLs are a template: moving the asset rewrites one value, not every ref
SPEC_LOC_ATTR = ".specloc"
RESERVED_ATTRS = ("zarr_dtype", "zarr_link")


class NwbHdf5ToZarr(SingleHdf5ToZarr):
    """Translate one NWB HDF5 file (an open binary file object) into kerchunk refs readable by hdmf-zarr."""

    def __init__(self, fileobj, inline_threshold: int = 500, progress=None):
        super().__init__(fileobj, url=URL_TEMPLATE, inline_threshold=inline_threshold, error="raise")
        self._progress = progress  # called with (objects done, objects in the file) as the build goes
        self.store = _Store()  # zarr's default clears a path by scanning every key: quadratic in objects
        self._zroot = zarr.group(store=self.store, overwrite=True)
        self._attrs_deferred = False
        self._primary: dict[tuple[int, int], str] = {}
        self._root_object_id = _text(self._h5f.attrs.get("object_id"))
        self._spec_path: str | None = None
        self._embedded: set[str] = set()  # arrays whose chunks Zarr wrote into the index

    # -- the entry point -------------------------------------------------------------------------------
    def translate(self) -> dict:
        """kerchunk's ``translate`` (attributes of the root, then every object once), plus links and a check."""
        self._primary[_object_key(self._h5f)] = "/"
        self._h5f.visititems(self._record_primary)
        if isinstance(self._h5f.attrs.get(SPEC_LOC_ATTR), h5py.Reference):
            self._spec_path = self._target_path(self._h5f.attrs[SPEC_LOC_ATTR], f"/@{SPEC_LOC_ATTR}")
        self._transfer_attrs(self._h5f, self._zroot)
        self._done = 0
        self._h5f.visititems(self._translator)
        for group_path, entries in self._links().items():
            group = self._zgroup(group_path)
            group.attrs["zarr_link"] = group.attrs.get("zarr_link", []) + entries
        self._check_complete()
        return {"version": 1, "refs": encode_store(self.store, self._embedded)}

    def _record_primary(self, name: str, h5obj) -> None:
        self._primary.setdefault(_object_key(h5obj), "/" + name)

    # -- kerchunk's per-object hooks ---------------------------------------------------------------------
    def _translator(self, name: str, h5obj) -> None:
        where = "/" + name
        if self._progress is not None:
            self._done += 1
            self._progress(self._done, len(self._primary) - 1)
        try:
            if isinstance(h5obj, h5py.Dataset):
                self._dataset(where, h5obj)
            elif isinstance(h5obj, h5py.Group):
                super()._translator(name, h5obj)
            else:
                raise Unrepresentable(f"{where}: HDF5 object of type {type(h5obj).__name__} is not supported")
        except RefsError:
            raise
        except Exception as error:  # noqa: BLE001 - kerchunk raises bare RuntimeError/TypeError; name the object
            raise Unrepresentable(f"{where}: {type(error).__name__}: {error}") from error

    def _decode_filters(self, h5obj) -> list:
        """kerchunk's filter mapping, plus HDF5's fletcher32 checksum verified by numcodecs' ``Fletcher32``.

        kerchunk 0.2.7 refuses a fletcher32 pipeline (and would otherwise cut the checksum off unverified).
        """
        if not h5obj.fletcher32:
            return super()._decode_filters(h5obj)
        if list(h5obj._filters)[-1] != "fletcher32":
            raise Unrepresentable(f"{h5obj.name}: fletcher32 is not the last filter of {list(h5obj._filters)}")
        return [*super()._decode_filters(_WithoutFletcher(h5obj)), numcodecs.Fletcher32()]

    def _storage_info(self, dset) -> dict:
        info = super()._storage_info(dset)
        if dset.fletcher32:  # kerchunk takes 4 bytes off each fletcher32 chunk: keep them for the checksum
            for location in info.values():
                location["size"] += 4
        return info

    def _transfer_attrs(self, h5obj, zobj) -> None:
        if not self._attrs_deferred:
            zobj.attrs.put(self._attributes(h5obj))

    # -- attributes --------------------------------------------------------------------------------------
    def _attributes(self, h5obj) -> dict:
        where = h5obj.name
        converted = {}
        for key in h5obj.attrs:
            try:
                value = h5obj.attrs[key]
            except Exception as error:  # noqa: BLE001 - h5py cannot even read it (e.g. an unsupported type)
                raise Unrepresentable(f"{where}: attribute {key!r} cannot be read: {error}") from error
            if key in RESERVED_ATTRS:
                raise Unrepresentable(f"{where}: attribute {key!r} collides with an hdmf-zarr reserved name")
            if key == SPEC_LOC_ATTR:
                if where != "/" or not isinstance(value, h5py.Reference):
                    raise Unrepresentable(f"{where}: attribute {key!r} must be a reference on the root group")
                converted[key] = self._target_path(value, f"{where}@{key}").lstrip("/")
                continue
            converted[key] = self._attribute_value(value, f"{where}@{key}")
        return converted

    def _attribute_value(self, value, where: str):
        if isinstance(value, h5py.RegionReference):
            raise Unrepresentable(f"{where}: region references have no hdmf-zarr form")
        if isinstance(value, h5py.Reference):
            return {"zarr_dtype": "object", "value": self._reference(value, where)}
        if isinstance(value, h5py.Empty):
            raise Unrepresentable(f"{where}: empty (null dataspace) attributes have no JSON form")
        if isinstance(value, (str, bytes, np.bytes_)):
            return _text(value, where)
        if isinstance(value, np.generic):
            if value.dtype.kind not in "biuf":
                raise Unrepresentable(f"{where}: attribute of dtype {value.dtype} has no JSON form")
            return value.item()
        if isinstance(value, np.ndarray):
            return self._attribute_array(value, where)
        raise Unrepresentable(f"{where}: attribute of type {type(value).__name__} has no JSON form")

    def _attribute_array(self, value: np.ndarray, where: str):
        kind = value.dtype.kind
        if kind in "biuf":
            return value.tolist()
        if kind == "S" or (kind == "O" and h5py.check_string_dtype(value.dtype) is not None):
            return _nested(value, lambda item: _text(item, where))
        if kind == "O" and all(isinstance(item, (str, bytes)) for item in value.flat):
            return _nested(value, lambda item: _text(item, where))
        raise Unrepresentable(
            f"{where}: attribute array of dtype {value.dtype} (e.g. references) has no hdmf-zarr form"
        )

    # -- references --------------------------------------------------------------------------------------
    def _reference(self, ref, where: str) -> dict:
        return {
            "source": ".",
            "path": self._target_path(ref, where),
            "object_id": _text(self._h5f[ref].attrs.get("object_id")),
            "source_object_id": self._root_object_id,
        }

    def _target_path(self, ref, where: str) -> str:
        if isinstance(ref, h5py.RegionReference):
            raise Unrepresentable(f"{where}: region references have no hdmf-zarr form")
        if not ref:
            raise Unrepresentable(f"{where}: null object reference")
        try:
            target = self._h5f[ref]
        except Exception as error:  # noqa: BLE001
            raise Unrepresentable(f"{where}: reference cannot be resolved: {error}") from error
        return self._primary_path(target, where)

    def _primary_path(self, target, where: str) -> str:
        try:
            return self._primary[_object_key(target)]
        except KeyError:
            raise Unrepresentable(f"{where}: points at {target.name}, which is not reachable from the root") from None

    # -- datasets ----------------------------------------------------------------------------------------
    def _dataset(self, where: str, h5obj: h5py.Dataset) -> None:
        dtype = h5obj.dtype
        if h5obj.shape is None:
            raise Unrepresentable(f"{where}: empty (null dataspace) datasets have no Zarr form")
        ref_kind = h5py.check_ref_dtype(dtype)
        if ref_kind is h5py.RegionReference:
            raise Unrepresentable(f"{where}: datasets of region references have no hdmf-zarr form")
        if ref_kind is not None:
            self._references(where, h5obj)
        elif h5py.check_string_dtype(dtype) is not None and (h5obj.ndim == 0 or dtype.kind == "O"):
            self._strings(where, h5obj)
        elif dtype.names is not None:
            self._compound(where, h5obj)
        elif dtype.kind not in "biufcS":
            raise Unrepresentable(f"{where}: dataset of dtype {dtype} is not supported")
        elif h5obj.ndim == 0:
            self._embed(where, h5obj, np.asarray(h5obj[()]), "scalar")
        else:
            self._byte_ranges(where, h5obj)

    def _byte_ranges(self, where: str, h5obj: h5py.Dataset) -> None:
        """kerchunk's own translation (chunk byte ranges), with hdmf-zarr's attributes."""
        vlen = self.vlen
        self.vlen = "leave"  # kerchunk "embeds" every compound as JSON lists; "leave" keeps packed records
        self._attrs_deferred = True  # written once below, with zarr_dtype
        try:
            super()._translator(where.lstrip("/"), h5obj)
        finally:
            self.vlen, self._attrs_deferred = vlen, False
        self._zroot[where].attrs.put({**self._attributes(h5obj), "zarr_dtype": _zarr_dtype(h5obj.dtype)})

    def _compound(self, where: str, h5obj: h5py.Dataset) -> None:
        dtype = h5obj.dtype
        if any(dtype[name].names is not None or dtype[name].subdtype for name in dtype.names):
            raise Unrepresentable(f"{where}: nested or array fields in compound dtype {dtype} are not supported")
        if any(dtype[name].kind == "O" for name in dtype.names):
            self._table(where, h5obj)
        elif any(dtype[name].kind not in "biuf" for name in dtype.names):
            raise Unrepresentable(f"{where}: compound dtype {dtype} has a field type that is not supported")
        elif h5obj.ndim == 0:
            self._embed(where, h5obj, np.asarray(h5obj[()]), "scalar")
        elif _packed(dtype):
            self._byte_ranges(where, h5obj)
        else:  # zarr's dtype notation cannot say where padding is: copy the records into the index
            self._embed(where, h5obj, np.asarray(h5obj[()]).astype(_packed_dtype(dtype)), _zarr_dtype(dtype))

    def _strings(self, where: str, h5obj: h5py.Dataset) -> None:
        values = h5obj.asstr()[()] if h5obj.ndim == 0 else h5obj[()]
        if h5obj.ndim == 0:
            data = np.array(_text(values, where), dtype=object)
            self._embed(where, h5obj, data, "scalar", object_codec=numcodecs.VLenUTF8())
            return
        if h5py.check_string_dtype(h5obj.dtype).encoding == "utf-8":
            data = _object_array(values, lambda item: _text(item, where))
            self._embed(where, h5obj, data, "str", object_codec=numcodecs.VLenUTF8())
        else:
            data = _object_array(values, lambda item: item if isinstance(item, bytes) else item.encode())
            self._embed(where, h5obj, data, "ascii", object_codec=numcodecs.VLenBytes())

    def _references(self, where: str, h5obj: h5py.Dataset) -> None:
        if h5obj.ndim != 1:
            raise Unrepresentable(f"{where}: {h5obj.ndim}-dimensional reference datasets have no hdmf-zarr form")
        values = h5obj[()]
        data = np.empty(len(values), dtype=object)
        data[:] = [self._reference(ref, f"{where}[{index}]") for index, ref in enumerate(values)]
        self._embed(where, h5obj, data, "object", object_codec=numcodecs.JSON())

    def _table(self, where: str, h5obj: h5py.Dataset) -> None:
        dtype = h5obj.dtype
        if h5obj.ndim != 1:
            raise Unrepresentable(f"{where}: {h5obj.ndim}-dimensional compound datasets are not supported")
        fields, converters, zarr_dtypes = [], [], []
        for name in dtype.names:
            field = dtype[name]
            ref_kind = h5py.check_ref_dtype(field)
            string = h5py.check_string_dtype(field)
            if ref_kind is h5py.RegionReference:
                raise Unrepresentable(f"{where}: field {name!r} holds region references (no hdmf-zarr form)")
            if ref_kind is not None:
                fields.append((name, "O"))
                converters.append(lambda value, row, name=name: self._reference(value, f"{where}[{row}].{name}"))
                zarr_dtypes.append({"name": name, "dtype": "object"})
            elif string is not None:
                fields.append((name, "O"))
                converters.append(lambda value, row: _text(value, where))
                zarr_dtypes.append({"name": name, "dtype": "str" if string.encoding == "utf-8" else "ascii"})
            elif field.kind in "biuf":
                fields.append((name, field.str))
                converters.append(lambda value, row: value.item() if isinstance(value, np.generic) else value)
                zarr_dtypes.append({"name": name, "dtype": _zarr_dtype(field)})
            else:
                raise Unrepresentable(f"{where}: compound field {name!r} of dtype {field} is not supported")
        rows = [
            tuple(convert(value, index) for convert, value in zip(converters, row, strict=True))
            for index, row in enumerate(h5obj[()])
        ]
        data = np.empty(len(rows), dtype=fields)
        data[:] = rows
        self._embed(where, h5obj, data, zarr_dtypes, object_codec=TableJSON(), dtype=np.dtype(fields))

    def _embed(self, where, h5obj, data: np.ndarray, zarr_dtype, object_codec=None, dtype=None) -> None:
        """An array whose values live in the index itself (one chunk), not as byte ranges of the file."""
        if zarr_dtype == "scalar" and self._spec_path and where.startswith(self._spec_path + "/"):
            data = data.reshape(1)  # hdmf-zarr reads cached specifications as ``dataset[0]``
        array = self._zroot.require_dataset(
            where,
            shape=data.shape,
            chunks=tuple(max(1, n) for n in data.shape),
            dtype=dtype if dtype is not None else data.dtype,
            object_codec=object_codec,
            compressor=None,
            fill_value=None,
            overwrite=True,
        )
        if data.size:
            array[...] = data
        self._embedded.add(where.lstrip("/"))
        attrs = self._attributes(h5obj)
        attrs["zarr_dtype"] = zarr_dtype
        array.attrs.put(attrs)

    # -- links and completeness --------------------------------------------------------------------------
    def _links(self) -> dict[str, list[dict]]:
        """``zarr_link`` entries: every soft link, and every hard link that is not an object's primary path."""
        primary_paths = set(self._primary.values())
        found: list[tuple[str, object]] = []

        def visit(name: str, link) -> None:  # raising inside h5py's link visit breaks h5py: collect, then check
            if not (isinstance(link, h5py.HardLink) and "/" + name in primary_paths):
                found.append(("/" + name, link))

        self._h5f.visititems_links(visit)
        links: dict[str, list[dict]] = {}
        for child_path, link in found:
            if isinstance(link, h5py.ExternalLink):
                raise Unrepresentable(
                    f"{child_path}: external link to {link.filename}:{link.path} (an index covers one file)"
                )
            target = self._h5f.get(child_path)
            if target is None:
                raise Unrepresentable(f"{child_path}: dangling link to {getattr(link, 'path', '?')}")
            group_path, _, link_name = child_path.rpartition("/")
            entry = {"name": link_name, "source": ".", "path": self._primary_path(target, child_path)}
            links.setdefault(group_path or "/", []).append(entry)
        return links

    def _zgroup(self, path: str):
        return self._zroot if path == "/" else self._zroot[path]

    def _check_complete(self) -> None:
        for path in self._primary.values():
            if path == "/":
                continue
            key = path.lstrip("/")
            if f"{key}/.zarray" not in self.store and f"{key}/.zgroup" not in self.store:
                raise Unrepresentable(f"{path}: kerchunk left this object out of the index")


class _WithoutFletcher:
    """An h5py dataset whose filter pipeline is seen without its trailing fletcher32 checksum."""

    def __init__(self, dataset: h5py.Dataset):
        self._dataset = dataset
        self._filters = {k: v for k, v in dataset._filters.items() if k != "fletcher32"}

    def __getattr__(self, name):
        return getattr(self._dataset, name)


class _Store(KVStore):
    """A dict-backed Zarr store whose ``rmdir`` of a path that holds nothing costs nothing."""

    def __init__(self):
        super().__init__({})
        self._nodes: set[str] = set()

    def __setitem__(self, key, value):
        node, _, name = key.rpartition("/")
        if name in (".zarray", ".zgroup"):
            self._nodes.add(node)
        super().__setitem__(key, value)

    def is_erasable(self) -> bool:
        return True

    def rmdir(self, path: str = "") -> None:
        if path and path not in self._nodes:  # zarr creates every parent group: no node here, none below
            return
        prefix = f"{path}/" if path else ""
        for key in [key for key in self._mutable_mapping if key.startswith(prefix) or key == path]:
            del self._mutable_mapping[key]
        self._nodes = {node for node in self._nodes if not (node == path or node.startswith(prefix))}


def _object_key(h5obj) -> tuple[int, int]:
    info = h5py.h5o.get_info(h5obj.id)
    return (info.fileno, info.addr)


def _text(value, where: str = "") -> str | None:
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise Unrepresentable(f"{where}: bytes that are not UTF-8 have no JSON form") from None
    if isinstance(value, str):
        return value
    raise Unrepresentable(f"{where}: expected text, found {type(value).__name__}")


def _nested(array: np.ndarray, convert) -> list:
    return np.vectorize(convert, otypes=[object])(array).tolist() if array.size else array.tolist()


def _object_array(values: np.ndarray, convert) -> np.ndarray:
    data = np.empty(values.shape, dtype=object)
    for index, item in np.ndenumerate(values):
        data[index] = convert(item)
    return data


def _packed(dtype: np.dtype) -> bool:
    offsets = [dtype.fields[name][1] for name in dtype.names]
    sizes = [dtype[name].itemsize for name in dtype.names]
    return offsets == [sum(sizes[:i]) for i in range(len(sizes))] and dtype.itemsize == sum(sizes)


def _packed_dtype(dtype: np.dtype) -> np.dtype:
    return np.dtype([(name, dtype[name].str) for name in dtype.names])


def _zarr_dtype(dtype: np.dtype):
    """hdmf-zarr's ``zarr_dtype`` for a numeric, fixed-string or compound numpy dtype."""
    if dtype.names is not None:
        return [{"name": name, "dtype": _zarr_dtype(dtype[name])} for name in dtype.names]
    if dtype.kind == "S":
        return "ascii"
    return dtype.name


METADATA_KEYS = (".zarray", ".zattrs", ".zgroup")


def encode_store(store: dict, embedded: set[str]) -> dict:
    """The Zarr store as JSON values: metadata minified, chunk bytes as ASCII text or ``base64:``.

    kerchunk's own ``_encode_for_JSON`` re-serialises *every* value that parses as JSON - inline chunk bytes
    included - so a uint8 chunk ``b" 1"`` becomes ``"1"`` and ``b"[1.50, 2]"`` becomes ``"[1.5,2]"``: silently
    corrupted data. Only Zarr metadata is JSON here; chunk bytes are kept byte for byte. ``embedded`` are
    the arrays written through Zarr (raw chunk bytes); other inline chunks are kerchunk's, which arrive
    already as ``base64:`` text when they are not ASCII.
    """
    encoded = {}
    for key, value in store.items():
        array, _, name = key.rpartition("/")
        if isinstance(value, list):
            encoded[key] = value
        elif name in METADATA_KEYS:
            encoded[key] = json.dumps(json.loads(value), separators=(",", ":"))
        elif array not in embedded and _kerchunk_base64(value):
            encoded[key] = value.decode()
        else:
            encoded[key] = _chunk_text(bytes(value))
    return encoded


def _kerchunk_base64(value: bytes) -> bool:
    """kerchunk wrote ``base64:`` + the chunk for a chunk that is not ASCII (an ASCII chunk it keeps raw)."""
    if not value.startswith(b"base64:"):
        return False
    try:
        return not base64.b64decode(value[7:], validate=True).isascii()
    except ValueError:
        return False


def _chunk_text(data: bytes) -> str:
    """fsspec's reference file system reads a ``str`` value as its UTF-8 bytes, or ``base64:`` + encoded bytes."""
    if data.isascii() and not data.startswith(b"base64:"):
        return data.decode("ascii")
    return "base64:" + base64.b64encode(data).decode()


def dumps(refs: dict) -> str:
    """The index as compact JSON text."""
    return json.dumps(refs, separators=(",", ":"))
