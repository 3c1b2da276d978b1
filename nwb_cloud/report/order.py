"""The order axes appear in, in tables and figures: the registries' order first, then anything else found.

Methods are ordered by how close they come to the bound (or by time) so a figure reads top-down, best first.
"""

from __future__ import annotations

import pandas as pd

from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.workloads import WORKLOADS


def _registry_first(values, registry) -> list[str]:
    present = list(dict.fromkeys(str(v) for v in values))
    return [name for name in registry if name in present] + sorted(v for v in present if v not in registry)


def profile_order(frame: pd.DataFrame) -> list[str]:
    return _registry_first(frame["profile"], PROFILES)


def layout_order(frame: pd.DataFrame) -> list[str]:
    return _registry_first(frame["layout"], LAYOUTS)


def workload_order(frame: pd.DataFrame) -> list[str]:
    return _registry_first(frame["workload"], WORKLOADS)


def method_order(frame: pd.DataFrame, by: str | None = None, ascending: bool = True) -> list[str]:
    """Methods by the median of ``by`` (time / bound where measured, else time); unmeasured ones last."""
    if by is None:
        by = "time_over_bound" if frame.get("time_over_bound", pd.Series(dtype=float)).notna().any() else "time_s"
    medians = frame.groupby("method", sort=False)[by].median()
    ranked = medians.dropna().sort_values(ascending=ascending).index.tolist()
    return ranked + sorted(m for m in medians.index if m not in ranked)


def in_registry_order(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows sorted by workload, profile and layout in registry order (stable: ties keep their order)."""
    orders = {"workload": workload_order, "profile": profile_order, "layout": layout_order}
    keys = [column for column in orders if column in frame]
    if frame.empty or not keys:
        return frame
    position = {column: {name: i for i, name in enumerate(orders[column](frame))} for column in keys}
    return frame.sort_values(keys, key=lambda column: column.map(position[column.name]), kind="stable").reset_index(
        drop=True
    )
