"""The shaping proxy: latency and bandwidth actually applied, traffic counted exactly, faults as configured.

Upstream is the real embedded endpoint (rclone serve s3). Timing bands are generous (this machine is
shared) but each one fails if the shaping were missing or doubled.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import botocore
import numpy as np
import pytest
import requests

from nwb_cloud.cloud.faults import FaultConfigError, Faults
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.cloud.proxy import Pacer, ProxyError, ShapingProxy, SlowStart
from nwb_cloud.cloud.proxy_process import ProxyProcess

MB = 10**6
SMALL = bytes(range(256)) * 4  # 1 KiB
BIG = np.random.default_rng(3).integers(0, 256, 20 * MB, dtype=np.uint8).tobytes()
MEDIUM = BIG[: 5 * MB]
NO_RETRY = {"total_max_attempts": 1, "mode": "standard"}


def profile(**values) -> Profile:
    base = dict(name="test", description="test profile", rtt_s=0.0, connect_rtts=0, first_byte_s=0.0)
    base.update(connection_bandwidth=None, total_bandwidth=None)
    return Profile(**{**base, **values})


@pytest.fixture(scope="module")
def bucket(endpoint):
    store = endpoint.create_bucket("proxy-tests")
    client = store.client()
    for key, body in (("small", SMALL), ("big", BIG), ("medium", MEDIUM)):
        client.put_object(Bucket=store.bucket, Key=key, Body=body)
    return store


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def get_object(client, store, key: str) -> bytes:
    return client.get_object(Bucket=store.bucket, Key=key)["Body"].read()


def get(store, key: str, **config) -> bytes:
    return store.client(**config).get_object(Bucket=store.bucket, Key=key)["Body"].read()


# -- latency -------------------------------------------------------------------------------------------
def test_request_latency_and_connect_cost_added_once_per_connection(endpoint, bucket):
    shaped = profile(rtt_s=0.05, connect_rtts=2, first_byte_s=0.02)
    request_s, connect_s = 0.05 + 0.02, 2 * 0.05
    with ShapingProxy(endpoint.url, shaped) as proxy:
        client = bucket.via(proxy.url).client()
        client.head_bucket(Bucket=bucket.bucket)  # build the client's endpoint state outside the timing
        proxy.traffic.mark()
        with proxy.traffic.measure() as cost:
            # head_bucket opened the connection: these reuse it and pay the request latency only
            body, warm = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read())
        assert body == SMALL
        assert request_s <= warm < request_s + 0.06
        assert cost.connections == 0 and cost.requests == {"GET": 1}

        fresh_client = bucket.via(proxy.url).client()
        body, cold = timed(lambda: fresh_client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read())
        assert body == SMALL
        assert connect_s + request_s <= cold < connect_s + request_s + 0.08
        assert proxy.traffic.snapshot().connections == 2


def test_loopback_profile_adds_no_latency(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        client = bucket.via(proxy.url).client()
        client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read()
        times = []
        for _ in range(5):
            body, seconds = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read())
            assert body == SMALL
            times.append(seconds)
        assert min(times) < 0.02  # in-region's first byte alone would be 20 ms


# -- bandwidth -----------------------------------------------------------------------------------------
def test_connection_bandwidth_cap(endpoint, bucket):
    rate = 20 * MB
    with ShapingProxy(endpoint.url, profile(connection_bandwidth=rate)) as proxy:
        client = bucket.via(proxy.url).client()  # building a client costs a few 100 ms of CPU: not timed
        body, seconds = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="big")["Body"].read())
    assert body == BIG
    assert 0.9 <= seconds / (len(BIG) / rate) <= 1.4


def test_parallel_connections_each_get_the_cap(endpoint, bucket):
    """Four connections at 20 MB/s each move 4 x 5 MB in about the time of one: parallelism is visible."""
    rate, n = 20 * MB, 4
    with ShapingProxy(endpoint.url, profile(connection_bandwidth=rate)) as proxy:
        via = bucket.via(proxy.url)
        clients = [via.client() for _ in range(n)]
        with ThreadPoolExecutor(n) as pool:
            bodies, seconds = timed(
                lambda: list(pool.map(lambda c: c.get_object(Bucket=via.bucket, Key="medium")["Body"].read(), clients))
            )
    assert all(b == MEDIUM for b in bodies)
    one = len(MEDIUM) / rate
    assert 0.9 * one <= seconds <= 2.0 * one  # serialised would be 4x


def test_total_bandwidth_shared_by_connections(endpoint, bucket):
    per_connection, total, n = 20 * MB, 10 * MB, 2
    with ShapingProxy(endpoint.url, profile(connection_bandwidth=per_connection, total_bandwidth=total)) as proxy:
        via = bucket.via(proxy.url)
        clients = [via.client() for _ in range(n)]
        with ThreadPoolExecutor(n) as pool:
            bodies, seconds = timed(
                lambda: list(pool.map(lambda c: c.get_object(Bucket=via.bucket, Key="medium")["Body"].read(), clients))
            )
    assert all(b == MEDIUM for b in bodies)
    assert 0.9 <= seconds / (n * len(MEDIUM) / total) <= 1.6  # per-connection caps alone: 0.5


def test_pacer_releases_bytes_at_its_rate_without_banking_idle_time():
    pacer = Pacer(1 * MB)
    assert pacer.reserve(10_000) == pytest.approx(0.01, abs=0.002)  # even the first bytes wait for the link
    time.sleep(0.2)  # idle: no credit accumulates
    assert pacer.reserve(10_000) == pytest.approx(0.01, abs=0.002)
    assert pacer.reserve(10_000) == pytest.approx(0.02, abs=0.002)  # queued behind the previous reservation


def test_slow_start_doubles_the_window_every_round_trip():
    slow = SlowStart(10_000, rtt_s=0.1, rate=None)
    start = time.monotonic()
    rounds = [round((slow.release_time(n) - start) / 0.1) for n in (10_000, 10_000, 10_000, 25_000, 60_000)]
    assert rounds == [0, 1, 1, 2, 3]  # windows of 10k, 20k, 40k, 80k bytes in rounds 0-3
    capped = SlowStart(10_000, rtt_s=0.1, rate=100_000)  # the cap binds at 10 kB per round trip already
    assert capped.release_time(1_000_000) <= time.monotonic()


def test_slow_start_begins_again_after_an_idle_timeout():
    slow = SlowStart(10_000, rtt_s=0.01, rate=None, restart_after_s=0.1)
    start = time.monotonic()
    assert slow.release_time(150_000) - start == pytest.approx(0.03, abs=0.005)  # 10+20+40+80 kB: rounds 0-3
    time.sleep(0.05)  # a short pause keeps the grown window (160 kB) ...
    resumed = time.monotonic()
    assert slow.release_time(150_000) - resumed < 0.005
    time.sleep(0.15)  # ... a pause past the timeout does not
    idle = time.monotonic()
    assert slow.release_time(150_000) - idle == pytest.approx(0.03, abs=0.005)
    assert SlowStart(14_600, rtt_s=0.065, rate=None).restart_after_s == pytest.approx(0.265)


def test_slow_start_makes_a_new_connection_slower_than_a_warm_one(endpoint, bucket):
    rtt = 0.05
    with ShapingProxy(endpoint.url, profile(rtt_s=rtt, initial_window_bytes=14_600)) as proxy:
        client = bucket.via(proxy.url).client()
        client.head_bucket(Bucket=bucket.bucket)  # opens the connection: a tiny response, one round
        cold = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="big", Range="bytes=0-999999")["Body"].read())
        warm = [timed(lambda: get_object(client, bucket, "small"))[1] for _ in range(2)]
        again = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="big", Range="bytes=0-999999")["Body"].read())
    assert cold[0] == again[0] == BIG[:1_000_000]
    # 1 MB from a 14.6 kB window: 7 rounds, the last byte 6 round trips after the first, plus the request's
    assert rtt + 6 * rtt <= cold[1] < rtt + 6 * rtt + 0.1
    assert again[1] < rtt + 2 * rtt + 0.05  # the window has grown: at most one extra round trip
    assert all(rtt <= t < rtt + 0.04 for t in warm)


def test_bad_bandwidth_and_upstream_are_refused():
    with pytest.raises(ProxyError, match="bandwidth must be positive"):
        Pacer(0)
    with pytest.raises(ProxyError, match="plain http"):
        ShapingProxy("https://s3.amazonaws.com", PROFILES["in-region"])


# -- accounting ----------------------------------------------------------------------------------------
def read_http_response(sock: socket.socket) -> bytes:
    """One whole response (Content-Length framed) from a raw socket, every byte as received.

    Interim '100 Continue' heads before it are part of what is returned.
    """
    data = b""
    while b"\r\n\r\n" not in data.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n"):
        data += sock.recv(65536)
    interim = b"HTTP/1.1 100 Continue\r\n\r\n" if data.startswith(b"HTTP/1.1 100 Continue\r\n\r\n") else b""
    head, _, _ = data.removeprefix(interim).partition(b"\r\n\r\n")
    head = interim + head
    length = next(
        int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
    )
    while len(data) < len(head) + 4 + length:
        data += sock.recv(65536)
    return data


def test_bytes_and_requests_counted_exactly_on_a_raw_transfer(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        url = urlsplit(bucket.via(proxy.url).http_url("medium"))
        request = (
            f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nRange: bytes=100-1099\r\n\r\n"
        ).encode()
        with proxy.traffic.measure() as cost, socket.create_connection((proxy.host, proxy.port)) as sock:
            received = b""
            for _ in range(2):  # two requests on one keep-alive connection
                sock.sendall(request)
                response = read_http_response(sock)
                # rclone answers a range with 200 and a Content-Range; the proxy makes it S3's 206
                assert response.startswith(b"HTTP/1.1 206 Partial Content\r\n")
                assert response.endswith(MEDIUM[100:1100]) and b"bytes 100-1099/" in response
                received += response
    assert cost.requests == {"GET": 2} and cost.responses == {206: 2}
    assert cost.bytes_sent == 2 * len(request)
    assert cost.bytes_received == len(received)
    assert cost.body_bytes_received == 2 * 1000
    assert cost.connections == 1 and cost.peak_connections == 1


def test_boto3_get_counted_as_body_plus_response_head(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["in-region"]) as proxy:
        client = bucket.via(proxy.url).client()
        with proxy.traffic.measure() as cost:
            response = client.get_object(Bucket=bucket.bucket, Key="medium")
            body = response["Body"].read()
    assert body == MEDIUM
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    head = len("HTTP/1.1 200 OK\r\n") + sum(len(k) + len(": ") + len(v) + 2 for k, v in headers.items()) + 2
    assert cost.requests == {"GET": 1}
    assert cost.body_bytes_received == len(MEDIUM)
    assert cost.bytes_received == len(MEDIUM) + head
    assert cost.to_dict()["requests"] == 1


def test_peak_concurrency_of_parallel_gets(endpoint, bucket):
    n = 5
    with ShapingProxy(endpoint.url, profile(first_byte_s=0.3)) as proxy:
        via = bucket.via(proxy.url)
        clients = [via.client() for _ in range(n)]
        with proxy.traffic.measure() as cost, ThreadPoolExecutor(n) as pool:
            bodies = list(pool.map(lambda c: c.get_object(Bucket=via.bucket, Key="small")["Body"].read(), clients))
        assert all(b == SMALL for b in bodies)
        with proxy.traffic.measure() as later:  # one client alone: the peak restarts
            clients[0].get_object(Bucket=via.bucket, Key="small")["Body"].read()
    assert cost.peak_connections == n and cost.connections == n and cost.requests == {"GET": n}
    assert later.peak_connections == n and later.connections == 0  # the n pooled connections stay open
    assert later.requests == {"GET": 1}


def test_put_through_proxy_with_expect_continue(endpoint, bucket):
    """botocore sends 'Expect: 100-continue' on PUT: the proxy must relay the interim response, not stall it."""
    payload = MEDIUM[: 3 * MB]
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        client = bucket.via(proxy.url).client()
        with proxy.traffic.measure() as cost:
            _, seconds = timed(lambda: client.put_object(Bucket=bucket.bucket, Key="put", Body=payload))
        assert get(bucket.via(proxy.url), "put") == payload
    assert seconds < 0.9  # botocore waits 1 s for a 100 Continue that never comes
    assert cost.requests == {"PUT": 1} and cost.responses == {200: 1}
    assert len(payload) < cost.bytes_sent < len(payload) + 4096


def test_ranged_get_answered_with_206_as_s3_does(endpoint, bucket):
    """obstore (object_store) refuses a ranged GET answered with 200: through the proxy it reads exactly."""
    import obstore
    from obstore.store import S3Store

    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        via = bucket.via(proxy.url)
        direct = bucket.client().get_object(Bucket=bucket.bucket, Key="medium", Range="bytes=10-19")
        proxied = via.client().get_object(Bucket=bucket.bucket, Key="medium", Range="bytes=10-19")
        assert direct["ResponseMetadata"]["HTTPStatusCode"] == 200  # rclone's answer
        assert proxied["ResponseMetadata"]["HTTPStatusCode"] == 206
        assert proxied["Body"].read() == direct["Body"].read() == MEDIUM[10:20]
        store = S3Store(
            via.bucket,
            endpoint=via.endpoint_url,
            region=via.region,
            access_key_id=via.access_key,
            secret_access_key=via.secret_key,
            client_options={"allow_http": True},
        )
        assert bytes(obstore.get_range(store, "medium", start=1000, end=3000)) == MEDIUM[1000:3000]
        whole = via.client().get_object(Bucket=bucket.bucket, Key="small")  # no Range: 200 stays 200
        assert whole["ResponseMetadata"]["HTTPStatusCode"] == 200 and whole["Body"].read() == SMALL


def test_presigned_url_signed_for_the_proxy_verifies_upstream(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["lab"]) as proxy:
        through_proxy = requests.get(bucket.via(proxy.url).http_url("small"), timeout=10)
        assert through_proxy.status_code == 200 and through_proxy.content == SMALL
        # A URL signed for the endpoint's own host does not verify when redirected: SigV4 signs Host.
        redirected = bucket.http_url("small").replace(endpoint.url, proxy.url)
        assert requests.get(redirected, timeout=10).status_code == 403


def test_proxy_stops_with_connections_open(endpoint, bucket):
    proxy = ShapingProxy(endpoint.url, PROFILES["lab"]).start()
    client = bucket.via(proxy.url).client()
    assert client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read() == SMALL
    threads_before = threading.active_count()
    _, seconds = timed(proxy.stop)
    assert seconds < 2 and proxy.traffic.open_connections == 0
    assert threading.active_count() < threads_before
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        bucket.via(proxy.url).client(retries=NO_RETRY).get_object(Bucket=bucket.bucket, Key="small")


# -- faults --------------------------------------------------------------------------------------------
def test_slowdown_is_an_s3_error_that_boto3_retries(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["loopback"], Faults(schedule={1: "slowdown"})) as proxy:
        with pytest.raises(botocore.exceptions.ClientError) as error:
            get(bucket.via(proxy.url), "small", retries=NO_RETRY)
        assert error.value.response["Error"]["Code"] == "SlowDown"
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    with ShapingProxy(endpoint.url, PROFILES["loopback"], Faults(schedule={1: "slowdown"})) as proxy:
        assert get(bucket.via(proxy.url), "small") == SMALL
        counted = proxy.traffic.snapshot()
    assert counted.faults == {"slowdown": 1} and counted.responses == {503: 1, 200: 1}
    assert counted.requests == {"GET": 2}


def test_schedule_names_the_nth_eligible_request(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["loopback"], Faults(schedule={3: "slowdown"})) as proxy:
        url = bucket.via(proxy.url).http_url("small")
        session = requests.Session()
        session.head(url)  # not eligible: only GETs by default
        statuses = [session.get(url).status_code for _ in range(4)]
    assert statuses == [200, 200, 503, 200]


@pytest.mark.parametrize("kind, cause", [("reset", ConnectionResetError), ("truncate", None)])
def test_body_faults_cut_the_response_in_the_middle(endpoint, bucket, kind, cause):
    half = len(MEDIUM) // 2
    with ShapingProxy(endpoint.url, PROFILES["loopback"], Faults(schedule={1: kind, 2: kind})) as proxy:
        with pytest.raises(requests.exceptions.ChunkedEncodingError) as error:
            requests.get(bucket.via(proxy.url).http_url("medium"), timeout=10).content  # noqa: B018
        if cause:
            assert isinstance(error.value.args[0].args[1], cause)
        else:
            assert f"IncompleteRead({half} bytes read, {len(MEDIUM) - half} more expected)" in str(error.value)
        with pytest.raises(botocore.exceptions.ResponseStreamingError):
            get(bucket.via(proxy.url), "medium", retries=NO_RETRY)
        counted = proxy.traffic.snapshot()
    assert counted.faults == {kind: 2} and counted.requests == {"GET": 2}
    assert counted.body_bytes_received == 2 * half


def test_stall_delays_the_body_then_completes(endpoint, bucket):
    faults = Faults(schedule={1: "stall", 2: "stall"}, stall_s=0.6)
    with ShapingProxy(endpoint.url, PROFILES["loopback"], faults) as proxy:
        url = bucket.via(proxy.url).http_url("medium")
        with pytest.raises(requests.exceptions.ConnectionError, match="timed out"):
            requests.get(url, timeout=(2, 0.2)).content  # noqa: B018
        body, seconds = timed(lambda: requests.get(url, timeout=(2, 5)).content)
    assert body == MEDIUM and 0.6 <= seconds < 1.5
    assert proxy.traffic.snapshot().faults == {"stall": 2}


def test_ranged_only_faults_spare_requests_without_a_range(endpoint, bucket):
    with ShapingProxy(endpoint.url, PROFILES["loopback"], Faults(schedule={1: "slowdown"}, ranged_only=True)) as proxy:
        url = bucket.via(proxy.url).http_url("small")
        session = requests.Session()
        whole = session.get(url)
        ranged = [session.get(url, headers={"Range": "bytes=0-9"}).status_code for _ in range(2)]
    assert whole.status_code == 200 and whole.content == SMALL
    assert ranged == [503, 206]


def test_random_faults_hit_exactly_the_requests_the_seed_chooses(endpoint, bucket):
    faults = Faults(slowdown_503=0.3, seed=7)
    ranges = [f"bytes={i * 10}-{i * 10 + 9}" for i in range(30)]
    with ShapingProxy(endpoint.url, PROFILES["loopback"], faults) as proxy:
        url = bucket.via(proxy.url).http_url("small")
        path = urlsplit(url).path
        session = requests.Session()
        statuses = [session.get(url, headers={"Range": r}).status_code for r in ranges]
        again = [session.get(url, headers={"Range": r}).status_code for r in ranges]  # second sight: new draws
    expected = [503 if faults.draw("GET", path, r, 1) == "slowdown" else 206 for r in ranges]
    assert statuses == expected and 3 <= expected.count(503) <= 18
    assert again == [503 if faults.draw("GET", path, r, 2) == "slowdown" else 206 for r in ranges]
    assert again != statuses


def test_fault_draws_are_deterministic_and_follow_the_probabilities():
    faults = Faults(slowdown_503=0.1, reset_mid_body=0.2, truncate_body=0.05, stall_probability=0.15, seed=1)
    draws = [faults.draw("GET", "/b/k", f"bytes={i}-{i}", 1) for i in range(4000)]
    assert draws == [faults.draw("GET", "/b/k", f"bytes={i}-{i}", 1) for i in range(4000)]
    assert draws != [Faults(slowdown_503=0.1, seed=2).draw("GET", "/b/k", f"bytes={i}-{i}", 1) for i in range(4000)]
    for kind, p in (("slowdown", 0.1), ("reset", 0.2), ("truncate", 0.05), ("stall", 0.15), (None, 0.5)):
        assert abs(draws.count(kind) / len(draws) - p) < 0.03


@pytest.mark.parametrize(
    "config, message",
    [
        (dict(slowdown_503=0.7, reset_mid_body=0.5), "add up to more than 1"),
        (dict(truncate_body=-0.1), "within \\[0, 1\\]"),
        (dict(schedule={1: "explode"}), "unknown fault 'explode'"),
        (dict(schedule={0: "reset"}), "count eligible requests from 1"),
        (dict(stall_s=-1), "stall_s must be >= 0"),
    ],
)
def test_bad_fault_configurations_are_refused(config, message):
    with pytest.raises(FaultConfigError, match=message):
        Faults(**config)


def test_unreachable_upstream_answers_502(bucket):
    from nwb_cloud.cloud.endpoint import free_port

    with ShapingProxy(f"http://127.0.0.1:{free_port()}", PROFILES["loopback"]) as proxy:
        response = requests.get(proxy.url + "/any/key", timeout=10)
    assert response.status_code == 502 and "cannot reach" in response.text
    assert proxy.traffic.snapshot().responses == {502: 1}


# -- the proxy in its own process ----------------------------------------------------------------------
def test_proxy_process_shapes_counts_and_injects_like_the_in_process_proxy(endpoint, bucket):
    shaped = profile(rtt_s=0.02, first_byte_s=0.03, connection_bandwidth=50 * MB)
    with ProxyProcess(endpoint.url, shaped, Faults(schedule={2: "slowdown"})) as proxy:
        client = bucket.via(proxy.url).client(retries=NO_RETRY)
        assert client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read() == SMALL
        with pytest.raises(botocore.exceptions.ClientError, match="SlowDown"):
            client.get_object(Bucket=bucket.bucket, Key="small")
        with proxy.traffic.measure() as cost:
            body, seconds = timed(lambda: client.get_object(Bucket=bucket.bucket, Key="medium")["Body"].read())
        assert body == MEDIUM
        assert 0.05 + len(MEDIUM) / (50 * MB) <= seconds < 1.4 * (0.05 + len(MEDIUM) / (50 * MB))
        assert cost.requests == {"GET": 1} and cost.body_bytes_received == len(MEDIUM)
        total = proxy.traffic.snapshot()
        assert total.faults == {"slowdown": 1} and total.responses == {200: 2, 503: 1}
        assert proxy.traffic.open_connections == 1
        child = proxy._process
    assert child.poll() is not None  # stopped with the block
    with pytest.raises(ProxyError, match="not running"):
        proxy.traffic.snapshot()


def test_proxy_process_reports_start_failures(endpoint):
    failure = "failed to start: ProxyError: shaping proxy cannot listen"
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as taken, pytest.raises(ProxyError, match=failure):
        ProxyProcess(endpoint.url, PROFILES["loopback"], port=taken.port).start()
    with pytest.raises(ProxyError, match="plain http"):
        ProxyProcess("ftp://example.org", PROFILES["loopback"])


def test_upstream_closing_an_idle_connection_is_invisible_to_the_client():
    """A store may close a kept-alive connection between requests: the proxy reconnects behind the client."""
    accepted = []
    server = socket.create_server(("127.0.0.1", 0))

    def serve_one_request_per_connection():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            with conn:
                while b"\r\n\r\n" not in conn.recv(65536):
                    pass
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    threading.Thread(target=serve_one_request_per_connection, daemon=True).start()
    with server, ShapingProxy(f"http://127.0.0.1:{server.getsockname()[1]}", PROFILES["loopback"]) as proxy:
        session = requests.Session()
        first = session.get(proxy.url + "/a", timeout=5).text
        time.sleep(0.05)  # the store's close reaches the proxy
        second = session.get(proxy.url + "/b", timeout=5).text
        counted = proxy.traffic.snapshot()
    assert first == second == "ok"
    assert len(accepted) == 2 and counted.connections == 1 and counted.requests == {"GET": 2}


class _FramingServer(http.server.BaseHTTPRequestHandler):
    """An independent HTTP/1.1 server (the standard library's) for the framings rclone does not use."""

    protocol_version = "HTTP/1.1"
    parts = (b"hello ", b"chunked ", b"world")

    def do_GET(self):
        if self.path == "/eof":  # no length: the body ends when the connection does
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"until the end")
            self.close_connection = True
            return
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in self.parts:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")

    def do_POST(self):
        if self.headers["Content-Length"]:
            body = self.rfile.read(int(self.headers["Content-Length"]))
        else:
            body = b""
            while size := int(self.rfile.readline().split(b";")[0], 16):
                body += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b""):
                pass
        reply = hashlib.sha256(body).hexdigest().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args):
        pass


