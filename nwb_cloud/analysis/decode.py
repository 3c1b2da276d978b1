"""How long this machine takes to read a selection from the local copy: the decode side of the bound.

Reads from the page cache (the first read warms it; the least of the repeats is kept), so what is timed is
decompression, filters and copying out: work every reader must do on the same chunks wherever the bytes
come from. HDF5's chunk cache is turned off so that a repeat never finds a chunk already decoded.

Three local figures per read, each the least of its repeats:

* :func:`time_local_read`: h5py reading the selection (zlib for deflate): the decode term as h5py pays it;
* :func:`time_local_pynwb`: h5py + pynwb running the workload on the local file, the same code a cold cell
  times (the open excluded, as a read cell's open is): the user's local baseline, "time / local h5py";
* :func:`fastest_decode_s`: the CPU the fastest exact decoder installed (:mod:`nwb_cloud.refs.inflate`)
  takes to inflate and unshuffle the touched chunks of a deflate dataset: the decode term this machine
  could reach, which the bound uses;
* :func:`time_local_processing`: the workload's own work on the selection once it is in memory (the
  band-pass filter of ``ecephys_electrode``, the mean of ``ophys_patch``): every cell times it after its
  read, so the bound adds it.

:func:`decoder_speeds` is the decoder table (MB/s of output per CPU second, per decoder, codec and chunk
size) that drives :func:`nwb_cloud.refs.inflate.choose`.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the plugin filters (Zstd, Blosc, ...) a layout may use
import numcodecs
import numpy as np
import zarr

from nwb_cloud.analysis.chunks import ChunkIndexError, Touched, is_zarr
from nwb_cloud.refs import inflate

BUDGET_S = 20.0  # past this, stop repeating once two reads are timed


def _open_array(local_path: Path, dataset_path: str):
    """(array, closer) for the dataset in a local HDF5 file or Zarr folder."""
    if is_zarr(local_path):
        try:
            return zarr.open_array(str(local_path / dataset_path), mode="r"), lambda: None
        except (ValueError, KeyError, zarr.errors.ArrayNotFoundError) as error:
            raise ChunkIndexError(f"{local_path} has no Zarr array {dataset_path!r}: {error}") from None
    file = h5py.File(local_path, "r", rdcc_nbytes=0)
    dataset = file.get(dataset_path)
    if not isinstance(dataset, h5py.Dataset):
        file.close()
        raise ChunkIndexError(f"{local_path} has no dataset {dataset_path!r}")
    return dataset, file.close


def time_local_read(local_path: str | Path, dataset_path: str, selection, repeats: int = 3) -> tuple[float, int]:
    """(least seconds, reads timed) to read ``selection`` of ``dataset_path`` from the local copy."""
    array, close = _open_array(Path(local_path), dataset_path.strip("/"))
    times: list[float] = []
    try:
        while len(times) < max(1, repeats):
            started = time.perf_counter()
            array[selection]
            times.append(time.perf_counter() - started)
            if len(times) >= 2 and sum(times) > BUDGET_S:
                break
    finally:
        close()
    return min(times), len(times)


def time_local_pynwb(local_path: str | Path, run, repeats: int = 3) -> tuple[float, int]:
    """(least seconds, runs timed) of ``run(nwbfile)`` on ``local_path`` opened with pynwb (the open not timed).

    ``run`` is the workload a cell times (selection and processing). Each repeat opens the file again, so
    h5py's chunk cache (kept at its default, as a user's local read has it) starts empty, as a cold cell's
    does; the page cache stays warm (the fastest a local disk can be).
    """
    from nwb_cloud.datasets.local import open_local

    times: list[float] = []
    while len(times) < max(1, repeats):
        with open_local(str(local_path)) as io:  # a fresh file each time: HDF5's chunk cache starts empty
            nwbfile = io.read()
            started = time.perf_counter()
            run(nwbfile)
            times.append(time.perf_counter() - started)
        if len(times) >= 2 and sum(times) > BUDGET_S:
            break
    return min(times), len(times)


class _Preread:
    """A dataset whose one selection is already in memory: a workload reading it pays only its processing."""

    def __init__(self, data, selection):
        self.shape, self.dtype, self._selection = data.shape, data.dtype, selection
        self._values = np.asarray(data[selection])

    def __getitem__(self, selection):
        if selection != self._selection:
            raise KeyError(f"the workload asked for {selection}, not the selection read before: {self._selection}")
        return self._values


class _PrereadSeries:
    """The series as pynwb gives it, with ``data`` answering the workload's selection from memory."""

    def __init__(self, series, selection):
        self._series, self.data = series, _Preread(series.data, selection)

    def __getattr__(self, name):
        return getattr(self._series, name)


