"""What produced a converted file: its sources as they were, the spec, the layout and the software versions.

A finished session is skipped on a re-run only when all of it is unchanged; otherwise it is converted again,
and :meth:`Fingerprint.change_from` says why in one line. Sources are fingerprinted from one rclone listing:
size and modification time of every file, and the hash the remote already stores where it has one (never
a read of the bytes). The fingerprint is written into every step's marker and into the done-record.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import cache

from nwb_cloud import __version__
from nwb_cloud.convert.rclone import Listed
from nwb_cloud.convert.spec import Session


@cache
def software_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"nwb-cloud": __version__}
    for package in ("neuroconv", "pynwb", "hdmf"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


@dataclass(frozen=True)
class Fingerprint:
    sources: dict[str, dict]  # path -> {"size", "modified", "hashes"}
    spec: str  # the session's digest (interfaces, source data, metadata, options)
    layout: str | None
    versions: dict[str, str] = field(default_factory=lambda: software_versions())

    @classmethod
    def of(cls, session: Session, listed: list[Listed], layout: str | None) -> Fingerprint:
        sources = {
            entry.path: {"size": entry.size, "modified": entry.modified, "hashes": dict(entry.hashes)}
            for entry in sorted(listed, key=lambda e: e.path)
        }
        return cls(sources=sources, spec=session.digest(), layout=layout)

    @property
    def bytes(self) -> int:
        return sum(source["size"] for source in self.sources.values())

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict | None) -> Fingerprint | None:
        try:
            return cls(data["sources"], data["spec"], data["layout"], dict(data["versions"]))
        except (KeyError, TypeError):
            return None

    def change_from(self, old: Fingerprint | None) -> str | None:
        """Why an output made under ``old`` is not this one's, in one line; None when nothing changed."""
        if old is None:
            return "no fingerprint was recorded with it (made by an older nwb-cloud)"
        if old.spec != self.spec:
            return "its part of the spec changed"
        if old.layout != self.layout:
            return f"the layout changed ({old.layout or 'NeuroConv default'} -> {self.layout or 'NeuroConv default'})"
        for name in sorted(set(old.versions) | set(self.versions)):
            if old.versions.get(name) != self.versions.get(name):
                return f"{name} changed ({old.versions.get(name, 'absent')} -> {self.versions.get(name, 'absent')})"
        added = sorted(set(self.sources) - set(old.sources))
        removed = sorted(set(old.sources) - set(self.sources))
        if added or removed:
            what = [f"{len(added)} new" if added else "", f"{len(removed)} gone" if removed else ""]
            example = (added or removed)[0]
            return f"its source files changed ({', '.join(w for w in what if w)}: {example})"
        for path, now in self.sources.items():
            before = old.sources[path]
            if before["size"] != now["size"]:
                return f"source {path} changed size ({before['size']} -> {now['size']} bytes)"
            shared = set(before.get("hashes", {})) & set(now.get("hashes", {}))
            if any(before["hashes"][h] != now["hashes"][h] for h in shared):
                return f"source {path} has new bytes ({'/'.join(sorted(shared))} differs)"
            if before["modified"] != now["modified"]:
                return f"source {path} was modified ({before['modified']} -> {now['modified']})"
        return None
