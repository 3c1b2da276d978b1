"""The index as a read-only Zarr (v2) store whose chunks come through the fast data path.

Metadata, attributes and the values embedded in the index are served from memory. A chunk that is a byte
range of the asset is fetched by :class:`~nwb_cloud.refs.fetch.RangeReader` through a
:class:`~nwb_cloud.refs.pipeline.Batch`, which also *decodes* it - so the store does what Zarr would
otherwise do one chunk after another on one thread.

Design call: the store decodes, and the ``.zarray`` it serves says there is nothing left to decode
    For every array whose chunks carry a codec pipeline (kerchunk puts HDF5's filters - shuffle, deflate,
    zstd, blosc, fletcher32 - in ``filters``), the store keeps the pipeline and serves ``.zarray`` with
    ``compressor`` and ``filters`` set to null. Zarr then takes each decoded chunk as it is (a view, and
    one copy into the output), and the decoding happens on the store's thread pool in parallel with the
    fetching. What follows from it:

    * values are exactly those of the file (the same numcodecs codecs run, in zarr's order: compressor,
      then filters in reverse); fill values, edge chunks and byte order are untouched;
    * ``array.compressor``/``array.filters`` read ``None`` through this store: the file's codecs are not
      visible via zarr (``codecs(path)`` gives them);
    * arrays of Python objects (strings, references, compound rows with references) keep their object codec
      - zarr must apply it - and are embedded in the index anyway; arrays without codecs need no decoding;
    * a whole-chunk read costs one extra copy (zarr would otherwise decompress straight into the output).

Why it subclasses ``DirectoryStore``
    hdmf-zarr 0.13 accepts a path or one of ``DirectoryStore``, ``TempStore``, ``NestedDirectoryStore``
    (docval type check), nothing else. The store is therefore a ``DirectoryStore`` in type only: every
    method of it is overridden (checked by a test), and no file system is touched.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Executor

import numcodecs
import numpy as np
from zarr.errors import ReadOnlyError
from zarr.storage import DirectoryStore

from nwb_cloud.refs.errors import ChunkError, RefsError
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.format import SKIPPED_FILTERS
from nwb_cloud.refs.inflate import DEFLATE, SHUFFLE_DEFLATE, decoder_for
from nwb_cloud.refs.pipeline import Batch, Wanted
from nwb_cloud.refs.plan import Policy

METADATA = (".zarray", ".zgroup", ".zattrs")
CONSOLIDATED = ".zmetadata"
TEMPLATE = "{{u}}"


class IndexStore(DirectoryStore):
    """Zarr store over ``refs`` (a kerchunk refs mapping: a dict, or fsspec's Parquet ``LazyReferenceMapper``).

    ``url`` is the asset every byte range points at (``{{u}}`` or that URL in the refs); ``reader`` fetches
    them, ``decoders`` decode them. ``metadata_keys`` lists the metadata keys when ``refs`` cannot be
    iterated cheaply (Parquet); by default they are found among the keys of ``refs``.
    """

    _writeable = False
    _erasable = False

    def __init__(
        self,
        refs: Mapping,
        url: str,
        reader: RangeReader | None,
        decoders: Executor,
        policy: Policy | None = None,
        metadata_keys=None,
        asset_size: int | None = None,
    ):
        # DirectoryStore.__init__ is not called: it would make a directory (see the module docstring)
        self.path = url
        self.normalize_keys = False
        self._dimension_separator = None
        self._refs = refs
        self._url = url
        self._reader = reader
        self._decoders = decoders
        self._policy = policy or Policy()
        self._asset_size = asset_size
        keys = metadata_keys if metadata_keys is not None else (k for k in refs if k.endswith(METADATA))
        self._children = _directory_tree(keys)
        self._arrays: dict[str, _Array] = {}
        self._lock = threading.Lock()

    # -- reading ---------------------------------------------------------------------------------------------
    def __getitem__(self, key: str):
        if key == CONSOLIDATED:
            raise KeyError(key)  # see __contains__
        if key.endswith(".zarray"):
            return self._array(key.rpartition("/")[0] if "/" in key else "").metadata
        if key.endswith(METADATA):
            return value_bytes(self._refs[key])
        return Batch([self._wanted(key)], self._reader, self._decoders, self._policy)[key]

    def getitems(self, keys, *, contexts=None) -> Mapping:
        """The chunks among ``keys`` that the index has, as a :class:`Batch` (missing ones are left out)."""
        wanted = []
        for key in keys:
            if key == CONSOLIDATED:
                continue
            try:
                wanted.append(self._wanted(key))
            except KeyError:
                continue
        return Batch(wanted, self._reader, self._decoders, self._policy)

    def __contains__(self, key) -> bool:
        if key == CONSOLIDATED:  # a Parquet index has one; zarr would then list groups by scanning all keys
            return False
        try:
            self._refs[key]
        except KeyError:
            return False
        return True

    def _wanted(self, key: str) -> Wanted:
        if key.endswith(METADATA):
            return Wanted(key=key, decode=None, data=self[key])
        ref = self._refs[key]  # KeyError: a chunk never written, which zarr fills
        path, _, chunk = key.rpartition("/")
        decode = self._array(path).decoder(chunk)
        if isinstance(ref, (str, bytes)):
            return Wanted(key=key, decode=decode, data=value_bytes(ref))
        url, start, end = self._range(key, ref)
        return Wanted(key=key, decode=decode, start=start, end=end)

    def _range(self, key: str, ref) -> tuple[str, int, int]:
        url = ref[0]
        if url not in (TEMPLATE, self._url):
            raise RefsError(f"chunk {key!r} points at {url}, not at the asset {self._url}: an index covers one file")
        if len(ref) == 1:
            if self._asset_size is None:
                raise RefsError(f"chunk {key!r} is the whole asset, whose size is unknown")
            return url, 0, self._asset_size
        return url, int(ref[1]), int(ref[1]) + int(ref[2])

    def _array(self, path: str) -> _Array:
        array = self._arrays.get(path)
        if array is None:
            with self._lock:
                array = self._arrays.get(path)
                if array is None:
                    key = f"{path}/.zarray" if path else ".zarray"
                    array = self._arrays[path] = _Array(value_bytes(self._refs[key]), path)
        return array

    def codecs(self, path: str) -> dict:
        """The compressor and filters the file's chunks of array ``path`` are stored with."""
        return self._array(path.strip("/")).original_codecs

    # -- listing ---------------------------------------------------------------------------------------------
    def listdir(self, path: str = "") -> list[str]:
        path = path.strip("/")
        if path in self._children:
            return sorted(self._children[path])
        return []

    def keys(self):
        return self._refs.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self._refs)

    def __len__(self) -> int:
        return len(self._refs)

    def getsize(self, path=None) -> int:
        return 0

    def dir_path(self, path=None) -> str:
        return self.path

    def __eq__(self, other) -> bool:
        return self is other

    def __hash__(self) -> int:
        return id(self)

    # -- read only -------------------------------------------------------------------------------------------
    def __setitem__(self, key, value):
        raise ReadOnlyError()

    def __delitem__(self, key):
        raise ReadOnlyError()

    def rename(self, src_path, dst_path):
        raise ReadOnlyError()

    def rmdir(self, path=None):
        raise ReadOnlyError()

    def clear(self):
        raise ReadOnlyError()

    def _normalize_key(self, key):
        return key

    def _fromfile(self, fn):
        raise ReadOnlyError()

    def _tofile(self, a, fn):
        raise ReadOnlyError()

    def _keys_fast(self, path, walker=None):
        return iter(self._refs)

    def _flat_listdir(self, path=None):
        return self.listdir(path or "")

    def _nested_listdir(self, path=None):
        return self.listdir(path or "")


