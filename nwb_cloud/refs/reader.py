"""Reading an index: hdmf-zarr's ``NWBZarrIO`` over zarr over fsspec's ``ReferenceFileSystem``.

The refs are handed over in memory, so opening costs no request for metadata at all: only chunk reads go to
the asset (through s3fs for ``s3://`` URLs, with the store's endpoint and credentials).
"""

from __future__ import annotations

from collections.abc import Mapping

from hdmf_zarr.nwb import NWBZarrIO

import nwb_cloud.refs.codecs  # noqa: F401 - registers the codec of compound datasets before zarr reads one
from nwb_cloud.refs.errors import CorruptIndex


def reference_options(refs: dict, remote_options: dict | None = None) -> dict:
    """fsspec ``storage_options`` of the ``reference://`` file system that serves ``refs``.

    A Parquet index is handed over as its ``LazyReferenceMapper`` (opened with pyarrow): fsspec would open
    the folder itself with fastparquet, which is not a dependency here.
    """
    check_index(refs)
    url = refs.get("templates", {}).get("u", "")
    protocol = url.split("://", 1)[0] if "://" in url else "file"
    return {
        "fo": refs if isinstance(refs["refs"], dict) else refs["refs"],
        "remote_protocol": protocol,
        "remote_options": dict(remote_options or {}),
        "skip_instance_cache": True,
    }


def open_zarr_io(refs: dict, remote_options: dict | None = None) -> NWBZarrIO:
    """An ``NWBZarrIO`` (not yet read) over ``refs``; ``remote_options`` are the fsspec options of the asset."""
    return NWBZarrIO(path="reference://", mode="r", storage_options=reference_options(refs, remote_options))


def check_index(refs) -> None:
    if not isinstance(refs, dict) or refs.get("version") != 1 or not isinstance(refs.get("refs"), Mapping):
        raise CorruptIndex("not a kerchunk version 1 reference index (no 'version': 1 and 'refs' mapping)")
    if ".zgroup" not in refs["refs"]:
        raise CorruptIndex("reference index has no root group ('.zgroup')")
