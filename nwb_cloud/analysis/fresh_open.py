"""The local pynwb open as a script pays it: the first open in a new Python, its imports already done.

An open cell times a method's first open in a fresh process (cold): pynwb and hdmf build their object mappers,
fill their type-check caches and load what they import lazily, once per process. :func:`~nwb_cloud.analysis.
metadata.time_local_open` times the local open again and again in one process, so it is the floor (warm), not
what a user opening a file in a new script waits for (on a small file, a fraction of it). The goal
"an open faster than h5py's local open" compares like with like: :func:`time_fresh_local_open` starts
``python -m nwb_cloud.analysis.fresh_open`` per sample, which imports pynwb, h5py and the workload (as a cell's
process has imported its method before the timed open), then times the open and the workload.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from nwb_cloud.analysis.errors import AnalysisError

TIMEOUT_S = 300


def time_fresh_local_open(local_path: str | Path, workload: str, series: str, repeats: int = 3) -> float:
    """The least seconds, over ``repeats`` fresh processes, of opening ``local_path`` with pynwb and running
    ``workload`` on ``series``: each the first open of its process, after the imports."""
    job = json.dumps({"local_path": str(local_path), "workload": workload, "series": series})
    times = []
    for _ in range(max(1, repeats)):
        run = subprocess.run(
            [sys.executable, "-m", "nwb_cloud.analysis.fresh_open"],
            input=job,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        lines = run.stdout.strip().splitlines()
        if run.returncode != 0 or not lines:
            cause = (run.stderr.strip().splitlines() or ["no output"])[-1]
            raise AnalysisError(f"the fresh local open of {local_path} ({workload}) failed: {cause}")
        times.append(float(json.loads(lines[-1])["seconds"]))
    return min(times)


def _child(job: dict) -> float:
    import h5py  # noqa: F401 - what a local script imports before its open
    import pynwb  # noqa: F401

    from nwb_cloud.datasets.local import open_local
    from nwb_cloud.workloads import get_workload

    if Path(job["local_path"]).is_dir():
        import hdmf_zarr.nwb  # noqa: F401 - imported by open_local for a Zarr folder: not part of the open

    workload = get_workload(job["workload"])
    started = time.perf_counter()
    with open_local(job["local_path"]) as io:
        workload.run(io.read(), job["series"])
        return time.perf_counter() - started


if __name__ == "__main__":
    print(json.dumps({"seconds": _child(json.loads(sys.stdin.read()))}))
