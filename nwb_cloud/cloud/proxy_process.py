"""The shaping proxy in a child process, so that its threads never wait for the reader's GIL (nor it for theirs).

In the reader's own process every relayed piece needs the GIL: a reader busy in Python or in a C extension
that holds the GIL (h5py decompressing a chunk) delays the proxy's next send by up to the interpreter's
switch interval, and the network looks slower than the profile says exactly when the reader is busy,
which a real network never does. Benchmarks use :class:`ProxyProcess`; :class:`ShapingProxy` (in-process)
is for tests and tools. Same API: ``.url``, ``.traffic`` (snapshot/mark/measure over a pipe), context manager.

One proxy can serve a whole benchmark run: the child also answers the same commands on a loopback control
port (``.control_port``), so :class:`ProxyClient` gives any other process (every asv sample runs in a process of
its own) the proxy's URL and counters without starting a proxy per sample; ``.pid`` lets the run measure what
the proxy costs in CPU (:mod:`nwb_cloud.cloud.calibrate`).
"""

from __future__ import annotations

import json
import socket
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
        control = _control_listener(proxy, values["host"])
    except Exception as error:  # reported to the parent, which raises it as a ProxyError
        reply({"error": f"{type(error).__name__}: {error}"})
        return
    try:
        reply({"port": proxy.port, "control_port": control.getsockname()[1]})
        for line in commands:
            command = line.strip()
            if command == "stop":
                return
            reply(_answer(proxy, command))
    finally:
        control.close()
        proxy.stop()


def _answer(proxy: ShapingProxy, command: str):
    if command == "snapshot":
        return _snapshot_to_json(proxy.traffic.snapshot())
    if command == "mark":
        return _snapshot_to_json(proxy.traffic.mark())
    if command == "open_connections":
        return proxy.traffic.open_connections
    return {"error": f"unknown command {command!r}"}


def _control_listener(proxy: ShapingProxy, host: str) -> socket.socket:
    """The control port: one JSON line answered per command line, per connection (any local process)."""
    listener = socket.create_server((host, 0))

    def answer_lines(connection: socket.socket) -> None:
        with connection, connection.makefile("rw") as stream:
            for line in stream:
                stream.write(json.dumps(_answer(proxy, line.strip())) + "\n")
                stream.flush()

    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed: the proxy stops
                return
            threading.Thread(target=answer_lines, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True, name="proxy-control").start()
    return listener


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
        self.control_port: int | None = None
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def client(self) -> ProxyClient:
        """What another process needs to use this proxy (see :class:`ProxyClient`)."""
        if self._process is None or self.control_port is None:
            raise ProxyError("the shaping proxy process is not running")
        return ProxyClient(self.url, self.control_port, self.pid, self.host)

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
        self._process, self.port, self.control_port = process, answer["port"], answer["control_port"]
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


class ProxyClient:
    """A :class:`ProxyProcess` started by another process: its ``url`` and its counters (``traffic``), asked over
    the control port. Plain data (:meth:`to_dict`), so a run's state file can hand it to every benchmark process."""

    def __init__(self, url: str, control_port: int, pid: int | None = None, host: str = "127.0.0.1"):
        self.url = url
        self.control_port = int(control_port)
        self.pid = pid
        self.host = host
        self.traffic = RemoteTraffic(self._ask)
        self._stream = None
        self._lock = threading.Lock()

    def _ask(self, command: str):
        with self._lock:
            try:
                if self._stream is None:
                    self._stream = socket.create_connection((self.host, self.control_port), timeout=30).makefile("rw")
                self._stream.write(command + "\n")
                self._stream.flush()
                line = self._stream.readline()
            except OSError as error:
                self._stream = None
                raise ProxyError(f"the shaping proxy at {self.url} does not answer its control port: {error}") from None
        if not line:
            self._stream = None
            raise ProxyError(f"the shaping proxy at {self.url} closed its control port")
        answer = json.loads(line)
        if isinstance(answer, dict) and "error" in answer:
            raise ProxyError(f"shaping proxy process: {answer['error']}")
        return answer

    def stop(self) -> None:
        """Close this process's control connection (the proxy itself belongs to the process that started it)."""
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def to_dict(self) -> dict:
        return {"url": self.url, "control_port": self.control_port, "pid": self.pid, "host": self.host}

    @classmethod
    def from_dict(cls, payload: dict) -> ProxyClient:
        return cls(payload["url"], payload["control_port"], payload.get("pid"), payload.get("host", "127.0.0.1"))


if __name__ == "__main__":
    serve(sys.argv[1])
