"""The tables every published figure comes from: rankings against the bound, layout ratios, problems, runs.

One module serves the report page, the guidance page, the CSVs and README's generated blocks, so a figure
cannot be computed two ways. Every table is keyed by its run (:data:`RUN`: machine, data size, commit, asv
environment) before any other axis, and every group a table computes over lies inside one run: a quick run
and the full-size study are different experiments, and their times are never divided by one another.

Each function takes the frame of :func:`nwb_cloud.results.cells.cells_frame` (any subset of its rows) and
returns a new DataFrame, so notebooks and other tools can use them without the HTML.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nwb_cloud.results.cells import OK
from nwb_cloud.results.errors import ResultsError

RUN = ["machine", "size", "commit", "env"]  # one results file of asv, with the data size its run info names
BASELINE_LAYOUT = "neuroconv-default"
RANK_GROUP = [*RUN, "suite", "workload", "profile", "layout"]
RATIO_KEY = [*RUN, "suite", "workload", "method", "profile"]
_STATUS_ORDER = {"ok": 0, "failed": 1, "warm": 2, "unsupported": 3, "unavailable": 4, "skipped": 5, "excluded": 6}


def require_runs(cells: pd.DataFrame) -> None:
    """Refuse a frame without its run columns: a table without them could mix runs silently."""
    missing = [column for column in RUN if column not in cells]
    if missing:
        raise ResultsError(f"a cell table without its run columns {missing}: tables are keyed by run ({RUN})")


def runs(cells: pd.DataFrame) -> pd.DataFrame:
    """One row per run: when it ran, its cells, and how many cold samples its timed cells took."""
    require_runs(cells)
    rows = []
    for key, group in cells.groupby(RUN, sort=True):
        timed = group[(group["status"] == OK) & (group["n_samples"].fillna(0) > 0)]
        samples = sorted(set(timed["n_samples"].astype(int)))
        rows.append({**dict(zip(RUN, key, strict=True)), "started": group["run_started"].max(),
                     "cells": len(group), "timed": len(timed), "samples_min": min(samples, default=0),
                     "samples_max": max(samples, default=0)})  # fmt: skip
    return pd.DataFrame(rows, columns=[*RUN, "started", "cells", "timed", "samples_min", "samples_max"])


def rank_methods(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells ranked within each run x workload x profile x layout: 1 is the closest to the physical bound.

    The rank is by time / bound where every measured cell of the group has a bound, else by time (then
    ``ranked_by`` says so). Cells without a time keep no rank and sort after the ranked ones.
    """
    require_runs(cells)
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
    ranked = ranked.drop(columns="status_order").reset_index(drop=True)
    return ranked[[*RUN, *(c for c in ranked.columns if c not in RUN)]]


def headline_ratios(cells: pd.DataFrame, baseline: str = BASELINE_LAYOUT) -> pd.DataFrame:
    """Per run x workload x method x profile: the best layout's time against the baseline layout's.

    ``speedup`` = baseline time / best time (>= 1; 1 when the baseline is the best). NaN, with a ``note``,
    when the baseline or every layout has no time. Only groups with at least two layouts appear.
    """
    require_runs(cells)
    rows = []
    for key, group in cells.groupby(RATIO_KEY, sort=False):
        if group["layout"].nunique() < 2:
            continue
        measured = group[group["status"] == OK]
        base = group[group["layout"] == baseline]
        base_ok = base[base["status"] == OK]
        row = dict(zip(RATIO_KEY, key, strict=True), modality=group["modality"].iloc[0], baseline_layout=baseline,
                   layouts=group["layout"].nunique())  # fmt: skip
        row.update(baseline_s=np.nan, best_layout=None, best_s=np.nan, speedup=np.nan, note="")
        if len(measured):
            best = measured.loc[measured["time_s"].idxmin()]
            row.update(best_layout=best["layout"], best_s=best["time_s"], best_over_bound=best["time_over_bound"],
                       best_n=best["n_samples"])  # fmt: skip
        if len(base_ok):
            row.update(baseline_s=base_ok["time_s"].iloc[0], baseline_over_bound=base_ok["time_over_bound"].iloc[0],
                       baseline_n=base_ok["n_samples"].iloc[0])  # fmt: skip
        if base.empty:
            row["note"] = f"no {baseline} layout in this run"
        elif base_ok.empty:
            row["note"] = f"{baseline}: {_why(base.iloc[0])}"
        else:
            row["speedup"] = row["baseline_s"] / row["best_s"]
            unmeasured = group[group["status"] != OK]
            row["note"] = "; ".join(f"{r['layout']} not compared: {_why(r)}" for _, r in unmeasured.iterrows())
        rows.append(row)
    columns = [*RATIO_KEY, "modality", "baseline_layout", "baseline_s", "baseline_over_bound", "baseline_n",
               "best_layout", "best_s", "best_over_bound", "best_n", "speedup", "layouts", "note"]  # fmt: skip
    return pd.DataFrame(rows).reindex(columns=columns)


def _why(cell: pd.Series) -> str:
    reason = str(cell["reason"])
    return reason if reason.startswith(cell["status"]) else f"{cell['status']}: {reason}"


