"""Writing a generated recording in a layout, through NeuroConv's backend configuration, cached by content.

Files are written to a temporary name and renamed only when complete, so a crash or Ctrl-C never leaves a
file that looks finished; the cache key covers everything that changes the bytes (generator version,
modality, size, seed, layout definition), so a changed layout is never served from a stale file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
from neuroconv.tools.nwb_helpers import configure_backend, get_default_backend_configuration
from pynwb import NWBHDF5IO

from nwb_cloud.datasets.layouts import BadLayout, Layout
from nwb_cloud.datasets.modalities import Modality
from nwb_cloud.datasets.nwbfiles import SignalIterator
from nwb_cloud.datasets.raw import materialize
from nwb_cloud.datasets.signals import GENERATOR_VERSION

RAW = Layout(name="raw", description="the uncompressed signal, before any layout", compressors=())


@dataclass(frozen=True)
class Written:
    path: Path
    chunk_shape: tuple[int, ...]
    seconds: float  # wall time of the write (0 when served from the cache)
    cached: bool


def content_key(modality: Modality, size: str, seed: int, layout: Layout) -> str:
    spec = asdict(modality.spec(size))
    content = {"generator": GENERATOR_VERSION, "modality": modality.name, "spec": spec, "seed": seed}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"{digest}-{layout.key()}"


def asset_filename(modality: Modality, size: str, seed: int, layout: Layout) -> str:
    suffix = ".nwb.zarr" if layout.backend == "zarr" else ".nwb"
    return f"{modality.name}-{size}-s{seed}-{layout.name}-{content_key(modality, size, seed, layout)}{suffix}"


def write_recording(
    modality: Modality, layout: Layout, size: str, seed: int, directory: Path, progress: bool = False
) -> Written:
    """The file of ``modality`` at ``size`` and ``seed`` in ``layout`` under ``directory`` (cached)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / asset_filename(modality, size, seed, layout)
    source = modality.signal(modality.spec(size), seed)
    if size != "tiny" and not path.exists():  # generated once, then memory-mapped for every layout
        raw_name = asset_filename(modality, size, seed, RAW).removesuffix(".nwb") + ".npy"
        source = materialize(source, directory / "raw" / raw_name, progress=progress)
    chunk_shape = layout.chunk_shape(modality, source.shape, source.dtype)
    if path.exists():
        return Written(path=path, chunk_shape=chunk_shape, seconds=0.0, cached=True)

    data = SignalIterator(source, chunk_shape=chunk_shape, display_progress=progress)
    nwbfile = modality.build(source, data, identifier=f"nwb-cloud-{modality.name}-{size}-seed{seed}")
    configuration = get_default_backend_configuration(nwbfile, backend=layout.backend)
    series = configuration.dataset_configurations[f"{modality.series_path}/data"]
    try:  # NeuroConv's pydantic models validate each assignment: a bad codec or shape fails here
        series.chunk_shape = chunk_shape
        series.buffer_shape = data.buffer_shape
        series.compressors = list(layout.compressors) if layout.compressors else None
        series.compressor_options = list(layout.compressor_options) if layout.compressor_options else None
        configure_backend(nwbfile, configuration)
    except (ValueError, AttributeError, TypeError) as error:
        first_line = str(error).strip().splitlines()
        reason = " ".join(line.strip() for line in first_line[:3])
        raise BadLayout(f"layout {layout.name!r} cannot be applied by NeuroConv: {reason}") from None

    partial = path.with_name(path.name + ".partial")
    _remove(partial)
    started = time.perf_counter()
    try:
        _write(nwbfile, partial, layout)
        partial.rename(path)
    except BaseException:
        _remove(partial)
        raise
    return Written(path=path, chunk_shape=chunk_shape, seconds=time.perf_counter() - started, cached=False)


def _write(nwbfile, path: Path, layout: Layout) -> None:
    if layout.backend == "zarr":
        from hdmf_zarr.nwb import NWBZarrIO

        with NWBZarrIO(str(path), mode="w") as io:
            io.write(nwbfile)
        return
    file_options = {}
    if layout.page_size:
        file_options = dict(fs_strategy="page", fs_page_size=int(layout.page_size), fs_persist=True)
    with h5py.File(path, "w", **file_options) as file, NWBHDF5IO(file=file, mode="w") as io:
        io.write(nwbfile)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
