"""Running rclone: remotes defined in Python, progress read from its JSON log, failures turned into messages.

Configuration reaches rclone in exactly two ways, both built here and never through a shell: ``RCLONE_CONFIG``
holding the *path* of a config file (what rclone means by that variable), or one ``RCLONE_CONFIG_<NAME>_<KEY>``
variable per option of a remote. A value with ``%``, quotes or backslashes therefore arrives byte for byte.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from nwb_cloud import processes
from nwb_cloud.cloud.endpoint import rclone_binary, rclone_env
from nwb_cloud.convert.errors import ConvertError, SourceError

# rclone's own syntax: "name:path" where the name has no slash; ":backend,opts:path" is an on-the-fly remote.
_REMOTE = re.compile(r"^(?P<name>[\w.+@ -]+):")
_GLOB_SPECIALS = re.compile(r"([*?\[\]{}\\])")
# rclone exit codes (docs: "Exit Code"): 3 directory not found, 4 file not found.
_NOT_FOUND_CODES = (3, 4)


def remote_name(path: str) -> str | None:
    """The named remote of an rclone path (``"gdrive"`` for ``"gdrive:lab/s1"``); None for a local path."""
    if path.startswith(":"):
        return None
    match = _REMOTE.match(path)
    return match["name"] if match else None


def join(root: str, *parts: str) -> str:
    """``root`` and ``parts`` joined with ``/``, keeping a remote root such as ``"lab:"`` intact."""
    cleaned = [p.strip("/") for p in parts if p and p.strip("/")]
    if not cleaned:
        return root
    separator = "" if root.endswith((":", "/")) else "/"
    return root + separator + "/".join(cleaned)


def include_rules(paths: Iterable[str], folders: Iterable[str]) -> list[str]:
    """rclone filter rules that select exactly ``paths`` (files) and everything under ``folders``."""
    rules = [f"+ /{_escape(p)}" for p in paths]
    rules += ["+ **" if f.strip("/") in ("", ".") else f"+ /{_escape(f)}/**" for f in folders]
    return [*rules, "- **"]


def _escape(path: str) -> str:
    return _GLOB_SPECIALS.sub(r"\\\1", path.strip("/"))


@dataclass(frozen=True)
class Remote:
    """One rclone remote, given to rclone as environment variables (no config file needed)."""

    name: str
    options: Mapping[str, str] = field(repr=False)

    def env(self) -> dict[str, str]:
        prefix = f"RCLONE_CONFIG_{self.name.upper()}_"
        return {prefix + key.upper(): str(value) for key, value in self.options.items()}


def remotes_from_config(config_file: Path, names: Iterable[str]) -> list[Remote]:
    """The named remotes of an rclone config file, so that they can travel as variables (or a secret)."""
    path = Path(config_file)
    try:
        text = path.read_text()
    except OSError as error:
        raise SourceError(f"cannot read rclone config {path}: {error.strerror}") from None
    if text.lstrip().startswith("# Encrypted rclone configuration"):
        raise SourceError(f"rclone config {path} is encrypted: export the remotes it holds to a plain config file")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    try:
        parser.read_string(text, source=str(path))
    except configparser.Error as error:
        raise SourceError(f"rclone config {path} cannot be parsed: {error}") from None
    remotes = []
    for name in names:
        if not parser.has_section(name):
            known = ", ".join(parser.sections()) or "none"
            raise SourceError(f"rclone remote {name!r} is not in {path} (remotes there: {known})")
        remotes.append(Remote(name, dict(parser.items(name))))
    return remotes


@dataclass(frozen=True)
class Listed:
    path: str  # relative to the listed root, with '/' separators
    size: int
    modified: str = ""  # as the remote reports it (RFC 3339)
    hashes: Mapping[str, str] = field(default_factory=dict)  # the hashes the remote stores (none for a folder)


class Rclone:
    """The rclone binary with one configuration: a config file, extra remotes, or both."""

    def __init__(self, config_file: Path | None = None, remotes: Iterable[Remote] = (), binary: str | None = None):
        self.config_file = Path(config_file) if config_file else None
        self.remotes = tuple(remotes)
        self.binary = binary or rclone_binary()
        if self.config_file is not None and not self.config_file.is_file():
            raise SourceError(f"rclone config file {self.config_file} does not exist")

    def with_remotes(self, *remotes: Remote) -> Rclone:
        return Rclone(self.config_file, (*self.remotes, *remotes), self.binary)

    def env(self) -> dict[str, str]:
        env = rclone_env()
        if self.config_file is not None:
            env["RCLONE_CONFIG"] = str(self.config_file)
        elif env.get("RCLONE_CONFIG") == os.devnull:
            del env["RCLONE_CONFIG"]  # let rclone find the user's own config where it always looks
        for remote in self.remotes:
            env.update(remote.env())
        return env

    def config_path(self) -> Path:
        """The config file rclone reads: the one given, or the user's default (``rclone config file``)."""
        if self.config_file is not None:
            return self.config_file
        lines = self._run(["config", "file"], "config").strip().splitlines()
        return Path(lines[-1].strip()) if lines else Path(os.devnull)

    @property
    def config_label(self) -> str:
        return str(self.config_file) if self.config_file else "rclone's default config"

    def list_files(self, root: str, rules: list[str] | None = None, details: bool = False) -> list[Listed]:
        """Every file under ``root`` (recursively) that the filter ``rules`` select.

        ``details`` adds each file's modification time and, on a remote, the hashes it stores (S3's MD5 ETag,
        Drive's MD5...): what a fingerprint of the source needs. A local folder's hashes would mean reading
        every byte, so there only sizes and times are listed.
        """
        args = ["lsjson", "-R", "--files-only", "--no-mimetype", root, *_filters(rules)]
        if not details:
            args.insert(4, "--no-modtime")
        elif remote_name(root) is not None:
            args.insert(4, "--hash")
        output = self._run(args, root)
        return [
            Listed(entry["Path"], int(entry["Size"]), entry.get("ModTime", ""), entry.get("Hashes") or {})
            for entry in json.loads(output or "[]")
        ]

    def copy(
        self,
        source: str,
        destination: str,
        rules: list[str] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        """``rclone copy`` (hash-verified where both sides share a hash), reporting (bytes, total) as it goes."""
        args = ["copy", source, destination, "--stats", "500ms", "--stats-log-level", "NOTICE", *_filters(rules)]
        self._run(args, source, progress=progress)

    def _run(self, args: list[str], subject: str, progress: Callable[[int, int], None] | None = None) -> str:
        command = [self.binary, *args, "--use-json-log", "--log-level", "NOTICE"]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env(), text=True,
            **processes.child_options(),
        )  # fmt: skip
        errors: list[str] = []
        stdout: list[str] = []
        reader = threading.Thread(target=lambda: stdout.append(process.stdout.read()), daemon=True)
        reader.start()
        try:
            for line in process.stderr:
                record = _parse(line)
                stats = record.get("stats")
                if stats and progress is not None:
                    progress(int(stats.get("bytes", 0)), int(stats.get("totalBytes", 0)))
                if record.get("level") in ("error", "critical") or "Failed to" in record.get("msg", ""):
                    errors.append(record.get("msg", "").strip())
            code = process.wait()
            reader.join()
        except BaseException:
            processes.stop(process, grace_s=2)
            raise
        if code != 0:
            raise self._error(args[0], subject, code, errors)
        return "".join(stdout)

    def _error(self, command: str, subject: str, code: int, errors: list[str]) -> ConvertError:
        message = next((e for e in reversed(errors) if not e.startswith("Attempt ")), errors[-1] if errors else "")
        name = remote_name(subject)
        if "didn't find section in config file" in message and name:
            return SourceError(f"rclone remote {name!r} is not configured ({self.config_label})")
        if code in _NOT_FOUND_CODES or "directory not found" in message:
            return SourceError(f"{subject} does not exist")
        return ConvertError(f"rclone {command} {subject} failed (exit {code}): {message or 'no message'}")


def _filters(rules: list[str] | None) -> list[str]:
    return [arg for rule in rules or () for arg in ("--filter", rule)]


def _parse(line: str) -> dict:
    try:
        record = json.loads(line)
    except ValueError:
        return {"level": "error", "msg": line.strip()} if line.strip() else {}
    return record if isinstance(record, dict) else {}
