"""The closed loop's verdicts: the recommended layout's measured time against the best measured layout of its group.

A group is one case of a loop run (:mod:`~nwb_cloud.recommend.cases`) read by one reader of the study: every
layout of the case is measured with every read of its mix (the paged layout by the reader's page-buffer
variant, the Zarr layout by hdmf-zarr, the readers those storage variants are read with), and each layout's
time is the mix's weighted sum of its median cold reads. ``ratio`` = recommended / best: 1.0 when the
recommendation measured fastest, within the target when at most 1.2. The recommended layout of a group is
the one made for its reader (``recommend(method=reader)``, the run info's ``for_reader``; runs before it
judged the typical reader's), and ``ratio_typical`` judges the typical reader's in the same group. A layout
with a failed, missing or warm read (``warm``: the untimed open had fetched its data, see
:mod:`nwb_cloud.results.cells`) is not compared (and named); a group whose recommended layout was not measured
is a miss.

The recommendation chooses a chunk shape and codec, not the storage variant: ``ratio_same_storage`` compares it
with the best layout of its own storage (plain HDF5 with plain HDF5), so a group lost to a Zarr or paged
variant is told apart from a chunk shape or codec the model priced wrongly.

Read from the results only (the run info's ``loop`` record and the asv cells), so the guidance page and the
report show what was measured, never a typed figure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nwb_cloud.recommend.cases import HELD_OUT, IN_SAMPLE, LENGTH
from nwb_cloud.recommend.check import TARGET, mix_name
from nwb_cloud.recommend.loop import DEFAULT, RECOMMENDED
from nwb_cloud.results import Results, load_results, run_info_for
from nwb_cloud.results.cells import OK, WARM
from nwb_cloud.results.tables import RUN

COLUMNS = [
    *RUN, "run", "case", "kind", "modality", "data", "mix", "profile", "method",
    "layouts", "not_measured", "recommended_for", "recommended", "recommended_s", "predicted_s", "best_role",
    "best", "best_s", "ratio", "within_target", "tie", "best_same_storage", "best_same_storage_s",
    "ratio_same_storage", "within_target_same_storage", "ratio_typical", "default_s", "speedup_vs_default",
    "same_as_1x", "flags", "why",
]  # fmt: skip
CELL = ["workload", "method", "layout", "profile"]


def loop_groups(results_dir: Path | Results) -> pd.DataFrame:
    """One row per (loop run, case, reader) of ``results_dir`` (see the module docstring and :data:`COLUMNS`)."""
    results = load_results(results_dir)
    cells, infos = results.cells, results.infos  # every loop run: each measured its own cases
    rows = []
    if cells.empty:
        return pd.DataFrame(columns=COLUMNS)
    for key, run in cells.groupby(RUN, sort=True):
        keyed = dict(zip(RUN, key, strict=True))
        info = run_info_for(infos, keyed["machine"], keyed["commit"]) or {}
        loop = info.get("loop")
        if not loop or not loop.get("groups"):
            continue
        measured = run[run["status"] == OK].set_index(CELL)
        warm = set(run[run["status"] == WARM].set_index(CELL).index)
        for case, group in loop["groups"].items():
            for method in loop["methods"]:
                rows.append({**keyed, **_group_row(info, loop, case, group, method, measured, warm)})
    return pd.DataFrame(rows, columns=COLUMNS)


def _reader(loop: dict, layout: dict, method: str) -> str:
    if layout["backend"] == "zarr":
        return loop["readers"]["zarr"]
    return loop["readers"]["paged"].get(method, method) if layout.get("page_size") else method


def _group_row(info, loop, case, group, method, measured, warm=frozenset()) -> dict:
    times, spread, missing = {}, {}, []
    for role, layout in group["layouts"].items():
        reader, total, low, high = _reader(loop, layout, method), 0.0, 0.0, 0.0
        for workload, weight in group["mix"].items():
            key = (workload, reader, layout["layout"], group["profile"])
            if key not in measured.index:
                break
            cell = measured.loc[key]
            total += weight * float(cell["time_s"])
            low += weight * float(cell["time_q25_s"])
            high += weight * float(cell["time_q75_s"])
        else:
            times[role], spread[role] = total, (low, high)
            continue
        missing.append(f"{role} (a warm read: the untimed open had fetched its data)" if key in warm else role)
    own = own_role(group, method)
    row = {
        "run": info.get("run_id"), "case": case,
        "kind": group["kind"], "modality": group["modality"], "data": f"{group['dtype']}{list(group['shape'])}",
        "mix": mix_name(group["mix"]), "profile": group["profile"], "method": method, "layouts": len(times),
        "not_measured": ", ".join(missing),
        "recommended_for": method if made_for(group, method) else "a typical reader",
        "recommended": _describe(group["layouts"][own]),
        "predicted_s": _prediction(group["layouts"][own], group, method),
        "flags": "; ".join(group.get("flags", [])), "same_as_1x": _same_as_1x(loop, group, method),
    }  # fmt: skip
    if not times:
        return {**row, "within_target": False, "why": "no layout of the group was measured"}
    best = min(times, key=times.get)
    row.update(best_role=best, best=_describe(group["layouts"][best]), best_s=times[best],
               default_s=times.get(DEFAULT, np.nan))  # fmt: skip
    if own not in times:
        return {**row, "within_target": False, "why": "the recommended layout was not measured (a failed read)"}
    mine = times[own]
    row.update(
        recommended_s=mine,
        ratio=mine / times[best],
        within_target=bool(mine <= TARGET * times[best]),
        tie=bool(spread[own][0] <= spread[best][1]),
        ratio_typical=times[RECOMMENDED] / times[best] if RECOMMENDED in times else np.nan,
        speedup_vs_default=times[DEFAULT] / mine if DEFAULT in times and mine > 0 else np.nan,
    )
    storage = _storage(group["layouts"][own])
    alike = {role: t for role, t in times.items() if _storage(group["layouts"][role]) == storage}
    closest = min(alike, key=alike.get)
    row.update(
        best_same_storage=_describe(group["layouts"][closest]),
        best_same_storage_s=alike[closest],
        ratio_same_storage=mine / alike[closest],
        within_target_same_storage=bool(mine <= TARGET * alike[closest]),
    )
    row["why"] = "" if row["within_target"] else _why(group, own, best, times, method)
    if not row["within_target"] and best != closest and not row["within_target_same_storage"]:
        row["why"] += f"; among {storage} layouts alone: " + _why(group, own, closest, times, method)
    return row


def made_for(group: dict, method: str) -> dict | None:
    """The recommendation made for ``method`` in a loop group (role, chunk shape, codec), or None where the reader
    got the typical reader's: a run from before per-reader recommendations, or a reader the model has no terms
    for (its record holds only the role and why)."""
    mine = (group.get("for_reader") or {}).get(method) or {}
    return mine if "chunk_shape" in mine else None


def own_role(group: dict, method: str) -> str:
    """The role of the layout recommended for ``method`` in a loop group (the typical reader's where none was made
    for it)."""
    return (made_for(group, method) or {}).get("role", RECOMMENDED)


def _prediction(layout: dict, group: dict, method: str) -> float | None:
    """The model's price of ``layout`` for the group's reader where it made the reader a recommendation, else a
    typical reader's."""
    if made_for(group, method):
        return (layout.get("predicted_s_by_reader") or {}).get(method)
    return layout.get("predicted_s")


