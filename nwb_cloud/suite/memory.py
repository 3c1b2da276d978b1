"""The peak memory a timed part adds to its process: what a read holds at once, from the kernel's own count.

Linux keeps each process's peak resident set size (``VmHWM`` in ``/proc/self/status``) and lets the process
reset it to the current size (writing ``5`` to ``/proc/self/clear_refs``). Resetting it before the timed part
and reading it after gives the most that part held at any moment beyond what the process held before it
(the imports, the open handle): a page-granular figure, not a sampled one. Elsewhere (no ``/proc``), nothing is
measured and the figure is None.
"""

from __future__ import annotations

import re
from pathlib import Path

STATUS, CLEAR_REFS = Path("/proc/self/status"), Path("/proc/self/clear_refs")
RESET_PEAK = "5"  # clear_refs: reset the peak resident set size to the current one (Linux >= 4.0)


def _kib(field: str) -> int | None:
    try:
        found = re.search(rf"^{field}:\s+(\d+) kB", STATUS.read_text(), re.M)
    except OSError:
        return None
    return int(found.group(1)) if found else None


class PeakGrowth:
    """``start()`` before the part, ``bytes()`` after it: its peak resident memory above the start's."""

    def __init__(self):
        self._start_kib: int | None = None

    def start(self) -> None:
        try:
            CLEAR_REFS.write_text(RESET_PEAK)
        except OSError:
            self._start_kib = None
            return
        self._start_kib = _kib("VmRSS")

    def bytes(self) -> int | None:
        peak = _kib("VmHWM")
        if self._start_kib is None or peak is None:
            return None
        return max(0, peak - self._start_kib) * 1024
