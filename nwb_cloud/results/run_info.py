"""What the bench run wrote beside the asv results: run info (size, source, profiles, failures) and reliability.

Both are optional. ``results/run-info/<run_id>.json`` describes one run; the one used for a machine's results
is the newest whose ``commit`` (and ``machine``, when given) match. ``results/reliability/*.json`` hold the
fault probes, one row per method x fault, in any of the shapes :func:`reliability_rows` accepts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from nwb_cloud.cloud.profiles import Profile
from nwb_cloud.results.errors import ResultsError

RUN_INFO_DIR, RELIABILITY_DIR = "run-info", "reliability"

# Outcomes from best to worst; the probe's names (nwb_cloud.cloud.reliability) and the report's wording.
EXACT, CLEAR_ERROR, CRASH, HANG, WRONG_DATA = "exact", "clear error", "crash", "hang", "WRONG DATA"
OUTCOME_ORDER = (EXACT, CLEAR_ERROR, CRASH, HANG, WRONG_DATA)
LOUD = (CRASH, HANG, WRONG_DATA)  # findings the page puts at its top
_OUTCOME_ALIASES = {
    "exact": EXACT,
    "error": CLEAR_ERROR,
    "clear error": CLEAR_ERROR,
    "clear-error": CLEAR_ERROR,
    "crash": CRASH,
    "hang": HANG,
    "wrong-data": WRONG_DATA,
    "wrong data": WRONG_DATA,
    "wrong_data": WRONG_DATA,
}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except ValueError as error:
        raise ResultsError(f"{path} is not JSON: {error}") from None


def load_run_infos(results_dir: Path) -> list[dict]:
    """Every run-info file, each with its path under ``"_path"``."""
    infos = []
    for path in sorted((Path(results_dir) / RUN_INFO_DIR).glob("*.json")):
        info = _read_json(path)
        if not isinstance(info, dict):
            raise ResultsError(f"run info {path} is not a JSON object")
        infos.append({**info, "_path": str(path)})
    return infos


def run_info_for(infos: list[dict], machine: str, commit: str) -> dict | None:
    """The newest run info of this machine and commit; one that names no commit (but this machine, or none) is
    the fallback, marked with ``"_matched": "machine"`` so the page can say how it was matched."""

    def same_machine(info: dict) -> bool:
        return info_machine(info) in (None, machine)

    def same_commit(info: dict) -> bool:
        named = str(info.get("commit") or "")
        return bool(named) and (commit.startswith(named) or named.startswith(commit))

    by_commit = [i for i in infos if same_machine(i) and same_commit(i)]
    if by_commit:
        return {**max(by_commit, key=_when), "_matched": "commit"}
    by_machine = [i for i in infos if same_machine(i) and not i.get("commit")]
    if by_machine:
        return {**max(by_machine, key=_when), "_matched": "machine"}
    return None


def info_machine(info: dict) -> str | None:
    """The machine a run info names: a string, or the ``name``/``host`` of a machine object."""
    named = info.get("machine")
    if isinstance(named, dict):
        named = named.get("name") or named.get("host")
    return str(named) if named else None


def info_cores(info: dict):
    named = info.get("machine")
    return info.get("cores") or (named.get("cores") if isinstance(named, dict) else None)


def info_profile(info: dict, name: str) -> Profile | None:
    """Network profile ``name`` as the run applied it (its run info; fields of other versions dropped), None
    when the run recorded none this version can read: no estimate rather than a wrong one."""
    recorded = (info.get("profiles") or {}).get(name)
    if not isinstance(recorded, dict):
        return None
    known = {k: v for k, v in recorded.items() if k in Profile.__dataclass_fields__}
    try:
        return Profile(**{"name": name, "description": "", **known})
    except TypeError:  # a network figure missing
        return None


def info_unavailable(info: dict) -> dict:
    return info.get("unavailable_methods") or info.get("unavailable") or {}


def grid_excludes(
    info: dict, method: str, profile: str, workload: str | None = None, layout: str | None = None
) -> str | None:
    """Why the run's grid left this cell out (see nwb_cloud.suite.state.Grid.exclusion), or None.

    The grid's own rules decide: a layout for another modality or a backend the method cannot read ("does
    not apply"), a quick run's method x profile subset, or the study's blocks.
    """
    grid = info.get("grid")
    try:
        return _grid(grid).exclusion(method, profile, workload, layout) if grid else None
    except (TypeError, KeyError):  # a grid this version cannot read: no reason rather than a wrong one
        return None


_GRIDS: dict[int, tuple] = {}


def _grid(payload: dict):
    """The run's Grid, made once per run-info dict (the report asks for every cell)."""
    from nwb_cloud.suite.state import Grid

    cached = _GRIDS.get(id(payload))
    if cached is None or cached[0] is not payload:
        cached = _GRIDS[id(payload)] = (payload, Grid.from_dict(payload))
    return cached[1]


