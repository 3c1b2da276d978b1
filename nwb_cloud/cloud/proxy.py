"""The shaping proxy: makes the loopback endpoint look like S3 seen from EC2 or a lab, and counts the traffic.

A userspace TCP proxy that understands just enough HTTP/1.1 to find request and response boundaries on a
keep-alive connection, and relays every byte unchanged otherwise (so the store sees what the reader sent and
the reader gets what the store answered). Per :class:`~nwb_cloud.cloud.profiles.Profile` it adds

* ``connect_rtts * rtt_s`` before the first byte of a new connection moves (TCP + TLS handshakes),
* ``rtt_s + first_byte_s + U(0, jitter_s)`` from the end of each request to the start of its response
  (a response already slower than that on loopback is not delayed further),
* a per-connection bandwidth cap in each direction and an optional total cap shared by all connections
  (paced on a schedule, see :class:`Pacer`): the essential part, since uncapped loopback hides what
  fetching in parallel buys,
* TCP slow start on each new connection, and again after an idle retransmission timeout, when the profile
  gives an initial window (:class:`SlowStart`).

``loopback`` shapes nothing; the proxy still runs and counts, its cost is measured by
:func:`nwb_cloud.cloud.calibrate.measure_overhead`. Faults (:mod:`nwb_cloud.cloud.faults`) are injected here.

One thread per client connection (blocking sockets, ``recv``/``sendall`` outside the GIL): against an
asyncio relay on this 2-core machine it had the lower small-request latency and the higher throughput, and
the sequential logic (read request, relay it, wait, relay response) reads as it happens. In the reader's
own process those threads compete with the reader for the GIL: benchmarks run the proxy in a process of
its own (:class:`~nwb_cloud.cloud.proxy_process.ProxyProcess`, same API).

One thing is rewritten: ``rclone serve s3`` answers a ranged GET with ``200 OK`` plus a ``Content-Range``
where S3 answers ``206 Partial Content``; readers that insist on 206 (object_store/obstore) refuse the
former, so the proxy puts S3's status line on such responses (13 bytes more per response, as on S3).

Signatures: SigV4 signs the ``Host`` header, which the proxy passes through unchanged. Readers therefore
sign for the proxy: point a :class:`Store` at it with ``store.via(proxy.url)``; presigned URLs from that
store (``store.via(proxy.url).http_url(key)``) verify at rclone through the proxy. A URL presigned for the
upstream host cannot be redirected through the proxy.
"""

from __future__ import annotations

import contextlib
import random
import select
import socket
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from nwb_cloud.cloud.faults import RESET, SLOWDOWN, STALL, TRUNCATE, Faults, slowdown_response
from nwb_cloud.cloud.http_framing import Closed, Reader, Request, Response, body_pieces
from nwb_cloud.cloud.profiles import Profile
from nwb_cloud.cloud.store import StoreError
from nwb_cloud.cloud.traffic import Traffic

UNSHAPED_PIECE = 256 * 1024  # bytes relayed per recv/send when no cap applies
CATCH_UP_S = 0.050  # a paced transfer late by up to this much (a thread woken late) catches up
MIN_SLEEP_S = 1e-4  # shorter waits are skipped (and made up on the next piece)
RTO_MIN_S = 0.2  # Linux's least retransmission timeout beyond the round trip (TCP_RTO_MIN)
PIECE_S = 0.005  # at a capped rate, relay about this much time's worth of bytes per send (fewer wakeups)
UPSTREAM_CONNECT_TIMEOUT_S = 5
EXPECT_CONTINUE_WAIT_S = 1.0  # as long as clients wait for '100 Continue' before sending the body anyway
JOIN_TIMEOUT_S = 5


class ProxyError(StoreError):
    """The shaping proxy cannot start, or its upstream cannot be used."""


class _Stopped(Exception):
    """The proxy is shutting down: abandon the connection."""


# -- rate limiting --------------------------------------------------------------------------------------
class Pacer:
    """Paces bytes at ``rate`` bytes/s: says how long to wait before handing ``n`` more bytes to the socket.

    Each piece is released when a link of that rate would have finished carrying it (so a small response
    is never sent faster than the rate allows), on a schedule kept across pieces: a thread that wakes up
    late catches up on the next pieces, unless the link sat idle for more than ``catch_up_s`` (then the
    schedule restarts from now: idle time is not banked as credit). Reservations are committed at once,
    so connections that share one pacer take turns.
    """

    def __init__(self, rate: float, catch_up_s: float = CATCH_UP_S):
        if rate <= 0:
            raise ProxyError(f"bandwidth must be positive, got {rate!r} bytes/s")
        self.rate = float(rate)
        self.catch_up_s = catch_up_s
        self._end = float("-inf")  # when the link finishes the bytes reserved so far
        self._lock = threading.Lock()

    def restart(self) -> None:
        """Forget the schedule: the next bytes start a new transfer (a new response on this connection)."""
        with self._lock:
            self._end = float("-inf")

    def reserve(self, n: int) -> float:
        with self._lock:
            now = time.monotonic()
            start = self._end if now - self._end < self.catch_up_s else now
            self._end = start + n / self.rate
            return self._end - now


