"""Is an index what ``docs/index-format.md`` says, and does it describe its asset? A list of what is wrong.

Two passes, each a list of one-line problems naming the key or object:

* :func:`check_format` - the index alone: the top level (``version``, ``templates``, the ``nwb_cloud`` record
  and its format version), every Zarr node (``.zgroup``/``.zarray``/``.zattrs`` as the format defines them,
  codecs numcodecs knows, attribute type tags that decode), every chunk key (inside its array's grid, a byte
  range or inline bytes), every reference and link (its target is in the index), the cached specifications;
* :func:`check_asset` - the index against its asset: a fresh index is built from the asset (reading only its
  metadata) and the two are compared key by key: an object missing or extra, a chunk at another offset or of
  another size, a different dtype, codec or attribute.

An index of an unknown format version is reported as such and not checked further: its keys may mean other
things.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import numbers
import re
from collections.abc import Callable, Mapping

import numcodecs

from nwb_cloud.refs import attrs as attributes
from nwb_cloud.refs.format import (
    KNOWN_FORMATS,
    METADATA_KEYS,
    SKIPPED_FILTERS,
    SPEC_LOC_ATTR,
    TYPES_KEY,
    URL_TEMPLATE,
)
from nwb_cloud.refs.zarr_store import value_bytes

MAX_PROBLEMS = 200
_CHUNK_KEY = re.compile(r"^\d+(\.\d+)*$")
_ZARRAY_KEYS = ("zarr_format", "shape", "chunks", "dtype", "compressor", "filters", "fill_value", "order")


def check_format(index: dict) -> list[str]:
    """What in ``index`` (a JSON index, or a Parquet one as :func:`nwb_cloud.refs.storage.load_parquet` gives
    it) does not follow the format."""
    problems: list[str] = []
    if not isinstance(index, dict):
        return ["the index is not a JSON object"]
    if index.get("version") != 1:
        problems.append(f"'version' is {index.get('version')!r}, not 1 (kerchunk references version 1)")
    record = index.get("nwb_cloud")
    if not isinstance(record, dict) or "format" not in record:
        return [*problems, "no 'nwb_cloud' record with the index format: not an index this package wrote"]
    if record["format"] not in KNOWN_FORMATS:
        return [*problems, f"unknown index format {record['format']!r} (this package reads {', '.join(KNOWN_FORMATS)})"]
    url = index.get("templates", {}).get("u") if isinstance(index.get("templates"), dict) else None
    if not isinstance(url, str) or not url:
        problems.append("'templates' has no 'u' (the asset's URL)")
    refs = index.get("refs")
    if not isinstance(refs, Mapping):
        return [*problems, "'refs' is not a mapping"]
    if not isinstance(record.get("source_bytes"), int):
        problems.append("'nwb_cloud.source_bytes' (the asset's size) is missing")
    _Checker(refs, record.get("source_bytes"), url, problems).run()
    return problems[:MAX_PROBLEMS]


class _Checker:
    def __init__(self, refs: Mapping, size: int | None, url: str | None, problems: list[str]):
        self.refs = refs
        self.size = size
        self.url = url
        self.problems = problems
        self.metadata = _metadata(refs)
        self.groups = {key.rpartition("/")[0] for key in self.metadata if key.rpartition("/")[2] == ".zgroup"}
        self.arrays: dict[str, dict] = {}

    def add(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)

    def run(self) -> None:
        if "" not in self.groups:
            self.add("no root group ('.zgroup')")
        for key, value in self.metadata.items():
            node, _, name = key.rpartition("/")
            parent = node.rpartition("/")[0] if "/" in node else ""
            if node and parent not in self.groups:
                self.add(f"/{node}: its parent group /{parent} is not in the index")
            if name == ".zarray":
                self.array(node, value)
            elif name == ".zattrs":
                self.attributes(node, value)
        for node in self.arrays:
            if node in self.groups:
                self.add(f"/{node}: both a group and an array")
        root_attrs = self.metadata.get(".zattrs", {})
        specloc = root_attrs.get(SPEC_LOC_ATTR) if isinstance(root_attrs, dict) else None
        if specloc is not None and specloc.strip("/") not in self.groups:
            self.add(f"/@{SPEC_LOC_ATTR}: the cached specifications /{specloc} are not in the index")
        self.chunks()

    def array(self, node: str, meta) -> None:
        where = f"/{node}"
        if not isinstance(meta, dict):
            self.add(f"{where}/.zarray is not a JSON object")
            return
        missing = {"zarr_format", "shape", "chunks", "dtype", "compressor", "filters", "fill_value", "order"} - set(
            meta
        )
        if missing or meta.get("zarr_format") != 2:
            self.add(f"{where}/.zarray: not Zarr v2 array metadata (missing {sorted(missing)})")
            return
        shape, chunks = meta["shape"], meta["chunks"]
        if len(shape) != len(chunks) or any(c < 1 for c in chunks) or any(n < 0 for n in shape):
            self.add(f"{where}/.zarray: chunks {chunks} do not fit shape {shape}")
            return
        filters = meta.get("filters") or []
        for config in ([meta["compressor"]] if meta["compressor"] else []) + filters:
            try:
                numcodecs.get_codec(dict(config))
            except Exception as error:  # noqa: BLE001 - numcodecs raises several kinds
                self.add(f"{where}/.zarray: codec {config} is unknown ({error})")
        skipped = meta.get(SKIPPED_FILTERS, {})
        for chunk, positions in skipped.items():
            if not _CHUNK_KEY.match(chunk) or any(not 0 <= p < len(filters) for p in positions):
                self.add(f"{where}/.zarray: {SKIPPED_FILTERS} entry {chunk!r}: {positions} is not a chunk of "
                         f"positions in its {len(filters)} filters")  # fmt: skip
        attrs = self.metadata.get(f"{node}/.zattrs" if node else ".zattrs")
        if not isinstance(attrs, dict) or "zarr_dtype" not in attrs:
            self.add(f"{where}: an array without 'zarr_dtype' in its .zattrs")
        self.arrays[node] = meta

    def attributes(self, node: str, attrs) -> None:
        where = f"/{node}"
        if not isinstance(attrs, dict):
            self.add(f"{where}/.zattrs is not a JSON object")
            return
        tags = attrs.get(TYPES_KEY, {})
        if not isinstance(tags, dict) or set(tags) - set(attrs):
            self.add(f"{where}/.zattrs: {TYPES_KEY} tags attributes that are not there")
            return
        for name, tag in tags.items():
            try:
                attributes.decode(attrs[name], tag)
            except Exception as error:  # noqa: BLE001 - a tag that does not decode, whatever the cause
                self.add(f"{where}@{name}: type tag {tag} does not decode its value ({type(error).__name__})")
        for name, value in attrs.items():
            if isinstance(value, dict) and value.get("zarr_dtype") == "object":
                self.target(f"{where}@{name}", value.get("value"))
        for link in attrs.get("zarr_link", []):
            if not isinstance(link, dict) or "name" not in link:
                self.add(f"{where}: a zarr_link entry without a name: {link}")
            elif link.get("source", ".") != ".":  # an external link: its target is in another file
                if not link.get("path") or not isinstance(link["source"], str):
                    self.add(f"{where}/{link['name']}: an external link without a file and a path: {link}")
            else:
                self.target(f"{where}/{link['name']} (link)", link)

    def target(self, where: str, reference) -> None:
        if not isinstance(reference, dict) or reference.get("source") != "." or "path" not in reference:
            self.add(f"{where}: not a reference of this file ({reference})")
            return
        path = str(reference["path"]).strip("/")
        if path not in self.groups and f"{path}/.zarray" not in self.metadata:
            self.add(f"{where}: points at /{path}, which is not in the index")

    def chunks(self) -> None:
        for key in _keys(self.refs):
            node, _, name = key.rpartition("/")
            if name in METADATA_KEYS or key == ".zmetadata":
                continue
            meta = self.arrays.get(node)
            if meta is None:
                self.add(f"{key}: a chunk of /{node}, which is not an array of the index")
                continue
            if not _CHUNK_KEY.match(name) or not _inside(name, meta):
                self.add(f"{key}: not a chunk of the grid of /{node} (shape {meta['shape']}, chunks {meta['chunks']})")
                continue
            self.chunk(key, self.refs[key])

    def chunk(self, key: str, value) -> None:
        if isinstance(value, (bytes, str)):
            if isinstance(value, str) and value.startswith("base64:"):
                try:
                    base64.b64decode(value[7:], validate=True)
                except binascii.Error:
                    self.add(f"{key}: inline chunk with invalid base64")
            return
        if not isinstance(value, list) or len(value) not in (1, 3):
            self.add(f"{key}: neither inline bytes nor [url, offset, size]")
            return
        if value[0] not in (URL_TEMPLATE, self.url):
            self.add(f"{key}: points at {value[0]}, not at the asset")
        if len(value) == 3:
            offset, size = value[1], value[2]  # Parquet gives numpy integers
            if (
                not (isinstance(offset, numbers.Integral) and isinstance(size, numbers.Integral))
                or offset < 0
                or size <= 0
            ):
                self.add(f"{key}: byte range {offset}+{size} is not a range")
            elif self.size is not None and offset + size > self.size:
                self.add(f"{key}: bytes {offset}-{offset + size - 1} lie past the end of the {self.size}-byte asset")


def _metadata(refs: Mapping) -> dict[str, object]:
    """Every metadata key of the index, parsed (a Parquet index lists them in its ``zmetadata``)."""
    listed = getattr(refs, "zmetadata", None)
    items = listed.items() if listed is not None else ((k, refs[k]) for k in refs if k.endswith(METADATA_KEYS))
    parsed = {}
    for key, value in items:
        if not key.endswith(METADATA_KEYS):
            continue
        try:
            parsed[key] = value if isinstance(value, dict) else json.loads(value)
        except ValueError:
            parsed[key] = None
    return parsed


def _keys(refs: Mapping):
    """Every key of the index. A Parquet index cannot list its keys (fsspec's mapper lists fields, not keys):
    its metadata keys and, for every array, the chunk keys of its grid that hold a reference."""
    listed = getattr(refs, "zmetadata", None)
    if listed is None:
        yield from refs.keys()
        return
    for key, value in listed.items():
        yield key
        if key.endswith(".zarray"):
            meta = value if isinstance(value, dict) else json.loads(value)
            node = key.rpartition("/")[0]
            grid = [max(1, math.ceil(n / c)) for n, c in zip(meta["shape"], meta["chunks"], strict=True)]
            for index in itertools.product(*(range(g) for g in grid)):
                chunk = f"{node}/{'.'.join(map(str, index)) or '0'}" if node else ".".join(map(str, index)) or "0"
                if chunk in refs:
                    yield chunk


def _inside(name: str, meta: dict) -> bool:
    if not meta["shape"]:
        return name == "0"  # a 0-d array has one chunk
    indices = [int(part) for part in name.split(".")]
    grid = [max(1, math.ceil(n / c)) for n, c in zip(meta["shape"], meta["chunks"], strict=True)]
    return len(indices) == len(grid) and all(0 <= i < g for i, g in zip(indices, grid, strict=True))


# -- against the asset ---------------------------------------------------------------------------------------
def check_asset(index: dict, rebuild: Callable[[], dict]) -> list[str]:
    """What differs between ``index`` and ``rebuild()``, a fresh index of its asset (see the module docstring)."""
    fresh = rebuild()
    problems: list[str] = []
    size, fresh_size = index.get("nwb_cloud", {}).get("source_bytes"), fresh["nwb_cloud"]["source_bytes"]
    if size != fresh_size:
        problems.append(f"the index was built for a {size}-byte asset; the asset has {fresh_size} bytes")
    mine, theirs = _refs(index), _refs(fresh)
    nodes = _nodes(mine)
    for node in sorted(_nodes(theirs) - nodes):
        problems.append(f"/{node}: in the asset, missing from the index")
    for node in sorted(nodes - _nodes(theirs)):
        problems.append(f"/{node}: in the index, not in the asset")
    url = index.get("templates", {}).get("u")
    for key in sorted(set(mine) | set(theirs)):
        if len(problems) >= MAX_PROBLEMS:
            break
        node = key.rpartition("/")[0]
        if node not in nodes or node not in _nodes(theirs):
            continue  # reported above as a missing or extra object
        left, right = mine.get(key), theirs.get(key)
        if key.endswith(METADATA_KEYS):
            left, right = _json(left), _json(right)
        elif isinstance(left, list) and left and left[0] == url:
            left = [URL_TEMPLATE, *left[1:]]
        elif isinstance(left, (str, bytes)) and isinstance(right, (str, bytes)):  # inline chunks: as bytes
            left, right = value_bytes(left), value_bytes(right)
        if left != right:
            problems.append(_difference(key, left, right))
    return problems


def _refs(index: dict) -> dict:
    refs = index["refs"]
    return dict(refs) if isinstance(refs, dict) else {key: refs[key] for key in _keys(refs)}


def _nodes(refs: dict) -> set[str]:
    return {key.rpartition("/")[0] for key in refs if key.rpartition("/")[2] in (".zgroup", ".zarray")}


def _json(value):
    try:
        return json.loads(value) if isinstance(value, (str, bytes)) else value
    except ValueError:
        return value


def _difference(key: str, left, right) -> str:
    if left is None:
        return f"{key}: in the asset, missing from the index"
    if right is None:
        return f"{key}: in the index, not in the asset"
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right) == 3:
        return f"{key}: bytes {left[1]}+{left[2]} in the index, {right[1]}+{right[2]} in the asset"
    if isinstance(left, dict) and isinstance(right, dict):
        changed = sorted(k for k in set(left) | set(right) if left.get(k) != right.get(k))
        return f"{key}: {', '.join(map(str, changed))} differ from the asset's"
    return f"{key}: differs from the asset's"


def validate(index: dict, rebuild: Callable[[], dict] | None = None) -> list[str]:
    """:func:`check_format`, then (when the format holds and ``rebuild`` is given) :func:`check_asset`."""
    problems = check_format(index)
    if problems or rebuild is None:
        return problems
    return check_asset(index, rebuild)


def load(path) -> dict:
    """An index stored at ``path``: a JSON file (the sidecar or cache form) or a Parquet folder."""
    from pathlib import Path

    from nwb_cloud.refs.errors import CorruptIndex
    from nwb_cloud.refs.storage import load_parquet

    path = Path(path)
    if path.is_dir():
        return load_parquet(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CorruptIndex(f"no index at {path}") from None
    except (OSError, ValueError) as error:
        raise CorruptIndex(f"{path} is not a JSON index ({error})") from None