def _when(info: dict) -> tuple:
    return (str(info.get("run_id") or ""), str(info.get("date") or ""), Path(info["_path"]).stat().st_mtime)


def normalize_outcome(outcome: object) -> str:
    text = str(outcome or "").strip()
    return _OUTCOME_ALIASES.get(text.lower(), text or "unknown")


def reliability_rows(payload, source: str = "") -> list[dict]:
    """Rows of method, fault, outcome, detail from a list of rows, {"rows"|"results"|"probes": [...]}, or
    {method: {fault: outcome | {outcome, error, ...}}}."""
    context = {}
    if isinstance(payload, dict):
        for key in ("rows", "results", "probes"):
            if isinstance(payload.get(key), list):
                context = {k: v for k, v in payload.items() if k != key and isinstance(v, str | int | float)}
                payload = payload[key]
                break
    if isinstance(payload, dict):
        payload = [
            {"method": method, "fault": fault, **(entry if isinstance(entry, dict) else {"outcome": entry})}
            for method, faults in payload.items()
            if isinstance(faults, dict)
            for fault, entry in faults.items()
        ]
    if not isinstance(payload, list):
        raise ResultsError(f"reliability file {source}: expected a list of rows or a method -> fault table")
    rows = []
    for entry in payload:
        if not isinstance(entry, dict) or "method" not in entry or "outcome" not in entry:
            raise ResultsError(f"reliability file {source}: a row without method/outcome: {entry!r}"[:300])
        injected = entry.get("faults_injected")
        injected_total = sum(injected.values()) if isinstance(injected, dict) else injected
        rows.append(
            {
                **{k: context[k] for k in ("profile", "layout", "workload") if k in context},
                **{f"probe_{k}": context[k] for k in ("run_id", "commit", "date", "size") if k in context},
                **{k: entry[k] for k in ("profile", "layout", "workload") if k in entry},
                "method": str(entry["method"]),
                "fault": str(entry.get("fault") or entry.get("scenario") or "?"),
                "outcome": normalize_outcome(entry["outcome"]),
                "detail": str(entry.get("error") or entry.get("detail") or ""),
                "seconds": entry.get("seconds"),
                "faults_injected": injected_total,
                "still_running": bool(entry.get("reader_still_running", False)),
                "source": source,
            }
        )
    return rows


def raised_by(detail: str) -> str:
    """The exception type a probe recorded and whose code raised it: this package's, or the reader's library."""
    kind = str(detail).split(":", 1)[0].strip() if detail else ""
    if not kind or " " in kind:
        return f"(no exception type: {str(detail)[:60]})" if detail else "-"
    if kind.startswith("nwb_cloud.access."):  # the access layer's one error type, wrapping what the reader raised
        owner = "the reader's error, as this package's access layer names it"
    elif kind.startswith("nwb_cloud."):
        owner = "this package"
    else:
        owner = "the reader, a bare exception" if kind.startswith("builtins.") else kind.split(".")[0]
    return f"{kind} ({owner})"


def load_reliability(results_dir: Path) -> pd.DataFrame:
    """Every reliability file as one frame (empty when there is none)."""
    rows = []
    for path in sorted((Path(results_dir) / RELIABILITY_DIR).glob("*.json")):
        rows.extend(reliability_rows(_read_json(path), source=path.name))
    columns = ["method", "fault", "outcome", "detail", "seconds", "faults_injected", "still_running", "source"]
    frame = pd.DataFrame(rows)
    return frame if not frame.empty else pd.DataFrame(columns=columns)


def load_recommendation_check(results_dir: Path) -> dict | None:
    """The check ``nwb-cloud fit-model`` left in the results (:data:`nwb_cloud.recommend.check.CHECK_FILE`)."""
    path = Path(results_dir) / "recommendations" / "check.json"
    return _read_json(path) if path.exists() else None
