"""A lab's cloud drive on loopback: a second embedded S3 endpoint, and the rclone config file that names it.

Tests, demos and benchmarks use it as the source of a conversion exactly as a lab would use Google Drive or
Dropbox: through an rclone remote defined in a config file (written owner-only: it holds the keys).
"""

from __future__ import annotations

import configparser
import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.cloud.endpoint import Endpoint


@dataclass(frozen=True)
class LabDrive:
    endpoint: Endpoint
    config_file: Path
    remote: str

    def path(self, bucket: str, *parts: str) -> str:
        """The rclone path of ``bucket/parts`` on the drive (each top-level folder of the root is a bucket)."""
        return f"{self.remote}:" + "/".join([bucket, *parts])


@contextlib.contextmanager
def lab_drive(root: Path, remote: str = "labdrive") -> Iterator[LabDrive]:
    root = Path(root)
    with Endpoint(root) as endpoint:
        config = configparser.ConfigParser(interpolation=None)
        config[remote] = {
            "type": "s3",
            "provider": "Other",
            "endpoint": endpoint.url,
            "access_key_id": endpoint.access_key,
            "secret_access_key": endpoint.secret_key,
            "force_path_style": "true",
        }
        config_file = root.parent / f".{root.name}.rclone.conf"
        descriptor = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            config.write(stream)
        try:
            yield LabDrive(endpoint, config_file, remote)
        finally:
            config_file.unlink(missing_ok=True)
