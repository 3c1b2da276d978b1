"""Zarr copies of the NWB files, read by hdmf-zarr's ``NWBZarrIO`` over s3fs, with and without consolidated metadata.

``prepare`` exports the HDF5 asset to Zarr with hdmf-zarr (``ZarrIO.export`` from ``NWBHDF5IO``) and uploads
it to ``key + ".zarr/"``. Chunking and codec are kept equivalent: every numeric dataset keeps its HDF5 chunk
shape and fill value, and the HDF5 filter pipeline, translated by hdmf-zarr's own
``ZarrDataIO.hdf5_to_zarr_filters`` (gzip -> ``Zlib(level)``, 32015 -> ``Zstd(level)``, 32001 -> ``Blosc``,
shuffle -> ``Shuffle``), becomes Zarr's ``compressor`` (the compressing codec) and ``filters`` (shuffle); a
filter it cannot translate (lzf, bitshuffle, lz4, szip, scaleoffset) fails the prepare of that asset. Left
to itself, hdmf-zarr puts the whole translated pipeline into ``filters`` and then adds Zarr's default
``Blosc(lz4)`` compressor on top, compressing every chunk twice. With this mapping gzip chunks are
byte-identical to the HDF5 ones, so the two formats are compared on equal bytes. Object arrays (references,
e.g. the electrodes table's ``group`` column) are written with the ``JSON`` object codec rather than
hdmf-zarr's default ``Pickle``, which numcodecs 0.15 refuses to decode (unpickling can run code).

``.zmetadata`` is uploaded last, after every other object: its presence marks a complete copy, so a
``prepare`` interrupted half-way is redone, and a complete one is not. A Zarr asset (a key ending in
``.zarr``) is read as it is.

hdmf-zarr 0.13 modes: ``"r"`` opens with ``zarr.open_consolidated`` (one GET of ``.zmetadata`` for all
metadata; it falls back to a plain open when there is none), ``"r-"`` forces a plain ``zarr.open`` that
reads each ``.zgroup``/``.zarray``/``.zattrs`` on demand. Both load the cached namespaces with a plain open.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - the HDF5 side of the export may use plugin filters
import numcodecs
import zarr
from hdmf.build import BuildManager
from hdmf.container import Data
from hdmf_zarr import ZarrDataIO, ZarrIO
from hdmf_zarr.nwb import NWBZarrIO
from pynwb import NWBHDF5IO

from nwb_cloud.access.base import (
    AccessError,
    Method,
    Opened,
    Unsupported,
    reader_errors,
    require_writable,
    translate_errors,
    why_missing,
)
from nwb_cloud.access.derived import identity, require_current
from nwb_cloud.cloud.transfer import upload
from nwb_cloud.refs.fetch import RangeReader, Refused

SUFFIX = ".zarr"
# HDF5 filters hdmf-zarr translates (fletcher32 is a checksum: dropping it leaves the data as they are). It
# ignores the others (lzf, bitshuffle, lz4, szip) with a warning, which would silently change the codec.
TRANSLATED = {"gzip", "shuffle", "32001", "32015", "fletcher32"}
MARKER = ".zmetadata"
SOURCE = ".nwb-cloud-source.json"  # the ETag and size of the asset the copy was made from (see access.derived)


def zarr_key(key: str) -> str:
    return key if key.endswith(SUFFIX) else key + SUFFIX


def _opener(name: str, mode: str):
    def open_zarr(store, key):
        if not key.endswith(SUFFIX):  # a copy of an HDF5 asset: it must be of the asset as it is now
            require_current(store, key, _recorded(store, key), f"the Zarr copy {store.s3_url(zarr_key(key))}", name)
        opened = Opened(nwbfile=None)
        try:
            io = NWBZarrIO(
                store.s3_url(zarr_key(key)), mode=mode, storage_options=store.s3fs_options(), load_namespaces=True
            )
            opened.closers.append(io.close)
            opened.nwbfile = io.read()
        except zarr.errors.PathNotFoundError:
            opened.close()
            raise AccessError(f"{name}: {_why_not_found(store, zarr_key(key))}") from None
        except BaseException:
            opened.close()
            raise
        return opened

    return open_zarr


def _recorded(store, key: str) -> dict | None:
    """The identity of the asset the copy was made from, as the copy records it (None: no copy, or an old one)."""
    record = zarr_key(key) + "/" + SOURCE
    # signed without a botocore client
    with contextlib.closing(RangeReader(store, key)) as reader, reader_errors("hdmf-zarr", store.s3_url(record)):
        try:
            return json.loads(reader.get(record))
        except Refused as error:
            if not error.missing:
                raise
    if _exists(store, zarr_key(key) + "/" + MARKER):
        return None  # a complete copy from before copies were keyed: stale by definition
    raise AccessError(f"hdmf-zarr: {_why_not_found(store, zarr_key(key))}") from None


def _why_not_found(store, key: str) -> str:
    """zarr reports a missing object, a refused request and a dead endpoint alike ("nothing found"): ask S3."""
    reason = why_missing(store, key + "/.zgroup")
    if reason.startswith("no such object"):
        return f"no Zarr copy at {store.s3_url(key)} (prepare the run, or the asset does not exist)"
    return reason


def zarr_io_settings(dataset: h5py.Dataset) -> dict:
    """``ZarrDataIO`` arguments that store ``dataset``'s chunks with the same codec as in the HDF5 file."""
    unmapped = [str(f) for f in dataset._filters if str(f) not in TRANSLATED]
    if unmapped or dataset.scaleoffset:
        raise Unsupported(
            f"hdmf-zarr prepare: {dataset.name} uses HDF5 filter(s) {', '.join(unmapped) or 'scaleoffset'} that "
            "hdmf-zarr cannot translate to a Zarr codec: no equivalent Zarr copy"
        )
    codecs = ZarrDataIO.hdf5_to_zarr_filters(dataset)
    compressor = codecs.pop() if codecs and not isinstance(codecs[-1], numcodecs.Shuffle) else False
    return dict(chunks=dataset.chunks, fillvalue=dataset.fillvalue, compressor=compressor, filters=codecs or None)


