"""An index published next to its asset, so that every reader fetches it in one round trip.

``key + ".refs.json"`` is the sidecar: the whole JSON index or, for an index stored as Parquet, the Parquet
folder's ``.zmetadata`` (all Zarr metadata, the file list and sizes), the folder itself being uploaded to
``key + ".refs.parq/"`` first - so a reader never sees a half-published Parquet index.

The sidecar records the asset's identity (ETag and size) when it is published. Fetching compares it with the
asset as it is now (a HEAD, sent at the same time as the GET of the sidecar, so it costs no extra round
trip): a changed asset never serves a stale index. A Parquet index costs one more round trip: its files,
fetched in parallel into a local :class:`~nwb_cloud.refs.cache.IndexCache` (by default a temporary one).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import botocore.exceptions

from nwb_cloud.cloud.store import Store, StoreError, describe_client_error
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.refs.errors import CorruptIndex, RefsError
from nwb_cloud.refs.fetch import FetchError, RangeReader, Refused
from nwb_cloud.refs.format import INDEX_FORMAT
from nwb_cloud.refs.reader import check_index
from nwb_cloud.refs.storage import AUTO, PARQUET, ZMETADATA, choose, is_parquet_metadata, write_parquet
from nwb_cloud.refs.translate import dumps

SIDECAR_SUFFIX = ".refs.json"
PARQUET_SUFFIX = ".refs.parq"
DOWNLOADS = 8  # Parquet files fetched at once


class MissingIndex(RefsError):
    """No index has been published for an asset."""


class StaleIndex(RefsError):
    """The published index describes a different version of the asset."""


def sidecar_key(key: str) -> str:
    return key + SIDECAR_SUFFIX


def parquet_prefix(key: str) -> str:
    return key + PARQUET_SUFFIX + "/"


# -- publishing ----------------------------------------------------------------------------------------------
def publish(store: Store, key: str, index: dict, storage: str = AUTO) -> str:
    """Upload ``index`` as the sidecar of ``key`` (stamped with the asset's current ETag and size).

    ``storage`` is ``json``, ``parquet`` or ``auto`` (Parquet above a chunk-count threshold). Returns the
    sidecar's key. A store that refuses writes raises :class:`~nwb_cloud.cloud.store.StoreError`.
    """
    asset = store.head(key)
    stamped = {**index, "nwb_cloud": {**index.get("nwb_cloud", {}), "asset": asset}}
    client = store.client()
    if choose(index, storage) == PARQUET:
        folder = Path(tempfile.mkdtemp(prefix="nwb-index-"))
        try:
            zmetadata = write_parquet(stamped, folder)
            names = [*zmetadata["nwb_cloud"]["parquet_files"], ZMETADATA]

            def upload(name: str) -> None:
                _put(client, store, parquet_prefix(key) + name, (folder / name).read_bytes())

            with ThreadPoolExecutor(DOWNLOADS) as pool:
                list(pool.map(upload, names))
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        body = json.dumps(zmetadata, separators=(",", ":"))
    else:
        body = dumps(stamped)
    _put(client, store, sidecar_key(key), body.encode(), "application/json")
    return sidecar_key(key)


def _put(client, store: Store, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
    try:
        client.put_object(Bucket=store.bucket, Key=key, Body=body, ContentType=content_type)
    except botocore.exceptions.ClientError as error:
        raise StoreError(describe_client_error(error, store.s3_url(key))) from None
    except botocore.exceptions.BotoCoreError as error:
        raise StoreError(f"cannot reach {store.label} for {store.s3_url(key)}: {error}") from None


# -- fetching ------------------------------------------------------------------------------------------------
# Every request below goes through a RangeReader of the asset: on its own connections (the ones the chunk
# reads use next, so they are warm), signed without a botocore client (see nwb_cloud.refs.fetch).
def fetch(store: Store, key: str, reader: RangeReader | None = None, parquet_cache: IndexCache | None = None) -> dict:
    """The published index of ``key``, checked against the asset; :class:`MissingIndex`/:class:`StaleIndex`.

    ``reader`` is the asset's :class:`~nwb_cloud.refs.fetch.RangeReader` to use (its connections stay warm for
    the reads that follow); a Parquet index is fetched into ``parquet_cache`` (default: a temporary cache of
    this process).
    """
    if reader is None:
        with contextlib.closing(RangeReader(store, key)) as own:
            return fetch(store, key, own, parquet_cache)
    document, identity = fetch_document(reader, store, key)
    return resolve(reader, store, key, document, identity, parquet_cache)


def fetch_document(reader: RangeReader, store: Store, key: str) -> tuple[dict, AssetIdentity]:
    """The sidecar's parsed JSON and the asset's identity, fetched in parallel (one round trip)."""
    with ThreadPoolExecutor(2) as pool:
        body = pool.submit(fetch_document_body, reader, store, key)
        asset = pool.submit(head, reader, store, key)
        text, identity = body.result(), asset.result()
    return parse_document(store, key, text), identity


def fetch_document_body(reader: RangeReader, store: Store, key: str) -> bytes:
    """The sidecar's bytes (:class:`MissingIndex` when nothing is published)."""
    return _get(reader, store, sidecar_key(key))