def _storage(layout: dict) -> str:
    return "Zarr" if layout["backend"] == "zarr" else ("paged HDF5" if layout.get("page_size") else "HDF5")


def _describe(layout: dict) -> str:
    return f"{tuple(layout['chunk_shape'])} {layout['codec']} ({_storage(layout)})"


def _same_as_1x(loop: dict, group: dict, method: str) -> bool | None:
    """At 5x length: whether the reader's recommendation is the one made for it at 1x (time extent clipped to
    the data)."""
    base = loop["groups"].get(group.get("longer_of") or "")
    if group["kind"] != LENGTH or base is None:
        return None
    mine, earlier = _recommendation(group, method), _recommendation(base, method)
    return mine["codec"] == earlier["codec"] and mine["chunk_shape"] == [
        min(c, s) for c, s in zip(earlier["chunk_shape"], group["shape"], strict=True)
    ]


def _recommendation(group: dict, method: str) -> dict:
    """The chunk shape and codec recommended for ``method`` (the typical reader's where none was made for it)."""
    return made_for(group, method) or group["recommendation"]


def _why(group: dict, own: str, best: str, times: dict, method: str) -> str:
    """A miss explained from the figures: a storage variant the model does not choose, or which layout it
    priced wrongly (predicted for the reader over measured)."""
    layouts = group["layouts"]
    if layouts[best]["backend"] == "zarr" or layouts[best].get("page_size"):
        return (f"the {_describe(layouts[best])} variant of the recommended chunks measured fastest: the "
                "recommendation chooses chunk shape and codec, not the storage variant")  # fmt: skip
    mine, theirs = _prediction(layouts[own], group, method), _prediction(layouts[best], group, method)
    if not (mine and theirs):
        return "the model priced no time for the best layout"
    error_mine, error_theirs = mine / times[own], theirs / times[best]
    priced = "under" if error_mine < error_theirs else "over"
    return (f"the model predicted {mine:.3g} s for the recommendation (measured {times[own]:.3g} s, "
            f"{error_mine:.2f}x) and {theirs:.3g} s for {best} (measured {times[best]:.3g} s, {error_theirs:.2f}x): "
            f"it {priced}-priced the recommendation against the best")  # fmt: skip


