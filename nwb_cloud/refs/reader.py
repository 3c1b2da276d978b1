"""Reading an index in memory: :class:`~nwb_cloud.refs.nwbio.IndexIO` over its refs.

An index of a local file is read through :class:`~nwb_cloud.refs.zarr_store.IndexStore` (the ``nwb-index``
data path, on a :class:`~nwb_cloud.refs.local.FileReader`); an index of a remote asset through stock fsspec
(``ReferenceFileSystem`` + s3fs, the ``kerchunk`` baseline), which applies an array's filters to every chunk
and so cannot read chunks HDF5 stored with a filter skipped: such an index is refused by name there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import nwb_cloud.refs.codecs  # noqa: F401 - registers the codec of compound datasets before zarr reads one
from nwb_cloud.refs.errors import CorruptIndex, RefsError
from nwb_cloud.refs.format import KNOWN_FORMATS, SKIPPED_FILTERS
from nwb_cloud.refs.nwbio import IndexIO


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


def open_zarr_io(refs: dict, remote_options: dict | None = None) -> IndexIO:
    """An IO (not yet read) over ``refs``; ``remote_options`` are the fsspec options of a remote asset."""
    check_index(refs)
    url = refs.get("templates", {}).get("u", "")
    if url and "://" not in url.removeprefix("file://"):
        from nwb_cloud.refs.handle import IndexHandle
        from nwb_cloud.refs.local import FileReader

        handle = IndexHandle(refs, FileReader(url.removeprefix("file://")))
        return IndexIO(path=handle.store, mode="r", on_close=handle.close)
    skipped = arrays_with_skipped_filters(refs)
    if skipped:
        raise RefsError(
            f"{url}: {len(skipped)} array(s) (e.g. /{skipped[0]}) have chunks HDF5 stored with a filter skipped, "
            "which stock fsspec decodes wrongly; read the index with the nwb-index method"
        )
    return IndexIO(path="reference://", mode="r", storage_options=reference_options(refs, remote_options))


def arrays_with_skipped_filters(refs: dict) -> list[str]:
    """The arrays of an index that have chunks stored with a filter skipped (their ``.zarray`` lists them)."""
    mapping = refs["refs"]
    metadata = getattr(mapping, "zmetadata", None)
    items = metadata.items() if metadata is not None else mapping.items()
    found = []
    for key, value in items:
        if key.endswith(".zarray") and SKIPPED_FILTERS in (value if isinstance(value, dict) else json.loads(value)):
            found.append(key.rpartition("/")[0])
    return found


def check_index(refs) -> None:
    if not isinstance(refs, dict) or refs.get("version") != 1 or not isinstance(refs.get("refs"), Mapping):
        raise CorruptIndex("not a kerchunk version 1 reference index (no 'version': 1 and 'refs' mapping)")
    if ".zgroup" not in refs["refs"]:
        raise CorruptIndex("reference index has no root group ('.zgroup')")
    written = (refs.get("nwb_cloud") or {}).get("format")
    if written not in KNOWN_FORMATS:
        raise CorruptIndex(
            f"index format {written!r} is not one this package reads ({', '.join(KNOWN_FORMATS)}): build it again"
        )
