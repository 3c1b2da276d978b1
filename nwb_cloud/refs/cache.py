"""A local cache of indexes, keyed by the asset's identity: URL + ETag + size.

A changed asset has another ETag or size, hence another key: a stale index is never found, let alone served
(and the older entries of the same URL are removed when the new one is written). Entries are written to a
unique temporary name and renamed into place, so concurrent builders of one asset each produce a complete
file and the last rename wins, and a reader sees either no entry or a whole one. A file that does not
parse raises :class:`~nwb_cloud.refs.errors.CorruptIndex`, naming it and offering the rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.refs.build import INDEX_FORMAT, build_index
from nwb_cloud.refs.errors import CorruptIndex
from nwb_cloud.refs.reader import check_index
from nwb_cloud.refs.translate import dumps

SUFFIX = ".refs.json"


@dataclass(frozen=True)
class AssetIdentity:
    url: str
    etag: str
    size: int

    @classmethod
    def of(cls, store, key: str) -> AssetIdentity:
        head = store.head(key)
        return cls(url=store.s3_url(key), etag=head["etag"], size=int(head["size"]))

    def as_dict(self) -> dict:
        return {"url": self.url, "etag": self.etag, "size": self.size}


class IndexCache:
    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, asset: AssetIdentity) -> Path:
        version = _digest(f"{asset.etag}\n{asset.size}\n{INDEX_FORMAT}")
        return self.directory / f"{_digest(asset.url)}-{version}{SUFFIX}"

    def get(self, asset: AssetIdentity) -> dict | None:
        """The cached index of exactly this version of the asset, or None."""
        path = self.path(asset)
        try:
            text = path.read_text()
        except FileNotFoundError:
            return None
        try:
            refs = json.loads(text)
            check_index(refs)
        except (ValueError, CorruptIndex) as error:
            raise CorruptIndex(
                f"cached index {path} of {asset.url} is corrupt ({error}); rebuild it (rebuild=True) or delete the file"
            ) from None
        if refs.get("nwb_cloud", {}).get("cached_for") != asset.as_dict():
            raise CorruptIndex(f"cached index {path} was not written for {asset.url} as it is now; rebuild it")
        return refs

    def put(self, asset: AssetIdentity, refs: dict) -> dict:
        """Store ``refs`` for ``asset`` atomically (older versions of the same URL are removed); returns it stamped."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(asset)
        stamped = {**refs, "nwb_cloud": {**refs.get("nwb_cloud", {}), "cached_for": asset.as_dict()}}
        partial = path.with_name(f".{uuid.uuid4().hex}.partial")
        try:
            with open(partial, "w") as handle:
                handle.write(dumps(stamped))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
        for older in self.directory.glob(f"{_digest(asset.url)}-*{SUFFIX}"):
            if older != path:
                older.unlink(missing_ok=True)
        return stamped

    def get_or_build(self, asset: AssetIdentity, build: Callable[[], dict], rebuild: bool = False) -> dict:
        """The cached index, or ``build()``'s, cached. ``rebuild`` replaces a cached (or corrupt) entry."""
        if not rebuild:
            cached = self.get(asset)
            if cached is not None:
                return cached
        return self.put(asset, build())


def cached_index(store, key: str, cache: IndexCache, local_path=None, rebuild: bool = False) -> dict:
    """The index of ``key`` as the store holds it now: from ``cache``, else built (from ``local_path``, a copy
    of exactly that object, when given; else from the store, reading only metadata) and cached."""
    asset = AssetIdentity.of(store, key)

    def build() -> dict:
        if local_path:
            return build_index(local_path, url=asset.url)
        return build_index(asset.url, storage_options=store.s3fs_options())

    return cache.get_or_build(asset, build, rebuild=rebuild)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
