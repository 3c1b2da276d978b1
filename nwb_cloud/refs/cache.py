"""A local cache of indexes, keyed by the asset's identity: URL + ETag + size.

A changed asset has another ETag or size, hence another key: a stale index is never found, let alone served
(and the older entries of the same URL are removed when the new one is written). An entry is a JSON file
or, for an index with very many chunks, a Parquet folder (:mod:`nwb_cloud.refs.storage`). Either is
written under a unique temporary name and renamed into place, so concurrent builders of one asset each
produce a complete entry and one of them wins, and a reader sees either no entry or a whole one. An entry
that does not parse, or whose Parquet files are missing or truncated, raises
:class:`~nwb_cloud.refs.errors.CorruptIndex`, naming it and offering the rebuild.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.refs.build import INDEX_FORMAT, build_index
from nwb_cloud.refs.errors import CorruptIndex
from nwb_cloud.refs.reader import check_index
from nwb_cloud.refs.storage import AUTO, PARQUET, ZMETADATA, choose, load_parquet, write_parquet
from nwb_cloud.refs.translate import dumps

SUFFIX = ".refs.json"
PARQUET_SUFFIX = ".refs.parq"


@dataclass(frozen=True)
class AssetIdentity:
    url: str
    etag: str
    size: int

    @classmethod
    def of(cls, store, key: str) -> AssetIdentity:
        head = store.head(key)
        return cls(url=store.s3_url(key), etag=head["etag"], size=int(head["size"]))

    @classmethod
    def from_head(cls, url: str, head: dict) -> AssetIdentity:
        return cls(url=url, etag=head["etag"], size=int(head["size"]))

    def as_dict(self) -> dict:
        return {"url": self.url, "etag": self.etag, "size": self.size}


@dataclass(frozen=True)
class Entry:
    """One cached index, as ``nwb-cloud index info`` lists it."""

    path: Path
    url: str | None
    etag: str | None
    storage: str
    disk_bytes: int


class IndexCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    # -- where ----------------------------------------------------------------------------------------------
    def _stem(self, asset: AssetIdentity) -> str:
        version = _digest(f"{asset.etag}\n{asset.size}\n{INDEX_FORMAT}")
        return f"{_digest(asset.url)}-{version}"

    def path(self, asset: AssetIdentity) -> Path:
        """Where the JSON entry of ``asset`` lives."""
        return self.directory / f"{self._stem(asset)}{SUFFIX}"

    def parquet_path(self, asset: AssetIdentity) -> Path:
        """Where the Parquet entry of ``asset`` lives."""
        return self.directory / f"{self._stem(asset)}{PARQUET_SUFFIX}"

    # -- reading --------------------------------------------------------------------------------------------
    def get(self, asset: AssetIdentity) -> dict | None:
        """The cached index of exactly this version of the asset, or None."""
        path = self.parquet_path(asset)
        if not path.is_dir():
            path = self.path(asset)
            if not path.exists():
                return None
        try:
            index = _load(path)
        except FileNotFoundError:
            return None
        except CorruptIndex as error:
            raise CorruptIndex(f"cached index {path} of {asset.url} is corrupt ({error}); {_REBUILD}") from None
        if index.get("nwb_cloud", {}).get("cached_for") != asset.as_dict():
            raise CorruptIndex(f"cached index {path} was not written for {asset.url} as it is now; {_REBUILD}")
        return index

    def latest(self, url: str) -> tuple[AssetIdentity, dict] | None:
        """The entry of ``url`` (the cache keeps one version per URL) and the identity it was written for.

        Whether that is still the asset's version takes a HEAD; :func:`nwb_cloud.refs.locate.find_index`
        sends it while the entry is being opened. An entry that cannot be read is passed over here
        (:meth:`get` names it when the asset's identity is known).
        """
        if not self.directory.is_dir():
            return None
        candidates = sorted(self.directory.glob(f"{_digest(url)}-*"), key=_modified, reverse=True)
        for path in candidates:
            try:
                index = _load(path)
            except (CorruptIndex, FileNotFoundError):
                continue
            stamp = index.get("nwb_cloud", {}).get("cached_for") or {}
            if stamp.get("url") == url and {"etag", "size"} <= set(stamp):
                return AssetIdentity(url, stamp["etag"], int(stamp["size"])), index
        return None

    def holds_url(self, url: str) -> bool:
        """Whether some version of ``url`` has an entry (a directory listing, no parsing)."""
        return self.directory.is_dir() and any(self.directory.glob(f"{_digest(url)}-*"))

    def entries(self) -> list[Entry]:
        """Every entry in the cache (unreadable ones too, with what can be said of them)."""
        found = []
        for path in sorted(self.directory.glob(f"*{SUFFIX}")) + sorted(self.directory.glob(f"*{PARQUET_SUFFIX}")):
            is_folder = path.is_dir()
            stamp = _stamp(path)
            size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if is_folder else path.stat().st_size
            found.append(Entry(path, stamp.get("url"), stamp.get("etag"), PARQUET if is_folder else "json", size))
        return found

    # -- writing --------------------------------------------------------------------------------------------
    def put(self, asset: AssetIdentity, index: dict, storage: str = AUTO) -> dict:
        """Store ``index`` for ``asset`` atomically (older versions of the URL go); returns the stored index."""
        stamp = {**index.get("nwb_cloud", {}), "cached_for": asset.as_dict()}
        if choose(index, storage) == PARQUET:
            with self.staging() as folder:
                write_parquet({**index, "nwb_cloud": stamp}, folder)
                return self.commit_parquet(asset, folder)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(asset)
        stamped = {**index, "nwb_cloud": stamp}
        partial = path.with_name(f".{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "w") as handle:
                handle.write(dumps(stamped))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        _remove(self.parquet_path(asset))
        self._forget_other_versions(asset)
        return stamped

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder inside the cache to assemble a Parquet entry in (removed if not committed)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        folder = self.directory / f".{uuid.uuid4().hex}.partial"
        folder.mkdir()
        try:
            yield folder
        finally:
            _remove(folder)

    def commit_parquet(self, asset: AssetIdentity, folder: Path) -> dict:
        """Move a complete staged Parquet folder into place as the entry of ``asset``; returns the index."""
        meta_path = folder / ZMETADATA
        zmetadata = json.loads(meta_path.read_text())
        zmetadata["nwb_cloud"] = {**zmetadata.get("nwb_cloud", {}), "cached_for": asset.as_dict()}
        meta_path.write_text(json.dumps(zmetadata, separators=(",", ":")))
        target = self.parquet_path(asset)
        if target.exists():  # a rebuild, or another builder that finished first: replace it in two renames
            retired = target.with_name(f".{uuid.uuid4().hex}.retired")
            with contextlib.suppress(FileNotFoundError):
                os.rename(target, retired)
            _remove(retired)
        with contextlib.suppress(OSError):  # another builder renamed its complete copy in between: keep that
            os.rename(folder, target)
        self.path(asset).unlink(missing_ok=True)
        self._forget_other_versions(asset)
        return load_parquet(target)

    def get_or_build(
        self, asset: AssetIdentity, build: Callable[[], dict], rebuild: bool = False, storage: str = AUTO
    ) -> dict:
        """The cached index, or ``build()``'s, cached. ``rebuild`` replaces a cached (or corrupt) entry."""
        if not rebuild:
            cached = self.get(asset)
            if cached is not None:
                return cached
        return self.put(asset, build(), storage)

    def _forget_other_versions(self, asset: AssetIdentity) -> None:
        keep = {self.path(asset), self.parquet_path(asset)}
        prefix = _digest(asset.url)
        for older in [*self.directory.glob(f"{prefix}-*{SUFFIX}"), *self.directory.glob(f"{prefix}-*{PARQUET_SUFFIX}")]:
            if older not in keep:
                _remove(older)


def cached_index(
    store, key: str, cache: IndexCache, local_path=None, rebuild: bool = False, storage: str = AUTO, progress=None
) -> dict:
    """The index of ``key`` as the store holds it now: from ``cache``, else built (from ``local_path``, a copy
    of exactly that object, when given; else from the store, reading only metadata) and cached."""
    asset = AssetIdentity.of(store, key)

    def build() -> dict:
        if local_path:
            return build_index(local_path, url=asset.url, progress=progress)
        return build_index(asset.url, storage_options=store.s3fs_options(), progress=progress)

    return cache.get_or_build(asset, build, rebuild=rebuild, storage=storage)


def _modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # removed by a writer in between
        return 0.0


def _load(path: Path) -> dict:
    """The index stored at ``path`` (a JSON file or a Parquet folder); :class:`CorruptIndex` if unreadable."""
    if path.is_dir():
        return load_parquet(path)
    try:
        index = json.loads(path.read_text())
    except FileNotFoundError:
        raise  # replaced by a newer version in between: the caller's "no entry"
    except (OSError, ValueError) as error:
        raise CorruptIndex(str(error)) from None
    check_index(index)
    return index


def _stamp(path: Path) -> dict:
    """The ``cached_for`` record of an entry (empty if it cannot be read: :meth:`IndexCache.get` says why)."""
    try:
        text = (path / ZMETADATA if path.is_dir() else path).read_text()
        return json.loads(text).get("nwb_cloud", {}).get("cached_for", {}) or {}
    except (OSError, ValueError, AttributeError):
        return {}


_REBUILD = "rebuild it (rebuild=True, or `nwb-cloud index build --rebuild`) or delete it"


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
