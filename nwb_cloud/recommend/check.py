"""Do the recommendations hold? The model's pick among the measured layouts against the measured best.

For every group of measured cells (a workload mix, a network profile, a read method, a storage variant:
plain HDF5, paged HDF5 or Zarr, since the recommendations choose chunk shape and codec, not the variant)
with at least two layouts measured for every workload of the mix: the layout the model ranks first, and the layout that
measured fastest (weighted mean time of the mix). ``ratio`` = measured time of the model's pick / measured
time of the best: 1.0 when the model picked the best, 1.2 when its pick is 20 % slower. The target is
``ratio <= 1.2`` for every group.

Two predictions are checked: ``in_sample`` (the model fitted to every cell) and ``held_out`` (the model
fitted without the cells of the layout being predicted, once per layout: how the model does on a chunk
shape and codec it never saw streamed; that layout's local measurements, chunk index and decode time,
are kept, as a recommendation for new data gets them from a sample).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from nwb_cloud.files import write_text_whole
from nwb_cloud.recommend.errors import NotEnoughMeasurements
from nwb_cloud.recommend.fit import fit, predict_cells
from nwb_cloud.recommend.measurements import Measurements, load

TARGET = 1.2
GROUP = ["modality", "profile", "method", "variant"]  # layouts compete within a storage variant


def default_mixes(cells: pd.DataFrame) -> list[dict[str, float]]:
    """Each read workload alone, and per modality an even mix of all its read workloads."""
    mixes = [{w: 1.0} for w in sorted(cells["workload"].unique())]
    for _, group in cells.groupby("modality"):
        workloads = sorted(group["workload"].unique())
        if len(workloads) > 1:
            mixes.append({w: 1 / len(workloads) for w in workloads})
    return mixes


def mix_name(mix: dict[str, float]) -> str:
    if len(mix) == 1:
        return next(iter(mix))
    return " + ".join(f"{w:.2g} {name}" for name, w in mix.items())


def predictions(measurements: Measurements, held_out: bool = True) -> pd.DataFrame:
    """Every timed cell with its in-sample prediction and (``held_out``) its layout-held-out prediction."""
    fitted = fit(measurements)
    cells = fitted.residuals.rename(columns={"predicted_s": "in_sample_s"})
    cells["held_out_s"] = np.nan
    if not held_out:
        return cells
    for (modality, layout), _ in cells.groupby(["modality", "layout"]):
        try:
            model = fit(measurements.without_layout(modality, layout)).model
        except NotEnoughMeasurements:
            continue  # nothing left to fit without this layout
        mask = (cells["modality"] == modality) & (cells["layout"] == layout)
        predicted = predict_cells(model, cells[mask], measurements.networks)
        cells.loc[mask, "held_out_s"] = predicted["predicted_s"].to_numpy()
    return cells


def check_recommendations(results, mixes=None, held_out: bool = True) -> pd.DataFrame:
    """One row per (mix, modality, profile, method) group: the model's pick vs the measured best layout.

    ``results`` is a results folder or :class:`~nwb_cloud.recommend.measurements.Measurements`. Columns:
    ``best_layout``/``best_s`` (measured), ``in_sample_layout``/``in_sample_s``/``in_sample_ratio``,
    ``held_out_layout``/``held_out_s``/``held_out_ratio`` (measured time of each pick, and over the best),
    ``within_target`` (in-sample ratio <= 1.2), ``in_sample_tie`` (the pick's measured interquartile range
    reaches the best's: the two differ by less than the measurement's own spread; None when the results
    kept no spread), ``layouts`` (how many were compared).
    """
    measurements = results if isinstance(results, Measurements) else load(Path(results))
    cells = predictions(measurements, held_out=held_out)
    rows = []
    for mix in mixes or default_mixes(cells):
        scope = cells[cells["workload"].isin(mix)]
        for key, group in scope.groupby(GROUP, sort=True):
            table = _weighted(group, mix)
            if len(table) < 2:
                continue
            best = table["time_s"].idxmin()
            row = dict(mix=mix_name(mix), **dict(zip(GROUP, key, strict=True)), layouts=len(table),
                       best_layout=best, best_s=table.loc[best, "time_s"])  # fmt: skip
            for kind in ("in_sample", "held_out"):
                predicted = table[f"{kind}_s"]
                if predicted.isna().any():
                    row.update({f"{kind}_layout": None, f"{kind}_s": np.nan, f"{kind}_ratio": np.nan})
                    continue
                pick = predicted.idxmin()
                row.update({f"{kind}_layout": pick, f"{kind}_s": table.loc[pick, "time_s"],
                            f"{kind}_ratio": table.loc[pick, "time_s"] / row["best_s"]})  # fmt: skip
                if kind == "in_sample":  # the pick's measured spread reaches the best's: a tie within the noise
                    low, high = table.loc[pick, "time_q25_s"], table.loc[best, "time_q75_s"]
                    row["in_sample_tie"] = bool(low <= high) if np.isfinite(low) and np.isfinite(high) else None
            row["within_target"] = bool(row["in_sample_ratio"] <= TARGET)
            row["held_out_within_target"] = bool(row["held_out_ratio"] <= TARGET) if held_out else None
            rows.append(row)
    columns = [
        "mix",
        *GROUP,
        "layouts",
        "best_layout",
        "best_s",
        "in_sample_layout",
        "in_sample_s",
        "in_sample_ratio",
        "within_target",
        "in_sample_tie",
        "held_out_layout",
        "held_out_s",
        "held_out_ratio",
        "held_out_within_target",
    ]
    return pd.DataFrame(rows, columns=columns)


def _weighted(group: pd.DataFrame, mix: dict[str, float]) -> pd.DataFrame:
    """Per layout: the mix's weighted measured and predicted times (layouts missing a workload dropped)."""
    weights = group["workload"].map(mix)
    for column in ("time_q25_s", "time_q75_s"):
        if column not in group:
            group = group.assign(**{column: np.nan})
    weighted = group.assign(
        time_s=group["time_s"] * weights,
        time_q25_s=group["time_q25_s"] * weights,
        time_q75_s=group["time_q75_s"] * weights,
        in_sample_s=group["in_sample_s"] * weights,
        held_out_s=group["held_out_s"] * weights,
    )
    complete = weighted.groupby("layout")["workload"].nunique() == len(mix)
    columns = ["time_s", "time_q25_s", "time_q75_s", "in_sample_s", "held_out_s"]
    sums = weighted.groupby("layout")[columns].sum(min_count=1)
    return sums[complete]


