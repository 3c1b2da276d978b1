"""An NWB HDF5 file as Zarr v2 metadata in hdmf-zarr's conventions, its chunks left in the file as byte ranges.

The output is a kerchunk "version 1" reference set (``{"version": 1, "refs": {...}}``). kerchunk's own
``SingleHdf5ToZarr`` is not used: it drops references and links, applies a dataset's filters to chunks HDF5
stored unfiltered, refuses LZF, assumes the filters' order, gives empty datasets zero-sized chunks (a
``ZeroDivisionError`` in zarr at read time), rewrites inline chunks that parse as JSON, and turns a failure
on one object into a warning. :class:`NwbHdf5ToZarr` walks the file with h5py's public API instead:

* groups, links and attributes follow hdmf-zarr: attributes that are object (or region) references become
  ``{"zarr_dtype": "object", "value": {"source": ".", "path", "object_id", "source_object_id"}}``, soft links
  and extra hard links become ``zarr_link`` entries of their parent, the root's ``.specloc`` is the path of the
  cached specifications; every other attribute is a JSON value plus a type tag that gives back exactly what
  h5py returns (:mod:`nwb_cloud.refs.attrs`);
* every dataset gets hdmf-zarr's ``zarr_dtype``. Scalars are embedded 0-d arrays marked ``"scalar"`` (shape
  ``(1,)`` under the cached specifications, which hdmf-zarr reads as ``dataset[0]``); variable-length
  strings, reference datasets and compound datasets holding references or strings are embedded (they live
  in the HDF5 global heap, not in chunks); datasets with no elements are embedded empty;
* numeric datasets (packed numeric compounds included) are chunk byte ranges with HDF5's filter pipeline in
  its own order as Zarr ``filters`` (deflate, shuffle, fletcher32, LZF, Zstd, Blosc); chunks smaller than
  ``inline_threshold`` are copied into the index. A chunk HDF5 stored with an optional filter skipped (its
  filter mask: deflate or LZF did not shrink it) is listed under ``.zarray["nwb_cloud_skipped_filters"]``;
* region references keep their selection (``"region"``) beside the target; external links name the other
  file as the link does (``"source"``), which readers resolve beside the asset and read through its own index;
* anything without a faithful form raises :class:`~nwb_cloud.refs.errors.Unrepresentable` naming the object
  and why, and a final pass checks that every HDF5 object reached the index: nothing is dropped silently.

References always point at an object's *primary* path: the path under which the object is translated
(the first one HDF5's visit order meets), so a reference through a second hard link still resolves.
The format is specified in ``docs/index-format.md``.
"""

from __future__ import annotations

import base64
import json

import h5py
import numcodecs
import numpy as np
import zarr
from zarr.storage import KVStore

from nwb_cloud.refs import attrs as attributes
from nwb_cloud.refs.codecs import HDF5LZF, TableJSON
from nwb_cloud.refs.errors import RefsError, Unrepresentable
from nwb_cloud.refs.format import (
    METADATA_KEYS,
    RESERVED_ATTRS,
    SKIPPED_FILTERS,
    SPEC_LOC_ATTR,
    TYPES_KEY,
    URL_TEMPLATE,
)

# HDF5 filters and why those without a decoder here have no faithful form
_REFUSED_FILTERS = {
    h5py.h5z.FILTER_SZIP: "szip",
    h5py.h5z.FILTER_NBIT: "nbit",
    h5py.h5z.FILTER_SCALEOFFSET: "scaleoffset",
    32004: "LZ4 (hdf5plugin's framing)",
    32008: "bitshuffle (hdf5plugin's framing)",
}


