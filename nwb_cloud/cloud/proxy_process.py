"""The shaping proxy in a child process, so that its threads never wait for the reader's GIL (nor it for theirs).

In the reader's own process every relayed piece needs the GIL: a reader busy in Python or in a C extension
that holds the GIL (h5py decompressing a chunk) delays the proxy's next send by up to the interpreter's
switch interval, and the network looks slower than the profile says exactly when the reader is busy,
which a real network never does. Benchmarks use :class:`ProxyProcess`; :class:`ShapingProxy` (in-process)
is for tests and tools. Same API: ``.url``, ``.traffic`` (snapshot/mark/measure over a pipe), context manager.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading

from nwb_cloud import processes
from nwb_cloud.cloud.faults import Faults
from nwb_cloud.cloud.profiles import Profile
from nwb_cloud.cloud.proxy import ProxyError, ShapingProxy
from nwb_cloud.cloud.traffic import TrafficReader, TrafficSnapshot

START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 10


def _config(upstream_url: str, profile: Profile, faults: Faults, host: str, port: int) -> str:
    return json.dumps(
        {
            "upstream_url": upstream_url,
            "profile": profile.to_dict(),
            "faults": faults.to_dict(),
            "host": host,
            "port": port,
        }
    )


def _snapshot_to_json(snapshot: TrafficSnapshot) -> dict:
    return {**snapshot.__dict__, "responses": {str(k): v for k, v in snapshot.responses.items()}}


def _snapshot_from_json(values: dict) -> TrafficSnapshot:
    return TrafficSnapshot(**{**values, "responses": {int(k): v for k, v in values["responses"].items()}})


def serve(config: str, commands=sys.stdin, replies=sys.stdout) -> None:
    """The child's side: run the proxy, answer one JSON line per command line until 'stop' or end of input."""
    values = json.loads(config)
    faults = Faults(**{**values["faults"], "schedule": {int(k): v for k, v in values["faults"]["schedule"].items()}})
    profile = Profile(**values["profile"])

    def reply(value) -> None:
        replies.write(json.dumps(value) + "\n")
        replies.flush()

    try:
        proxy = ShapingProxy(values["upstream_url"], profile, faults, values["host"], values["port"]).start()
    except Exception as error:  # reported to the parent, which raises it as a ProxyError
        reply({"error": f"{type(error).__name__}: {error}"})
        return
    try:
        reply({"port": proxy.port})
        for line in commands:
            command = line.strip()
            if command == "stop":
                return
            if command == "snapshot":
                reply(_snapshot_to_json(proxy.traffic.snapshot()))
            elif command == "mark":
                reply(_snapshot_to_json(proxy.traffic.mark()))
            elif command == "open_connections":
                reply(proxy.traffic.open_connections)
            else:
                reply({"error": f"unknown command {command!r}"})
    finally:
        proxy.stop()


class RemoteTraffic(TrafficReader):
    """The counters of a proxy that runs in another process."""

    def __init__(self, ask):
        self._ask = ask

    def snapshot(self) -> TrafficSnapshot:
        return _snapshot_from_json(self._ask("snapshot"))

    def mark(self) -> TrafficSnapshot:
        return _snapshot_from_json(self._ask("mark"))

    @property
    def open_connections(self) -> int:
        return self._ask("open_connections")


class ProxyProcess:
    """A :class:`ShapingProxy` serving from a child interpreter (``python -m nwb_cloud.cloud.proxy_process``).

    A plain subprocess rather than :mod:`multiprocessing`: it needs no ``__main__`` guard in the caller
    (asv's runner, a notebook) and inherits no threads.
    """

    def __init__(
        self,
        upstream_url: str,
        profile: Profile,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        ShapingProxy(upstream_url, profile, faults)  # validate here, where the error is readable
        self.upstream_url = upstream_url
        self.profile = profile
        self.faults = faults or Faults()
        self.host = host
        self.port = port
        self.traffic = RemoteTraffic(self._ask)
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _ask(self, command: str):
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None:
                raise ProxyError("the shaping proxy process is not running")
            process.stdin.write(command + "\n")
            process.stdin.flush()
            line = process.stdout.readline()
        if not line:
            raise ProxyError("the shaping proxy process exited")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise ProxyError(f"shaping proxy process: {answer['error']}")
        return answer

    def start(self) -> ProxyProcess:
        if self._process is not None:
            return self
        config = _config(self.upstream_url, self.profile, self.faults, self.host, self.port)
        process = subprocess.Popen(
            [sys.executable, "-m", "nwb_cloud.cloud.proxy_process", config],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            **processes.child_options(),  # never outlives the process that started it
        )
        ready = threading.Timer(START_TIMEOUT_S, process.kill)
        ready.start()
        try:
            line = process.stdout.readline()
        finally:
            ready.cancel()
        answer = json.loads(line) if line else {"error": f"exited with code {process.wait()} before listening"}
        if "error" in answer:
            process.kill()
            process.wait()
            raise ProxyError(f"the shaping proxy process failed to start: {answer['error']}")
        self._process, self.port = process, answer["port"]
        return self

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is None:
            return
        try:
            process.stdin.write("stop\n")
            process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    serve(sys.argv[1])
