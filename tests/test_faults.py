"""The reliability probe: each outcome (exact, error, hang, wrong data) produced by a reader known to cause it."""

from __future__ import annotations

import os
import signal
import socket
import time
from urllib.parse import urlsplit

import numpy as np
import pytest
import requests

from nwb_cloud.cloud.faults import Faults
from nwb_cloud.cloud.reliability import CRASH, ERROR, EXACT, HANG, SCENARIOS, WRONG_DATA, describe, equal, probe

DATA = np.random.default_rng(5).integers(0, 256, 2_000_000, dtype=np.uint8).tobytes()
NO_RETRY = {"total_max_attempts": 1, "mode": "standard"}


@pytest.fixture(scope="module")
def bucket(endpoint):
    store = endpoint.create_bucket("fault-tests")
    store.client().put_object(Bucket=store.bucket, Key="data", Body=DATA)
    return store


def boto3_read(store, **config):
    return store.client(**config).get_object(Bucket=store.bucket, Key="data")["Body"].read()


def careless_http_read(store):
    """Ignores the status code, like a reader that trusts whatever body comes back."""
    return requests.get(store.http_url("data"), timeout=10).content


def read_until_close(store):
    """Reads the body until the server closes, ignoring the promised Content-Length (HTTP/1.0 style)."""
    url = urlsplit(store.http_url("data"))
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data.partition(b"\r\n\r\n")[2]


def test_a_retrying_reader_gets_exact_data(endpoint, bucket):
    result = probe(boto3_read, DATA, bucket, endpoint.url, Faults(schedule={1: "slowdown"}))
    assert result.outcome == EXACT and result.tested
    assert result.faults_injected == {"slowdown": 1} and result.requests == 2


def test_a_reader_without_retries_fails_clearly(endpoint, bucket):
    result = probe(lambda s: boto3_read(s, retries=NO_RETRY), DATA, bucket, endpoint.url, Faults(schedule={1: "reset"}))
    assert result.outcome == ERROR and result.faults_injected == {"reset": 1}
    assert result.error.startswith("botocore.exceptions.ResponseStreamingError: ")
    assert "Connection reset by peer" in result.error


def test_a_reader_that_trusts_any_body_returns_wrong_data(endpoint, bucket):
    result = probe(careless_http_read, DATA, bucket, endpoint.url, Faults(schedule={1: "slowdown"}))
    assert result.outcome == WRONG_DATA and result.error is None


def test_a_reader_that_ignores_content_length_returns_a_truncated_body(endpoint, bucket):
    result = probe(read_until_close, DATA, bucket, endpoint.url, Faults(schedule={1: "truncate"}))
    assert result.outcome == WRONG_DATA and result.faults_injected == {"truncate": 1}
    # the same reader without the fault is exact: the probe blames the fault, not the reader's parsing
    assert probe(read_until_close, DATA, bucket, endpoint.url, Faults()).outcome == EXACT


def test_a_reader_without_a_read_timeout_hangs_on_a_stall(endpoint, bucket):
    def no_timeout(store):
        return requests.get(store.http_url("data")).content

    stall = Faults(schedule={1: "stall"}, stall_s=600)
    result = probe(no_timeout, DATA, bucket, endpoint.url, stall, timeout_s=3.0)
    assert result.outcome == HANG and result.faults_injected == {"stall": 1}
    # the limit counts from the fault (building a client on a loaded machine is not hanging), and the hung
    # reader was killed then, not waited for
    assert 3.0 <= result.seconds - result.first_fault_s < 4.0


def test_a_reader_slow_to_reach_the_fault_is_not_called_hung(endpoint, bucket):
    def slow_start(store):
        time.sleep(2.0)  # as importing and building a client takes on a loaded machine
        return boto3_read(store)

    result = probe(slow_start, DATA, bucket, endpoint.url, Faults(schedule={1: "slowdown"}), timeout_s=1.5)
    assert result.outcome == EXACT and result.tested and result.first_fault_s >= 2.0


def test_a_reader_with_a_read_timeout_errors_on_a_stall(endpoint, bucket):
    def with_timeout(store):
        return requests.get(store.http_url("data"), timeout=(2, 0.3)).content

    result = probe(with_timeout, DATA, bucket, endpoint.url, Faults(schedule={1: "stall"}, stall_s=600), timeout_s=5)
    assert result.outcome == ERROR and "timed out" in result.error


def test_a_reader_that_dies_is_a_crash(endpoint, bucket):
    def killed(store):
        boto3_read(store)
        os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a segfault would end it

    result = probe(killed, DATA, bucket, endpoint.url, Faults(schedule={1: "slowdown"}))
    assert result.outcome == CRASH and "exit code -9" in result.error


def test_an_untested_probe_says_so(endpoint, bucket):
    result = probe(boto3_read, DATA, bucket, endpoint.url, Faults())
    assert result.outcome == EXACT and not result.tested


def test_scenarios_inject_faults_into_a_many_request_read(endpoint, bucket):
    """A scenario hits a 40-request ranged read, the same requests in every run (two of them: forks cost)."""

    def ranged_read(store):
        client = store.client(read_timeout=1, retries=NO_RETRY)
        step = len(DATA) // 40
        return b"".join(
            client.get_object(Bucket=store.bucket, Key="data", Range=f"bytes={i}-{min(i + step, len(DATA)) - 1}")[
                "Body"
            ].read()
            for i in range(0, len(DATA), step)
        )

    for name in ("reset-once", "mixed"):
        first = probe(ranged_read, DATA, bucket, endpoint.url, SCENARIOS[name], timeout_s=30)
        again = probe(ranged_read, DATA, bucket, endpoint.url, SCENARIOS[name], timeout_s=30)
        assert first.tested and first.faults_injected == again.faults_injected, name
        assert sum(first.faults_injected.values()) == 1, name  # without retries the first fault ends the read
        assert first.outcome == again.outcome == ERROR and first.requests == again.requests, name


def test_errors_never_carry_signatures(bucket):
    url = bucket.http_url("data")
    assert "X-Amz-Signature=" in url
    text = describe(RuntimeError(f"GET {url} failed\nmore detail"))
    assert "X-Amz-Signature" not in text and "Credential" not in text and "more detail" not in text
    assert text.startswith("builtins.RuntimeError: GET http://") and "/fault-tests/data?…" in text


def test_equality_is_exact():
    a = np.arange(10, dtype=np.int16)
    assert equal(a, a.copy()) and not equal(a, a.astype(np.int32)) and not equal(a, a[:-1])
    assert equal({"x": [a, b"1"]}, {"x": [a.copy(), b"1"]}) and not equal({"x": [a]}, {"x": (a,)})
    assert equal(np.array([np.nan]), np.array([np.nan])) and not equal(b"ab", b"a")
