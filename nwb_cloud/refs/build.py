"""Building an index: open the source cheaply, translate it, record where the chunks live and what it cost."""

from __future__ import annotations

import functools
import posixpath
import time
from pathlib import Path

import fsspec
import h5py
import numcodecs
import zarr

from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.format import INDEX_FORMAT
from nwb_cloud.refs.source import DEFAULT_BLOCK_SIZE, is_remote, open_source
from nwb_cloud.refs.translate import NwbHdf5ToZarr

# Chunks of at most this many stored bytes are copied into the index (kerchunk's default is 500 bytes). 16 KiB
# takes the small tables pynwb reads while opening (an electrodes table of 384 rows: 3 KB per column) out of
# the asset: an open from the index then makes no request after the index's own, instead of one round trip
# per small chunk; bulk chunks (hundreds of KB and up) stay byte ranges. The index grows by 4/3 of them.
DEFAULT_INLINE_THRESHOLD = 16 * 2**10


def build_index(
    source,
    storage_options: dict | None = None,
    url: str | None = None,
    inline_threshold: int = DEFAULT_INLINE_THRESHOLD,
    block_size: int = DEFAULT_BLOCK_SIZE,
    progress=None,
) -> dict:
    """Kerchunk "version 1" refs of the NWB HDF5 file at ``source`` (a local path or e.g. ``s3://b/k``).

    ``url`` is where readers will find the bytes (default: ``source``), e.g. the S3 object of a file the
    index is built from a local copy of. ``storage_options`` are fsspec's (``Store.s3fs_options()``) for a
    remote ``source``. The result also carries, under ``"nwb_cloud"``, the index format, the source size and
    the build's read statistics (bytes and requests) - never credentials. ``progress(done, total)`` is
    called as HDF5 objects are translated (e.g. by :func:`nwb_cloud.refs.progress.progress_bar`).
    """
    started = time.perf_counter()
    try:
        fileobj = open_source(source, storage_options, block_size=block_size)
    except FileNotFoundError:
        raise RefsError(f"cannot build an index: no such file {source}") from None
    try:
        try:
            beside = functools.partial(sibling_exists, source, storage_options=storage_options)
            translator = NwbHdf5ToZarr(fileobj, inline_threshold=inline_threshold, progress=progress,
                                       sibling_exists=beside)  # fmt: skip
        except OSError as error:
            raise RefsError(f"cannot build an index: {source} is not an HDF5 file ({error})") from None
        try:
            refs = translator.translate()
        finally:
            translator.close()
        stats = fileobj.stats
    finally:
        fileobj.close()
    refs["templates"] = {"u": url or canonical_url(source)}
    refs["nwb_cloud"] = {
        "format": INDEX_FORMAT,
        "source_bytes": stats.source_bytes,
        "build": {
            **stats.as_dict(),
            "seconds": round(time.perf_counter() - started, 4),
            "inline_threshold": inline_threshold,
            "block_size": block_size if is_remote(source) else None,
            "h5py": h5py.__version__,
            "hdf5": h5py.version.hdf5_version,
            "zarr": zarr.__version__,
            "numcodecs": numcodecs.__version__,
        },
    }
    return refs


def sibling(url: str, name: str) -> str:
    """Where an external link's file ``name`` is for an asset at ``url``: beside it (a path or an fsspec URL)."""
    if not is_remote(url):
        return str(Path(str(url).removeprefix("file://")).parent / name)
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{posixpath.normpath(posixpath.join(posixpath.dirname(rest), name))}"


def sibling_exists(source, name: str, storage_options: dict | None) -> bool:
    if Path(name).is_absolute():
        return False  # an absolute path names a file on the writer's machine, never beside the asset
    where = sibling(str(source), name)
    if not is_remote(str(source)):
        return Path(where).is_file()
    fs, path = fsspec.core.url_to_fs(where, **(storage_options or {}))
    return fs.isfile(path)


def canonical_url(source) -> str:
    return source if is_remote(source) else str(Path(str(source).removeprefix("file://")).resolve())


def with_url(refs: dict, url: str) -> dict:
    """The same index reading its chunks from ``url`` (one template value: no chunk entry is rewritten)."""
    return {**refs, "templates": {**refs.get("templates", {}), "u": url}}
