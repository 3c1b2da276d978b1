"""First use: the time from a fresh ``python`` to the first selection's data, for a read method and for local h5py.

A user's first read in a new Python pays for the interpreter, the imports (pynwb, h5py, the client
library), the client, the index fetch, the open and the read; every later read pays only the last. The
parent (:func:`first_use`) notes the time, starts ``python -m nwb_cloud.suite.first_use`` and hands it what
to read on stdin (the store's credentials never appear on a command line); the child notes when it
started, when its imports were done, when the file was open and when the selection's data was in hand,
then checks the data against the source (untimed) and answers with those instants as JSON.

What the child imports is what a user of that method imports: the method's own module
(``nwb_cloud.access.<module>``: its client library, h5py/pynwb or hdmf-zarr), the workload (numpy, and
scipy for the band-pass), and the store (botocore: the credentials, or a presigned URL); not the other
readers (the registry is built lazily). The baseline :data:`LOCAL` is the same script against the local
file with h5py + pynwb (``NWBHDF5IO``): the denominator of issue 13's "first use <= 1.5x local".

Figures (seconds; each phase is also recorded):

``first_use_s``          spawn -> data: imports included (interpreter start, imports, client, open, read)
``after_imports_s``      imports done -> data: client, index fetch, open and read (imports excluded)
``interpreter_s``        spawn -> the child's first instant (the interpreter and ``nwb_cloud``'s package import)
``imports_s``            spawn -> imports done (interpreter start + imports)
``open_s``, ``read_s``   the open (client, index fetch, pynwb objects) and the read of the selection
``cpu_s``                the child's CPU seconds up to the data (all of its threads)
"""

from __future__ import annotations

import time

STARTED = time.time()  # before anything else: the child's first instant (what the interpreter took is before)

import json  # noqa: E402 - after the first instant on purpose
import os  # noqa: E402
import pickle  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

LOCAL = "local-h5py"  # the baseline row: h5py + pynwb on the local file
TIMEOUT_S = 600


class FirstUseError(Exception):
    """A first use failed or read wrong data (the message names the method and the cause)."""


def first_use(job: dict, python: str = sys.executable, timeout_s: float = TIMEOUT_S) -> dict:
    """Run one first use in a fresh process; ``job`` holds ``method`` (or :data:`LOCAL`), ``module`` (the
    method's module), ``workload``, ``series``, ``key``, ``local_path``, ``store`` (``Store.to_dict()``)
    and ``expected`` (the pickled expected result's path). Returns the figures; raises on a wrong read."""
    spawned = time.time()
    run = subprocess.run(
        [python, "-m", "nwb_cloud.suite.first_use"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    answer = _last_json(run.stdout)
    if run.returncode != 0 or answer is None or "error" in (answer or {}):
        reason = (answer or {}).get("error") or (run.stderr.strip().splitlines() or ["no output"])[-1]
        raise FirstUseError(f"first use of {job['method']} ({job['workload']}) failed: {reason}"[:400])
    return {
        "first_use_s": answer["data"] - spawned,
        "after_imports_s": answer["data"] - answer["imported"],
        "imports_s": answer["imported"] - spawned,
        "interpreter_s": answer["started"] - spawned,
        "open_s": answer["opened"] - answer["imported"],
        "read_s": answer["data"] - answer["opened"],
        "cpu_s": answer["cpu_s"],
    }


def _last_json(text: str) -> dict | None:
    for line in reversed(text.strip().splitlines()):
        try:
            return json.loads(line)
        except ValueError:
            continue
    return None


def _child() -> dict:
    """The fresh process's side (see the module docstring)."""
    import importlib
    import importlib.util

    job = json.loads(sys.stdin.read())
    if job["method"] == LOCAL:
        from pynwb import NWBHDF5IO

        from nwb_cloud.workloads import get_workload

        workload = get_workload(job["workload"])
        imported = time.time()
        io = NWBHDF5IO(job["local_path"], "r", load_namespaces=True)
        nwbfile = io.read()
        close = io.close
    else:
        if job["module"].endswith(".py"):  # a file of methods outside the package (access.load_methods)
            spec = importlib.util.spec_from_file_location("first_use_methods", job["module"])
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(job["module"])
        from nwb_cloud.cloud.store import Store
        from nwb_cloud.workloads import get_workload

        workload = get_workload(job["workload"])
        method = next(row for row in module.METHODS if row.name == job["method"])
        store = Store(**job["store"])
        imported = time.time()
        opened = method(store, job["key"])
        nwbfile, close = opened.nwbfile, opened.close
    opened_at = time.time()
    result = workload.run(nwbfile, job["series"])
    data = time.time()
    cpu_s = time.process_time()
    with open(job["expected"], "rb") as handle:
        workload.check(result, pickle.load(handle))  # raises WrongRead: the answer is an error
    close()
    return {"started": STARTED, "imported": imported, "opened": opened_at, "data": data, "cpu_s": cpu_s}


if __name__ == "__main__":
    try:
        print(json.dumps(_child()))
    except Exception as error:  # noqa: BLE001 - reported to the parent, which raises it
        print(json.dumps({"error": f"{type(error).__name__}: {error}".splitlines()[0][:300]}))
        sys.exit(1)