class _IgnoresExpectServer(_FramingServer):
    def handle_expect_100(self):
        return True  # waits for the body without sending '100 Continue', as some servers do


class _LateContinueServer(_FramingServer):
    def handle_expect_100(self):
        time.sleep(1.5)  # '100 Continue' after the proxy stopped waiting and sent the body
        return super().handle_expect_100()


def _serve(handler):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def framing_server():
    server = _serve(_FramingServer)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("handler", [_FramingServer, _IgnoresExpectServer, _LateContinueServer])
def test_expect_continue_with_servers_that_answer_it_or_not(handler):
    server = _serve(handler)
    body = b"x" * 100_000
    try:
        upstream = f"http://127.0.0.1:{server.server_address[1]}"
        with (
            ShapingProxy(upstream, PROFILES["loopback"]) as proxy,
            socket.create_connection((proxy.host, proxy.port)) as sock,
        ):
            sock.sendall(
                b"POST /up HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            sock.settimeout(0.3)  # like a client: wait a little for '100 Continue', then send the body anyway
            try:
                interim = sock.recv(65536)
            except TimeoutError:
                interim = b""
            sock.settimeout(5)
            sock.sendall(body)
            reply = read_http_response(sock)
    finally:
        server.shutdown()
        server.server_close()
    assert interim == (b"HTTP/1.1 100 Continue\r\n\r\n" if handler is _FramingServer else b"")
    if handler is _LateContinueServer:  # the late interim response reaches the client before the final one
        assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n")
    else:
        assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(hashlib.sha256(body).hexdigest().encode())


def test_chunked_bodies_both_ways_on_one_keep_alive_connection(framing_server):
    upload = [np.random.default_rng(i).bytes(70_000) for i in range(5)]
    with ShapingProxy(framing_server, profile(rtt_s=0.01, connection_bandwidth=50 * MB)) as proxy:
        session = requests.Session()
        with proxy.traffic.measure() as cost:
            texts = [session.get(proxy.url + "/chunked", timeout=5).text for _ in range(2)]
            digest = session.post(proxy.url + "/upload", data=iter(upload), timeout=5).text  # chunked request body
    assert texts == ["hello chunked world"] * 2
    assert digest == hashlib.sha256(b"".join(upload)).hexdigest()
    raw_chunked_body = sum(len(b"%x\r\n%s\r\n" % (len(p), p)) for p in _FramingServer.parts) + len(
        b"0\r\nX-Trailer: yes\r\n\r\n"
    )
    assert cost.connections == 1 and cost.requests == {"GET": 2, "POST": 1}
    assert cost.body_bytes_received == 2 * raw_chunked_body + len(digest)  # chunk framing counts as body bytes


def test_body_delimited_by_close(framing_server):
    with ShapingProxy(framing_server, PROFILES["loopback"]) as proxy:
        session = requests.Session()
        assert session.get(proxy.url + "/eof", timeout=5).text == "until the end"
        assert session.get(proxy.url + "/chunked", timeout=5).text == "hello chunked world"
        assert proxy.traffic.snapshot().connections == 2  # the close ended the first connection


def test_jitter_spreads_request_latency_within_its_bound(endpoint, bucket):
    base, jitter = 0.03, 0.04
    with ShapingProxy(endpoint.url, profile(first_byte_s=base, jitter_s=jitter)) as proxy:
        client = bucket.via(proxy.url).client()
        client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read()
        times = [
            timed(lambda: client.get_object(Bucket=bucket.bucket, Key="small")["Body"].read())[1] for _ in range(12)
        ]
    assert min(times) >= base and max(times) < base + jitter + 0.03
    assert max(times) - min(times) > jitter / 4  # uniform draws: 12 of them span more than a quarter of the range
