"""The codecs a recommendation chooses from: the layout study's codec table, spelled for HDF5 and for Zarr.

The names and HDF5 spellings are the study's (:mod:`nwb_cloud.datasets.codecs`), so a recommendation, a
measured layout and the decode measurements speak of the same ``blosc-zstd-bitshuffle``. This module adds
what a recommendation needs beyond them: the Zarr spelling of each codec (numcodecs' names and options, as
NeuroConv's Zarr configuration takes them), what a reader needs to decode it, and :func:`codec_name`, which
maps any NeuroConv spelling back onto a row with the libraries' defaults filled in (``["gzip"]`` with no
options is ``gzip-4`` in HDF5, h5py's default level, but ``gzip-1`` in Zarr, numcodecs' default).
"""

from __future__ import annotations

import json

import numpy as np

from nwb_cloud.datasets.codecs import CODECS, Codec
from nwb_cloud.recommend.errors import UnknownCodec

HDF5, ZARR = "hdf5", "zarr"
DEFAULT_CODEC = "gzip-4"  # what NeuroConv writes to HDF5 when told nothing

# HDF5 filter name -> (numcodecs name, option renames); None: no Zarr equivalent.
_ZARR_NAMES = {
    "gzip": ("gzip", {}),
    "shuffle": ("shuffle", {}),
    "Blosc": ("blosc", {}),
    "Zstd": ("zstd", {"clevel": "level"}),
    "lzf": None,
}
# Option defaults of each library, so that an omitted option and its default value name the same codec.
_DEFAULTS = {
    HDF5: {"gzip": {"level": 4}, "Blosc": {"cname": "lz4", "clevel": 5, "shuffle": 1}, "Zstd": {"clevel": 3}},
    ZARR: {
        "gzip": {"level": 1},
        "blosc": {"cname": "lz4", "clevel": 5, "shuffle": 1, "blocksize": 0},
        "zstd": {"level": 0, "checksum": False},
    },
}
_OPTION_ALIASES = {"compression_opts": "level"}  # how NeuroConv reads a gzip level back from an existing file


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise UnknownCodec(f"unknown codec {name!r}; known: {', '.join(CODECS)}") from None


def spelling(codec: Codec | str, backend: str) -> tuple[tuple, tuple | None] | None:
    """``(compressors, options)`` of ``codec`` for ``backend`` in NeuroConv's vocabulary; None: not writable."""
    codec = get_codec(codec) if isinstance(codec, str) else codec
    if backend == HDF5:
        return codec.compressors, codec.options
    options = codec.options or (None,) * len(codec.compressors)
    compressors, zarr_options = [], []
    for name, option in zip(codec.compressors, options, strict=True):
        mapped = _ZARR_NAMES.get(name)
        if mapped is None:
            return None
        zarr_name, renames = mapped
        compressors.append(zarr_name)
        zarr_options.append({renames.get(k, k): v for k, v in option.items()} if option else None)
    return tuple(compressors), tuple(zarr_options) if any(o is not None for o in zarr_options) else None


def writable(codec: Codec | str, backend: str) -> bool:
    return spelling(codec, backend) is not None


def neuroconv_compressors(codec: str, backend: str, dtype) -> tuple[list | None, list | None]:
    """``(compressors, compressor_options)`` for NeuroConv's dataset configuration of ``backend``."""
    spelled = spelling(codec, backend)
    if spelled is None:
        raise UnknownCodec(f"codec {codec!r} cannot be written to a {backend} file")
    compressors, options = spelled
    if not compressors:
        return None, None
    options = list(options) if options else [None] * len(compressors)
    if backend == ZARR:  # Zarr's shuffle needs the element size, which only the dataset knows
        options = [{"elementsize": np.dtype(dtype).itemsize} if c == "shuffle" else o
                   for c, o in zip(compressors, options, strict=True)]  # fmt: skip
    return list(compressors), options if any(o is not None for o in options) else None


def caveat(codec: str) -> str:
    """What a reader needs to decode ``codec`` (empty when any HDF5 or Zarr reader can)."""
    compressors = get_codec(codec).compressors if codec in CODECS else ()
    notes = []
    if "Blosc" in compressors or "Zstd" in compressors:
        notes.append("HDF5 readers need the hdf5plugin filters (h5py users: `import hdf5plugin`)")
    if "Zstd" in compressors:
        notes.append("LINDI 0.4.6 cannot read the plain Zstd filter")
    if "lzf" in compressors:
        notes.append("LZF is an h5py filter: other HDF5 readers and Zarr cannot decode it")
    return "; ".join(notes)


def _canonical(compressors, options, backend: str) -> tuple:
    compressors = list(compressors or [])
    options = list(options or [None] * len(compressors))
    canonical = []
    for name, option in zip(compressors, options, strict=False):
        name = str(name)
        merged = dict(_DEFAULTS.get(backend, {}).get(name, {}))
        for key, value in (option or {}).items():
            if value is not None:
                merged[_OPTION_ALIASES.get(key, key)] = value
        merged.pop("elementsize", None)  # shuffle's element size follows the dtype
        canonical.append((name, json.dumps(merged, sort_keys=True, default=str)))
    return tuple(canonical)


def codec_name(compressors, options=None, backend: str = HDF5) -> str:
    """The table's name of a NeuroConv ``compressors``/``compressor_options`` pair, or a descriptive label."""
    wanted = _canonical(compressors, options, backend)
    for codec in CODECS.values():
        spelled = spelling(codec, backend)
        if spelled is not None and _canonical(*spelled, backend) == wanted:
            return codec.name
    if not wanted:
        return "none"
    return "+".join(f"{name}{_short(json.loads(opts))}" for name, opts in wanted)


def _short(options: dict) -> str:
    return "(" + ",".join(f"{k}={v}" for k, v in sorted(options.items())) + ")" if options else ""


__all__ = ["CODECS", "DEFAULT_CODEC", "HDF5", "ZARR", "Codec", "caveat", "codec_name", "get_codec",
           "neuroconv_compressors", "spelling", "writable"]  # fmt: skip
