"""Just enough HTTP/1.1 for a transparent proxy: where heads, bodies and messages begin and end.

The proxy relays bytes unchanged; this module only finds message boundaries on a keep-alive connection
(RFC 9112 section 6: Content-Length, chunked, or until close) so that latency and faults apply per request.
Re-serialising through a full HTTP library would change the bytes the store and the reader exchange.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

MAX_HEAD_BYTES = 64 * 1024


class Closed(Exception):
    """The peer closed the connection, or sent something that is not HTTP/1.1."""


class Reader:
    """Buffered reads from a blocking socket: whole heads, lines, or up to n bytes."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self, n: int) -> bool:
        data = self.sock.recv(n)
        if not data:
            return False
        self.buffer += data
        return True

    def read_head(self) -> bytes | None:
        """Bytes up to and including the blank line; None if the peer closed before sending anything."""
        start = 0
        while True:
            end = self.buffer.find(b"\r\n\r\n", start)
            if end >= 0:
                head = bytes(self.buffer[: end + 4])
                del self.buffer[: end + 4]
                return head
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise Closed("HTTP head too long")
            start = max(0, len(self.buffer) - 3)
            if not self._fill(65536):
                if self.buffer:
                    raise Closed("connection closed inside an HTTP head")
                return None

    def read_line(self) -> bytes:
        while (end := self.buffer.find(b"\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise Closed("HTTP line too long")
            if not self._fill(65536):
                raise Closed("connection closed inside a chunked body")
        line = bytes(self.buffer[: end + 1])
        del self.buffer[: end + 1]
        return line

    def read_some(self, n: int) -> bytes:
        """Up to ``n`` bytes (at least one), b'' at end of stream."""
        if self.buffer:
            data = bytes(self.buffer[:n])
            del self.buffer[:n]
            return data
        return self.sock.recv(n)


@dataclass
class Head:
    raw: bytes
    start_line: list[str]
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, raw: bytes) -> Head:
        lines = raw.decode("latin-1").split("\r\n")
        start = lines[0].split(" ", 2)
        if len(start) < 2:
            raise Closed(f"malformed HTTP start line {lines[0][:80]!r}")
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise Closed(f"malformed HTTP header line {line[:80]!r}")
            headers.append((name.strip().lower(), value.strip()))
        return cls(raw, start, headers)

    def get(self, name: str, default: str = "") -> str:
        for key, value in self.headers:
            if key == name:
                return value
        return default

    def tokens(self, name: str) -> set[str]:
        return {t.strip().lower() for key, value in self.headers if key == name for t in value.split(",")}

    @property
    def version(self) -> str:
        return self.start_line[0] if self.start_line[0].startswith("HTTP/") else self.start_line[-1]

    @property
    def keep_alive(self) -> bool:
        connection = self.tokens("connection")
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection

    def body_framing(self) -> tuple[str, int]:
        """('chunked', 0), ('length', n) or ('eof', 0) by RFC 9112 section 6.3 (the no-body cases aside)."""
        if "chunked" in self.tokens("transfer-encoding"):
            return "chunked", 0
        length = self.get("content-length")
        if length:
            try:
                n = int(length.split(",")[0])
            except ValueError:
                raise Closed(f"bad Content-Length {length!r}") from None
            return "length", n
        return "eof", 0


@dataclass
class Request(Head):
    @property
    def method(self) -> str:
        return self.start_line[0].upper()

    @property
    def target(self) -> str:
        return self.start_line[1]

    def body_framing(self) -> tuple[str, int]:
        framing = super().body_framing()
        return ("length", 0) if framing[0] == "eof" else framing  # a request without a length has no body

    @property
    def expects_continue(self) -> bool:
        return "100-continue" in self.tokens("expect") and self.body_framing() != ("length", 0)


@dataclass
class Response(Head):
    @property
    def status(self) -> int:
        try:
            return int(self.start_line[1])
        except ValueError:
            raise Closed(f"malformed status line {' '.join(self.start_line)[:80]!r}") from None

    def with_status(self, status: int, reason: str) -> Response:
        """The same response under another status line (everything after the first line unchanged)."""
        version = self.start_line[0]
        raw = f"{version} {status} {reason}\r\n".encode("latin-1") + self.raw.split(b"\r\n", 1)[1]
        return Response(raw, [version, str(status), reason], self.headers)

    def framing_after(self, request: Request) -> tuple[str, int]:
        if request.method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            return "length", 0
        return self.body_framing()


def body_pieces(reader: Reader, framing: tuple[str, int], piece: int):
    """The raw bytes of one message body, in pieces of at most ``piece`` bytes, chunk framing included."""
    kind, length = framing
    if kind == "length":
        remaining = length
        while remaining:
            data = reader.read_some(min(remaining, piece))
            if not data:
                raise Closed("connection closed inside a body")
            remaining -= len(data)
            yield data
    elif kind == "chunked":
        while True:
            line = reader.read_line()
            yield line
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise Closed(f"bad chunk size line {line[:40]!r}") from None
            if size == 0:
                while (trailer := reader.read_line()) not in (b"\r\n", b"\n"):
                    yield trailer
                yield trailer
                return
            yield from body_pieces(reader, ("length", size + 2), piece)
    else:
        while data := reader.read_some(piece):
            yield data