class NwbHdf5ToZarr:
    """Translate one NWB HDF5 file (an open binary file object) into kerchunk refs readable by hdmf-zarr."""

    def __init__(self, fileobj, inline_threshold: int = 500, progress=None, sibling_exists=None):
        self._fileobj = fileobj
        self._sibling_exists = sibling_exists  # name -> whether that file is beside the asset (external links)
        self._h5f = h5py.File(fileobj, mode="r")
        self.inline = inline_threshold
        self._progress = progress  # called with (objects done, objects in the file) as the build goes
        self.store = _Store()  # zarr's default clears a path by scanning every key: quadratic in objects
        self._zroot = zarr.group(store=self.store, overwrite=True)
        self._primary: dict[tuple[int, int], str] = {}
        self._root_object_id = _text(self._h5f.attrs.get("object_id"))
        self._spec_path: str | None = None
        self._embedded: set[str] = set()  # arrays whose chunks Zarr wrote into the index

    def close(self) -> None:
        self._h5f.close()

    # -- the entry point -------------------------------------------------------------------------------------
    def translate(self) -> dict:
        """Every object once (by its primary path), then the links, then a check that nothing was left out."""
        self._primary[_object_key(self._h5f)] = "/"
        self._h5f.visititems(self._record_primary)
        if isinstance(self._h5f.attrs.get(SPEC_LOC_ATTR), h5py.Reference):
            self._spec_path = self._target_path(self._h5f.attrs[SPEC_LOC_ATTR], f"/@{SPEC_LOC_ATTR}")
        self._zroot.attrs.put(self._attributes(self._h5f))
        self._done = 0
        self._h5f.visititems(self._translator)
        for group_path, entries in self._links().items():
            group = self._zgroup(group_path)
            group.attrs["zarr_link"] = group.attrs.get("zarr_link", []) + entries
        self._check_complete()
        return {"version": 1, "refs": encode_store(self.store, self._embedded)}

    def _record_primary(self, name: str, h5obj) -> None:
        self._primary.setdefault(_object_key(h5obj), "/" + name)

    def _translator(self, name: str, h5obj) -> None:
        where = "/" + name
        if self._progress is not None:
            self._done += 1
            self._progress(self._done, len(self._primary) - 1)
        try:
            if isinstance(h5obj, h5py.Dataset):
                self._dataset(where, h5obj)
            elif isinstance(h5obj, h5py.Group):
                self._zroot.require_group(where).attrs.put(self._attributes(h5obj))
            else:
                raise Unrepresentable(f"{where}: HDF5 object of type {type(h5obj).__name__} is not supported")
        except RefsError:
            raise
        except Exception as error:  # noqa: BLE001 - h5py and zarr raise bare errors; name the object
            raise Unrepresentable(f"{where}: {type(error).__name__}: {error}") from error

    # -- attributes ------------------------------------------------------------------------------------------
    def _attributes(self, h5obj) -> dict:
        where = h5obj.name
        converted, tags = {}, {}
        for key in h5obj.attrs:
            try:
                value = h5obj.attrs[key]
            except Exception as error:  # noqa: BLE001 - h5py cannot even read it (e.g. an unsupported type)
                raise Unrepresentable(f"{where}: attribute {key!r} cannot be read: {error}") from error
            if key in RESERVED_ATTRS:
                raise Unrepresentable(f"{where}: attribute {key!r} collides with a name the index reserves")
            if key == SPEC_LOC_ATTR:
                if where != "/" or not isinstance(value, h5py.Reference):
                    raise Unrepresentable(f"{where}: attribute {key!r} must be a reference on the root group")
                converted[key] = self._target_path(value, f"{where}@{key}").lstrip("/")
                continue
            if isinstance(value, h5py.Reference):
                converted[key] = {"zarr_dtype": "object", "value": self._reference(value, f"{where}@{key}")}
                continue
            try:
                converted[key], tag = attributes.encode(value)
            except attributes.NoJsonForm as error:
                raise Unrepresentable(f"{where}@{key}: {error}") from None
            if tag is not None:
                tags[key] = tag
        if tags:
            converted[TYPES_KEY] = tags
        return converted

    # -- references ------------------------------------------------------------------------------------------
    def _reference(self, ref, where: str) -> dict:
        reference = {
            "source": ".",
            "path": self._target_path(ref, where),
            "object_id": _text(self._h5f[ref].attrs.get("object_id")),
            "source_object_id": self._root_object_id,
        }
        if isinstance(ref, h5py.RegionReference):
            reference["region"] = self._region(ref, where)
        return reference

    def _region(self, ref: h5py.RegionReference, where: str):
        """The selection of a region reference: "all", "none", {"points": [...]} or {"blocks": [...]}.

        Blocks are HDF5's hyperslab block list: per block, its first and last index in every dimension.
        """
        target = self._h5f[ref]
        space = h5py.h5r.get_region(ref, target.id)
        kind = space.get_select_type()
        if kind == h5py.h5s.SEL_ALL:
            return "all"
        if kind == h5py.h5s.SEL_NONE:
            return "none"
        if kind == h5py.h5s.SEL_POINTS:
            return {"points": space.get_select_elem_pointlist().tolist()}
        if kind == h5py.h5s.SEL_HYPERSLABS:
            return {"blocks": space.get_select_hyper_blocklist().tolist()}
        raise Unrepresentable(f"{where}: region reference with a selection of type {kind}")

    def _target_path(self, ref, where: str) -> str:
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

    # -- datasets --------------------------------------------------------------------------------------------
    def _dataset(self, where: str, h5obj: h5py.Dataset) -> None:
        dtype = h5obj.dtype
        if h5obj.shape is None:
            raise Unrepresentable(f"{where}: empty (null dataspace) datasets have no Zarr form")
        plist = h5obj.id.get_create_plist()
        if h5obj.is_virtual:
            raise Unrepresentable(f"{where}: virtual dataset (its data live in other datasets or files)")
        if plist.get_external_count():
            name = _text(plist.get_external(0)[0])
            raise Unrepresentable(f"{where}: raw data stored in external file {name!r}")
        ref_kind = h5py.check_ref_dtype(dtype)
        if ref_kind is not None:
            self._references(where, h5obj)
        elif dtype.kind == "O" and h5py.check_string_dtype(dtype) is not None:
            self._strings(where, h5obj)
        elif dtype.names is not None:
            self._compound(where, h5obj)
        elif dtype.kind not in "biufcS" or dtype.subdtype is not None:
            raise Unrepresentable(f"{where}: dataset of dtype {dtype} is not supported")
        elif h5obj.ndim == 0:
            self._embed(where, h5obj, np.asarray(h5obj[()], dtype=dtype), "scalar")
        elif h5obj.size == 0:
            self._embed(where, h5obj, np.empty(h5obj.shape, dtype), _zarr_dtype(dtype))
        else:
            self._byte_ranges(where, h5obj, dtype)

    def _byte_ranges(self, where: str, h5obj: h5py.Dataset, dtype: np.dtype) -> None:
        """Chunks as byte ranges of the file (or inline), HDF5's filters as Zarr filters, per-chunk masks kept."""
        plist = h5obj.id.get_create_plist()
        if plist.get_layout() == h5py.h5d.COMPACT:  # the values live in the object header: copy them
            self._embed(where, h5obj, np.asarray(h5obj[()]).astype(dtype), _zarr_dtype(h5obj.dtype))
            return
        chunks = h5obj.chunks or h5obj.shape
        codecs = self._filters(where, h5obj, plist, int(np.prod(chunks)) * dtype.itemsize)
        located = _chunk_locations(h5obj, chunks)
        always_skipped = ~0
        for _, _, mask in located.values():
            always_skipped &= mask
        if not located:
            always_skipped = 0
        kept = [i for i in range(len(codecs)) if not always_skipped & (1 << i)]
        array = self._zroot.create_dataset(
            where,
            shape=h5obj.shape,
            chunks=chunks,
            dtype=dtype,
            compressor=None,
            filters=[codecs[i] for i in kept] or None,
            fill_value=_fill_value(h5obj, dtype),
            overwrite=True,
        )
        skipped = {}
        for key, (offset, size, mask) in located.items():
            if mask != always_skipped:
                skipped[key] = [position for position, i in enumerate(kept) if mask & (1 << i)]
            if size < self.inline:
                self.store[f"{array.path}/{key}"] = self._read(offset, size)
            else:
                self.store[f"{array.path}/{key}"] = [URL_TEMPLATE, offset, size]
        if skipped:
            meta_key = f"{array.path}/.zarray"
            meta = json.loads(self.store[meta_key])
            meta[SKIPPED_FILTERS] = skipped
            self.store[meta_key] = json.dumps(meta).encode()
        array.attrs.put({**self._attributes(h5obj), "zarr_dtype": _zarr_dtype(h5obj.dtype)})

    def _filters(self, where: str, h5obj: h5py.Dataset, plist, chunk_bytes: int) -> list:
        """HDF5's filter pipeline, in its order, as numcodecs codecs (Zarr applies ``filters`` in reverse)."""
        codecs = []
        for index in range(plist.get_nfilters()):
            code, _flags, values, name = plist.get_filter(index)
            label = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            if code == h5py.h5z.FILTER_DEFLATE:
                codecs.append(numcodecs.Zlib(level=values[0] if values else 1))
            elif code == h5py.h5z.FILTER_SHUFFLE:
                codecs.append(numcodecs.Shuffle(elementsize=h5obj.dtype.itemsize))
            elif code == h5py.h5z.FILTER_FLETCHER32:
                codecs.append(numcodecs.Fletcher32())
            elif code == h5py.h5z.FILTER_LZF:
                codecs.append(HDF5LZF(nbytes=chunk_bytes))
            elif code == 32015:
                codecs.append(numcodecs.Zstd(level=values[0] if values else 0))
            elif code == 32001:
                names = ("blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd")
                level, shuffle, compressor = (list(values[4:7]) + [5, 1, 0])[:3]
                codecs.append(numcodecs.Blosc(cname=names[compressor], clevel=level, shuffle=shuffle))
            else:
                why = _REFUSED_FILTERS.get(code, f"{label!r} (filter {code})")
                raise Unrepresentable(f"{where}: HDF5 filter {why} has no decoder in the index (filters: "
                                      f"{list(h5obj._filters)})")  # fmt: skip
        return codecs

    def _read(self, offset: int, size: int) -> bytes:
        place = self._fileobj.tell()
        try:
            self._fileobj.seek(offset)
            return self._fileobj.read(size)
        finally:
            self._fileobj.seek(place)

    def _compound(self, where: str, h5obj: h5py.Dataset) -> None:
        dtype = h5obj.dtype
        if any(dtype[name].names is not None or dtype[name].subdtype for name in dtype.names):
            raise Unrepresentable(f"{where}: nested or array fields in compound dtype {dtype} are not supported")
        if any(dtype[name].kind == "O" for name in dtype.names):
            self._table(where, h5obj)
        elif any(dtype[name].kind not in "biufS" for name in dtype.names):
            raise Unrepresentable(f"{where}: compound dtype {dtype} has a field type that is not supported")
        elif h5obj.ndim == 0:
            self._embed(where, h5obj, np.asarray(h5obj[()]), "scalar")
        elif h5obj.size == 0:
            self._embed(where, h5obj, np.empty(h5obj.shape, _packed_dtype(dtype)), _zarr_dtype(dtype))
        elif _packed(dtype):
            self._byte_ranges(where, h5obj, dtype)
        else:  # zarr's dtype notation cannot say where padding is: copy the records into the index
            self._embed(where, h5obj, np.asarray(h5obj[()]).astype(_packed_dtype(dtype)), _zarr_dtype(dtype))

    def _strings(self, where: str, h5obj: h5py.Dataset) -> None:
        values = h5obj[()]
        if h5obj.ndim == 0:
            data = np.array(_text(values), dtype=object)
            self._embed(where, h5obj, data, "scalar", object_codec=numcodecs.VLenUTF8())
            return
        if h5py.check_string_dtype(h5obj.dtype).encoding == "utf-8":
            data = _object_array(values, _text)
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
            if ref_kind is not None:
                fields.append((name, "O"))
                converters.append(lambda value, row, name=name: self._reference(value, f"{where}[{row}].{name}"))
                zarr_dtypes.append({"name": name, "dtype": "object"})
            elif string is not None:
                fields.append((name, "O"))
                converters.append(lambda value, row: _text(value))
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

    # -- links and completeness ------------------------------------------------------------------------------
    def _links(self) -> dict[str, list[dict]]:
        """``zarr_link`` entries: every soft link, every hard link that is not an object's primary path, and every
        external link (``source``: the other file's name as the link gives it, resolved beside the asset)."""
        primary_paths = set(self._primary.values())
        found: list[tuple[str, object]] = []

        def visit(name: str, link) -> None:  # raising inside h5py's link visit breaks h5py: collect, then check
            if not (isinstance(link, h5py.HardLink) and "/" + name in primary_paths):
                found.append(("/" + name, link))

        self._h5f.visititems_links(visit)
        links: dict[str, list[dict]] = {}
        for child_path, link in found:
            group_path, _, link_name = child_path.rpartition("/")
            if isinstance(link, h5py.ExternalLink):
                if self._sibling_exists is not None and not self._sibling_exists(link.filename):
                    raise Unrepresentable(f"{child_path}: dangling external link to {link.filename}:{link.path} "
                                          "(no such file beside the asset)")  # fmt: skip
                entry = {"name": link_name, "source": link.filename, "path": link.path}
                links.setdefault(group_path or "/", []).append(entry)
                continue
            target = self._h5f.get(child_path)
            if target is None:
                raise Unrepresentable(f"{child_path}: dangling link to {getattr(link, 'path', '?')}")
            entry = {"name": link_name, "source": ".", "path": self._primary_path(target, child_path)}
            if isinstance(link, h5py.HardLink):
                entry["hard"] = True
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
                raise Unrepresentable(f"{path}: this object was left out of the index")


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


