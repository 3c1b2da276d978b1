"""Kerchunk references: pynwb over hdmf-zarr over an NWB-complete reference index published beside the asset.

``prepare`` builds the index (from the local source copy when there is one, reading only its metadata) and
publishes it as the sidecar ``key + ".refs.json"``; ``open`` fetches the sidecar (one GET, checked against
the asset's ETag by a HEAD sent at the same time) and opens it: no HDF5 metadata is read from the asset.
The index and its conventions are :mod:`nwb_cloud.refs`' (a lower layer than this package). This is the
stock-fsspec baseline (s3fs through fsspec's reference file system, which merges adjacent chunks into one
request on one connection); ``nwb-index`` reads the same index through nwb_cloud's own data path.
"""

from __future__ import annotations

from nwb_cloud.access.base import AccessError, Method, Opened, Unsupported
from nwb_cloud.refs import Unrepresentable, build_index, open_zarr_io
from nwb_cloud.refs import sidecar as sidecars


def open_index(refs: dict, store=None) -> Opened:
    """The ``NWBFile`` of an index; its chunks are read from the asset with ``store``'s s3fs options."""
    opened = Opened(nwbfile=None)
    try:
        io = open_zarr_io(refs, store.s3fs_options() if store is not None else None)
        opened.closers.append(io.close)
        opened.nwbfile = io.read()
    except BaseException:
        opened.close()
        raise
    return opened


def prepare(store, key: str, local_path: str | None = None) -> str:
    """Build the index of ``key`` (from ``local_path`` when given) and publish it; returns the sidecar key."""
    try:
        if local_path:
            refs = build_index(local_path, url=store.s3_url(key))
        else:
            refs = build_index(store.s3_url(key), storage_options=store.s3fs_options())
    except Unrepresentable as error:
        raise Unsupported(f"kerchunk: {error}") from None
    return sidecars.publish(store, key, refs)


def _open(store, key: str) -> Opened:
    try:
        refs = sidecars.fetch(store, key)
    except sidecars.MissingIndex:
        raise AccessError(
            f"kerchunk: no reference index for {store.s3_url(key)} (expected {sidecars.sidecar_key(key)}); "
            "build and publish it with the method's prepare (nwb_cloud.access.kerchunk_refs.prepare), which "
            "the run preparation does for every asset"
        ) from None
    return open_index(refs, store)


METHODS = [
    Method(
        name="kerchunk",
        description="pynwb + hdmf-zarr over the NWB-complete kerchunk index (sidecar), chunks via stock fsspec/s3fs",
        open=_open,
        prepare=prepare,
    ),
]
