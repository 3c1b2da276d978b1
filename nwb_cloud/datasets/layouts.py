"""Storage layouts: chunk shape + codec + backend, each one small named object in one table.

A layout is applied through NeuroConv's backend configuration (``get_default_backend_configuration`` then
``configure_backend``), the same path a lab's conversion takes, so what is measured here is what NeuroConv
would write with that configuration.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from nwb_cloud.errors import NwbCloudError


class UnknownLayout(NwbCloudError):
    pass


class BadLayout(NwbCloudError):
    pass


@dataclass(frozen=True)
class Layout:
    """How the bulk series of an asset is stored.

    ``chunks`` maps a modality to its chunk shape; a modality left out gets NeuroConv's default chunking.
    Shapes larger than the data are clipped to it. ``compressors``/``compressor_options`` are NeuroConv 0.10's
    lists (``["gzip"]``, ``[{"level": 4}]``, hdf5plugin names such as ``"Zstd"`` or ``"Blosc"``).
    ``page_size`` turns on HDF5's paged file-space strategy (metadata gathered into pages of that size).
    """

    name: str
    description: str
    chunks: dict[str, tuple[int, ...]] = field(default_factory=dict)
    compressors: tuple[str, ...] = ("gzip",)
    compressor_options: tuple[dict | None, ...] | None = None
    backend: str = "hdf5"
    page_size: int | None = None

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
        """A short hash of everything that changes the bytes written (not the name or description)."""
        content = {k: v for k, v in asdict(self).items() if k not in ("name", "description")}
        return hashlib.sha256(json.dumps(content, sort_keys=True, default=list).encode()).hexdigest()[:10]


LAYOUTS: dict[str, Layout] = {
    layout.name: layout
    for layout in (
        Layout(
            name="neuroconv-default",
            description="NeuroConv 0.10 defaults: ~10 MB chunks (whole frames for imaging, 64 channels for "
            "ecephys), gzip level 4",
        ),
        Layout(
            name="workload-friendly",
            description="~1 MB chunks shaped for the seed's reads: 512 frames x 32x32 pixels for imaging, one "
            "channel x 2^18 samples for ecephys; gzip level 4",
            chunks={"ophys": (512, 32, 32), "ecephys": (2**18, 1)},
        ),
    )
}


def get_layout(name: str) -> Layout:
    try:
        return LAYOUTS[name]
    except KeyError:
        raise UnknownLayout(f"unknown layout {name!r}; known: {', '.join(LAYOUTS)}") from None
