"""Storage layouts: chunk shape + codec + backend, each one small named object in one table.

A layout is applied through NeuroConv's backend configuration (``get_default_backend_configuration`` then
``configure_backend``), the same path a lab's conversion takes, so what is measured here is what NeuroConv
would write with that configuration.

The table holds the two core layouts (NeuroConv's default and the seed's workload-friendly shapes), the
backend variants of both, and the layout study's matrix (:func:`study_layouts`, whose docstring says how
it is designed). A layout may apply to some modalities only (``modalities``): the catalog writes, and the
grid measures, only the (modality, layout) pairs it applies to.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field

from nwb_cloud.datasets.codecs import CODECS, codec_name
from nwb_cloud.errors import NwbCloudError


class UnknownLayout(NwbCloudError):
    pass


class BadLayout(NwbCloudError):
    pass


BACKENDS = ("hdf5", "zarr")
PAGE_SIZE = 8 * 2**20  # paged HDF5: one page per S3 range request of the recommended 8-16 MB


@dataclass(frozen=True)
class Layout:
    """How the bulk series of an asset is stored.

    ``chunks`` maps a modality to its chunk shape; a modality left out gets NeuroConv's default chunking.
    Shapes larger than the data are clipped to it. ``compressors``/``compressor_options`` are NeuroConv 0.10's
    lists (``["gzip"]``, ``[{"level": 4}]``, hdf5plugin names such as ``"Zstd"`` or ``"Blosc"``).
    ``page_size`` turns on HDF5's paged file-space strategy (metadata gathered into pages of that size).
    ``modalities`` names the modalities the layout is meant for (None: every one).
    """

    name: str
    description: str
    chunks: dict[str, tuple[int, ...]] = field(default_factory=dict)
    compressors: tuple[str, ...] = ("gzip",)
    compressor_options: tuple[dict | None, ...] | None = None
    backend: str = "hdf5"
    page_size: int | None = None
    modalities: tuple[str, ...] | None = None

    def __post_init__(self):
        if self.backend not in BACKENDS:
            raise BadLayout(f"layout {self.name!r}: unknown backend {self.backend!r}; known: {', '.join(BACKENDS)}")
        if self.page_size is not None and self.backend != "hdf5":
            raise BadLayout(f"layout {self.name!r}: a page size applies to HDF5 files only, not {self.backend}")

    def applies_to(self, modality: str) -> bool:
        return self.modalities is None or modality in self.modalities

    @property
    def codec(self) -> str:
        """The codec's name in :data:`~nwb_cloud.datasets.codecs.CODECS` (or a spelling of the pipeline)."""
        return codec_name(self.compressors, self.compressor_options)

    def chunk_shape(self, modality, shape, dtype) -> tuple[int, ...]:
        wanted = self.chunks.get(modality.name)
        if wanted is None:
            wanted = modality.neuroconv_chunks(shape, dtype)
        if len(wanted) != len(shape):
            raise BadLayout(
                f"layout {self.name!r}: chunk shape {tuple(wanted)} has rank {len(wanted)}, "
                f"the {modality.name} series has rank {len(shape)} {tuple(shape)}"
            )
        if any(int(c) < 1 for c in wanted):
            raise BadLayout(f"layout {self.name!r}: chunk shape {tuple(wanted)} has a non-positive extent")
        return tuple(min(int(c), int(s)) for c, s in zip(wanted, shape, strict=True))

    def key(self) -> str:
        """A short hash of everything that changes the bytes written (not the name, description or scope)."""
        ignored = ("name", "description", "modalities")
        content = {k: v for k, v in asdict(self).items() if k not in ignored}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=list).encode()).hexdigest()[:10]


# -- the core layouts -------------------------------------------------------------------------------------------
NEUROCONV_DEFAULT = "neuroconv-default"
WORKLOAD_FRIENDLY = "workload-friendly"
FRIENDLY_CHUNKS = {"ophys": (512, 32, 32), "ecephys": (2**18, 1)}
BULK = ("ophys", "ecephys")  # the two recordings; "session" is the session file beside a bulk series

