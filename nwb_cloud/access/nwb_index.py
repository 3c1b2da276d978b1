"""nwb-index: pynwb over the NWB-complete reference index, chunks through nwb_cloud's own data path.

Opening costs one round trip: a HEAD of the asset with, unless the local cache holds an index of the URL,
the GET of the published sidecar (:func:`nwb_cloud.refs.locate.find_index`); from the cache, pynwb builds
its objects while that HEAD is in flight, so the round trip hides behind pynwb's own work. No HDF5
metadata is read from the asset. Reads go through :class:`nwb_cloud.refs.zarr_store.IndexStore`: parallel,
coalesced and split range requests on warm connections, decoded on every core while later chunks are still
arriving, HDF5's deflate by the fastest bit-exact inflate of the machine's measured table (see
:func:`use_decoder_table`). The ``kerchunk`` method reads the same index through stock fsspec (s3fs) and
stays as the baseline.

Where the local cache lives
    ``access`` modules take no settings; the cache directory is a module default set by whoever holds the
    settings - the CLI and the benchmark suite call :func:`configure` (``cache_dir=data_dir / "indexes"``).
    Until then it is :func:`default_cache_dir`, derived from :class:`nwb_cloud.settings.Settings` (the one
    place the environment is read), so a library user gets the same directory as the CLI.

Cold and warm (the two rows)
    ``nwb-index`` is the cold path, what a user's first open of an asset costs: an empty local cache, so the
    open is the HEAD and the sidecar GET (and the sidecar written into that cache). ``nwb-index-warm``
    (``variant_of="nwb-index"``, measured on the opens) opens from the configured cache, which ``prepare``
    filled; it fails, rather than silently measure the cold path, when the cache holds no index of the asset.

Read-only stores (DANDI's bucket)
    ``prepare`` builds the index and publishes it beside the asset; a store that refuses the write gets the
    index in the local cache instead, and every open then finds it there. ``configure(build=True)`` (or
    :func:`open_nwb_index` with ``build=True``) builds a missing index into the cache on open;
    :func:`open_url` does so by default and takes the URLs DANDI hands out (``s3://``, ``https://`` object
    URLs, API asset URLs), anonymously.
"""

from __future__ import annotations

import functools
import posixpath
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from nwb_cloud.access.base import AccessError, Method, Opened, Unsupported
from nwb_cloud.cloud.store import StoreError
from nwb_cloud.cloud.urls import store_for_url
from nwb_cloud.refs import Unrepresentable, build_index, inflate
from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.handle import IndexHandle
from nwb_cloud.refs.locate import Found, find_index
from nwb_cloud.refs.plan import Policy
from nwb_cloud.refs.reader import ExternalIndexes
from nwb_cloud.settings import Settings

CACHE_FOLDER = "indexes"


@dataclass(frozen=True)
class Config:
    cache_dir: Path | None = None  # None: default_cache_dir()
    build: bool = False  # build a missing index into the cache on open
    policy: Policy = Policy()
    decoder_table: Path | None = None  # None: default_decoder_table()


_config = Config()
_table_used: Path | None = None


def configure(
    cache_dir: Path | str | None = None,
    build: bool | None = None,
    policy: Policy | None = None,
    decoder_table: Path | str | None = None,
) -> Config:
    """Set the method's defaults (the cache directory, building on open, the fetch policy, the measured
    decoder table); returns them."""
    global _config
    changes = {"cache_dir": Path(cache_dir) if cache_dir is not None else None, "build": build, "policy": policy,
               "decoder_table": Path(decoder_table) if decoder_table is not None else None}  # fmt: skip
    _config = replace(_config, **{k: v for k, v in changes.items() if v is not None})
    return _config


def default_cache_dir() -> Path:
    return Settings.from_env().data_dir / CACHE_FOLDER


def default_decoder_table() -> Path:
    """Where a run of the suite keeps the decoder table it measured on this machine."""
    return Settings.from_env().data_dir / inflate.TABLE_FILE


def use_decoder_table() -> None:
    """Choose decoders from the measured table (:mod:`nwb_cloud.refs.inflate`), read once per process and
    path; without one, inflate's own ranking."""
    global _table_used
    path = _config.decoder_table or default_decoder_table()
    if path != _table_used:
        inflate.use_table(inflate.load_table(path))
        _table_used = path


def index_cache() -> IndexCache:
    return IndexCache(_config.cache_dir or default_cache_dir())


def open_nwb_index(store, key: str, cache=None, build=None, progress=None, policy=None) -> Opened:
    """Open ``key`` of ``store`` as an ``NWBFile`` through its index (see the module docstring).

    ``cache`` defaults to :func:`index_cache`, ``build`` and ``policy`` to the configured ones;
    ``progress(done, total)`` follows a build. A cached index is opened while the HEAD that checks it is
    in flight; should the asset have changed, that open is dropped and the index found again.
    """
    use_decoder_table()  # before the store's arrays choose their decoder
    cache = cache or index_cache()
    build = _config.build if build is None else build
    for speculate in (True, False):
        reader = RangeReader(store, key, policy or _config.policy)
        # the handshakes (two round trips) overlap the index fetch: started after it, while pynwb builds
        # (~0.1 s), they were not done by the first read under cross-region (0.13 s) and added to it
        reader.warm()
        try:
            found = find_index(store, key, reader, cache, build, progress, speculate=speculate)
        except BaseException:
            reader.close()
            raise
        try:
            opened = open_found(found, reader, build=build, cache=cache)
        except Exception:
            if found.confirmed():
                raise
            continue  # the cached index was of an older version: whatever failed, it read the wrong file
        if found.confirmed():
            return opened
        opened.close()
    raise AssertionError("unreachable: a non-speculative find is always confirmed")