def time_local_processing(local_path: str | Path, series_path: str, selection, run, repeats: int = 3) -> float:
    """Least seconds of ``run(nwbfile, series_path)`` (a workload) once its ``selection`` is in memory: the
    processing every cell times after its read, which no reader can overlap with fetching (the filter needs
    the whole trace)."""
    from types import SimpleNamespace

    from nwb_cloud.datasets.local import open_local

    group, _, name = series_path.strip("/").rpartition("/")
    with open_local(str(local_path)) as io:
        nwbfile = io.read()
        holder = getattr(nwbfile, group or "acquisition")
        series = _PrereadSeries(holder[name], selection)
        stand_in = SimpleNamespace(**{group or "acquisition": {name: series}})
        times: list[float] = []
        while len(times) < max(1, repeats):
            started = time.perf_counter()
            run(stand_in, series_path)
            times.append(time.perf_counter() - started)
    return min(times)


def fastest_decode_s(local_path: str | Path, dataset_path: str, chunks: Touched, repeats: int = 3):
    """(least CPU seconds, decoder) to decode the stored touched ``chunks`` with the fastest exact inflate, or
    None when the dataset is not deflate (shuffle optional) in an HDF5 file: then h5py's own decoders are the
    fastest this package has, and :func:`time_local_read` stands. Chunks are read once (page cache); their
    stored bytes are decoded as the index's data path decodes them (inflate, then unshuffle)."""
    local_path = Path(local_path)
    if is_zarr(local_path):
        return None
    with h5py.File(local_path, "r") as file:
        dataset = file.get(dataset_path.strip("/"))
        if not isinstance(dataset, h5py.Dataset) or dataset.chunks is None or dataset.compression != "gzip":
            return None
        if dataset.fletcher32 or dataset.scaleoffset is not None:
            return None
        itemsize = dataset.dtype.itemsize
        stored = []
        for chunk in chunks.chunks:
            if chunk.stored:
                offset = tuple(i * c for i, c in zip(chunk.index, chunks.chunk_shape))
                stored.append(dataset.id.read_direct_chunk(offset))
        shuffle = numcodecs.Shuffle(elementsize=itemsize) if dataset.shuffle else None
    nbytes = chunks.chunk_nbytes
    kind = inflate.SHUFFLE_DEFLATE if shuffle else inflate.DEFLATE
    decode = inflate.decoder_for(kind, nbytes)
    best = float("inf")
    for _ in range(max(1, repeats)):
        started = time.process_time()
        for mask, data in stored:
            out = decode(data, nbytes) if not mask & 1 else data  # bit 0: deflate skipped for this chunk
            if shuffle is not None and not mask & 2:  # shuffle is the first filter when present
                shuffle.decode(out)
        best = min(best, time.process_time() - started)
    return best, decode.decoder


# -- the decoder table -------------------------------------------------------------------------------------------
DECODER_CHUNK_BYTES = (100_000, 1_000_000, 10_000_000)  # ~the sweep's smallest, the read-shaped, NeuroConv's
DECODER_REPEATS = 5


