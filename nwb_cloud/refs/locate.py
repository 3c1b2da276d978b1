"""Finding the index of an asset as it is now: the local cache, the published sidecar, or a build.

What identifies the asset's version is a HEAD (ETag and size); everything else is arranged around that one
round trip:

1. the cache holds an entry for the URL: with ``speculate``, it is returned at once together with the HEAD
   still in flight (:attr:`Found.confirmation`), so that the caller opens the file while the round trip
   runs and checks :meth:`Found.confirmed` before handing anything out; without, after the HEAD;
2. else the sidecar, fetched by a GET sent together with the HEAD, if it describes this identity (a copy
   goes into the cache for the next open);
3. else, when ``build`` is set and there is a cache, a build from the store (reading only metadata,
   with a progress callback) into the cache - the way to read a bucket one cannot write to, e.g. DANDI's;
4. else :class:`NoIndex`, which says how to make one. A stale entry or sidecar is never used.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.build import build_index
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.storage import AUTO, JSON, is_parquet

CACHE, SIDECAR, BUILT = "cache", "sidecar", "built"


class NoIndex(RefsError):
    """An asset has no usable index: none cached, none (or a stale one) published, and no build asked for."""


@dataclass(frozen=True)
class Found:
    index: dict
    identity: AssetIdentity  # the version of the asset the index describes
    origin: str  # CACHE, SIDECAR or BUILT
    confirmation: Future | None = None  # a speculative cache hit: the HEAD that says what the asset is now

    def confirmed(self) -> bool:
        """Whether the asset is still the version the index describes (waits for the HEAD if one is out)."""
        return self.confirmation is None or self.confirmation.result() == self.identity


def find_index(
    store,
    key: str,
    reader: RangeReader,
    cache: IndexCache | None = None,
    build: bool = False,
    progress: Callable[[int, int], None] | None = None,
    storage: str = AUTO,
    speculate: bool = False,
) -> Found:
    """The index of ``key`` (see the module docstring), its requests sent by ``reader``, the asset's reader."""
    url = store.s3_url(key)
    if speculate and cache is not None:
        latest = cache.latest(url)
        if latest is not None:
            identity, index = latest
            return Found(index, identity, CACHE, _background().submit(sidecars.head, reader, store, key))
    with ThreadPoolExecutor(2) as pool:
        identity_future = pool.submit(sidecars.head, reader, store, key)
        document_future = None
        if not (cache is not None and cache.holds_url(url)):  # a cached entry needs only the HEAD to be checked
            document_future = pool.submit(sidecars.fetch_document_body, reader, store, key)
        identity = identity_future.result()
        if cache is not None:
            cached = cache.get(identity)
            if cached is not None:
                return Found(cached, identity, CACHE)
        if document_future is None:  # the cached entry was of another version of the asset
            document_future = pool.submit(sidecars.fetch_document_body, reader, store, key)
        try:
            document = sidecars.parse_document(store, key, document_future.result())
            index = sidecars.resolve(reader, store, key, document, identity, parquet_cache=cache)
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


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """Threads for the HEADs of speculative opens (shared by the process; idle threads cost nothing)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(4, thread_name_prefix="nwb-index-head")
        return _pool
