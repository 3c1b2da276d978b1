"""What the bench runs wrote, read back as tables: asv results, the run info beside them, reliability probes.

The report shows these tables and the recommendations are fitted to them, so they live below both: one
reader of ``results/``, two consumers. ``load_cells(results_dir)`` is the entry point (one row per cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from nwb_cloud.results.asv_results import Machine, load_records
from nwb_cloud.results.cells import cells_frame, latest_runs
from nwb_cloud.results.errors import ResultsError
from nwb_cloud.results.run_info import load_run_infos, run_info_for


@dataclass(frozen=True)
class Results:
    """A results folder read once: publishing needs it for the report, the guidance page and the closed loop,
    and each reading of its asv files into cells took ~2 s (of a ~45 s ``nwb-cloud report``)."""

    folder: Path
    cells: pd.DataFrame  # every run's cells (``latest`` keeps each machine's latest run of each size)
    infos: list[dict]  # the run infos (:func:`load_run_infos`)
    machines: dict[str, Machine]

    def latest(self) -> pd.DataFrame:
        return latest_runs(self.cells)


def load_results(results_dir: str | Path | Results) -> Results:
    """``results_dir`` read (a :class:`Results` is returned as it is)."""
    if isinstance(results_dir, Results):
        return results_dir
    records, machines = load_records(Path(results_dir))
    infos = load_run_infos(Path(results_dir))
    return Results(Path(results_dir), cells_frame(records, infos), infos, machines)


def load_cells(results_dir: Path | Results, latest: bool = True) -> pd.DataFrame:
    """The cell frame of ``results_dir`` (per machine, only its latest run unless ``latest`` is False)."""
    results = load_results(results_dir)
    return results.latest() if latest else results.cells


__all__ = ["Results", "ResultsError", "load_cells", "load_results", "load_run_infos", "run_info_for"]
