"""Finding the index of an asset as it is now: the local cache, the published sidecar, or a build.

One round trip in the common cases: a HEAD of the asset (its identity: ETag and size) goes out together
with the GET of the sidecar - or alone, when the cache holds an entry for the URL, since the HEAD is all
it takes to know whether that entry is current. Then:

1. the cache's entry for exactly this identity, if any;
2. else the sidecar, if it describes this identity (a copy goes into the cache for the next open);
3. else, when ``build`` is set and there is a cache, a build from the store (reading only metadata,
   with a progress callback) into the cache - the way to read a bucket one cannot write to, e.g. DANDI's;
4. else :class:`NoIndex`, which says how to make one. A stale sidecar is never used.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.build import build_index
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.storage import AUTO, JSON, is_parquet

CACHE, SIDECAR, BUILT = "cache", "sidecar", "built"


class NoIndex(RefsError):
    """An asset has no usable index: none cached, none (or a stale one) published, and no build asked for."""


@dataclass(frozen=True)
class Found:
    index: dict
    identity: AssetIdentity
    origin: str  # CACHE, SIDECAR or BUILT


def find_index(
    store,
    key: str,
    client,
    cache: IndexCache | None = None,
    build: bool = False,
    progress: Callable[[int, int], None] | None = None,
    storage: str = AUTO,
) -> Found:
    """The index of ``key`` (see the module docstring for the order); ``client`` is a botocore S3 client."""
    url = store.s3_url(key)
    with ThreadPoolExecutor(2) as pool:
        identity_future = pool.submit(sidecars.head, client, store, key)
        document_future = (
            None if _has_url(cache, url) else pool.submit(sidecars.fetch_document_body, client, store, key)
        )
        identity = identity_future.result()
        if cache is not None:
            cached = cache.get(identity)
            if cached is not None:
                return Found(cached, identity, CACHE)
        if document_future is None:  # the cached entry was of another version of the asset
            document_future = pool.submit(sidecars.fetch_document_body, client, store, key)
        try:
            document = sidecars.parse_document(store, key, document_future.result())
            index = sidecars.resolve(client, store, key, document, identity, parquet_cache=cache)
        except (sidecars.MissingIndex, sidecars.StaleIndex) as error:
            unusable = error
        else:
            if cache is not None and not is_parquet(index):
                index = cache.put(identity, index, JSON)
            return Found(index, identity, SIDECAR)
    if not build or cache is None:
        where = f" and none is cached in {cache.directory}" if cache is not None else " and no cache is configured"
        raise NoIndex(
            f"no usable reference index for {url}: {unusable}{where}; build one with `nwb-cloud index build {url}` "
            "(add --publish to share it beside the asset) or open with build=True"
        ) from None
    index = build_index(url, storage_options=store.s3fs_options(), progress=progress)
    return Found(cache.put(identity, index, storage), identity, BUILT)


def _has_url(cache: IndexCache | None, url: str) -> bool:
    return cache is not None and cache.holds_url(url)