def _text(value) -> str | None:
    """Text as h5py gives a variable-length string: bytes that are not UTF-8 kept as lone surrogates."""
    if value is None:
        return None
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8", errors="surrogateescape")
    return str(value)


def _chunk_locations(h5obj: h5py.Dataset, chunks: tuple) -> dict[str, tuple[int, int, int]]:
    """``{zarr chunk key: (byte offset, stored size, HDF5 filter mask)}`` of every chunk written to the file."""
    dsid = h5obj.id
    if h5obj.chunks is None:  # contiguous: one chunk of the whole shape, if it was ever written
        offset = dsid.get_offset()
        return {} if offset is None else {".".join("0" * h5obj.ndim): (offset, dsid.get_storage_size(), 0)}
    found = {}

    def record(info) -> None:
        key = ".".join(str(start // size) for start, size in zip(info.chunk_offset, chunks, strict=True))
        found[key] = (info.byte_offset, info.size, info.filter_mask)

    dsid.chunk_iter(record)
    return found


def _fill_value(h5obj: h5py.Dataset, dtype: np.dtype):
    """What HDF5 gives for a chunk never written: the dataset's fill value (zero unless set)."""
    value = h5obj.fillvalue
    if dtype.names is not None:
        return np.asarray(value).astype(dtype)[()] if value is not None else np.zeros((), dtype)[()]
    return value


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


def encode_store(store: dict, embedded: set[str]) -> dict:
    """The Zarr store as JSON values: metadata minified, chunk bytes as ASCII text or ``base64:``.

    kerchunk's own ``_encode_for_JSON`` re-serialises *every* value that parses as JSON - inline chunk bytes
    included - so a uint8 chunk ``b" 1"`` becomes ``"1"`` and ``b"[1.50, 2]"`` becomes ``"[1.5,2]"``: silently
    corrupted data. Only Zarr metadata is JSON here; chunk bytes are kept byte for byte (``embedded``: the
    arrays written through Zarr, listed for the reader's sake).
    """
    encoded = {}
    for key, value in store.items():
        array, _, name = key.rpartition("/")
        if isinstance(value, list):
            encoded[key] = value
        elif name in METADATA_KEYS:
            encoded[key] = json.dumps(json.loads(value), separators=(",", ":"))
        else:
            encoded[key] = _chunk_text(bytes(value))
    return encoded


def _chunk_text(data: bytes) -> str:
    """fsspec's reference file system reads a ``str`` value as its UTF-8 bytes, or ``base64:`` + encoded bytes."""
    if data.isascii() and not data.startswith(b"base64:"):
        return data.decode("ascii")
    return "base64:" + base64.b64encode(data).decode()


def dumps(refs: dict) -> str:
    """The index as compact JSON text."""
    return json.dumps(refs, separators=(",", ":"))
