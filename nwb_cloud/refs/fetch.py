"""Ranged GETs of one S3 object: signed by botocore's signer, sent on the reader's own connections, bodies read in
place; the asset's HEAD and the GET of its index go the same way.

Why botocore and not obstore or aiohttp: it is the S3 client of the field (signing, endpoints, retries of
503 SlowDown and of failed connections), and its urllib3 pool keeps connections open between requests. obstore
(object_store) refuses an S3-compatible server that answers a ranged GET with ``200`` and a
``Content-Range`` (``rclone serve s3`` does), which would lose the unshaped cells of the suite.

What this module adds to botocore:

* a request (a ranged GET of the asset, its HEAD, the GET of its index) is sent by the standard library's
  ``http.client`` on the reader's own keep-alive connections, to a URL botocore's SigV4 query signer signs
  (:meth:`~nwb_cloud.cloud.store.Store.presign`: any kind of credentials, session tokens included, or
  unsigned for anonymous access), re-signed every ``SIGNED_FOR_S``; ``Range`` and ``If-Match`` are plain
  headers, which S3 accepts beside a query signature. botocore's request path costs ~1.9 ms of CPU per
  request here and its body stream (urllib3) reads through a temporary buffer; this one costs ~0.45 ms and
  ``readinto`` fills the caller's buffer straight from the socket, so a chunk split over several requests
  is assembled without copies, and a coalesced request is sliced without copies. And no botocore client is
  made: making one loads S3's service model and endpoint rules, ~50 ms of CPU, a third of a cold open.
  What botocore's client would add is kept: its standard retry of a request that fails before its body (a
  refused or reset connection, 500/502/503/504, ``MAX_ATTEMPTS`` in all with its jittered backoff), its
  timeouts, its CA bundle, and S3's error codes in the messages. With a proxy set in the environment
  (``HTTPS_PROXY``...), requests go through a botocore client instead (made from one process-wide botocore
  session: a boto3 session per client parses the service model again, ~150 ms);
* a body that breaks off (connection reset, truncation, read timeout) is requested again, up to
  ``Policy.retries`` times with exponential backoff: botocore retries a request, not a body read;
* the answer's length is checked against the range asked for: a server that ignores ``Range`` is an error,
  never wrong data;
* once the version of the asset the index describes is known (``expected_etag``), every GET carries
  ``If-Match``: S3 answers 412 if the object was replaced since, and the read fails instead of decoding
  another file's bytes at the old offsets. (``rclone serve s3`` ignores the header.)

Credentials come from the :class:`~nwb_cloud.cloud.store.Store` when the reader is made. The signed URL lives
in the reader's memory for at most ``SIGNED_FOR_S``; no message names it (errors name ``s3://bucket/key``),
and it is never stored.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import select
import ssl
import threading
import time
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from http.client import HTTPResponse
from typing import TypeVar
from urllib.parse import urlsplit

import botocore.exceptions
import botocore.httpsession
import botocore.session

from nwb_cloud.cloud.store import CONNECT_TIMEOUT_S, MAX_ATTEMPTS, READ_TIMEOUT_S, Store, describe_client_error
from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.plan import Policy

# A body that fails half-way: botocore wraps urllib3's errors in these.
_BODY_ERRORS = (
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
    http.client.IncompleteRead,
    ConnectionError,
    TimeoutError,
)
_BACKOFF_S = 0.1
SIGNED_FOR_S = 60  # a signed URL is used for this long (it is valid for EXPIRES_S), then signed again
EXPIRES_S = 900
RETRIED_STATUS = (500, 502, 503, 504)  # botocore's standard retry mode retries these (503: SlowDown)
MAX_BACKOFF_S = 20  # botocore's standard mode waits at most this long before a retry (see backoff_s)
T = TypeVar("T")

_session = None
_session_lock = threading.Lock()


class FetchError(RefsError):
    """Bytes of an asset could not be read (the message names the object and the range)."""


class Unreachable(FetchError):
    """The store did not answer (refused, reset or timed out, after the retries): ``reason`` says how."""

    def __init__(self, store: Store, what: str, reason: str):
        super().__init__(f"cannot reach {store.label} for {what}: {reason}")
        self.reason = reason


class Refused(FetchError):
    """S3 answered with an error: ``code`` is its code (``NoSuchKey``, ``AccessDenied``; for a HEAD, which has
    no error document, the HTTP status: ``404``)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code

    @property
    def missing(self) -> bool:
        """Whether S3 said the object does not exist."""
        return self.code in ("404", "NoSuchKey", "NotFound")