def headline_summary(cells: pd.DataFrame, baseline: str = BASELINE_LAYOUT) -> pd.DataFrame:
    """Per run x workload x profile: the spread of per-method speedups, and fastest vs fastest.

    ``best_vs_best`` compares the fastest cell of any method on the best layout with the fastest method on
    the baseline layout: what a user who may also switch method gains.
    """
    ratios = headline_ratios(cells, baseline)
    rows = []
    keys = [*RUN, "suite", "workload", "profile"]
    for key, group in ratios.groupby(keys, sort=False):
        measured = group.dropna(subset=["speedup"])
        where = dict(zip(keys, key, strict=True))
        row = {**where, "methods": len(measured)}
        if len(measured):
            top, low = measured.loc[measured["speedup"].idxmax()], measured.loc[measured["speedup"].idxmin()]
            row.update(
                speedup_min=low["speedup"],
                min_method=low["method"],
                speedup_median=measured["speedup"].median(),
                speedup_max=top["speedup"],
                max_method=top["method"],
                max_layout=top["best_layout"],
            )
        scope = cells[(cells[keys] == pd.Series(where)).all(axis=1)]
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


def problems(cells: pd.DataFrame) -> pd.DataFrame:
    """Every cell without a time, grouped by run, status, method and reason, with the cells it covers."""
    require_runs(cells)
    missing = cells[cells["status"] != OK]
    rows = []
    keys = [*RUN, "status", "method", "reason"]
    for key, group in missing.groupby(keys, sort=True):
        where = dict(zip(keys, key, strict=True))
        run = cells[(cells[RUN] == pd.Series({k: where[k] for k in RUN})).all(axis=1)]
        rows.append({**where, "count": len(group), "cells": _covered(group, run)})
    return pd.DataFrame(rows, columns=[*keys, "count", "cells"])


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


# The headline grid: the two use cases' reads on the default and the read-shaped layout, and the opens, under
# the profile of a reader in the data's own region (README's and the report's method table).
MAIN_PROFILE, FRIENDLY_LAYOUT = "in-region", "workload-friendly"
HEADLINE_READS, HEADLINE_OPENS = ("ophys_patch", "ecephys_electrode"), ("open_ophys", "open_ecephys")


def headline_cells(cells: pd.DataFrame, profile: str = MAIN_PROFILE) -> tuple[pd.DataFrame, list, list[str]]:
    """The cells of one run's headline grid, its columns ``(workload, layout)`` in order, and its methods
    ordered by time / bound of the first column (methods without it after, by their own median ratio)."""
    require_runs(cells)
    if cells[RUN].drop_duplicates().shape[0] > 1:
        raise ResultsError("the headline grid is one run's: got cells of several runs")
    columns = [(w, layout) for w in HEADLINE_READS for layout in (BASELINE_LAYOUT, FRIENDLY_LAYOUT)]
    columns += [(w, BASELINE_LAYOUT) for w in HEADLINE_OPENS]
    scope = cells[(cells["profile"] == profile) & cells["suite"].eq("streaming")]
    present = set(zip(scope["workload"], scope["layout"], strict=True))
    columns = [c for c in columns if c in present]
    chosen = scope[[(w, layout) in columns for w, layout in zip(scope["workload"], scope["layout"], strict=True)]]
    if not columns:  # a run without the headline grid (the closed loop's layouts, say)
        return chosen.reset_index(drop=True), columns, []
    measured = chosen[chosen["status"] == OK]
    by = "time_over_bound" if "time_over_bound" in measured and measured["time_over_bound"].notna().any() else "time_s"
    in_first = [(w, layout) == columns[0] for w, layout in zip(measured["workload"], measured["layout"], strict=True)]
    first = measured[in_first]
    order = list(first.sort_values(by)["method"])
    rest = measured[~measured["method"].isin(order)].groupby("method")[by].median().sort_values()
    return chosen.reset_index(drop=True), columns, order + list(rest.index)


SIDE_BY_SIDE_PROFILES = ("real", "in-region")  # real S3 measured on a fleet machine; its emulated stand-in here


def side_by_side(cells: pd.DataFrame, profiles: tuple[str, ...] = SIDE_BY_SIDE_PROFILES) -> pd.DataFrame:
    """Per data size, each cell's median time on every run that measured it under ``profiles``: one column per
    run and profile (``machine · profile · commit``), the machines side by side. Times only, never a ratio
    between runs; only cells measured by at least two runs of the size appear."""
    require_runs(cells)
    chosen = cells[(cells["status"] == OK) & cells["profile"].isin(profiles)]
    keys = ["size", "suite", "workload", "method", "layout"]
    if chosen.empty:
        return pd.DataFrame(columns=keys)
    label = chosen["machine"] + " · " + chosen["profile"] + " · " + chosen["commit"].str[:8]
    wide = chosen.assign(run=label).pivot_table(index=keys, columns="run", values="time_s", aggfunc="first")
    wide = wide[wide.notna().sum(axis=1) >= 2]
    return wide.reset_index().rename_axis(columns=None)


def measured_profiles(infos: list[dict], emulated: dict | None = None) -> pd.DataFrame:
    """The network each run measured (its ``real`` profile, from its run info), beside the emulated profile
    that stands for it (``emulated``: name -> figures, e.g. in-region's): how far the emulation is from S3."""
    rows = []
    for name, figures in (emulated or {}).items():
        rows.append({"machine": "(emulated)", "run_id": "", "profile": name, **_figures(figures)})
    for info in infos:
        real = (info.get("profiles") or {}).get("real")
        if isinstance(real, dict) and real.get("connection_bandwidth"):
            machine = info.get("machine")
            name = machine.get("name") or machine.get("host") if isinstance(machine, dict) else machine
            rows.append({"machine": name, "run_id": info.get("run_id", ""), "profile": "real", **_figures(real)})
    columns = ["machine", "run_id", "profile", "rtt_s", "first_byte_s", "connection_bandwidth", "total_bandwidth",
               "jitter_s", "description"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _figures(profile: dict) -> dict:
    keys = ("rtt_s", "first_byte_s", "connection_bandwidth", "total_bandwidth", "jitter_s", "description")
    return {key: profile.get(key) for key in keys}