class SlowStart:
    """TCP slow start on one connection: ``window`` bytes in the first round trip, twice as many in each next.

    Rounds are counted from the connection's first byte; a round only starts when there is something to
    send. A connection that sent nothing for longer than a retransmission timeout (its round trip plus
    Linux's 200 ms minimum) starts again from the initial window: RFC 5681's restart window, which Linux
    applies by default (``tcp_slow_start_after_idle=1``). So a window grown by earlier bytes helps a read
    that follows them closely, not one that comes after a pause. Growth stops once the window carries the
    connection's bandwidth cap for a round trip (beyond that the cap binds).
    """

    def __init__(self, window: int, rtt_s: float, rate: float | None, restart_after_s: float | None = None):
        self.initial = self.window = float(window)
        self.rtt_s = rtt_s
        self.restart_after_s = rtt_s + RTO_MIN_S if restart_after_s is None else restart_after_s
        self.full = rate * rtt_s if rate else float("inf")  # the window at which the cap takes over
        self._round_start = float("-inf")
        self._in_round = 0.0
        self._last_sent = float("-inf")

    def release_time(self, n: int) -> float:
        """The earliest time the last of the next ``n`` bytes may leave."""
        now = time.monotonic()
        if now - self._last_sent > self.restart_after_s:  # idle past a timeout: the window starts over
            self.window = min(self.window, self.initial)
            self._round_start, self._in_round = float("-inf"), 0.0
        self._last_sent = max(now, self._release(now, n))
        return self._last_sent

    def _release(self, now: float, n: int) -> float:
        if now >= self._round_start + self.rtt_s:  # the last round is over: a new one starts now
            if self._in_round >= self.window:  # the window grows only when it was filled (RFC 7661)
                self._grow()
            self._round_start, self._in_round = now, 0.0
        remaining = float(n)
        while remaining > 0:
            if self.window >= self.full:
                return now  # the bandwidth cap, not the window, limits from here on
            room = self.window - self._in_round
            if room <= 0:
                self._grow()
                self._round_start += self.rtt_s
                self._in_round = 0.0
                continue
            taken = min(room, remaining)
            self._in_round += taken
            remaining -= taken
        return self._round_start

    def _grow(self) -> None:
        self.window = min(2 * self.window, self.full)


@dataclass
class _Direction:
    """One direction of one connection: where bytes go, which caps apply, and how they are counted."""

    connection: Pacer | None  # this connection's cap
    total: Pacer | None  # the cap shared by every connection
    piece: int  # bytes relayed per send
    slow_start: SlowStart | None = None

    @property
    def pacers(self) -> tuple[Pacer, ...]:
        return tuple(p for p in (self.connection, self.total) if p is not None)

    def new_message(self) -> None:
        """A new request or response: its first bytes wait for the link, they are not owed to earlier ones."""
        if self.connection is not None:
            self.connection.restart()


