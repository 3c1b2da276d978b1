"""The report's tables, computed from the cell frame: rankings against the bound, layout ratios, problems.

Each function takes the frame of :func:`nwb_cloud.results.cells.cells_frame` (any subset of its rows) and
returns a new DataFrame, so notebooks and other tools can use them without the HTML.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nwb_cloud.results.cells import OK
from nwb_cloud.results.run_info import OUTCOME_ORDER

BASELINE_LAYOUT = "neuroconv-default"
RANK_GROUP = ["machine", "suite", "workload", "profile", "layout"]
_STATUS_ORDER = {"ok": 0, "failed": 1, "unavailable": 2, "skipped": 3, "excluded": 4}


def rank_methods(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells ranked within each machine x workload x profile x layout: 1 is the closest to the physical bound.

    The rank is by time / bound where every measured cell of the group has a bound, else by time (then
    ``ranked_by`` says so). Cells without a time keep no rank and sort after the ranked ones.
    """
    ranked = cells.copy()
    ranked["rank"] = np.nan
    ranked["ranked_by"] = "time_s"
    ranked["status_order"] = ranked["status"].map(_STATUS_ORDER).fillna(9)
    for _, group in ranked.groupby(RANK_GROUP, sort=False):
        measured = group[group["status"] == OK]
        by = "time_over_bound" if len(measured) and measured["time_over_bound"].notna().all() else "time_s"
        ranked.loc[group.index, "ranked_by"] = by
        ranked.loc[measured.index, "rank"] = measured[by].rank(method="min")
    ranked = ranked.sort_values([*RANK_GROUP, "status_order", "rank", "method"], na_position="last")
    return ranked.drop(columns="status_order").reset_index(drop=True)


def headline_ratios(cells: pd.DataFrame, baseline: str = BASELINE_LAYOUT) -> pd.DataFrame:
    """Per machine x workload x method x profile: the best layout's time against the baseline layout's.

    ``speedup`` = baseline time / best time (>= 1; 1 when the baseline is the best). NaN, with a ``note``,
    when the baseline or every layout has no time. Only groups with at least two layouts appear.
    """
    rows = []
    keys = ["machine", "suite", "workload", "method", "profile"]
    for key, group in cells.groupby(keys, sort=False):
        if group["layout"].nunique() < 2:
            continue
        measured = group[group["status"] == OK]
        base = group[group["layout"] == baseline]
        base_ok = base[base["status"] == OK]
        row = dict(zip(keys, key, strict=True), baseline_layout=baseline, layouts=group["layout"].nunique())
        row.update(baseline_s=np.nan, best_layout=None, best_s=np.nan, speedup=np.nan, note="")
        if len(measured):
            best = measured.loc[measured["time_s"].idxmin()]
            row.update(best_layout=best["layout"], best_s=best["time_s"], best_over_bound=best["time_over_bound"])
        if len(base_ok):
            row.update(baseline_s=base_ok["time_s"].iloc[0], baseline_over_bound=base_ok["time_over_bound"].iloc[0])
        if base.empty:
            row["note"] = f"no {baseline} layout in this run"
        elif base_ok.empty:
            row["note"] = f"{baseline}: {_why(base.iloc[0])}"
        else:
            row["speedup"] = row["baseline_s"] / row["best_s"]
            unmeasured = group[group["status"] != OK]
            row["note"] = "; ".join(f"{r['layout']} not compared: {_why(r)}" for _, r in unmeasured.iterrows())
        rows.append(row)
    columns = [*keys, "baseline_layout", "baseline_s", "baseline_over_bound", "best_layout", "best_s",
               "best_over_bound", "speedup", "layouts", "note"]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _why(cell: pd.Series) -> str:
    reason = str(cell["reason"])
    return reason if reason.startswith(cell["status"]) else f"{cell['status']}: {reason}"


def headline_summary(cells: pd.DataFrame, baseline: str = BASELINE_LAYOUT) -> pd.DataFrame:
    """Per machine x workload x profile: the spread of per-method speedups, and fastest vs fastest.

    ``best_vs_best`` compares the fastest cell of any method on the best layout with the fastest method on
    the baseline layout: what a user who may also switch method gains.
    """
    ratios = headline_ratios(cells, baseline)
    rows = []
    keys = ["machine", "suite", "workload", "profile"]
    for key, group in ratios.groupby(keys, sort=False):
        measured = group.dropna(subset=["speedup"])
        row = dict(zip(keys, key, strict=True), methods=len(measured))
        if len(measured):
            top = measured.loc[measured["speedup"].idxmax()]
            row.update(
                speedup_min=measured["speedup"].min(),
                speedup_median=measured["speedup"].median(),
                speedup_max=top["speedup"],
                max_method=top["method"],
                max_layout=top["best_layout"],
            )
        scope = cells[(cells[keys] == pd.Series(dict(zip(keys, key, strict=True)))).all(axis=1)]
        scope = scope[scope["status"] == OK]
        base = scope[scope["layout"] == baseline]
        if len(base) and len(scope):
            fastest, fastest_base = scope.loc[scope["time_s"].idxmin()], base.loc[base["time_s"].idxmin()]
            row.update(
                best_vs_best=fastest_base["time_s"] / fastest["time_s"],
                fastest=f"{fastest['method']} on {fastest['layout']}",
                fastest_baseline=f"{fastest_base['method']} on {baseline}",
            )
        rows.append(row)
    return pd.DataFrame(rows)


def layout_times(cells: pd.DataFrame) -> pd.DataFrame:
    """Median time per layout (columns) for each machine x workload x method x profile (rows)."""
    measured = cells[cells["status"] == OK]
    return measured.pivot_table(
        index=["machine", "workload", "method", "profile"], columns="layout", values="time_s", aggfunc="first"
    )


def problems(cells: pd.DataFrame) -> pd.DataFrame:
    """Every cell without a time, grouped by machine, status, method and reason, with the cells it covers."""
    missing = cells[cells["status"] != OK]
    rows = []
    for (machine, status, method, reason), group in missing.groupby(
        ["machine", "status", "method", "reason"], sort=True
    ):
        rows.append(dict(machine=machine, status=status, method=method, reason=reason, count=len(group),
                         cells=_covered(group, cells[cells["machine"] == machine])))  # fmt: skip
    return pd.DataFrame(rows, columns=["machine", "status", "method", "reason", "count", "cells"])


def _covered(group: pd.DataFrame, everything: pd.DataFrame) -> str:
    """``workload · layout · profile`` of each cell; "every layout and profile" when a workload is all covered."""
    parts = []
    for workload, cells in group.groupby("workload", sort=True):
        scope = everything[everything["workload"] == workload]
        if len(scope) > 1 and set(zip(cells["layout"], cells["profile"])) >= set(
            zip(scope["layout"], scope["profile"])
        ):
            parts.append(f"{workload} · every layout and profile")
        else:
            parts += [f"{workload} · {r.layout} · {r.profile}" for r in cells.itertuples()]
    return "; ".join(parts)


def reliability_matrix(reliability: pd.DataFrame) -> pd.DataFrame:
    """Method (rows) x fault (columns) -> the worst outcome seen; details kept in a parallel frame's cells."""
    if reliability.empty:
        return pd.DataFrame()
    rank = {outcome: i for i, outcome in enumerate(OUTCOME_ORDER)}
    ordered = reliability.assign(severity=reliability["outcome"].map(rank).fillna(len(rank)))
    worst = ordered.sort_values("severity").groupby(["method", "fault"]).tail(1)
    return worst.pivot(index="method", columns="fault", values="outcome")
