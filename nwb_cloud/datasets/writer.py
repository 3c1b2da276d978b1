"""Writing a generated recording in a layout, through NeuroConv's backend configuration, cached by content.

Files are written to a temporary name and renamed only when complete, so a crash or Ctrl-C never leaves a
file that looks finished; the cache key covers everything that changes the bytes (generator version,
modality, size, seed, layout definition), so a changed layout is never served from a stale file.

What the layout study needs about each write (its wall time, the bulk series' raw and stored bytes) is kept
in a small JSON beside the file, so a file served from the cache still reports the time its write took.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - layouts may use plugin filters (Blosc, Zstd); reading them back needs it
import numpy as np
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
    seconds: float  # wall time of this call's write (0 when served from the cache)
    cached: bool
    write_seconds: float | None = None  # wall time of the write that made the file (kept beside it)
    # its CPU time: what the layout costs to write whatever else the machine was doing (writes run in parallel)
    write_cpu_seconds: float | None = None
    raw_bytes: int | None = None  # the bulk series uncompressed
    stored_bytes: int | None = None  # the bulk series' chunks as stored

    @property
    def compression_ratio(self) -> float | None:
        return self.raw_bytes / self.stored_bytes if self.raw_bytes and self.stored_bytes else None


def content_key(modality: Modality, size: str, seed: int, layout: Layout, spec=None) -> str:
    """A hash of everything that changes the file's bytes (``spec``: the signal's, else the size's)."""
    spec = {k: v for k, v in asdict(spec or modality.spec(size)).items() if v is not None}  # None: the default
    content = {"generator": GENERATOR_VERSION, "modality": modality.name, "spec": spec, "seed": seed}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]
    return f"{digest}-{layout.key()}"


def asset_filename(modality: Modality, size: str, seed: int, layout: Layout, spec=None) -> str:
    suffix = ".nwb.zarr" if layout.backend == "zarr" else ".nwb"
    key = content_key(modality, size, seed, layout, spec)
    return f"{modality.name}-{size}-s{seed}-{layout.name}-{key}{suffix}"


def raw_path(modality: Modality, size: str, seed: int, directory: Path, spec=None) -> Path:
    """Where :func:`raw_source` keeps the raw copy of the signal."""
    return Path(directory) / "raw" / (asset_filename(modality, size, seed, RAW, spec).removesuffix(".nwb") + ".npy")


def raw_source(modality: Modality, size: str, seed: int, directory: Path, progress: bool = False, spec=None):
    """The signal of ``modality`` at ``size`` (or of ``spec``, ``size`` then only names it): generated once into
    a raw ``.npy`` copy, then memory-mapped for every layout (tiny files are generated directly). Writers
    running in parallel need it made first."""
    source = modality.signal(spec or modality.spec(size), seed)
    if size == "tiny":
        return source
    return materialize(source, raw_path(modality, size, seed, directory, spec), progress=progress)


def write_recording(
    modality: Modality,
    layout: Layout,
    size: str,
    seed: int,
    directory: Path,
    progress: bool = False,
    spec=None,
) -> Written:
    """The file of ``modality`` at ``size`` and ``seed`` in ``layout`` under ``directory`` (cached).

    ``spec`` (a signal spec of the modality) writes data of another shape or dtype than the size's; ``size``
    then only names the file.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if not layout.applies_to(modality.name):
        raise BadLayout(
            f"layout {layout.name!r} does not apply to {modality.name} data (it is meant for "
            f"{', '.join(layout.modalities or ())})"
        )
    path = directory / asset_filename(modality, size, seed, layout, spec)
    source = modality.signal(spec or modality.spec(size), seed)
    if not path.exists():
        source = raw_source(modality, size, seed, directory, progress=progress, spec=spec)
    chunk_shape = layout.chunk_shape(modality, source.shape, source.dtype)
    if path.exists():
        return Written(path=path, chunk_shape=chunk_shape, seconds=0.0, cached=True, **_facts(path, modality))

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
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        _write(nwbfile, partial, layout)
        partial.rename(path)
    except BaseException:
        _remove(partial)
        raise
    seconds = time.perf_counter() - started
    facts = _record_facts(path, modality, seconds, time.process_time() - cpu_started)
    return Written(path=path, chunk_shape=chunk_shape, seconds=seconds, cached=False, **facts)


def _facts_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _record_facts(path: Path, modality: Modality, seconds: float, cpu_seconds: float) -> dict:
    facts = {"write_seconds": seconds, "write_cpu_seconds": cpu_seconds, **series_bytes(path, modality.series_path)}
    target = _facts_path(path)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(json.dumps(facts))
    partial.replace(target)
    return facts


def _facts(path: Path, modality: Modality) -> dict:
    """The facts kept beside a cached file; its bytes are measured again when they are missing."""
    try:
        facts = json.loads(_facts_path(path).read_text())
        return {k: facts.get(k) for k in ("write_seconds", "write_cpu_seconds", "raw_bytes", "stored_bytes")}
    except (OSError, ValueError):
        return {"write_seconds": None, "write_cpu_seconds": None, **series_bytes(path, modality.series_path)}


def series_bytes(path: Path, series_path: str) -> dict:
    """The bulk series' uncompressed bytes and the bytes its stored chunks take, in an HDF5 file or Zarr folder."""
    dataset_path = f"{series_path.strip('/')}/data"
    if Path(path).is_dir():
        array_dir = Path(path) / dataset_path
        meta = json.loads((array_dir / ".zarray").read_text())
        raw = math.prod(meta["shape"]) * np.dtype(meta["dtype"]).itemsize
        stored = sum(p.stat().st_size for p in array_dir.iterdir() if p.is_file() and not p.name.startswith("."))
        return {"raw_bytes": int(raw), "stored_bytes": int(stored)}
    with h5py.File(path, "r") as file:
        dataset = file[dataset_path]
        raw = int(dataset.size * dataset.dtype.itemsize)
        return {"raw_bytes": raw, "stored_bytes": int(dataset.id.get_storage_size())}


def _write(nwbfile, path: Path, layout: Layout) -> None:
    if layout.backend == "zarr":
        # ZarrIO, not NWBZarrIO (hdmf-zarr 0.13's drops object_codec_class): object arrays (the electrodes
        # table's references) in JSON, which numcodecs 0.15 decodes, not the default Pickle, which it refuses.
        import numcodecs
        from hdmf_zarr import ZarrIO
        from pynwb import get_manager

        with ZarrIO(str(path), mode="w", manager=get_manager(), object_codec_class=numcodecs.JSON) as io:
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
