"""Reading an index in memory: :class:`~nwb_cloud.refs.nwbio.IndexIO` over its refs.

An index of a local file is read through :class:`~nwb_cloud.refs.zarr_store.IndexStore` (the ``nwb-index``
data path, on a :class:`~nwb_cloud.refs.local.FileReader`); an index of a remote asset through stock fsspec
(``ReferenceFileSystem`` + s3fs, the ``kerchunk`` baseline), which applies an array's filters to every chunk
and so cannot read chunks HDF5 stored with a filter skipped: such an index is refused by name there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import zarr

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

        path = url.removeprefix("file://")
        handle = IndexHandle(refs, FileReader(path))
        linked = ExternalIndexes(lambda name: _local_index(path, name))
        return IndexIO(path=handle.store, mode="r", on_close=_closing(linked.close, handle.close), external=linked)
    skipped = arrays_with_skipped_filters(refs)
    if skipped:
        raise RefsError(
            f"{url}: {len(skipped)} array(s) (e.g. /{skipped[0]}) have chunks HDF5 stored with a filter skipped, "
            "which stock fsspec decodes wrongly; read the index with the nwb-index method"
        )
    return IndexIO(path="reference://", mode="r", storage_options=reference_options(refs, remote_options))


class ExternalIndexes:
    """The files external links name, each opened once through its own index: ``self(name)`` is its root group.

    ``open_index(name)`` gives ``(index handle, or anything with a store and close())`` for the file ``name``.
    """

    def __init__(self, open_index):
        self._open = open_index
        self._roots: dict[str, object] = {}
        self._handles: list = []

    def __call__(self, name: str):
        if name not in self._roots:
            if Path(name).is_absolute():
                raise RefsError(f"an external link names {name}, a path on the writer's machine, not beside the asset")
            handle = self._open(name)
            self._handles.append(handle)
            self._roots[name] = zarr.open(handle.store, mode="r")
        return self._roots[name]

    def close(self) -> None:
        while self._handles:
            self._handles.pop().close()


def _local_index(asset: str, name: str):
    from nwb_cloud.refs.build import build_index, sibling
    from nwb_cloud.refs.handle import IndexHandle
    from nwb_cloud.refs.local import FileReader

    path = sibling(asset, name)
    return IndexHandle(build_index(path), FileReader(path))


def _closing(*closers):
    def close() -> None:
        for closer in closers:
            closer()

    return close


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
