"""Bit-exact inflate for HDF5's deflate filter, by the fastest decoder installed, chosen from a measured table.

HDF5's deflate filter stores each chunk as one zlib stream (RFC 1950: header, deflate data, Adler-32), which
h5py, and kerchunk's numcodecs ``Zlib``, decode with zlib. Other implementations of inflate decode the same
stream to the same bytes with less CPU: libdeflate (the ``deflate`` package), ISA-L's igzip (``isal``) and
zlib-ng (``zlib-ng``). On this machine's reads they took 0.35-0.6x of zlib's CPU per byte (libdeflate the
least at every chunk size measured; ``nwb-cloud``'s decoder table, :func:`nwb_cloud.analysis.decode.
decoder_speeds`, measures them and the suite's asv table records them). imagecodecs wraps the same libdeflate
and can decode into a buffer the caller gives: ``libdeflate-pooled`` decodes into buffers used again once
nothing refers to them (:mod:`nwb_cloud.refs.buffers`), which saves the new pages' cost (~0.2x of inflating
10 MB chunks here).

Exactness, in every case
    A decoder is given the chunk's decoded size (HDF5 decodes every chunk, edge chunks too, to the full
    chunk's bytes). Its answer is taken only when it decoded without an error to exactly that size (> 0);
    anything else (a stream it refuses, a truncated or corrupt one, another size) hands the same bytes to zlib, whose
    answer - or error - is then the reader's. (libdeflate, told a size of 0, answers b"" for any stream: a
    size check is not optional.) Where a decoder succeeds it has decoded the
    first zlib stream and checked its Adler-32, as zlib does, and trailing bytes after the stream are ignored
    by both (HDF5 ignores them too: kerchunk drops fletcher32, whose checksum then trails the stream). So a
    read through this module gives zlib's bytes or zlib's error, never other bytes; the tests check every
    chunk of every layout and the edge cases (empty, incompressible, stored, truncated, corrupt) byte for byte.

The choice
    :func:`choose` picks, for a codec (``deflate`` or ``shuffle+deflate``) and a chunk size, the fastest
    exact decoder in a measured table (rows of :func:`speed`); without a table, the first installed of
    :data:`RANKING`, the order the table gave on this machine. :func:`use_table` makes a measured table the
    process's choice; :func:`decoder_for` is what the index's data path calls for each array. A run of the
    suite measures the table on its machine and saves it (:func:`save_table`) in the data directory, where
    ``nwb-index`` loads it before its first open (:func:`load_table`; rows of other package versions are
    dropped).
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import json
import math
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.files import write_text_whole

Inflate = Callable[[object, int], object]  # (zlib stream, decoded size hint) -> decoded bytes-like

DEFLATE, SHUFFLE_DEFLATE = "deflate", "shuffle+deflate"
TABLE_FILE = "decoders.json"  # a measured table in a data directory (see load_table)
CODECS = (DEFLATE, SHUFFLE_DEFLATE)


def _zlib() -> Inflate:
    return lambda data, size: zlib.decompress(data, bufsize=max(size, 1))


def _libdeflate() -> Inflate:
    deflate = importlib.import_module("deflate")
    return deflate.zlib_decompress  # (data, size): the size is the output buffer; a larger one is fine


def _libdeflate_pooled() -> Inflate:
    imagecodecs = importlib.import_module("imagecodecs")  # its deflate extension loads on first use: load_libraries
    from nwb_cloud.refs.buffers import DECODED

    # a stream that decodes to fewer bytes answers a shorter view (the size check then hands it to zlib)
    return lambda data, size: imagecodecs.deflate_decode(data, out=DECODED.take(size))


def load_libraries() -> None:
    """Load what a decoder loads on first use: imagecodecs loads a codec's extension when its name is first
    looked up (~2 ms here). A read calls this once its first requests are on the wire, so the load fits in the
    wait for their answers: neither an open that decodes nothing nor the first chunk's decode pays it."""
    if raw("libdeflate-pooled") is not None:
        _ = importlib.import_module("imagecodecs").deflate_decode


def _isal() -> Inflate:
    isal_zlib = importlib.import_module("isal.isal_zlib")
    return lambda data, size: isal_zlib.decompress(data, bufsize=max(size, 1))


def _zlib_ng() -> Inflate:
    zlib_ng = importlib.import_module("zlib_ng.zlib_ng")
    return lambda data, size: zlib_ng.decompress(data, bufsize=max(size, 1))


@dataclass(frozen=True)
class Decoder:
    """One inflate implementation: its name, the PyPI distribution that brings it, and how to load it."""

    name: str
    distribution: str  # "" for the standard library
    make: Callable[[], Inflate]

    def load(self) -> Inflate | None:
        """The decoder's raw inflate, or None when its package is not installed."""
        try:
            return self.make()
        except ImportError:
            return None


REFERENCE = "zlib"  # what h5py uses, and what every answer is checked against
DECODERS: dict[str, Decoder] = {
    d.name: d
    for d in (
        Decoder("libdeflate-pooled", "imagecodecs", _libdeflate_pooled),
        Decoder("libdeflate", "deflate", _libdeflate),
        Decoder("isal", "isal", _isal),
        Decoder("zlib-ng", "zlib-ng", _zlib_ng),
        Decoder(REFERENCE, "", _zlib),
    )
}
# fastest first on this machine's measured table, at every chunk size and both codecs; used without a table
RANKING = ("libdeflate-pooled", "libdeflate", "isal", "zlib-ng", REFERENCE)