class _Array:
    """An array's ``.zarray`` as served (codecs taken out when the store decodes) and its decoders.

    A chunk HDF5 stored with optional filters skipped (``.zarray["nwb_cloud_skipped_filters"]``: chunk key ->
    positions in ``filters``) is decoded without them; every other chunk by the whole pipeline.
    """

    def __init__(self, stored: bytes, path: str = ""):
        meta = json.loads(stored)
        self.path = path
        self.original_codecs = {"compressor": meta.get("compressor"), "filters": meta.get("filters")}
        dtype = np.dtype(_dtype(meta["dtype"]))
        object_data = dtype.hasobject
        compressor = numcodecs.get_codec(meta["compressor"]) if meta.get("compressor") else None
        filters = [numcodecs.get_codec(f) for f in meta.get("filters") or []]
        self._skipped: dict[str, tuple[int, ...]] = {k: tuple(v) for k, v in meta.get(SKIPPED_FILTERS, {}).items()}
        self._decoders: dict[tuple[int, ...], object] = {}
        if object_data or (compressor is None and not filters):
            self.metadata, self.decode = stored, None
            return
        self.metadata = json.dumps({**meta, "compressor": None, "filters": None}).encode()
        chunk_bytes = math.prod(meta["chunks"]) * dtype.itemsize
        kind = SHUFFLE_DEFLATE if any(isinstance(c, numcodecs.Shuffle) for c in filters) else DEFLATE
        self._steps = [_step(codec, chunk_bytes, kind) for codec in ([compressor] if compressor else [])]
        self._filters = [_step(codec, chunk_bytes, kind) for codec in filters]
        self.decode = self._decoders[()] = _pipeline(self._steps + self._filters[::-1])

    def decoder(self, chunk: str):
        """The decoder of chunk ``chunk`` (a key such as ``"3.0"``): the pipeline less its skipped filters.

        A chunk that does not decode (corrupt bytes, a failed checksum) raises :class:`ChunkError` naming it.
        """
        if self.decode is None:
            return None
        skipped = self._skipped.get(chunk, ())
        decode = self._decoders.get(skipped)
        if decode is None:
            kept = [step for position, step in enumerate(self._filters) if position not in skipped]
            decode = self._decoders[skipped] = _pipeline(self._steps + kept[::-1])
        return functools.partial(_named, decode, f"{self.path}/{chunk}")


