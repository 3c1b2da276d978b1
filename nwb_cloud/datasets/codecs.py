"""The compression codecs of the layout study, in NeuroConv 0.10's vocabulary (``compressors`` + options).

Each codec is one row: the names NeuroConv's HDF5 backend configuration accepts (h5py's own ``gzip``/``lzf``,
``shuffle`` as a filter before the compressor, and hdf5plugin's ``Blosc``/``Zstd``) with their options. A
layout carries the two lists directly; this table gives them names, so that a report, the decode
measurement and the layout rows speak of the same "blosc-zstd-bitshuffle".
"""

from __future__ import annotations

from dataclasses import dataclass

from nwb_cloud.errors import NwbCloudError


class UnknownCodec(NwbCloudError):
    pass


# hdf5plugin.Blosc's shuffle constants (NOSHUFFLE=0, SHUFFLE=1, BITSHUFFLE=2), spelled out so this table
# needs no import of the plugin library.
SHUFFLE, BITSHUFFLE = 1, 2
BLOSC_LEVEL = 5  # hdf5plugin's default
ZSTD_LEVEL = 3  # zstd's own default


@dataclass(frozen=True)
class Codec:
    name: str
    description: str
    compressors: tuple[str, ...]
    options: tuple[dict | None, ...] | None = None

    def h5py_kwargs(self) -> dict:
        """The ``h5py.create_dataset`` filter arguments this codec means (what NeuroConv's H5DataIO passes on)."""
        kwargs: dict = {}
        options = self.options or (None,) * len(self.compressors)
        for name, option in zip(self.compressors, options, strict=True):
            if name == "shuffle":
                kwargs["shuffle"] = True
            elif name in ("gzip", "lzf"):
                kwargs["compression"] = name
                if option:
                    kwargs["compression_opts"] = next(iter(option.values()))
            else:
                import hdf5plugin

                kwargs.update(dict(getattr(hdf5plugin, name)(**(option or {}))))
        return kwargs


def _blosc(cname: str, shuffle: int) -> Codec:
    kind = "bitshuffle" if shuffle == BITSHUFFLE else "shuffle"
    return Codec(
        f"blosc-{cname}-{kind}",
        f"Blosc with {cname} at level {BLOSC_LEVEL}, {kind} filter (hdf5plugin, filter 32001)",
        ("Blosc",),
        ({"cname": cname, "clevel": BLOSC_LEVEL, "shuffle": shuffle},),
    )


CODECS: dict[str, Codec] = {
    codec.name: codec
    for codec in (
        Codec("none", "no compression", ()),
        Codec("gzip-1", "deflate level 1 (fastest gzip)", ("gzip",), ({"level": 1},)),
        Codec("gzip-4", "deflate level 4: NeuroConv's default", ("gzip",), ({"level": 4},)),
        Codec("gzip-9", "deflate level 9 (smallest gzip, slowest to write)", ("gzip",), ({"level": 9},)),
        Codec("shuffle-gzip-4", "byte shuffle, then deflate level 4", ("shuffle", "gzip"), (None, {"level": 4})),
        Codec("lzf", "LZF (h5py's own fast codec)", ("lzf",)),
        _blosc("lz4", SHUFFLE),
        _blosc("lz4", BITSHUFFLE),
        _blosc("zstd", SHUFFLE),
        _blosc("zstd", BITSHUFFLE),
        Codec(
            "zstd", f"plain Zstd at level {ZSTD_LEVEL} (hdf5plugin, filter 32015)", ("Zstd",), ({"clevel": ZSTD_LEVEL},)
        ),
    )
}


def get_codec(name: str) -> Codec:
    try:
        return CODECS[name]
    except KeyError:
        raise UnknownCodec(f"unknown codec {name!r}; known: {', '.join(CODECS)}") from None


def codec_name(compressors, options) -> str:
    """The table's name for a (compressors, options) pair, or a readable spelling of it when it is not a row."""
    compressors = tuple(compressors or ())
    options = tuple(options) if options else None
    if options is None and compressors and compressors[-1] == "gzip":  # h5py's gzip level when none is given
        options = (*(None,) * (len(compressors) - 1), {"level": 4})
    for codec in CODECS.values():
        if codec.compressors == compressors and (codec.options or None) == options:
            return codec.name
    return "+".join(compressors) or "none"
