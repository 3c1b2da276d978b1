"""Ranged GETs of one S3 object: one pooled botocore client, requests in parallel, bodies read in place.

Why botocore and not obstore or aiohttp: it is the S3 client of the field (signing, endpoints, retries of
503 SlowDown and of failed connections), and its urllib3 pool keeps connections open between requests. obstore
(object_store) refuses an S3-compatible server that answers a ranged GET with ``200`` and a
``Content-Range`` (``rclone serve s3`` does), which would lose the unshaped cells of the suite.

What this module adds to botocore:

* clients are made from one process-wide botocore session: creating a boto3 session per client parses the
  S3 service model again (~150 ms each on this machine), a cost that would dominate a cached open;
* a body is read straight into the caller's buffer (``readinto``), so a chunk split over several requests
  is assembled without copies, and a coalesced request is sliced without copies;
* a body that breaks off (connection reset, truncation, read timeout) is requested again, up to
  ``Policy.retries`` times with exponential backoff: botocore retries a request, not a body read;
* the answer's length is checked against the range asked for: a server that ignores ``Range`` is an error,
  never wrong data;
* once the version of the asset the index describes is known (``expected_etag``), every GET carries
  ``If-Match``: S3 answers 412 if the object was replaced since, and the read fails instead of decoding
  another file's bytes at the old offsets. (``rclone serve s3`` ignores the header.)

Credentials come from the :class:`~nwb_cloud.cloud.store.Store` when the reader is made; no URL is signed
ahead of time and none is stored.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import botocore.exceptions
import botocore.session

from nwb_cloud.cloud.store import Store, describe_client_error
from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.plan import Policy

# A body that fails half-way: botocore wraps urllib3's errors in these.
_BODY_ERRORS = (
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    ConnectionError,
    TimeoutError,
)
_BACKOFF_S = 0.1
T = TypeVar("T")

_session = None
_session_lock = threading.Lock()


class FetchError(RefsError):
    """Bytes of an asset could not be read (the message names the object and the range)."""


def retry_broken_body(request: Callable[[], T], what: str, retries: int) -> T:
    """``request()``, sent again (with backoff) while its response body breaks off, up to ``retries`` more times.

    botocore retries a request that fails before its body (503, reset on connect); a body cut half-way
    (a reset, a truncated response, a stall past the read timeout) reaches the caller, and only a new
    request gets the bytes: chunk reads and the sidecar's GET both go through here.
    """
    attempt = 0
    while True:
        try:
            return request()
        except _BODY_ERRORS as error:
            attempt += 1
            if attempt > retries:
                raise FetchError(f"cannot read {what}: {type(error).__name__} after {attempt} attempts") from None
            time.sleep(_BACKOFF_S * 2 ** (attempt - 1))


def s3_client(store: Store, pool_size: int):
    """A botocore S3 client for ``store`` with room for ``pool_size`` open connections."""
    global _session
    with _session_lock:
        if _session is None:
            _session = botocore.session.get_session()
        return _session.create_client(
            "s3",
            endpoint_url=store.endpoint_url,
            region_name=store.region,
            aws_access_key_id=store.access_key,
            aws_secret_access_key=store.secret_key,
            aws_session_token=store.session_token,
            config=store.botocore_config(max_pool_connections=pool_size),
        )


class RangeReader:
    """Reads byte ranges of ``key`` in ``store``; up to ``policy.concurrency`` requests at once."""

    def __init__(self, store: Store, key: str, policy: Policy | None = None, client=None):
        self.store = store
        self.key = key
        self.policy = policy or Policy()
        # two spare connections: the index fetch (GET + HEAD) shares the client with the chunk requests
        self.client = client or s3_client(store, self.policy.concurrency + 2)
        self._pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="nwb-index-fetch")
        self.url = store.s3_url(key)
        self.expected_etag: str | None = None  # set when the index's version of the asset is known

    # -- requests --------------------------------------------------------------------------------------------
    def read_into(self, start: int, view: memoryview) -> None:
        """Fill ``view`` with the object's bytes from ``start`` on (retrying a body that breaks off)."""
        end = start + len(view)
        retry_broken_body(lambda: self._get_into(start, end, view), f"bytes {start}-{end - 1} of {self.url}",
                          self.policy.retries)  # fmt: skip

    def submit(self, start: int, view: memoryview) -> Future:
        """:meth:`read_into` on the reader's connections; the future's result is None."""
        return self._pool.submit(self.read_into, start, view)

    def read(self, start: int, end: int) -> bytearray:
        buffer = bytearray(end - start)
        self.read_into(start, memoryview(buffer))
        return buffer

    def _get_into(self, start: int, end: int, view: memoryview) -> None:
        request = {"Bucket": self.store.bucket, "Key": self.key, "Range": f"bytes={start}-{end - 1}"}
        if self.expected_etag:
            request["IfMatch"] = f'"{self.expected_etag}"'
        try:
            response = self.client.get_object(**request)
        except botocore.exceptions.ClientError as error:
            if str(error.response.get("Error", {}).get("Code")) in ("PreconditionFailed", "412"):
                raise FetchError(
                    f"{self.url} changed since its index was read (its ETag is no longer {self.expected_etag}): "
                    "open it again"
                ) from None
            raise FetchError(describe_client_error(error, self.url)) from None
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
            raise FetchError(f"cannot reach {self.store.label} for {self.url}: {error}") from None
        body = response["Body"]
        try:
            if response["ContentLength"] != end - start:
                raise FetchError(
                    f"asked {self.store.label} for bytes {start}-{end - 1} of {self.url} and got "
                    f"{response['ContentLength']} bytes (the server ignores Range?)"
                )
            filled = 0
            while filled < len(view):
                count = body.readinto(view[filled:])
                if not count:
                    raise botocore.exceptions.IncompleteReadError(actual_bytes=filled, expected_bytes=len(view))
                filled += count
        finally:
            body.close()

    # -- connections -----------------------------------------------------------------------------------------
    def head(self, key: str | None = None) -> dict:
        """Size and ETag of ``key`` (default: the asset), on this reader's connections."""
        key = key or self.key
        try:
            response = self.client.head_object(Bucket=self.store.bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            raise FetchError(describe_client_error(error, self.store.s3_url(key))) from None
        except botocore.exceptions.BotoCoreError as error:
            raise FetchError(f"cannot reach {self.store.label} for {self.store.s3_url(key)}: {error}") from None
        return {"size": response["ContentLength"], "etag": response["ETag"].strip('"')}

    def warm(self, connections: int | None = None) -> None:
        """Open up to ``connections`` connections in the background, without waiting (see ``Policy.warm_bytes``).

        A new connection costs its handshakes (two round trips with TLS) before the first request; paying
        them while pynwb builds its objects takes them off the first read. With ``Policy.warm_bytes``, each
        warming request reads that many bytes of the asset, which grows the connection's TCP window too.
        Failures are left to that read.
        """
        count = self.policy.warm_count if connections is None else connections
        for _ in range(count):
            self._pool.submit(self._quiet_warm)

    def _quiet_warm(self) -> None:
        with contextlib.suppress(FetchError, *_BODY_ERRORS):
            if self.policy.warm_bytes > 0:
                self.read(0, self.policy.warm_bytes)
            else:
                self.head()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.client.close()