def export_to_zarr(source: Path, target: Path) -> None:
    """Write the NWB HDF5 file ``source`` as an NWB Zarr folder ``target`` (chunking and codec kept)."""
    with NWBHDF5IO(str(source), "r", load_namespaces=True) as source_io:
        nwbfile = source_io.read()
        for container in nwbfile.objects.values():
            if isinstance(container, Data) and _numeric(container.data):
                container.set_data_io(ZarrDataIO, zarr_io_settings(container.data))
            for name, value in list(container.fields.items()):
                if _numeric(value):
                    container.set_data_io(name, ZarrDataIO, zarr_io_settings(value))
        # ZarrIO, not NWBZarrIO: hdmf-zarr 0.13's NWBZarrIO drops its object_codec_class argument.
        manager = BuildManager(source_io.manager.type_map)
        with ZarrIO(str(target), mode="w", manager=manager, object_codec_class=numcodecs.JSON) as target_io:
            target_io.export(src_io=source_io, container=nwbfile, write_args={"link_data": False})


def _numeric(value) -> bool:
    return isinstance(value, h5py.Dataset) and value.dtype.kind in "iufb"


def _prepare_zarr(store, key, local_path):
    if key.endswith(SUFFIX):
        return  # a Zarr asset is read as it is
    require_writable(store, key, "hdmf-zarr prepare: a Zarr copy")
    with translate_errors(store.s3_url(key), "hdmf-zarr prepare"):
        source_identity = identity(store, key, "hdmf-zarr")
        if _exists(store, zarr_key(key) + "/" + MARKER):
            if _exists(store, zarr_key(key) + "/" + SOURCE) and _recorded(store, key) == source_identity:
                return
            _delete_prefix(store, zarr_key(key) + "/")  # a copy of another version: none of it may survive
        with tempfile.TemporaryDirectory(
            prefix="nwb-cloud-zarr-", dir=Path(local_path).parent if local_path else None
        ) as tmp:
            source = Path(local_path) if local_path else Path(tmp) / "asset.nwb"
            if not local_path:
                store.client().download_file(store.bucket, key, str(source))
            target = Path(tmp) / "copy.zarr"
            export_to_zarr(source, target)
            marker = Path(tmp) / MARKER
            shutil.move(target / MARKER, marker)
            (target / SOURCE).write_text(json.dumps(source_identity))
            upload(store, target, zarr_key(key), progress=False)
            upload(store, marker, zarr_key(key) + "/" + MARKER, progress=False)


def _delete_prefix(store, prefix: str) -> None:
    client = store.client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            client.delete_objects(Bucket=store.bucket, Delete={"Objects": keys, "Quiet": True})


def _exists(store, key: str) -> bool:
    reason = why_missing(store, key)
    if reason.startswith("no such object"):
        return False
    if reason.startswith("the store has"):
        return True
    raise AccessError(f"hdmf-zarr prepare: {reason}")


METHODS = [
    Method(
        name="hdmf-zarr",
        description="hdmf-zarr NWBZarrIO over s3fs on a Zarr copy, consolidated metadata (mode 'r')",
        open=_opener("hdmf-zarr", "r"),
        formats=("hdf5", "zarr"),
        prepare=_prepare_zarr,
    ),
    Method(
        name="hdmf-zarr-unconsolidated",
        description="hdmf-zarr NWBZarrIO over s3fs on a Zarr copy, no consolidated metadata (mode 'r-')",
        open=_opener("hdmf-zarr-unconsolidated", "r-"),
        formats=("hdf5", "zarr"),
        prepare=_prepare_zarr,
        variant_of="hdmf-zarr",
    ),
]