CORE = (
    Layout(
        name=NEUROCONV_DEFAULT,
        description="NeuroConv 0.10 defaults: ~10 MB chunks (whole frames for imaging, 64 channels for "
        "ecephys), gzip level 4",
    ),
    Layout(
        name=WORKLOAD_FRIENDLY,
        description="~1 MB chunks shaped for the seed's reads: 512 frames x 32x32 pixels for imaging, one "
        "channel x 2^18 samples for ecephys; gzip level 4",
        chunks=FRIENDLY_CHUNKS,
        modalities=BULK,
    ),
)


# -- the layout study -------------------------------------------------------------------------------------------
# Chunk shapes of the sweep, per modality: (shape, why). Sizes are for uint16 512x512 frames and int16 x 384
# channels: 100 KB to 20 MB, from whole frames / all channels to small patches / one channel.
SHAPES = {
    "ophys": (
        ((1, 512, 512), "one whole frame per chunk (0.5 MB): what a frame-by-frame viewer wants"),
        ((38, 512, 512), "whole frames, 20 MB: the top of the size range"),
        ((64, 128, 128), "128x128 tiles x 64 frames (2 MB)"),
        ((256, 64, 64), "64x64 tiles x 256 frames (2 MB)"),
        ((128, 32, 32), "32x32 pixels x 128 frames (256 KB): the patch's width, shorter in time"),
        ((200, 16, 16), "16x16 pixels x 200 frames (100 KB): the bottom of the size range"),
    ),
    "ecephys": (
        ((26_000, 384), "all channels x 0.87 s (20 MB): the top of the size range"),
        ((1_300, 384), "all channels x 43 ms (1 MB): what a spike sorter or viewer window wants"),
        ((262_144, 32), "32 channels x 8.7 s (16 MB): the public DANDI asset the NWB benchmarks read"),
        ((32_768, 16), "16 channels x 1.1 s (1 MB)"),
        ((65_536, 1), "one channel x 2.2 s (128 KB): the bottom of the size range"),
    ),
}
# The codec sweep runs at NeuroConv's default shape (every codec) and at the workload-friendly shape (the
# codecs that could win there); gzip-4 at both shapes is a core layout already.
CODECS_AT_DEFAULT = [name for name in CODECS if name != "gzip-4"]
CODECS_AT_FRIENDLY = ["none", "shuffle-gzip-4", "blosc-lz4-bitshuffle", "blosc-zstd-bitshuffle", "zstd"]


def _shape_name(modality: str, shape: tuple[int, ...]) -> str:
    return f"{modality}-{'x'.join(str(c) for c in shape)}"


def _mb(modality: str, shape: tuple[int, ...]) -> str:
    itemsize = 2  # uint16 frames, int16 samples
    return f"{math.prod(shape) * itemsize / 1e6:.2g} MB"


def _with_codec(name: str, description: str, codec: str, **fields) -> Layout:
    entry = CODECS[codec]
    return Layout(
        name=name,
        description=f"{description}; {entry.description}",
        compressors=entry.compressors,
        compressor_options=entry.options,
        **fields,
    )