def latest_groups(groups: pd.DataFrame) -> pd.DataFrame:
    """Each case's groups from the newest run that measured it (run ids begin with their UTC time), so a case
    measured again (per-reader recommendations, a later commit) is counted once, by its own run."""
    if groups.empty:
        return groups
    newest = groups.groupby("case")["run"].transform("max")
    return groups[groups["run"] == newest]


def loop_summary(groups: pd.DataFrame) -> dict:
    """Groups within the target over all groups, per kind (in sample, held out, at 5x length), and the misses;
    a case measured by several runs counts once, by its newest (:func:`latest_groups`)."""
    groups = latest_groups(groups)
    summary = {"target": TARGET, "groups": int(len(groups))}
    for kind in (IN_SAMPLE, HELD_OUT, LENGTH):
        scope = groups[groups["kind"] == kind]
        summary[kind] = {
            "groups": int(len(scope)),
            "within_target": int(scope["within_target"].eq(True).sum()),
            "worst_ratio": float(scope["ratio"].max()) if scope["ratio"].notna().any() else None,
            "fewest_layouts": int(scope["layouts"].min()) if len(scope) else None,
            "within_target_same_storage": int(scope["within_target_same_storage"].eq(True).sum()),
        }
    summary["misses"] = groups.loc[~groups["within_target"].eq(True), ["case", "method", "ratio", "why"]].to_dict(
        "records"
    )
    return summary


def summary_line(summary: dict) -> str:
    """The honest one-liner: groups within the target over the total, in sample, held out and at 5x length."""
    parts = []
    for kind, label in ((IN_SAMPLE, "in sample"), (HELD_OUT, "held out"), (LENGTH, "at 5x length")):
        scope = summary.get(kind) or {}
        if scope.get("groups"):
            parts.append(f"{scope['within_target']}/{scope['groups']} {label}")
    if not parts:
        return "no closed-loop group was measured"
    same = [f"{(summary.get(kind) or {}).get('within_target_same_storage', 0)}/{summary[kind]['groups']} {label}"
            for kind, label in ((IN_SAMPLE, "in sample"), (HELD_OUT, "held out"), (LENGTH, "at 5x length"))
            if (summary.get(kind) or {}).get("groups")]  # fmt: skip
    return (f"recommended layouts measured within {summary['target']}x of the best measured layout: "
            + ", ".join(parts) + "; of the best layout of their own storage (HDF5, paged HDF5, Zarr): "
            + ", ".join(same))  # fmt: skip
