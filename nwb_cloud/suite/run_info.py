"""What a report needs to know about a run beyond asv's numbers, written beside the asv results.

Names and figures only: the store's address is a label, never credentials or signed URLs.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path

from nwb_cloud.access import METHODS
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.settings import usable_cores
from nwb_cloud.suite.state import RunState


def run_info(state: RunState, overhead: dict | None = None, commit: str | None = None) -> dict:
    catalog = state.catalog
    return {
        "run_id": state.run_id,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"host": socket.gethostname(), "cores": usable_cores(), "python": platform.python_version()},
        "source": catalog.source,
        "size": catalog.size,
        "seed": catalog.seed,
        "store": catalog.store.label if catalog.source != "embedded" else "embedded rclone serve s3 (loopback)",
        "grid": state.grid.to_dict(),
        "profiles": {name: PROFILES[name].to_dict() for name in state.grid.profiles if name in PROFILES},
        "assets": {name: a.summary() for name, a in catalog.assets.items()},  # + write time, compression ratio
        "codecs": state.extra.get("codecs", []),  # decode speed of each codec on this machine
        "unavailable_methods": {n: m.unavailable() for n, m in METHODS.items() if m.unavailable()},
        "prepare_failures": state.extra.get("prepare_failures", {}),
        "floors": state.extra.get("floors", []),
        "proxy_overhead": overhead,
        "samples": _sample_medians(state),
        "cell_failures": _cell_failures(state),
        **({"loop": state.extra["loop"]} if "loop" in state.extra else {}),  # the closed loop's plan and verdicts
    }


def _cells(path: Path) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            cells.setdefault(record.pop("cell", "?"), []).append(record)
    return cells


def _key(label: str) -> str:
    """``workload[method, layout, profile]`` -> ``workload|method|layout|profile`` (the report's cell key)."""
    workload, _, rest = label.partition("[")
    return "|".join([workload, *[part.strip() for part in rest.rstrip("]").split(",")]])


def _sample_medians(state: RunState) -> dict[str, dict]:
    """Per cell, the median of every figure of its timed samples (open traffic included)."""
    out = {}
    for label, records in _cells(Path(state.data_dir) / "samples" / f"{state.run_id}.jsonl").items():
        fields = {name for record in records for name, value in record.items() if isinstance(value, int | float)}
        out[_key(label)] = {
            name: statistics.median(r[name] for r in records if isinstance(r.get(name), int | float))
            for name in sorted(fields)
        } | {"samples": len(records)}
    return out


def _cell_failures(state: RunState) -> dict[str, str]:
    path = Path(state.data_dir) / "samples" / f"{state.run_id}-failures.jsonl"
    return {_key(label): records[-1]["error"] for label, records in _cells(path).items()}


def write_run_info(results_dir: Path, info: dict) -> Path:
    path = Path(results_dir) / "run-info" / f"{info['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=1, default=str))
    os.replace(partial, path)
    return path