def study_layouts() -> tuple[Layout, ...]:
    """The layout study's matrix: informative without being a cartesian product.

    * **Chunk shapes** (at gzip-4, NeuroConv's codec, so only the shape changes): for each modality a sweep
      from whole frames / all channels to small patches / one channel, 100 KB to 20 MB, placed so that each
      read of the study (patch, clip, electrode, window, open) has shapes that favour it and shapes that
      hurt it. With the two core layouts that is 8 ophys and 7 ecephys shapes.
    * **Codecs** at two shapes: every codec at NeuroConv's default shape (~10 MB chunks, where decoding
      the chunks a small read touches can cost more than fetching them) and, at the workload-friendly
      shape (~1 MB chunks, where the bytes on the wire matter more than decode speed), no compression and
      the four that could beat gzip-4 there (better ratio or much faster decode).
      A full codec x shape product would add ~60 files per modality and say little more: the decode speed
      of each codec is measured separately (:mod:`nwb_cloud.analysis.decode`), and the bytes a read moves
      scale with the compression ratio at any shape.
    * **Backends** at the same two shapes: HDF5 with the paged file-space strategy (``PAGE_SIZE`` pages, so
      opening takes few large reads) and Zarr (one object per chunk), both gzip-4 as the HDF5 default.
      The paged default-shape layout also applies to the session file, where paged aggregation acts.

    Every row is a NeuroConv backend configuration (its ``compressors``/``compressor_options`` lists).
    """
    rows: list[Layout] = []
    for modality, shapes in SHAPES.items():
        for shape, why in shapes:
            rows.append(
                Layout(
                    name=_shape_name(modality, shape),
                    description=f"{modality} chunks {shape}: {why}; gzip level 4",
                    chunks={modality: shape},
                    modalities=(modality,),
                )
            )
    for modality in BULK:
        for codec in CODECS_AT_DEFAULT:
            rows.append(
                _with_codec(
                    f"{modality}-neuroconv-{codec}",
                    f"{modality} at NeuroConv's default chunk shape",
                    codec,
                    modalities=(modality,),
                )
            )
        for codec in CODECS_AT_FRIENDLY:
            shape = FRIENDLY_CHUNKS[modality]
            rows.append(
                _with_codec(
                    f"{modality}-friendly-{codec}",
                    f"{modality} at the workload-friendly chunk shape {shape} ({_mb(modality, shape)})",
                    codec,
                    chunks={modality: shape},
                    modalities=(modality,),
                )
            )
    rows += [
        Layout(
            name=f"{NEUROCONV_DEFAULT}-paged",
            description=f"NeuroConv's default chunks and gzip-4, HDF5 paged file-space strategy "
            f"({PAGE_SIZE // 2**20} MiB pages: metadata and small raw data gathered into pages)",
            page_size=PAGE_SIZE,
        ),
        Layout(
            name=f"{WORKLOAD_FRIENDLY}-paged",
            description=f"workload-friendly chunks and gzip-4, HDF5 paged ({PAGE_SIZE // 2**20} MiB pages)",
            chunks=FRIENDLY_CHUNKS,
            page_size=PAGE_SIZE,
            modalities=BULK,
        ),
        _with_codec(
            f"{NEUROCONV_DEFAULT}-zarr",
            "Zarr (one object per chunk) at NeuroConv's default chunks",
            "gzip-4",
            backend="zarr",
            modalities=BULK,
        ),
        _with_codec(
            f"{WORKLOAD_FRIENDLY}-zarr",
            "Zarr (one object per chunk) at the workload-friendly chunks",
            "gzip-4",
            chunks=FRIENDLY_CHUNKS,
            backend="zarr",
            modalities=BULK,
        ),
    ]
    return tuple(rows)


LAYOUTS: dict[str, Layout] = {layout.name: layout for layout in (*CORE, *study_layouts())}

# The representative subset a quick run measures: NeuroConv's default, the seed's workload-friendly shape,
# a small-chunk Blosc layout (the likely recommendation: fast to decode, better ratio than gzip), and the
# paged default (which also applies to the session file).
QUICK_LAYOUTS = (
    NEUROCONV_DEFAULT,
    WORKLOAD_FRIENDLY,
    "ophys-friendly-blosc-zstd-bitshuffle",
    "ecephys-friendly-blosc-zstd-bitshuffle",
    f"{NEUROCONV_DEFAULT}-paged",
)


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UnknownLayout(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}") from None


def layouts_for(modality: str, names=None) -> list[str]:
    """The layouts of ``names`` (default: the table) that apply to ``modality``, in their order.

    A name outside the table (a DANDI asset's "as-published") is kept: it is whatever the asset is.
    """
    names = list(LAYOUTS) if names is None else list(names)
    return [name for name in names if name not in LAYOUTS or LAYOUTS[name].applies_to(modality)]
