"""The conversion benchmark: NeuroConv's throughput (MB/s of raw source) per interface, on generated raw data.

It lives with its concern, above the suite whose run state it reads; ``benchmarks/conversion.py`` exposes it.

Each measurement is also appended to the throughput records (``data_dir/throughput.jsonl``) that
``nwb-cloud batch plan`` estimates runtimes and chooses instances from, so estimates improve with every run.
"""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.convert.records import append_records
from nwb_cloud.convert.throughput import INTERFACES, measure
from nwb_cloud.suite.asv_grid import load_state


class ConversionThroughput:
    """Raw source MB converted per second by NeuroConv (the conversion alone; the output is checked)."""

    params = [list(INTERFACES)]
    param_names = ["interface"]
    timeout = 3600

    def setup(self, interface: str) -> None:
        self.state = load_state()

    def track_mb_per_s(self, interface: str) -> float:
        data_dir = Path(self.state.data_dir)
        # the run's size (tiny sessions measure NeuroConv's start-up more than its throughput)
        measurement = measure(interface, size=self.state.catalog.size, data_dir=data_dir)
        append_records(data_dir / "throughput.jsonl", [measurement.record()])
        return measurement.mb_per_s

    track_mb_per_s.unit = "MB/s"
