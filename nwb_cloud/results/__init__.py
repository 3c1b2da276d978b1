"""What the bench runs wrote, read back as tables: asv results, the run info beside them, reliability probes.

The report shows these tables and the recommendations are fitted to them, so they live below both: one
reader of ``results/``, two consumers. ``load_cells(results_dir)`` is the entry point (one row per cell).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nwb_cloud.results.asv_results import load_records
from nwb_cloud.results.cells import cells_frame, latest_runs
from nwb_cloud.results.errors import ResultsError
from nwb_cloud.results.run_info import load_run_infos, run_info_for


def load_cells(results_dir: Path, latest: bool = True) -> pd.DataFrame:
    """The cell frame of ``results_dir`` (per machine, only its latest run unless ``latest`` is False)."""
    records, _ = load_records(Path(results_dir))
    cells = cells_frame(records, load_run_infos(Path(results_dir)))
    return latest_runs(cells) if latest else cells


__all__ = ["ResultsError", "load_cells", "load_run_infos", "run_info_for"]
