"""NeuroConv's write and the check of its file, in a child process that the parent can stop at once.

A write cannot be interrupted from inside: h5py and hdmf run Python callbacks all through it, and a Ctrl-C
that lands in one is printed and lost. So the parent only waits here, where a signal always takes effect,
and stops the child (which dies with the parent in any case, see :mod:`nwb_cloud.processes`). The child
is in its own process group: a Ctrl-C typed at the terminal reaches the parent, which decides.

The child takes one JSON request (spec text, session, folders, layout) and answers with one JSON result:
the check report, or the error it met, re-raised in the parent as the same kind of error.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import traceback
from pathlib import Path

from nwb_cloud import processes
from nwb_cloud.convert.check import CheckReport
from nwb_cloud.convert.errors import CheckFailed, ConvertError, SpecError
from nwb_cloud.errors import NwbCloudError

ERRORS = {cls.__name__: cls for cls in (ConvertError, SpecError, CheckFailed)}
POLL_S = 0.2


def convert_and_check(spec_text: str, session: str, data_folder: Path, output: Path, layout: str | None) -> CheckReport:
    """Write ``session`` to ``output`` with NeuroConv and check it, in a child process; the report or an error."""
    scratch = Path(output).parent
    request, result, log = scratch / "request.json", scratch / "result.json", scratch / "worker.log"
    request.write_text(
        json.dumps(
            {"spec": spec_text, "session": session, "data_folder": str(data_folder), "output": str(output),
             "layout": layout, "result": str(result)}
        )
    )  # fmt: skip
    with open(log, "wb") as stream:
        child = subprocess.Popen(
            [sys.executable, "-m", "nwb_cloud.convert.worker", str(request)],
            stdin=subprocess.DEVNULL, stdout=stream, stderr=subprocess.STDOUT,
            **processes.child_options(signal.SIGKILL, own_group=True),
        )  # fmt: skip
    try:
        while child.poll() is None:
            try:
                child.wait(timeout=POLL_S)
            except subprocess.TimeoutExpired:
                processes.stop_if_interrupted()
    finally:
        processes.stop(child, grace_s=0)
    answer = json.loads(result.read_text()) if result.exists() else None
    if answer is None:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-1:]
        raise ConvertError(
            f"session {session}: the conversion process ended with exit code {child.returncode}"
            + (f": {tail[0]}" if tail else "")
        )
    if "error" in answer:
        raise ERRORS.get(answer["error"], ConvertError)(answer["message"])
    return CheckReport(series=answer["series"], critical=tuple(answer["critical"]), advice=answer["advice"])


def _serve(request_path: Path) -> None:
    from nwb_cloud.convert.check import check_nwb
    from nwb_cloud.convert.conversion import convert_session
    from nwb_cloud.convert.spec import ConversionSpec
    from nwb_cloud.datasets.layouts import get_layout

    request = json.loads(Path(request_path).read_text())
    result = Path(request["result"])
    try:
        session = ConversionSpec.parse(request["spec"], check_interfaces=False).session(request["session"])
        layout = get_layout(request["layout"]) if request["layout"] else None
        output = Path(request["output"])
        convert_session(session, Path(request["data_folder"]), output, layout)
        answer = check_nwb(output, name=f"session {session.name}").to_dict()
    except NwbCloudError as error:
        kind = type(error).__name__ if type(error).__name__ in ERRORS else "ConvertError"
        answer = {"error": kind, "message": str(error)}
    except Exception as error:  # NeuroConv's and its readers' own failures: named, never a traceback upstairs
        traceback.print_exc()
        answer = {"error": "ConvertError", "message": f"session {request['session']}: {type(error).__name__}: {error}"}
    partial = result.with_name(result.name + ".partial")
    partial.write_text(json.dumps(answer))
    partial.replace(result)


if __name__ == "__main__":
    _serve(Path(sys.argv[1]))
