"""How an index is stored: one JSON document, or Parquet files for an asset with very many chunks.

JSON (kerchunk "version 1") is one object: one request fetches it, ``json.loads`` reads ~100 MB/s. Past
``PARQUET_THRESHOLD`` chunk references (~100 bytes of JSON each) that becomes seconds of download and
parse for every open, most of it for chunks a reader never touches. Then the index is stored the way
fsspec reads lazily (kerchunk's Parquet references, ``LazyReferenceMapper``): a folder with ``.zmetadata``
(all Zarr metadata, read at open; also valid consolidated metadata for zarr) and, per array,
``refs.<n>.parq`` files of ``record_size`` chunk references each, loaded on the first read of one of them.

The folder's ``.zmetadata`` also carries what the JSON form carries beside ``refs`` (``version``,
``templates``, the ``nwb_cloud`` record), plus the name and size of every Parquet file, so a copy can be
fetched without listing a bucket and checked for truncation. Chunk URLs are written out (Parquet has no
templates), which fsspec's reader needs too.

kerchunk's own ``refs_to_dataframe`` is not used: it always writes with fastparquet (not a dependency
here); this module makes the same ``LazyReferenceMapper`` calls with the pyarrow engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
from fsspec.implementations.reference import LazyReferenceMapper

from nwb_cloud.refs.errors import CorruptIndex, RefsError

JSON, PARQUET, AUTO = "json", "parquet", "auto"
FORMATS = (JSON, PARQUET, AUTO)
PARQUET_THRESHOLD = 100_000  # chunk references: above this, AUTO stores Parquet
RECORD_SIZE = 10_000  # chunk references per Parquet file (each file is loaded whole, on first use)
ZMETADATA = ".zmetadata"
ENGINE = "pyarrow"
METADATA_SUFFIXES = (".zarray", ".zgroup", ".zattrs")


def chunk_references(index: dict) -> int:
    """How many chunk entries (byte ranges and inline chunks) the index holds."""
    refs = index["refs"]
    if isinstance(refs, LazyReferenceMapper):
        return int(index.get("nwb_cloud", {}).get("chunk_references", 0))
    return sum(1 for key in refs if not key.endswith(METADATA_SUFFIXES))


def choose(index: dict, wanted: str = AUTO) -> str:
    """The storage ``wanted`` (``json``, ``parquet``), or for ``auto`` the one that suits the index's size."""
    if wanted not in FORMATS:
        raise RefsError(f"unknown index format {wanted!r}; known: {', '.join(FORMATS)}")
    if wanted != AUTO:
        return wanted
    return PARQUET if chunk_references(index) > PARQUET_THRESHOLD else JSON


def is_parquet(index: dict) -> bool:
    return isinstance(index.get("refs"), LazyReferenceMapper)


def write_parquet(index: dict, directory: Path, record_size: int = RECORD_SIZE) -> dict:
    """Write ``index`` (JSON form, refs in memory) as a Parquet folder; returns the folder's ``.zmetadata``."""
    if is_parquet(index):
        raise RefsError("the index is already stored as Parquet")
    directory = Path(directory)
    url = index.get("templates", {}).get("u")
    refs = index["refs"]
    local = fsspec.filesystem("file")
    mapper = LazyReferenceMapper.create(str(directory), fs=local, record_size=record_size, engine=ENGINE)
    chunks = 0
    for key in sorted(refs):  # an array's ".zarray" sorts before its chunk keys, as the mapper needs
        value = refs[key]
        if isinstance(value, list) and value and value[0] == "{{u}}":
            if url is None:
                raise RefsError(f"chunk {key!r} uses the {{{{u}}}} template, which the index does not define")
            value = [url, *value[1:]]
        if not key.endswith(METADATA_SUFFIXES):
            chunks += 1
        mapper[key] = value
    mapper.flush()
    files = {str(path.relative_to(directory)): path.stat().st_size for path in sorted(directory.rglob("*.parq"))}
    zmetadata = json.loads((directory / ZMETADATA).read_text())
    zmetadata.update(
        {
            "zarr_consolidated_format": 1,  # zarr (via hdmf-zarr over fsspec) reads the folder as consolidated
            "version": 1,
            "templates": index.get("templates", {}),
            "nwb_cloud": {**index.get("nwb_cloud", {}), "storage": PARQUET, "chunk_references": chunks,
                          "parquet_files": files},
        }
    )  # fmt: skip
    (directory / ZMETADATA).write_text(json.dumps(zmetadata, separators=(",", ":")))
    return zmetadata


def is_parquet_metadata(document) -> bool:
    """Whether a fetched document is a Parquet folder's ``.zmetadata`` (rather than a JSON index)."""
    return isinstance(document, dict) and "metadata" in document and "record_size" in document


def load_parquet(directory: Path, zmetadata: dict | None = None) -> dict:
    """The index stored in the Parquet folder ``directory``, its refs read lazily.

    Every Parquet file the folder's ``.zmetadata`` lists must be there with its recorded size: a
    truncated or missing file is :class:`CorruptIndex` now, not a wrong read later.
    """
    directory = Path(directory)
    if zmetadata is None:
        try:
            zmetadata = json.loads((directory / ZMETADATA).read_text())
        except FileNotFoundError:
            raise CorruptIndex(f"{directory} has no {ZMETADATA}: not a Parquet index") from None
        except ValueError as error:
            raise CorruptIndex(f"{directory / ZMETADATA} is not JSON ({error})") from None
    if not is_parquet_metadata(zmetadata):
        raise CorruptIndex(f"{directory / ZMETADATA} is not the metadata of a Parquet reference index")
    for name, size in zmetadata.get("nwb_cloud", {}).get("parquet_files", {}).items():
        path = directory / name
        actual = path.stat().st_size if path.exists() else None
        if actual != size:
            found = "missing" if actual is None else f"{actual} bytes, not {size}"
            raise CorruptIndex(f"Parquet file {path} of the index is {found}")
    refs = LazyReferenceMapper(str(directory), fs=fsspec.filesystem("file"), engine=ENGINE)
    return {
        "version": zmetadata.get("version", 1),
        "templates": zmetadata.get("templates", {}),
        "refs": refs,
        "nwb_cloud": zmetadata.get("nwb_cloud", {}),
    }
