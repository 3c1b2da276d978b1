"""What a copy derived from an asset (a Zarr copy, a LINDI JSON) was made from, checked whenever it is opened.

A derived copy is keyed by the asset's name, so when the asset is overwritten the copy still answers, with
the old bytes (or, for a LINDI JSON, with offsets into bytes that moved). Each copy therefore records the
ETag and size of the asset it was made from; ``prepare`` rebuilds a copy whose record differs, and opening
one compares the record with a HEAD of the asset and refuses a stale copy by name: never old data.
"""

from __future__ import annotations

import contextlib

from nwb_cloud.access.base import AccessError, reader_errors
from nwb_cloud.cloud.store import Store
from nwb_cloud.refs.fetch import RangeReader


class StaleCopy(AccessError):
    """A derived copy was made from another version of its asset."""


def identity(store: Store, key: str, method: str) -> dict:
    """The asset as it is now: its ETag and size (one HEAD, signed without a botocore client: see
    :mod:`nwb_cloud.refs.fetch`)."""
    with contextlib.closing(RangeReader(store, key)) as reader, reader_errors(method, store.s3_url(key)):
        return reader.head()


def require_current(store: Store, key: str, recorded: dict | None, copy: str, method: str) -> None:
    """Raise :class:`StaleCopy` unless ``recorded`` (the copy's record) is the asset as it is now."""
    now = identity(store, key, method)
    if recorded != now:
        made = f"ETag {recorded.get('etag')}, {recorded.get('size')} bytes" if recorded else "an unrecorded version"
        raise StaleCopy(
            f"{method}: {copy} was made from another version of {store.s3_url(key)} ({made}; now ETag "
            f"{now['etag']}, {now['size']} bytes): prepare it again"
        )