def open_url(url: str, endpoint_url: str | None = None, access_key: str | None = None,
             secret_key: str | None = None, cache=None, build: bool = True, progress=None) -> Opened:  # fmt: skip
    """Open an NWB file by the URL a user holds: ``s3://bucket/key``, an S3 object's ``https://`` URL or a DANDI
    API asset URL (:func:`nwb_cloud.cloud.urls.store_for_url`), anonymously unless keys are given.

    A bucket one cannot write to (DANDI's) has no sidecar: the index is then built into the local cache on
    the first open (``build``; reading only the file's metadata) and found there afterwards.
    """
    store, key = store_for_url(url, endpoint_url=endpoint_url, access_key=access_key, secret_key=secret_key)
    return open_nwb_index(store, key, cache=cache, build=build, progress=progress)


def open_found(found: Found, reader: RangeReader, build: bool | None = None, cache=None) -> Opened:
    """The ``NWBFile`` of an index found for the asset ``reader`` reads; closing it closes ``reader``.

    Files that external links name are opened through their own indexes, found in ``cache`` (default:
    :func:`index_cache`) or published, or built there when ``build`` (default: the configured one)."""
    opened = Opened(nwbfile=None, closers=[reader.close])
    reader.expected_etag = found.identity.etag  # no chunk of another version of the asset is ever read
    try:
        reader.warm()  # if the caller has not: while pynwb builds its objects
        handle = IndexHandle(found.index, reader)
        opened.closers.append(handle.close)
        build = _config.build if build is None else build
        cache = cache or index_cache()
        linked = ExternalIndexes(functools.partial(_sibling_handle, reader.store, reader.key, reader.policy, build,
                                                   cache))  # fmt: skip
        opened.closers.append(linked.close)
        opened.nwbfile = handle.nwb_io(external=linked).read()
    except BaseException:
        opened.close()
        raise
    return opened


def _sibling_handle(store, key: str, policy: Policy, build: bool, cache, name: str) -> IndexHandle:
    """The open index of the file ``name`` beside ``key`` (an external link's target), found as any open finds
    one: the cache, the sidecar, or (``build``) a build into the cache."""
    other = posixpath.normpath(posixpath.join(posixpath.dirname(key), name))
    reader = RangeReader(store, other, policy)
    try:
        found = find_index(store, other, reader, cache, build)
        reader.expected_etag = found.identity.etag
        return IndexHandle(found.index, reader)
    except BaseException:
        reader.close()
        raise


def prepare(store, key: str, local_path: str | None = None) -> str:
    """Build the index (from ``local_path`` when given), publish it, and put it in the local cache.

    Returns where it went. A store that refuses the sidecar (read-only, e.g. DANDI) only gets the cache.
    """
    identity = AssetIdentity.of(store, key)
    try:
        if local_path:
            index = build_index(local_path, url=identity.url)
        else:
            index = build_index(identity.url, storage_options=store.s3fs_options())
    except Unrepresentable as error:
        raise Unsupported(f"nwb-index: {error}") from None
    cache = index_cache()
    cache.put(identity, index)
    try:
        return sidecars.publish(store, key, index)
    except StoreError as refused:
        return f"{cache.directory} (the store refused the sidecar: {refused})"


def _open_cold(store, key: str) -> Opened:
    """A first open: an empty cache of its own (removed on close), so the index comes from the sidecar."""
    directory = Path(tempfile.mkdtemp(prefix="nwb-index-cold-"))
    try:
        opened = open_nwb_index(store, key, cache=IndexCache(directory))
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    opened.closers.insert(0, lambda: shutil.rmtree(directory, ignore_errors=True))  # last, after the reader
    return opened


def _open_warm(store, key: str) -> Opened:
    cache = index_cache()
    if not cache.holds_url(store.s3_url(key)):
        raise AccessError(
            f"nwb-index-warm: the index cache {cache.directory} holds no index of {store.s3_url(key)}: the warm "
            "variant would measure a cold open (prepare the run, or `nwb-cloud index build`)"
        )
    return open_nwb_index(store, key, cache=cache)


DATA_PATH = "parallel coalesced+split ranges on warm connections, bit-exact fast inflate on every core"
METHODS = [
    Method(
        name="nwb-index",
        description=f"pynwb + hdmf-zarr over the NWB-complete index, cold: empty local cache, so HEAD + sidecar GET "
        f"(1 round trip); {DATA_PATH}",
        open=_open_cold,
        prepare=prepare,
    ),
    Method(
        name="nwb-index-warm",
        description="nwb-index from a warm local index cache (filled by prepare): a HEAD only, pynwb building its "
        "objects meanwhile",
        open=_open_warm,
        prepare=prepare,
        variant_of="nwb-index",
    ),
]
