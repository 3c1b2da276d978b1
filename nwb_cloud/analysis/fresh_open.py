"""The local pynwb open as a script pays it: the first open in a new Python, its imports already done.

An open cell times a method's first open in a fresh process (cold); :func:`~nwb_cloud.analysis.metadata.
time_local_open` times the local open again and again in one process (warm), the bound's floor. The goal "an
open faster than h5py's local open" compares like with like: :func:`time_fresh_local_open` starts ``python -m
nwb_cloud.analysis.fresh_open`` per sample, which imports pynwb, h5py, the workload and the package's data layer
(as a cell's process has imported its method and the suite before its timed open), collects the imports'
garbage, then times the open and the workload.

Without that collection, whether a full collection of everything imported (~70 ms here) lands inside the open
depends on how many objects the imports happened to leave: a bare ``import pynwb`` script's first open took
117-132 ms with one and 52-60 ms without. The open cells checked had none in their timed part.
"""

from __future__ import annotations

import gc
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
    gc.collect()  # the imports' (see the module docstring)
    started = time.perf_counter()
    with open_local(job["local_path"]) as io:
        workload.run(io.read(), job["series"])
        return time.perf_counter() - started


if __name__ == "__main__":
    print(json.dumps({"seconds": _child(json.loads(sys.stdin.read()))}))
