"""What a report needs to know about a run beyond asv's numbers, written beside the asv results.

Names and figures only: the store's address is a label, never credentials or signed URLs.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import time
from pathlib import Path

from nwb_cloud.access import METHODS
from nwb_cloud.analysis.floors import machine_cores
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.suite.state import RunState


def run_info(state: RunState, overhead: dict | None = None) -> dict:
    catalog = state.catalog
    return {
        "run_id": state.run_id,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"host": socket.gethostname(), "cores": machine_cores(), "python": platform.python_version()},
        "source": catalog.source,
        "size": catalog.size,
        "seed": catalog.seed,
        "store": catalog.store.label if catalog.source != "embedded" else "embedded rclone serve s3 (loopback)",
        "grid": state.grid.to_dict(),
        "profiles": {name: PROFILES[name].to_dict() for name in state.grid.profiles if name in PROFILES},
        "assets": {
            name: {"size_bytes": a.size_bytes, "chunk_shape": a.chunk_shape, "write_seconds": a.write_seconds}
            for name, a in catalog.assets.items()
        },
        "unavailable_methods": {n: m.unavailable() for n, m in METHODS.items() if m.unavailable()},
        "prepare_failures": state.extra.get("prepare_failures", {}),
        "floors": state.extra.get("floors", []),
        "proxy_overhead": overhead,
    }


def write_run_info(results_dir: Path, info: dict) -> Path:
    path = Path(results_dir) / "run-info" / f"{info['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=1, default=str))
    os.replace(partial, path)
    return path