SAME_SIZE = math.log(1.25)  # chunks within 25% of each other are one size of the table (whole rows differ)

_loaded: dict[str, Inflate | None] = {}
_lock = threading.Lock()
_table: list[dict] | None = None


def raw(name: str) -> Inflate | None:
    """Decoder ``name``'s inflate without the zlib fallback (None: not installed). For measuring only."""
    if name not in DECODERS:
        raise KeyError(f"unknown decoder {name!r}; known: {', '.join(DECODERS)}")
    if name not in _loaded:
        with _lock:
            if name not in _loaded:
                _loaded[name] = DECODERS[name].load()
    return _loaded[name]


def available() -> list[str]:
    """The decoders installed here, in :data:`RANKING` order."""
    return [name for name in RANKING if raw(name) is not None]


def exact(name: str) -> Inflate:
    """Decoder ``name`` with zlib behind it: zlib's bytes or zlib's error for every input (module docstring)."""
    fast = raw(name)
    if fast is None:
        raise KeyError(f"decoder {name!r} is not installed (pip install {DECODERS[name].distribution})")

    def inflate(data, size: int):
        if size > 0:
            try:
                decoded = fast(data, size)
            except Exception:  # noqa: BLE001 - zlib decides: its answer, or its error, is the reader's
                decoded = None
            if decoded is not None and len(decoded) == size:
                return decoded
        return zlib.decompress(data, bufsize=max(size, 1))

    inflate.decoder = name  # which decoder runs (tests, profiles)
    return inflate


# -- the measured choice -----------------------------------------------------------------------------------------
def speed(name: str, stream, size: int, codec: str = DEFLATE, repeats: int = 5) -> dict:
    """One row of the decoder table: ``name`` inflating ``stream`` (``size`` bytes decoded), in MB of output
    per CPU second (process time: robust to other work on the machine), least of ``repeats``; ``exact``
    says whether its bytes equal zlib's (a decoder that is not exact is never chosen)."""
    inflate = raw(name)
    reference = zlib.decompress(stream, bufsize=max(size, 1))
    row = {"decoder": name, "version": version(name), "codec": codec, "chunk_bytes": int(size),
           "stored_bytes": len(stream)}  # fmt: skip
    if inflate is None:
        return {**row, "installed": False, "exact": False, "output_mb_per_cpu_s": None}
    best = float("inf")
    for _ in range(max(1, repeats)):
        started = time.process_time()
        decoded = inflate(stream, size)
        best = min(best, time.process_time() - started)
    same = bytes(decoded) == reference
    return {**row, "installed": True, "exact": same, "output_mb_per_cpu_s": len(reference) / 1e6 / max(best, 1e-6)}


def choose(codec: str, chunk_bytes: int, table: Sequence[dict] | None = None) -> str:
    """The decoder for chunks of ``chunk_bytes`` decoded bytes under ``codec``: the fastest exact one in
    ``table`` at the measured chunk size nearest to it (by ratio; the harmonic mean over a decoder's rows at
    that size), or the first installed of :data:`RANKING`."""
    table = _table if table is None else table
    installed = set(available())
    rows = [r for r in table or () if r.get("codec") == codec and r.get("exact") and r.get("decoder") in installed]
    if rows:
        sizes = {r["chunk_bytes"] for r in rows}
        nearest = min(sizes, key=lambda s: abs(math.log(s / max(chunk_bytes, 1))))
        # several rows per decoder (one per modality's signal): the least CPU for the same bytes of each,
        # i.e. the highest harmonic mean of MB/s
        seconds: dict[str, list[float]] = {}
        for r in rows:
            if abs(math.log(r["chunk_bytes"] / nearest)) <= SAME_SIZE:  # each signal's chunk of that size
                seconds.setdefault(r["decoder"], []).append(1 / r["output_mb_per_cpu_s"])
        return min(seconds, key=lambda name: (sum(seconds[name]) / len(seconds[name]), RANKING.index(name)))
    return next(name for name in RANKING if name in installed)


@functools.cache  # a lookup reads the installed packages' metadata (~0.5 ms); a table asks it for every row
def version(name: str) -> str | None:
    """The installed version of decoder ``name``'s package (zlib: the zlib library's), None if not installed."""
    distribution = DECODERS[name].distribution
    if not distribution:
        return zlib.ZLIB_RUNTIME_VERSION
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def save_table(path: str | Path, table: Sequence[dict]) -> Path:
    """Keep a measured table (rows of :func:`speed`) where :func:`load_table` finds it."""
    return write_text_whole(path, json.dumps({"decoders": list(table)}, indent=1))


def load_table(path: str | Path) -> list[dict] | None:
    """The table saved at ``path``, less the rows of a decoder whose installed version is not the one measured
    (a table from before an upgrade says nothing about the new code); None when there is none to read."""
    try:
        rows = json.loads(Path(path).read_text())["decoders"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [r for r in rows if r.get("decoder") in DECODERS and r.get("version") == version(r["decoder"])]


def use_table(table: Sequence[dict] | None) -> None:
    """Make ``table`` (rows of :func:`speed`) this process's choice; None: back to :data:`RANKING`."""
    global _table
    _table = list(table) if table is not None else None


def decoder_for(codec: str, chunk_bytes: int) -> Inflate:
    """The exact inflate the data path uses for ``codec`` chunks of ``chunk_bytes`` (see :func:`choose`)."""
    return exact(choose(codec, chunk_bytes))
