"""The embedded endpoint's own throughput on loopback: what a byte costs when no profile shapes the network.

Measured once per run (``nwb-cloud bench`` prepares it) with plain botocore ranged GETs of one large object,
and kept beside the run's data so that the benchmark processes price loopback bytes without re-measuring.
On a small machine the endpoint and the reader share the cores, so this is the rate one stream reaches,
not a network property.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import botocore.exceptions

from nwb_cloud.analysis.errors import AnalysisError
from nwb_cloud.cloud.store import Store, describe_client_error

MiB = 2**20
TARGET_BYTES = 128 * MiB  # enough that per-request latency is noise
MAX_GETS = 8
BLOCK = MiB


def _path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "analysis" / "loopback.json"


def measure_loopback_throughput(store: Store, key: str, data_dir: str | Path | None = None) -> float:
    """Bytes/s of ranged GETs of ``key`` over one connection; kept under ``data_dir`` when given.

    GETs of up to 128 MiB are repeated (at most 8) until 128 MiB have arrived, so even a small object gives
    a figure; an object of 128 MiB or more gives the rate of one large ranged GET.
    """
    client = store.client()
    try:
        size = client.head_object(Bucket=store.bucket, Key=key)["ContentLength"]
        length = min(size, TARGET_BYTES)
        if length <= 0:
            raise AnalysisError(f"{store.s3_url(key)} is empty: no throughput to measure")
        client.get_object(Bucket=store.bucket, Key=key, Range="bytes=0-0")["Body"].read()  # open the connection
        received, started = 0, time.perf_counter()
        for _ in range(MAX_GETS):
            body = client.get_object(Bucket=store.bucket, Key=key, Range=f"bytes=0-{length - 1}")["Body"]
            while block := body.read(BLOCK):
                received += len(block)
            if received >= TARGET_BYTES:
                break
        elapsed = time.perf_counter() - started
    except botocore.exceptions.ClientError as error:
        raise AnalysisError(describe_client_error(error, store.s3_url(key))) from None
    except botocore.exceptions.BotoCoreError as error:
        raise AnalysisError(f"cannot measure loopback throughput from {store.label}: {error}") from None
    throughput = received / elapsed
    if data_dir is not None:
        path = _path(data_dir)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
        partial.write_text(
            json.dumps({"bytes_per_s": throughput, "bytes": received, "endpoint": store.label, "at": time.time()})
        )
        partial.replace(path)
    return throughput


def stored_loopback_throughput(data_dir: str | Path) -> float | None:
    """The throughput measured for this run's data directory, or None if it was never measured."""
    path = _path(data_dir)
    if not path.exists():
        return None
    try:
        return float(json.loads(path.read_text())["bytes_per_s"])
    except (ValueError, KeyError, TypeError):
        raise AnalysisError(f"{path} is corrupt: measure the loopback throughput again") from None