def check_summary(table: pd.DataFrame) -> dict:
    """The figure the report shows: groups within 1.2x of the best, in-sample and held out, and the worst."""
    if table.empty:
        return {"groups": 0}
    summary = {"groups": int(len(table)), "target": TARGET}
    missed = table[table["in_sample_ratio"] > TARGET]
    summary["in_sample_misses"] = int(len(missed))
    summary["in_sample_misses_within_noise"] = int(missed["in_sample_tie"].eq(True).sum())
    for kind in ("in_sample", "held_out"):
        ratios = table[f"{kind}_ratio"].dropna()
        if ratios.empty:
            continue
        worst = table.loc[ratios.idxmax()]
        summary.update({
            f"{kind}_within_target": float((ratios <= TARGET).mean()),
            f"{kind}_median_ratio": float(ratios.median()),
            f"{kind}_worst_ratio": float(ratios.max()),
            f"{kind}_worst_group": f"{worst['mix']} · {worst['profile']} · {worst['method']}",
        })  # fmt: skip
    return summary


CHECK_FILE = Path("recommendations") / "check.json"  # under a results folder: what the report shows


def save_check(results_dir, model_source: str, summary: dict, table: pd.DataFrame) -> Path:
    """Keep the check beside the results it was made from, for the report (written whole or not at all)."""
    rows = json.loads(table.to_json(orient="records"))  # NaN -> null
    document = {"model": model_source, "summary": summary, "groups": rows}
    return write_text_whole(Path(results_dir) / CHECK_FILE, json.dumps(document, indent=1))