# -- the proxy ------------------------------------------------------------------------------------------
class ShapingProxy:
    """A running proxy in front of ``upstream_url`` that applies ``profile`` (and ``faults``); a context manager.

    >>> with ShapingProxy(endpoint.url, PROFILES["in-region"]) as proxy:
    ...     store = endpoint.store().via(proxy.url)
    ...     with proxy.traffic.measure() as cost:
    ...         store.client().get_object(Bucket=store.bucket, Key="x")["Body"].read()
    """

    def __init__(
        self,
        upstream_url: str,
        profile: Profile,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ProxyError(f"the shaping proxy relays plain http:// endpoints, not {upstream_url!r}")
        self.upstream_url = upstream_url
        self.upstream = (parts.hostname, parts.port or 80)
        self.profile = profile
        self.faults = faults or Faults()
        self.traffic = Traffic()
        self.host = host
        self.port = port
        self._stopping = threading.Event()
        self._listener: socket.socket | None = None
        self._threads: set[threading.Thread] = set()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._injector = self.faults.injector()
        self._jitter = random.Random(self.faults.seed)
        self._down_total = Pacer(profile.total_bandwidth) if profile.total_bandwidth else None
        self._up_total = Pacer(profile.total_bandwidth) if profile.total_bandwidth else None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> ShapingProxy:
        if self._listener is not None:
            return self
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as error:
            listener.close()
            raise ProxyError(f"shaping proxy cannot listen on {self.host}:{self.port}: {error}") from None
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stopping.clear()
        self._spawn(self._accept_loop, name=f"proxy-accept-{self.port}")
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        self._stopping.set()
        _shutdown(listener)
        listener.close()
        with self._lock:
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            _shutdown(sock)
        for thread in threads:
            thread.join(JOIN_TIMEOUT_S)

    def __enter__(self) -> ShapingProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _spawn(self, target, *args, name: str) -> None:
        thread = threading.Thread(target=self._run_tracked, args=(target, *args), name=name, daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _run_tracked(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())

    def _accept_loop(self) -> None:
        listener = self._listener
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self._spawn(self._serve, client, name=f"proxy-conn-{self.port}")

    # -- timing --------------------------------------------------------------------------------------
    def _sleep_until(self, deadline: float) -> None:
        delay = deadline - time.monotonic()
        if delay > 0 and self._stopping.wait(delay):
            raise _Stopped

    def _request_latency(self) -> float:
        p = self.profile
        with self._lock:
            jitter = self._jitter.uniform(0, p.jitter_s) if p.jitter_s else 0.0
        return p.rtt_s + p.first_byte_s + jitter

    def _direction(self, total: Pacer | None) -> _Direction:
        profile = self.profile
        rate = profile.connection_bandwidth
        direction = _Direction(Pacer(rate) if rate else None, total, UNSHAPED_PIECE)
        if profile.initial_window_bytes and profile.rtt_s > 0:
            direction.slow_start = SlowStart(profile.initial_window_bytes, profile.rtt_s, rate)
        if direction.pacers:
            slowest = min(p.rate for p in direction.pacers)
            direction.piece = int(min(UNSHAPED_PIECE, max(16384, slowest * PIECE_S)))
        return direction

    # -- one client connection -----------------------------------------------------------------------
    def _serve(self, client: socket.socket) -> None:
        accepted = time.monotonic()
        self.traffic.connection_opened()
        self._track(client)
        connection = _Connection(self, client)
        try:
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                connection.connect_upstream()
            except OSError as error:
                self._send_bad_gateway(client, error)
                return
            self._sleep_until(accepted + self.profile.connect_rtts * self.profile.rtt_s)
            while not self._stopping.is_set() and connection.exchange():
                pass
        except (OSError, Closed, _Stopped):
            pass
        finally:
            connection.close()
            self.traffic.connection_closed()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _untrack_and_close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        _close(sock)

    def _send_bad_gateway(self, client: socket.socket, error: OSError) -> None:
        body = f"shaping proxy cannot reach {self.upstream_url}: {error}\n".encode()
        head = f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        client.sendall(head + body)
        self.traffic.response(502)
        self.traffic.received(len(head), body=False)
        self.traffic.received(len(body), body=True)


class _Connection:
    """One client connection and its upstream connection: request/response exchanges, in order."""

    def __init__(self, proxy: ShapingProxy, client: socket.socket):
        self.proxy = proxy
        self.traffic = proxy.traffic
        self.client_sock, self.client = client, Reader(client)
        self.upstream_sock: socket.socket | None = None
        self.upstream: Reader | None = None
        self.down = proxy._direction(proxy._down_total)
        self.up = proxy._direction(proxy._up_total)

    def connect_upstream(self) -> None:
        """(Re)open the connection to the store: loopback, so it costs no simulated round trips."""
        if self.upstream_sock is not None:
            self.proxy._untrack_and_close(self.upstream_sock)
            self.upstream_sock = None
        sock = socket.create_connection(self.proxy.upstream, timeout=UPSTREAM_CONNECT_TIMEOUT_S)
        sock.settimeout(None)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.proxy._track(sock)
        self.upstream_sock, self.upstream = sock, Reader(sock)

    def upstream_closed(self) -> bool:
        """Whether the store closed our idle connection (servers may, between requests)."""
        if self.upstream.buffer:
            return False
        readable, _, _ = select.select([self.upstream_sock], [], [], 0)
        if not readable:
            return False
        try:
            return self.upstream_sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def upstream_answers_within(self, seconds: float) -> bool:
        """Whether the store sends something within ``seconds`` (a server that ignores 'Expect' never does)."""
        if self.upstream.buffer:
            return True
        readable, _, _ = select.select([self.upstream_sock], [], [], seconds)
        return bool(readable)

    def close(self) -> None:
        for sock in (self.client_sock, self.upstream_sock):
            if sock is not None:
                self.proxy._untrack_and_close(sock)

    # -- sending with shaping and counting ----------------------------------------------------------
    def _pace(self, direction: _Direction, n: int) -> None:
        if direction.slow_start is not None:
            self.proxy._sleep_until(direction.slow_start.release_time(n))
        for pacer in direction.pacers:
            wait = pacer.reserve(n)
            if wait > MIN_SLEEP_S and self.proxy._stopping.wait(wait):
                raise _Stopped

    def to_client(self, data: bytes, body: bool) -> None:
        self._pace(self.down, len(data))
        # Counted before sending: a client that has its bytes must find them counted when it checks.
        self.traffic.received(len(data), body=body)
        try:
            self.client_sock.sendall(data)
        except OSError:
            self.traffic.received(-len(data), body=body)
            raise

    def to_upstream(self, data: bytes) -> None:
        self._pace(self.up, len(data))
        self.upstream_sock.sendall(data)
        self.traffic.sent(len(data))

    # -- one exchange ------------------------------------------------------------------------------
    def exchange(self) -> bool:
        """Relay one request and its response; False when the connection is to be closed."""
        raw = self.client.read_head()
        if raw is None:
            return False
        request = Request.parse(raw)
        self.traffic.request(request.method)
        fault = self.proxy._injector.choose(request.method, request.target, request.get("range"))
        if fault == SLOWDOWN:
            return self._slow_down(request)

        if self.upstream_closed():
            self.connect_upstream()  # the client's connection stays open: its reuse costs nothing extra
        self.up.new_message()
        self.to_upstream(request.raw)
        response = None
        if request.expects_continue and self.upstream_answers_within(EXPECT_CONTINUE_WAIT_S):
            response = self._read_response(awaiting_continue=True)
            if response.status == 100:
                self.proxy._sleep_until(time.monotonic() + self.proxy.profile.rtt_s)
                self.to_client(response.raw, body=False)
                response = None
            else:
                # The store answered before the body: whether the client still sends it is unknown, so the
                # connection cannot carry another request.
                self._respond(request, response, time.monotonic(), fault)
                return False
        for data in body_pieces(self.client, request.body_framing(), self.up.piece):
            self.to_upstream(data)
        request_done = time.monotonic()
        response = self._read_response()
        return self._respond(request, response, request_done, fault)

    def _read_response(self, awaiting_continue: bool = False) -> Response:
        while True:
            raw = self.upstream.read_head()
            if raw is None:
                raise Closed("upstream closed the connection before answering")
            response = Response.parse(raw)
            if response.status == 100 and awaiting_continue:
                return response
            if 100 <= response.status < 200 and response.status != 101:
                self.to_client(response.raw, body=False)  # other interim responses pass straight through
                continue
            return response

    def _respond(self, request: Request, response: Response, request_done: float, fault: str | None) -> bool:
        proxy = self.proxy
        if response.status == 200 and request.get("range") and response.get("content-range"):
            response = response.with_status(206, "Partial Content")  # as S3 answers; see the module docstring
        proxy._sleep_until(request_done + proxy._request_latency())
        framing = response.framing_after(request)
        self.traffic.response(response.status)
        self.down.new_message()
        self.to_client(response.raw, body=False)
        cut = None
        if fault in (RESET, TRUNCATE, STALL):
            kind, length = framing
            if kind == "length" and length == 0:
                fault = None  # nothing to cut: a body-less response cannot carry a body fault
            else:
                cut = length // 2 if kind == "length" else self.down.piece // 2
        sent = 0
        for data in body_pieces(self.upstream, framing, self.down.piece):
            if cut is not None and sent + len(data) >= cut:
                self.to_client(data[: cut - sent], body=True)
                self.traffic.fault(fault)
                if fault == STALL:
                    proxy._sleep_until(time.monotonic() + proxy.faults.stall_s)
                    self.to_client(data[cut - sent :], body=True)
                    sent += len(data)
                    cut = None
                    continue
                if fault == RESET:
                    _reset(self.client_sock)
                return False  # RESET or TRUNCATE: the connection ends here
            self.to_client(data, body=True)
            sent += len(data)
        return framing[0] != "eof" and request.keep_alive and response.keep_alive and response.status != 101

    def _slow_down(self, request: Request) -> bool:
        """Answer 503 SlowDown without asking the store, as S3 does when a prefix is over its request rate."""
        if not request.expects_continue:
            for data in body_pieces(self.client, request.body_framing(), self.up.piece):
                self.traffic.sent(len(data))  # read and dropped: the store never sees a throttled request
        self.proxy._sleep_until(time.monotonic() + self.proxy._request_latency())
        head, body = slowdown_response(request.target.split("?", 1)[0], uuid.uuid4().hex[:16].upper())
        self.traffic.fault(SLOWDOWN)
        self.traffic.response(503)
        self.down.new_message()
        self.to_client(head, body=False)
        if request.method != "HEAD":
            self.to_client(body, body=True)
        return request.keep_alive and not request.expects_continue


def _shutdown(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST instead of a FIN: what a client sees as 'connection reset by peer'."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    _close(sock)