def _named(decode, key: str, data):
    try:
        return decode(data)
    except Exception as error:  # noqa: BLE001 - each codec has its own errors; name the chunk
        raise ChunkError(
            f"chunk {key} does not decode ({type(error).__name__}: {error}): the asset is corrupt "
            "or is not the file the index describes"
        ) from None


def _step(codec, chunk_bytes: int, kind: str = DEFLATE):
    """``codec.decode``, except zlib (HDF5's deflate filter): the fastest exact inflate installed
    (:mod:`nwb_cloud.refs.inflate`), told the chunk's size so that it allocates once. The size is only a
    hint: a wrong one costs a zlib fallback, never a wrong byte."""
    if isinstance(codec, numcodecs.Zlib):
        inflate = decoder_for(kind, chunk_bytes)
        return lambda data: inflate(data, chunk_bytes)
    return codec.decode


def _pipeline(steps):
    def decode(data):
        for step in steps:
            data = step(data)
        return data

    return decode


def _dtype(spec):
    """A zarr v2 dtype spec (a string, or a list of ``[name, spec(, shape)]`` fields) for numpy."""
    if isinstance(spec, list):
        return [tuple(_dtype(item) if isinstance(item, list) else item for item in field) for field in spec]
    return spec


def value_bytes(value) -> bytes:
    """A value of kerchunk refs as bytes: ``base64:``-prefixed text is decoded, other text is its UTF-8."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        if value.startswith("base64:"):
            return base64.b64decode(value[7:])
        return value.encode()
    if isinstance(value, (dict, list)):
        return json.dumps(value).encode()
    raise RefsError(f"unexpected value of type {type(value).__name__} in the index")


def _directory_tree(metadata_keys) -> dict[str, set[str]]:
    """``{node path: names listed in it}`` from the metadata keys (groups list children and their files)."""
    children: dict[str, set[str]] = {}
    for key in metadata_keys:
        parts = key.split("/")
        for depth in range(len(parts)):
            parent = "/".join(parts[:depth])
            children.setdefault(parent, set()).add(parts[depth])
    return children