def decoder_speeds(size: str = "quick", seed: int = 0, chunk_bytes=DECODER_CHUNK_BYTES, repeats=DECODER_REPEATS):
    """The decoder table: every inflate of :data:`nwb_cloud.refs.inflate.DECODERS` on one chunk of each
    modality's signal per chunk size, written by HDF5's deflate filter (level 4, NeuroConv's) alone and after
    shuffle. Rows are :func:`nwb_cloud.refs.inflate.speed`'s (MB of output per CPU second, least of
    ``repeats``; ``exact``: same bytes as zlib) plus ``modality``; a decoder not installed has a row saying so."""
    import io

    from nwb_cloud.datasets.modalities import get_modality

    rows = []
    for name in ("ophys", "ecephys"):
        modality = get_modality(name)
        source = modality.signal(modality.spec(size), seed)
        for target in chunk_bytes:
            shape = _chunk_of(source.shape, source.dtype.itemsize, target)
            block = source.read(0, shape[0])[(slice(None), *(slice(0, c) for c in shape[1:]))]
            for codec, shuffle in ((inflate.DEFLATE, False), (inflate.SHUFFLE_DEFLATE, True)):
                buffer = io.BytesIO()
                with h5py.File(buffer, "w") as file:
                    file.create_dataset("x", data=block, chunks=block.shape, compression="gzip",
                                        compression_opts=4, shuffle=shuffle)  # fmt: skip
                with h5py.File(buffer, "r") as file:
                    _, stored = file["x"].id.read_direct_chunk((0,) * block.ndim)
                for decoder in inflate.DECODERS:
                    row = inflate.speed(decoder, stored, block.nbytes, codec=codec, repeats=repeats)
                    rows.append({"modality": name, "chunk_shape": list(block.shape), **row})
    return rows


def _chunk_of(shape, itemsize: int, target: int) -> tuple[int, ...]:
    """A chunk of about ``target`` bytes: whole rows of the trailing axes' first 64 columns (ecephys: channels)
    or 128x128 pixels (ophys), as many rows of the first axis as fit."""
    trailing = tuple(min(s, 64 if len(shape) == 2 else 128) for s in shape[1:])
    row = itemsize * int(np.prod(trailing))
    return (max(1, min(shape[0], round(target / row))), *trailing)


# -- decode speed of each codec ---------------------------------------------------------------------------------
DECODE_REPEATS = 3


def codec_speeds(size: str, seed: int = 0, codecs=None, modalities=("ophys", "ecephys")) -> list[dict]:
    """Compression ratio, encode and decode speed (MB/s of raw data, one core) of every codec on this machine.

    One chunk of NeuroConv's default shape (~10 MB at the study's sizes) of each modality's signal at
    ``size`` is written with the codec's HDF5 filter pipeline into an in-memory file and read back with
    HDF5's chunk cache off (least of ``DECODE_REPEATS`` reads): the decode cost every reader pays per
    chunk, whichever way its bytes arrive, which is what makes ~10 MB gzip chunks slow for small reads.
    """
    import io

    from nwb_cloud.datasets.codecs import CODECS
    from nwb_cloud.datasets.modalities import get_modality

    rows = []
    for name in modalities:
        modality = get_modality(name)
        source = modality.signal(modality.spec(size), seed)
        chunk = modality.neuroconv_chunks(source.shape, source.dtype)
        block = source.read(0, chunk[0])[(slice(None), *(slice(0, c) for c in chunk[1:]))]
        for codec in (CODECS[c] for c in codecs or CODECS):
            buffer = io.BytesIO()
            with h5py.File(buffer, "w") as file:
                started = time.perf_counter()
                dataset = file.create_dataset("x", data=block, chunks=block.shape, **codec.h5py_kwargs())
                file.flush()
                encode_s = time.perf_counter() - started
                stored = int(dataset.id.get_storage_size())
            decode_s = float("inf")
            with h5py.File(buffer, "r", rdcc_nbytes=0) as file:
                for _ in range(DECODE_REPEATS):
                    started = time.perf_counter()
                    file["x"][...]
                    decode_s = min(decode_s, time.perf_counter() - started)
            rows.append(
                {
                    "modality": name,
                    "codec": codec.name,
                    "chunk_shape": list(block.shape),
                    "raw_bytes": int(block.nbytes),
                    "stored_bytes": stored,
                    "ratio": block.nbytes / stored,
                    "encode_mb_s": block.nbytes / 1e6 / encode_s,
                    "decode_mb_s": block.nbytes / 1e6 / decode_s,
                }
            )
    return rows


# -- why a layout ratio is what it is ----------------------------------------------------------------------------
SEED_PATCH_RATIO = 14.0  # the seed talk's gain for the ophys patch read, best layout vs NeuroConv's default