def backoff_s(attempt: int) -> float:
    """The wait after failed attempt number ``attempt`` (1 for the first), as botocore's standard retry mode
    waits: ``random(0, 1) * min(2 ** (attempt - 1), MAX_BACKOFF_S)`` seconds, so at most 1 s before the second."""
    return random.random() * min(2 ** (attempt - 1), MAX_BACKOFF_S)


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
    """Reads byte ranges of ``key`` in ``store``; up to ``policy.most_in_flight`` requests at once."""

    def __init__(self, store: Store, key: str, policy: Policy | None = None, client=None):
        self.store = store
        self.key = key
        self.policy = policy or Policy()
        self._client = client  # made on first use: the direct path never needs one
        self._client_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.policy.most_in_flight, thread_name_prefix="nwb-index-fetch")
        self.url = store.s3_url(key)
        self.expected_etag: str | None = None  # set when the index's version of the asset is known
        self._direct = not _proxied(store.object_url(key))
        self._idle: list[http.client.HTTPConnection] = []  # keep-alive connections between requests
        self._idle_lock = threading.Lock()
        self._submitted = 0  # requests handed to the fetch threads and not yet done (submit_all)
        self._closed = False
        self._signed: dict[tuple[str, str], tuple[float, str, str]] = {}  # (method, key) -> (at, host, target)
        self._tls: ssl.SSLContext | None = None
        self._warmed = False

    @property
    def client(self):
        """A botocore client of the store, for requests through a proxy of the environment (made once)."""
        with self._client_lock:
            if self._client is None:
                # two spare connections: the index fetch (GET + HEAD) shares the client with the chunk requests
                self._client = s3_client(self.store, self.policy.most_in_flight + 2)
            return self._client

    # -- requests --------------------------------------------------------------------------------------------
    def read_into(self, start: int, view: memoryview, sent: http.client.HTTPConnection | None = None) -> None:
        """Fill ``view`` with the object's bytes from ``start`` on (retrying a body that breaks off); ``sent``:
        a connection the range's GET was sent on (:meth:`submit_all`), whose answer the first attempt reads."""
        end = start + len(view)
        unread = [sent]

        def attempt() -> None:
            first, unread[0] = unread[0], None
            self._get_into(start, end, view, first)

        retry_broken_body(attempt, f"bytes {start}-{end - 1} of {self.url}", self.policy.retries)

    def submit_all(self, ranges: list[tuple[int, memoryview]]) -> list[Future]:
        """:meth:`read_into` of each ``(start, view)`` on the reader's connections; the futures' results are None.

        On the direct path, as many requests as fetch threads are free are sent first, one after the other from
        the caller's thread, and the fetch threads read the answers: handed over before they were sent, each
        request waited for its thread to wake and take the GIL, and a read's requests left over ~3 ms instead
        of ~0.5 ms."""
        sent: list[http.client.HTTPConnection | None] = [None] * len(ranges)
        if self._direct:
            with self._idle_lock:
                free = max(0, self.policy.most_in_flight - self._submitted)
                self._submitted += len(ranges)
            for number, (start, view) in enumerate(ranges[:free]):
                sent[number] = self._send_first(start, start + len(view))
        futures = []
        for (start, view), connection in zip(ranges, sent, strict=True):
            futures.append(self._pool.submit(self.read_into, start, view, connection))
            if self._direct:
                futures[-1].add_done_callback(self._done)
        return futures

    def _done(self, _: Future) -> None:
        with self._idle_lock:
            self._submitted -= 1

    def _send_first(self, start: int, end: int) -> http.client.HTTPConnection | None:
        """A connection with the range's GET sent on it, or None: the fetch thread then sends it, with retries, and
        its future carries whatever fails (raised here, an error would escape the caller, which may be another
        read's callback, instead of failing this range's chunks)."""
        connection = None
        try:
            where, target = self._target()
            connection = self._connection(where)
            connection.request("GET", target, headers=self._range_headers(start, end))
            return connection
        except Exception:  # noqa: BLE001 - see the docstring
            if connection is not None:
                connection.close()
            return None

    def read(self, start: int, end: int) -> bytearray:
        buffer = bytearray(end - start)
        self.read_into(start, memoryview(buffer))
        return buffer

    def _range_headers(self, start: int, end: int) -> dict:
        headers = {"Range": f"bytes={start}-{end - 1}"}
        if self.expected_etag:
            headers["If-Match"] = f'"{self.expected_etag}"'
        return headers

    def _get_into(self, start: int, end: int, view: memoryview, sent=None) -> None:
        if not self._direct:
            self._get_into_by_client(start, end, view)
            return
        connection, response = self._send("GET", self.key, self._range_headers(start, end), sent)
        reusable = False
        try:
            if response.status not in (200, 206):
                raise self._refusal(response, self.url)
            self._fill(start, end, response.length, response, view,
                       lambda filled: http.client.IncompleteRead(b"", len(view) - filled))  # fmt: skip
            reusable = not response.will_close
        finally:
            self._release(connection, reusable)

    def _send(
        self, method: str, key: str, headers: dict, sent: http.client.HTTPConnection | None = None
    ) -> tuple[http.client.HTTPConnection, HTTPResponse]:
        """The response's status and headers (its body left to read), retried as botocore's standard mode
        retries a request: a connection refused, reset or timed out before the answer, or 500/502/503/504.
        ``sent``: a connection the request is already sent on (its first attempt)."""
        attempt = 0
        while True:
            attempt += 1
            connection, sent = sent, None
            try:
                if connection is None:
                    where, target = self._target(method, key)
                    connection = self._connection(where)
                    connection.request(method, target, headers=headers)
                response = connection.getresponse()
            except (OSError, http.client.HTTPException) as error:
                if connection is not None:
                    connection.close()
                if attempt >= MAX_ATTEMPTS:
                    reason = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
                    raise Unreachable(self.store, self.store.s3_url(key), reason) from None
            else:
                if response.status not in RETRIED_STATUS or attempt >= MAX_ATTEMPTS:
                    return connection, response
                response.read()  # an error document: small
                self._release(connection, not response.will_close)
            time.sleep(backoff_s(attempt))

    def _target(self, method: str = "GET", key: str | None = None) -> tuple[str, str]:
        """``(scheme://host:port, path?query)`` of ``key``'s URL signed for ``method`` (default: a GET of the
        asset), signed again once it is old."""
        key = key or self.key
        signed = self._signed.get((method, key))
        if signed is None or time.monotonic() - signed[0] > SIGNED_FOR_S:
            parts = urlsplit(self.store.presign(key, method, EXPIRES_S))
            target = f"{parts.path}?{parts.query}" if parts.query else parts.path
            signed = self._signed[method, key] = (time.monotonic(), f"{parts.scheme}://{parts.netloc}", target)
        return signed[1], signed[2]

    def _connection(self, where: str, fresh: bool = False) -> http.client.HTTPConnection:
        """An idle keep-alive connection to ``where``, or a new one (``fresh``: always a new one)."""
        with self._idle_lock:
            while self._idle and not fresh:
                connection = self._idle.pop()
                if connection.where == where and not _dropped(connection):
                    return connection
                connection.close()
        parts = urlsplit(where)
        if parts.scheme == "https":
            if self._tls is None:
                self._tls = ssl.create_default_context(cafile=botocore.httpsession.get_cert_path(True))
            connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S,
                                                     context=self._tls)  # fmt: skip
        else:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=CONNECT_TIMEOUT_S)
        connection.where = where
        connection.connect()  # connecting has CONNECT_TIMEOUT_S; reading then has READ_TIMEOUT_S
        connection.sock.settimeout(READ_TIMEOUT_S)
        return connection

    def _release(self, connection: http.client.HTTPConnection, reusable: bool) -> None:
        if reusable:
            with self._idle_lock:  # a request still in flight when the reader closed (a HEAD, a warming) closes
                if not self._closed and len(self._idle) < self.policy.most_in_flight + 2:
                    self._idle.append(connection)
                    return
        connection.close()

    def _refusal(self, response: http.client.HTTPResponse, what: str) -> Refused:
        """What S3 answered instead of the object, in the words of :func:`describe_client_error`."""
        try:
            document = ElementTree.fromstring(response.read(64 * 1024) or b"<Error/>")
            code = document.findtext("Code") or str(response.status)
            message = document.findtext("Message") or ""
        except (ElementTree.ParseError, OSError, http.client.HTTPException):
            code, message = str(response.status), ""
        if code in ("PreconditionFailed", "412"):
            return Refused(f"{what} changed since its index was read (its ETag is no longer {self.expected_etag}): "
                           "open it again", code)  # fmt: skip
        error = botocore.exceptions.ClientError(
            {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": response.status}},
            "GetObject",
        )
        return Refused(describe_client_error(error, what, tried=self.store.tried), code)

    def _get_into_by_client(self, start: int, end: int, view: memoryview) -> None:
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
            self._fill(start, end, response["ContentLength"], body, view,
                       lambda filled: botocore.exceptions.IncompleteReadError(actual_bytes=filled,
                                                                              expected_bytes=len(view)))  # fmt: skip
        finally:
            body.close()

    def _fill(self, start: int, end: int, length, body, view: memoryview, broken) -> None:
        """Read an answer of ``length`` bytes into ``view``, in place; ``broken(filled)`` is the error of a body
        that ends early (the one :func:`retry_broken_body` retries for this client)."""
        if length != end - start:
            raise FetchError(
                f"asked {self.store.label} for bytes {start}-{end - 1} of {self.url} and got "
                f"{length} bytes (the server ignores Range?)"
            )
        filled = 0
        while filled < len(view):
            count = body.readinto(view[filled:])
            if not count:
                raise broken(filled)
            filled += count

    # -- whole objects (the asset's HEAD, its index) ---------------------------------------------------------
    def head(self, key: str | None = None) -> dict:
        """Size and ETag of ``key`` (default: the asset), on this reader's connections; :class:`Refused` when S3
        answers with an error, :class:`FetchError` when it cannot be reached."""
        key = key or self.key
        what = self.store.s3_url(key)
        if not self._direct:
            response = self._by_client(self.client.head_object, what, Bucket=self.store.bucket, Key=key)
            return {"size": response["ContentLength"], "etag": response["ETag"].strip('"')}
        connection, response = self._send("HEAD", key, {})
        try:
            response.read()  # a HEAD's answer has no body: this only lets the connection be used again
            if response.status != 200:  # S3 answers a HEAD without an error document: the status is the code
                raise self._refusal(response, what)
            etag, size = response.getheader("ETag"), response.getheader("Content-Length")
            if etag is None or size is None:
                raise FetchError(f"{self.store.label} answered a HEAD of {what} without an ETag or a length")
        finally:
            self._release(connection, not response.will_close)
        return {"size": int(size), "etag": etag.strip('"')}

    def get(self, key: str) -> bytes:
        """The whole object ``key`` (an index beside the asset); a body that breaks off is fetched again, as
        chunk reads are. :class:`Refused` when S3 answers with an error."""
        what = self.store.s3_url(key)
        if not self._direct:
            return retry_broken_body(
                lambda: self._by_client(self.client.get_object, what, Bucket=self.store.bucket, Key=key)["Body"].read(),
                what, self.policy.retries,
            )  # fmt: skip
        return retry_broken_body(lambda: self._get_whole(key, what), what, self.policy.retries)

    def _get_whole(self, key: str, what: str) -> bytes:
        connection, response = self._send("GET", key, {})
        reusable = False
        try:
            if response.status != 200:
                raise self._refusal(response, what)
            body = response.read()  # http.client raises IncompleteRead for a body shorter than its length
            reusable = not response.will_close
            return body
        finally:
            self._release(connection, reusable)

    def _by_client(self, call, what: str, **request) -> dict:
        try:
            return call(**request)
        except botocore.exceptions.ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            raise Refused(describe_client_error(error, what, tried=self.store.tried), code) from None
        except botocore.exceptions.BotoCoreError as error:
            raise Unreachable(self.store, what, str(error)) from None

    # -- connections -----------------------------------------------------------------------------------------

    def warm(self, connections: int | None = None) -> None:
        """Open up to ``connections`` connections in the background, without waiting (see ``Policy.warm_bytes``);
        once per reader, later calls do nothing.

        A new connection costs its handshakes (two round trips with TLS) before the first request; paying
        them while the index is fetched and pynwb builds its objects takes them off the first read. With
        ``Policy.warm_bytes``, each warming request reads that many bytes of the asset, which grows the
        connection's TCP window too.
        Without a proxy in the environment the chunk requests have connections of their own (module
        docstring): those are opened, without a request. Failures are left to that read.
        """
        if self._warmed:
            return
        self._warmed = True
        count = self.policy.warm_count if connections is None else connections
        for _ in range(count):
            self._pool.submit(self._quiet_warm)

    def _quiet_warm(self) -> None:
        with contextlib.suppress(FetchError, OSError, *_BODY_ERRORS):
            if self.policy.warm_bytes > 0:
                self.read(0, self.policy.warm_bytes)
            elif self._direct:  # a connection of the chunk requests' own, its handshakes done
                self._release(self._connection(self._target()[0], fresh=True), reusable=True)
            else:
                self.head()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        with self._idle_lock:
            idle, self._idle, self._closed = self._idle, [], True
        for connection in idle:
            connection.close()
        if self._client is not None:
            self._client.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the server (it then reads as readable: EOF)."""
    return connection.sock is None or bool(select.select([connection.sock], [], [], 0)[0])


def _proxied(endpoint_url: str) -> bool:
    """Whether the environment sends requests to ``endpoint_url`` through a proxy (then botocore does)."""
    parts = urlsplit(endpoint_url)
    return parts.scheme in urllib.request.getproxies() and not urllib.request.proxy_bypass(parts.hostname or "")
