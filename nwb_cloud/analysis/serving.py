"""What serving costs the embedded server and the shaping proxy in CPU, kept beside the run's data.

Measured once per run (``nwb-cloud bench``, :func:`nwb_cloud.cloud.calibrate.measure_serving_cost`) before the
bounds are computed, and read by every process that computes a bound (:func:`nwb_cloud.analysis.floor_for`),
as the loopback throughput is. Absent (real S3, or a run that skipped calibrating): no serving term.
"""

from __future__ import annotations

import json
from pathlib import Path

from nwb_cloud.cloud.calibrate import ServingCost
from nwb_cloud.files import write_text_whole


def _path(data_dir: str | Path) -> Path:
    return Path(data_dir) / "analysis" / "serving.json"


def store_serving_cost(data_dir: str | Path, serving: ServingCost) -> Path:
    return write_text_whole(_path(data_dir), json.dumps(serving.to_dict(), indent=1) + "\n")


def stored_serving_cost(data_dir: str | Path) -> ServingCost | None:
    path = _path(data_dir)
    try:
        return ServingCost.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