def parse_document(store: Store, key: str, text: bytes) -> dict:
    try:
        return json.loads(text)
    except ValueError as error:
        raise CorruptIndex(
            f"the index {store.s3_url(sidecar_key(key))} is not JSON ({error}); publish it again"
        ) from None


def resolve(reader: RangeReader, store: Store, key: str, document, identity: AssetIdentity, parquet_cache=None) -> dict:
    """The index a fetched sidecar ``document`` stands for, once it is known to describe ``identity``."""
    target = sidecar_key(key)
    if not isinstance(document, dict):
        raise CorruptIndex(f"the index {store.s3_url(target)} is not a reference index; publish it again")
    written = document.get("nwb_cloud", {}).get("format")
    if written != INDEX_FORMAT:
        raise StaleIndex(
            f"the index {store.s3_url(target)} is of format {written!r}, not {INDEX_FORMAT}: build and publish it again"
        )
    recorded = document.get("nwb_cloud", {}).get("asset")
    if recorded != {"size": identity.size, "etag": identity.etag}:
        raise StaleIndex(
            f"the index {store.s3_url(target)} was built for {recorded} but {identity.url} is now "
            f"{{'size': {identity.size}, 'etag': '{identity.etag}'}}: build and publish it again"
        )
    if not is_parquet_metadata(document):
        check_index(document)
        return document
    cache = parquet_cache or _temporary_cache()
    cached = cache.get(identity)
    if cached is not None:
        return cached
    names = list(document.get("nwb_cloud", {}).get("parquet_files", {}))
    with cache.staging() as folder:

        def download(name: str) -> None:
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_get(reader, store, parquet_prefix(key) + name, missing_is_corrupt=True))

        with ThreadPoolExecutor(DOWNLOADS) as pool:
            list(pool.map(download, names))
        (folder / ZMETADATA).write_text(json.dumps(document, separators=(",", ":")))
        return cache.commit_parquet(identity, folder)


def head(reader: RangeReader, store: Store, key: str) -> AssetIdentity:
    """The asset's identity (URL, ETag, size), on the reader's connections."""
    try:
        found = reader.head(key)
    except FetchError as error:
        raise StoreError(str(error)) from None
    return AssetIdentity(store.s3_url(key), found["etag"], int(found["size"]))


def _get(reader: RangeReader, store: Store, key: str, missing_is_corrupt: bool = False) -> bytes:
    """The object's body (a body that breaks off is fetched again, as chunk reads are)."""
    try:
        return reader.get(key)
    except Refused as error:
        # an anonymous reader of a bucket it may not list gets 403, not 404, for a key that does not exist
        missing = error.missing or (store.anonymous and error.code in ("403", "AccessDenied"))
        if missing and missing_is_corrupt:
            raise CorruptIndex(f"the published index lacks {store.s3_url(key)}; publish it again") from None
        if missing:
            raise MissingIndex(f"no reference index published at {store.s3_url(key)}") from None
        raise StoreError(str(error)) from None
    except FetchError as error:
        raise StoreError(str(error)) from None


_temporary: IndexCache | None = None


def _temporary_cache() -> IndexCache:
    """A cache directory of this process, removed at exit (for Parquet indexes fetched without a cache)."""
    global _temporary
    if _temporary is None:
        directory = tempfile.mkdtemp(prefix="nwb-index-cache-")
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _temporary = IndexCache(Path(directory))
    return _temporary
