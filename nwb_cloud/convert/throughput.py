"""Conversion throughput (MB/s of raw source per second) of one NeuroConv interface, for asv and the estimator.

``measure`` converts a generated raw session of the interface's real format with NeuroConv, times only the
conversion, then reads the file back and compares it with the source value for value: a wrong conversion
raises, it is never reported as a speed. Its :meth:`Measurement.record` feeds the throughput records.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nwb_cloud.convert.errors import CheckFailed
from nwb_cloud.convert.records import Record, peak_memory_bytes
from nwb_cloud.convert.sources import RAW_FORMATS, conversion_spec, write_session
from nwb_cloud.convert.spec import ConversionSpec
from nwb_cloud.settings import usable_cores

INTERFACES = tuple(RAW_FORMATS)


@dataclass(frozen=True)
class Measurement:
    interface: str
    size: str
    bytes: int  # raw source bytes
    seconds: float  # NeuroConv's conversion alone
    cores: int

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds

    def record(self) -> Record:
        return Record(
            step="convert",
            interface=self.interface,
            bytes=self.bytes,
            cores=self.cores,
            seconds=round(self.seconds, 3),
            peak_memory=peak_memory_bytes(),
            run_id=f"throughput-{self.size}",
            session=f"{self.interface}-{self.size}",
        )


def measure(
    interface: str, size: str = "tiny", seed: int = 0, data_dir: Path | None = None, layout: str | None = None
) -> Measurement:
    """Convert the generated ``size`` session of ``interface`` once and time it (sources cached in ``data_dir``)."""
    from nwb_cloud.convert.conversion import convert_session
    from nwb_cloud.datasets.layouts import get_layout

    root = Path(data_dir or tempfile.gettempdir()) / "raw-sources"
    raw = write_session(root, f"{interface}-{size}-s{seed}", interface, size, seed)
    session = ConversionSpec.parse(conversion_spec([raw])).sessions[0]
    with tempfile.TemporaryDirectory(prefix="nwb-cloud-throughput-") as scratch:
        output = Path(scratch) / session.nwbfile_name
        started = time.perf_counter()
        convert_session(session, root, output, get_layout(layout) if layout else None)
        seconds = time.perf_counter() - started
        _verify(output, raw.expected(), session.name)
    return Measurement(interface, size, raw.nbytes, seconds, usable_cores())


def _verify(path: Path, expected: np.ndarray, name: str) -> None:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), mode="r") as io:
        series = next(iter(io.read().acquisition.values()))
        if series.data.shape != expected.shape or not np.array_equal(series.data[:], expected):
            raise CheckFailed(f"{name}: the converted series differs from the generated source")
