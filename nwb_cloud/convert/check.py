"""Checking a converted file before it is published: it opens with pynwb, and nwbinspector finds nothing critical.

nwbinspector's CRITICAL importance marks what makes a file unusable or unpublishable (DANDI refuses it);
lower importances are advice and are returned, not raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.convert.errors import CheckFailed


@dataclass(frozen=True)
class CheckReport:
    series: dict[str, list[int]]  # acquisition name -> shape, as read back
    critical: tuple[str, ...]
    advice: int  # how many non-critical inspector messages there were

    def to_dict(self) -> dict:
        return {"series": self.series, "critical": list(self.critical), "advice": self.advice}


def check_nwb(path: Path, name: str | None = None) -> CheckReport:
    """Open ``path`` with pynwb and inspect it; :class:`CheckFailed` names the first critical problem."""
    from nwbinspector import Importance, inspect_nwbfile
    from pynwb import NWBHDF5IO

    path = Path(path)
    label = name or path.name
    try:
        with NWBHDF5IO(str(path), mode="r") as io:
            nwbfile = io.read()
            series = {key: _shape(value) for key, value in nwbfile.acquisition.items()}
    except Exception as error:  # any failure to open is the finding, whatever library raised it
        raise CheckFailed(f"{label} does not open with pynwb: {type(error).__name__}: {error}") from None
    if not series:
        raise CheckFailed(f"{label} holds no acquisition data")
    messages = list(inspect_nwbfile(nwbfile_path=str(path)))
    critical = tuple(
        f"{m.check_function_name} at {m.location or '/'}: {m.message}"
        for m in messages
        if m.importance == Importance.CRITICAL
    )
    if critical:
        more = f" (and {len(critical) - 1} more)" if len(critical) > 1 else ""
        raise CheckFailed(f"{label}: nwbinspector critical: {critical[0]}{more}")
    return CheckReport(series=series, critical=critical, advice=len(messages) - len(critical))


def _shape(neurodata) -> list[int]:
    return [int(n) for n in getattr(getattr(neurodata, "data", None), "shape", ())]