def explain_ratio(baseline: dict, best: dict, measured: float | None = None, claimed: float | None = None) -> str:
    """Why best-vs-baseline is the ratio it is, from the two cells' floors (``Floor.to_dict()``, as run-info keeps).

    The physics of the two cells: chunks touched, bytes fetched and decoded, which term of the bound binds.
    A small read on ~10 MB gzip chunks is decode-bound (every touched chunk is inflated whole), the same read
    on small chunks is bound by one request's latency, so the bound ratio is roughly decoded bytes x decode
    time per byte over one round trip: it grows with decode cost and shrinks with latency, which is why it
    differs by profile. A measured ratio above the bound ratio means the reader pays more on the baseline
    than the bound does (serial fetch-then-decode on one connection and one core, as h5py readers do);
    below it, the reader pays fixed costs (requests for the chunk index, its own latency) on the small read.
    """
    bound_ratio = baseline["seconds"] / best["seconds"] if best.get("seconds") else float("nan")

    def side(name: str, floor: dict) -> str:
        return (
            f"{name} touches {floor['chunks']} chunk(s), {floor['compressed_bytes'] / 1e6:.1f} MB stored and "
            f"{floor['chunk_bytes'] / 1e6:.1f} MB decoded for {floor['selection_bytes'] / 1e6:.1f} MB asked; "
            f"its bound {floor['seconds'] * 1e3:.0f} ms is set by {floor['binding']} "
            f"(network {floor['network_s'] * 1e3:.0f} ms, decode {floor['decode_s'] * 1e3:.0f} ms on "
            f"{floor['decode_cores']} core(s))"
        )

    text = [
        f"{baseline['workload']} under {baseline['profile']}: bound ratio {bound_ratio:.1f}x.",
        side("The baseline", baseline) + ";",
        side("The best layout", best) + ".",
    ]
    if measured is not None:
        if measured > bound_ratio:
            how = "above the bound ratio: the reader pays more than the bound on the baseline (fetch and decode "
            how += "one chunk after the other, on one connection and one core)"
        else:
            how = "at or below the bound ratio: the reader's fixed costs (chunk-index and metadata requests, "
            how += "per-request latency) weigh on the small read"
        text.append(f"Measured {measured:.1f}x, {how}.")
    if claimed is not None and measured is not None:
        text.append(
            f"The seed reports {claimed:.0f}x; the ratio scales with the decoded bytes the baseline touches (its "
            f"chunk shape and the codec's decode speed on the machine) over the latency of the small read, so a "
            f"different machine, codec speed or network gives a different multiple: here {measured:.1f}x."
        )
    return " ".join(text)


# -- the decoder table as an asv benchmark (benchmarks/decoders.py) ----------------------------------------------
class InflateDecoders:
    """MB of output per CPU second of each inflate decoder, per codec, chunk size and modality's signal.

    The table that drives :func:`nwb_cloud.refs.inflate.choose`, measured on the machine that runs the suite
    (CPU time, least of :data:`DECODER_REPEATS`: robust to other work, but not to caches shared with it). A
    decoder that is not installed, or whose bytes differ from zlib's, has no figure (a wrong decode is never a
    speed). It needs no run state: the signals are generated here, at the quick size (under ``nwb-cloud bench``
    asv records the table the run prepared instead: ``suite.asv_decoders``).
    """

    params = [list(inflate.DECODERS), list(inflate.CODECS), list(DECODER_CHUNK_BYTES), ["ophys", "ecephys"]]
    param_names = ["decoder", "codec", "chunk_bytes", "modality"]
    timeout = 600

    def setup_cache(self) -> list[dict]:
        return decoder_speeds("quick", 0)

    def track_output_mb_per_cpu_s(self, table, decoder, codec, chunk_bytes, modality) -> float:
        for row in table:
            if (row["decoder"], row["codec"], row["modality"]) == (decoder, codec, modality) and _near(
                row["chunk_bytes"], chunk_bytes
            ):
                if not row["installed"]:
                    raise NotImplementedError(f"{decoder} is not installed")
                if not row["exact"]:
                    raise AssertionError(f"{decoder} decoded {codec} chunks to other bytes than zlib")
                return row["output_mb_per_cpu_s"]
        raise NotImplementedError(f"no {codec} chunk of ~{chunk_bytes} bytes for {modality}")

    track_output_mb_per_cpu_s.unit = "MB/s"


def _near(measured: int, target: int) -> bool:
    """Whether a chunk of ``measured`` bytes is the one made for ``target`` (whole rows: within 10%)."""
    return abs(measured - target) <= 0.1 * target
