"""Rewriting an existing NWB file into a new layout for one series, and proving nothing else changed.

The file is read with pynwb, NeuroConv's configuration of the series is taken as it is on disk
(``get_existing_backend_configuration``), the series'
dataset is given the new chunk shape and codec (NeuroConv's dataset configuration, so NeuroConv validates
it and makes its DataIO), and hdmf exports the file; every other dataset is copied as it is stored. The
series is streamed through NeuroConv's ``SliceableDataChunkIterator`` in whole-chunk buffers of about
``buffer_bytes`` instead of being loaded at once.

Safety: the input is never written; the output is written under a hidden ``.partial`` name beside it and
renamed only after the verification passed. Verification compares source and output object by object
(:mod:`nwb_cloud.refs.compare`: every group, dataset, attribute, link and value; every pynwb object and
field) and checks that the series has the requested chunks and codec. Datasets larger than
``in_memory_bytes`` are compared block by block instead of being read whole.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - the source or the new codec may use a plugin filter
import numpy as np
from pydantic import BaseModel

from nwb_cloud.recommend.codecs import HDF5, get_codec
from nwb_cloud.recommend.configure import dataset_configuration, find_location
from nwb_cloud.recommend.dataset import from_nwb
from nwb_cloud.recommend.errors import OutputExists, RecommendError, RewriteFailed
from nwb_cloud.recommend.geometry import check_chunk_shape

BUFFER_BYTES = 256_000_000  # write buffer of the rewritten series
IN_MEMORY_BYTES = 256_000_000  # datasets above this are verified block by block
BLOCK_BYTES = 64_000_000


class RewriteReport(BaseModel):
    source: str
    output: str
    series: str
    chunks_before: tuple[int, ...] | None
    codec_before: str | None
    chunk_shape: tuple[int, ...]
    codec: str
    size_before: int
    size_after: int
    seconds: float
    write_seconds: float = 0.0  # the export alone (wall), before its verification
    write_cpu_seconds: float = 0.0  # its CPU time: what the layout costs to write, whatever else the machine does
    verified: bool
    datasets_compared_in_blocks: list[str] = []


def rewrite(
    source,
    output,
    series: str,
    chunk_shape=None,
    codec: str | None = None,
    recommendation=None,
    overwrite: bool = False,
    verify: bool = True,
    buffer_bytes: int = BUFFER_BYTES,
    in_memory_bytes: int = IN_MEMORY_BYTES,
) -> RewriteReport:
    """Write ``source`` to ``output`` with ``series`` in ``chunk_shape`` + ``codec`` (or ``recommendation``'s)."""
    source, output = Path(source), Path(output)
    if recommendation is not None:
        chunk_shape, codec = recommendation.chunk_shape, recommendation.codec
    if chunk_shape is None or codec is None:
        raise RecommendError("a rewrite needs a chunk shape and a codec, or a recommendation")
    get_codec(codec)
    _check_paths(source, output, overwrite)
    spec = from_nwb(source, series)
    chunk_shape = check_chunk_shape(spec.shape, chunk_shape)
    partial = output.with_name(f".partial-{os.getpid()}-{output.name}")  # hidden, and named for what it is
    _remove(partial)
    started, cpu_started = time.perf_counter(), time.process_time()
    try:
        _export(source, partial, spec.dataset_path, chunk_shape, codec, buffer_bytes, spec.backend)
        write_seconds, write_cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        blocks: list[str] = []
        if verify:
            differences, blocks = verify_rewrite(
                source, partial, spec.dataset_path, chunk_shape, codec, in_memory_bytes
            )
            if differences:
                shown = "; ".join(differences[:5])
                raise RewriteFailed(f"the rewrite of {source} differs from it in {len(differences)} place(s): {shown}")
        _replace(partial, output)
    except BaseException:
        _remove(partial)
        raise
    return RewriteReport(
        source=str(source),
        output=str(output),
        series=spec.series_path,
        chunks_before=spec.current_chunks,
        codec_before=spec.current_codec,
        chunk_shape=chunk_shape,
        codec=codec,
        size_before=_size(source),
        size_after=_size(output),
        seconds=time.perf_counter() - started,
        write_seconds=write_seconds,
        write_cpu_seconds=write_cpu_seconds,
        verified=verify,
        datasets_compared_in_blocks=blocks,
    )


def _check_paths(source: Path, output: Path, overwrite: bool) -> None:
    if not source.exists():
        raise RecommendError(f"no NWB file at {source}")
    if output.resolve() == source.resolve() or (output.exists() and os.path.samefile(source, output)):
        raise OutputExists(f"the output {output} is the input itself: a rewrite never replaces its source")
    if output.exists() and not overwrite:
        raise OutputExists(f"{output} exists: choose another path, or pass --overwrite to replace it")
    if not output.parent.is_dir():
        raise RecommendError(f"the output's folder {output.parent} does not exist")


def _io_class(path: Path):
    if path.is_dir():
        from hdmf_zarr.nwb import NWBZarrIO

        return NWBZarrIO
    from pynwb import NWBHDF5IO

    return NWBHDF5IO


def _export(source: Path, target: Path, dataset_path: str, chunk_shape, codec: str, buffer_bytes: int, backend) -> None:
    """hdmf's export of the whole file, the series' data given NeuroConv's DataIO for the new layout.

    Only the rewritten series gets a new DataIO; every other dataset is exported as hdmf copies it, with its
    own chunks and filters. (NeuroConv's ``configure_backend`` would re-wrap every on-disk dataset in a
    ``DataChunkIterator`` and so re-chunk even contiguous ones.)
    """
    from neuroconv.tools.hdmf import SliceableDataChunkIterator
    from neuroconv.tools.nwb_helpers import BACKEND_CONFIGURATIONS, get_existing_backend_configuration

    io_class = _io_class(source)
    with io_class(str(source), mode="r") as read_io:
        nwbfile = read_io.read()
        configuration = get_existing_backend_configuration(nwbfile)
        key = find_location(configuration, dataset_path)
        new = dataset_configuration(configuration.dataset_configurations[key], chunk_shape, codec, buffer_bytes)
        series = {child.object_id: child for child in nwbfile.all_children()}[new.object_id]
        on_disk = series.fields[new.dataset_name]
        series.fields[new.dataset_name] = SliceableDataChunkIterator(
            on_disk, buffer_shape=tuple(new.buffer_shape), chunk_shape=tuple(new.chunk_shape), display_progress=False
        )
        series.set_data_io(new.dataset_name, BACKEND_CONFIGURATIONS[backend].data_io_class, new.get_data_io_kwargs())
        nwbfile.set_modified()
        with io_class(str(target), mode="w") as write_io:
            write_io.export(src_io=read_io, nwbfile=nwbfile, write_args=dict(link_data=False))


# -- verification ---------------------------------------------------------------------------------------------
def verify_rewrite(source, output, dataset_path: str, chunk_shape, codec: str, in_memory_bytes: int = IN_MEMORY_BYTES):
    """(differences, datasets compared in blocks): the layout applied, and every object equal to the source's."""
    from nwb_cloud.recommend.dataset import from_nwb as describe_series

    differences = []
    written = describe_series(output, dataset_path.removesuffix("/data"))
    if written.current_chunks != tuple(chunk_shape):
        differences.append(f"{dataset_path}: chunks {written.current_chunks}, wanted {tuple(chunk_shape)}")
    if written.current_codec != codec:
        differences.append(f"{dataset_path}: codec {written.current_codec}, wanted {codec}")
    io_class = _io_class(Path(source))
    with io_class(str(source), mode="r") as expected_io, io_class(str(output), mode="r") as actual_io:
        found, blocks = _compare(expected_io, actual_io, in_memory_bytes)
    return differences + found, blocks


def _compare(expected_io, actual_io, in_memory_bytes: int) -> tuple[list[str], list[str]]:
    from nwb_cloud.refs.compare import compare_builders, compare_containers

    expected_root, actual_root = expected_io.read_builder(), actual_io.read_builder()
    large = {path: (e, a) for path, (e, a) in _paired_datasets(expected_root, actual_root).items()
             if _nbytes(e.data) > in_memory_bytes}  # fmt: skip
    found = []
    for path, (expected, actual) in large.items():
        found += _compare_in_blocks(path, expected.data, actual.data)
    saved = {path: (e.data, a.data) for path, (e, a) in large.items()}
    try:
        for path, (expected, actual) in large.items():  # compared above: the object comparison sees a token
            token = f"compared block by block: {path}"
            expected._DatasetBuilder__data = actual._DatasetBuilder__data = token
        found += compare_builders(expected_root, actual_root)
    finally:
        for path, (expected, actual) in large.items():
            expected._DatasetBuilder__data, actual._DatasetBuilder__data = saved[path]
    expected_file, actual_file = expected_io.read(), actual_io.read()
    stored = {path for path in large}
    for nwbfile in (expected_file, actual_file):
        for child in nwbfile.all_children():
            for name, value in list(getattr(child, "fields", {}).items()):
                if _dataset_name(value) in stored:
                    child.fields[name] = f"compared block by block: {_dataset_name(value)}"
    found += compare_containers(expected_file, actual_file)
    return found, sorted(large)


def _paired_datasets(expected, actual, where: str = "") -> dict:
    pairs = {}
    for name, dataset in expected.datasets.items():
        if name in actual.datasets:
            pairs[f"{where}/{name}"] = (dataset, actual.datasets[name])
    for name, group in expected.groups.items():
        if name in actual.groups:
            pairs.update(_paired_datasets(group, actual.groups[name], f"{where}/{name}"))
    return pairs


def _nbytes(data) -> int:
    """Bytes of a stored numeric dataset (0 for anything else: strings, references and compounds are small)."""
    import zarr

    if isinstance(data, (h5py.Dataset, zarr.Array)) and data.dtype.names is None and data.dtype.kind in "biufc":
        return int(np.prod(data.shape, dtype=np.int64)) * data.dtype.itemsize
    return 0


def _dataset_name(value) -> str | None:
    """The path of an h5py dataset or Zarr array in its file (as the builder paths above spell it)."""
    import zarr

    if isinstance(value, h5py.Dataset):
        return "/" + value.name.strip("/")
    if isinstance(value, zarr.Array):
        return "/" + value.path.strip("/")
    return None


def _compare_in_blocks(path: str, expected, actual) -> list[str]:
    if expected.dtype != actual.dtype or tuple(expected.shape) != tuple(actual.shape):
        return [f"{path}: {expected.dtype}{tuple(expected.shape)} vs {actual.dtype}{tuple(actual.shape)}"]
    row_bytes = max(1, _nbytes(expected) // max(1, expected.shape[0]))
    step = max(1, BLOCK_BYTES // row_bytes)
    nan = expected.dtype.kind in "fc"
    for start in range(0, expected.shape[0], step):
        left, right = np.asarray(expected[start : start + step]), np.asarray(actual[start : start + step])
        if not np.array_equal(left, right, equal_nan=nan):
            wrong = int(np.count_nonzero(left != right))
            return [f"{path}[{start}:{start + len(left)}]: {wrong} values differ"]
    return []


# -- files ----------------------------------------------------------------------------------------------------
def _replace(partial: Path, output: Path) -> None:
    """Rename the verified ``partial`` to ``output`` (a folder output is moved aside first, then removed)."""
    if partial.is_dir() and output.exists():
        aside = output.with_name(f".{output.name}.replaced-{os.getpid()}")
        output.rename(aside)
        partial.rename(output)
        _remove(aside)
        return
    os.replace(partial, output)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


__all__ = ["HDF5", "RewriteReport", "rewrite", "verify_rewrite"]
