"""How a dataset is actually stored, read back from the file, in the vocabulary of a :class:`Layout`.

A layout is a request to NeuroConv; this reads what the file holds (HDF5's filter pipeline and file-space
strategy, or Zarr's ``.zarray``) and spells it as (backend, chunk shape, codec pipeline, page size), so a
test or a rewrite can check that the bytes on disk are what the layout asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import h5py

from nwb_cloud.datasets.layouts import Layout

# HDF5 filter ids (h5py's own, and the registered plugin ids hdf5plugin uses)
_HDF5_FILTERS = {1: "gzip", 2: "shuffle", 3: "fletcher32", 32000: "lzf", 32001: "Blosc", 32015: "Zstd"}
_BLOSC_CODES = {0: "blosclz", 1: "lz4", 2: "lz4hc", 3: "snappy", 4: "zlib", 5: "zstd"}
# Options a codec gets when a layout names none: h5py's / hdf5plugin's defaults, and numcodecs' for Zarr.
_DEFAULT_OPTIONS = {
    "hdf5": {"gzip": {"level": 4}, "Zstd": {"clevel": 3}, "Blosc": {"cname": "lz4", "clevel": 5, "shuffle": 1}},
    "zarr": {"gzip": {"level": 1}, "Zstd": {"clevel": 1}, "Blosc": {"cname": "lz4", "clevel": 5, "shuffle": 1}},
}


@dataclass(frozen=True)
class Storage:
    backend: str
    chunks: tuple[int, ...] | None
    codecs: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]  # (name, sorted options) in pipeline order
    page_size: int | None = None


def _codec(name: str, options: dict | None, backend: str = "hdf5") -> tuple[str, tuple]:
    merged = {**_DEFAULT_OPTIONS[backend].get(name, {}), **(options or {})}
    return name, tuple(sorted(merged.items()))


def requested(layout: Layout, chunk_shape: tuple[int, ...]) -> Storage:
    """The storage ``layout`` asks for, for a series chunked as ``chunk_shape``."""
    options = layout.compressor_options or (None,) * len(layout.compressors)
    pairs = zip(layout.compressors, options, strict=True)
    codecs = tuple(_codec(name, option, layout.backend) for name, option in pairs)
    return Storage(layout.backend, tuple(chunk_shape), codecs, layout.page_size)


def stored(path: str | Path, dataset_path: str) -> Storage:
    """The storage of ``dataset_path`` in the NWB file or NWB Zarr folder at ``path``."""
    path = Path(path)
    dataset_path = dataset_path.strip("/")
    if path.is_dir():
        meta = json.loads((path / dataset_path / ".zarray").read_text())
        codecs = [_zarr_codec(c) for c in meta.get("filters") or []]
        if meta.get("compressor"):
            codecs.append(_zarr_codec(meta["compressor"]))
        return Storage("zarr", tuple(meta["chunks"]), tuple(codecs))
    with h5py.File(path, "r") as file:
        dataset = file[dataset_path]
        plist = dataset.id.get_create_plist()
        codecs = []
        for index in range(plist.get_nfilters()):
            code, _flags, values, _name = plist.get_filter(index)
            codecs.append(_hdf5_codec(int(code), tuple(int(v) for v in values)))
        strategy, _persist, _threshold = file.id.get_create_plist().get_file_space_strategy()
        page = (
            file.id.get_create_plist().get_file_space_page_size() if strategy == h5py.h5f.FSPACE_STRATEGY_PAGE else None
        )
        return Storage("hdf5", dataset.chunks, tuple(codecs), page)


def _hdf5_codec(code: int, values: tuple[int, ...]) -> tuple[str, tuple]:
    name = _HDF5_FILTERS.get(code, str(code))
    if name == "gzip":
        return _codec(name, {"level": values[0]})
    if name == "Zstd":
        return _codec(name, {"clevel": values[0]} if values else None)
    if name == "Blosc":  # cd_values: 4 set by the filter, then clevel, shuffle, compressor code
        return _codec(name, {"clevel": values[4], "shuffle": values[5], "cname": _BLOSC_CODES.get(values[6])})
    return name, ()


def _zarr_codec(config: dict) -> tuple[str, tuple]:
    kind = config["id"]
    if kind == "gzip":
        return _codec("gzip", {"level": config["level"]}, "zarr")
    if kind == "blosc":
        options = {"cname": config["cname"], "clevel": config["clevel"], "shuffle": config["shuffle"]}
        return _codec("Blosc", options, "zarr")
    if kind == "zstd":
        return _codec("Zstd", {"clevel": config["level"]}, "zarr")
    return kind, tuple(sorted((k, v) for k, v in config.items() if k != "id"))
