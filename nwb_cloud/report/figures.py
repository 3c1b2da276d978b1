"""The report's figures, drawn with matplotlib's object API (no pyplot, so no global backend is touched).

Every figure is written as PNG (for READMEs and issue comments) and SVG (sharp in the HTML page).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from nwb_cloud.report import format as fmt
from nwb_cloud.report.order import layout_order, method_order, profile_order, workload_order
from nwb_cloud.results.cells import OK

COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
MARKERS = ["o", "s", "D", "^", "v", "P", "X", "*"]
STATUS_TEXT = {"failed": ("failed", "#c62828"), "unavailable": ("unavailable", "#757575"),
               "skipped": ("skipped", "#757575"), "excluded": ("not in grid", "#bdbdbd")}  # fmt: skip


def save(figure: Figure, stem: Path) -> list[Path]:
    FigureCanvasAgg(figure)
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    figure.savefig(paths[0], dpi=110)
    figure.set_layout_engine("none")  # keep the layout just computed: the SVG need not solve it again
    with rc_context({"svg.hashsalt": "nwb-cloud"}):  # the same results give the same file: no date, fixed ids
        figure.savefig(paths[1], metadata={"Date": None})
    return paths


MAX_COLUMNS = 4  # facets per row: a run with many layouts wraps into rows instead of a strip too thin to read


def _facet_grid(facets: int, height: float, width: float = 4.6) -> tuple[Figure, np.ndarray]:
    """A grid of ``facets`` axes, at most :data:`MAX_COLUMNS` per row; the unused cells of the last row hidden."""
    cols = min(facets, MAX_COLUMNS)
    rows = -(-facets // cols)
    figure = Figure(figsize=(width * cols + 1.6, height * rows + 0.9), layout="constrained")
    axes = figure.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)
    for axis in axes.flat[facets:]:
        axis.set_visible(False)
    return figure, axes


def _mark_missing(axis, cell: pd.Series, y: float) -> None:
    text, color = STATUS_TEXT.get(cell["status"], (cell["status"], "#757575"))
    axis.annotate(text, (0.01, y), xycoords=("axes fraction", "data"), va="center", fontsize=7, color=color)


def time_figure(cells: pd.DataFrame, title: str, stem: Path) -> list[Path]:
    """Median time (dot), IQR (bar) and every cold sample (faint) by method, faceted profile x layout, with
    the physical bound (dashed line, or a tick per method when it differs between methods)."""
    methods = method_order(cells)
    y_of = {method: i for i, method in enumerate(methods)}
    shown = [
        (p, layout)
        for p in profile_order(cells)
        for layout in layout_order(cells)
        if ((cells["profile"] == p) & (cells["layout"] == layout) & (cells["status"] != "excluded")).any()
    ]
    figure, axes = _facet_grid(len(shown), height=0.26 * len(methods) + 0.8)
    for axis, (profile, layout) in zip(axes.flat, shown, strict=False):
        facet = cells[(cells["profile"] == profile) & (cells["layout"] == layout)]
        for _, cell in facet[facet["status"] != OK].iterrows():
            _mark_missing(axis, cell, y_of[cell["method"]])
        _draw_times(axis, facet[facet["status"] == OK], y_of)
        _draw_bound(axis, facet, y_of)
        axis.set_title(f"{profile} · {layout}", fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    _finish_axes(axes, methods, "time per cold sample (log scale)")
    figure.suptitle(title, fontsize=11)
    return save(figure, stem)


def _draw_times(axis, measured: pd.DataFrame, y_of: dict) -> None:
    """Every cold sample (faint dots), the median (dot) and the IQR (bar) of each measured cell, in two calls."""
    if measured.empty:
        return
    ys = np.array([y_of[m] for m in measured["method"]], dtype=float)
    samples = [(s, y) for cell_samples, y in zip(measured["samples"], ys, strict=True) for s in (cell_samples or [])]
    if samples:
        xs, sample_ys = zip(*samples, strict=True)
        axis.plot(xs, sample_ys, ".", color="#9e9e9e", ms=3, alpha=0.7, label="cold samples")
    times = measured["time_s"].to_numpy()
    low = np.clip(times - measured["time_q25_s"].fillna(measured["time_s"]).to_numpy(), 0, None)
    high = np.clip(measured["time_q75_s"].fillna(measured["time_s"]).to_numpy() - times, 0, None)
    axis.errorbar(times, ys, xerr=[low, high], fmt="o", color=COLORS[0], ms=5, capsize=2, lw=1.2, label="median, IQR")


def _draw_bound(axis, facet: pd.DataFrame, y_of: dict) -> None:
    bounds = facet.dropna(subset=["bound_s"])
    if bounds.empty:
        return
    values = bounds["bound_s"].to_numpy()
    if np.allclose(values, values[0], rtol=0.01):
        axis.axvline(values[0], color="#2e7d32", ls="--", lw=1.2, label="physical bound")
    else:
        axis.plot(values, [y_of[m] for m in bounds["method"]], marker="|", ls="none", color="#2e7d32", ms=12,
                  mew=2, label="physical bound")  # fmt: skip


def _finish_axes(axes: np.ndarray, methods: list[str], xlabel: str, label=fmt.seconds) -> None:
    for axis in axes.flat:
        axis.set_xscale("log")
        axis.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 3.0), numticks=8))
        axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: label(value)))
        axis.xaxis.set_minor_formatter(NullFormatter())
        axis.set_yticks(range(len(methods)), methods, fontsize=8)
        axis.set_ylim(len(methods) - 0.5, -0.5)
        axis.tick_params(axis="x", labelsize=7)
    for column in axes.T:  # the x label under the lowest visible axis of each column
        visible = [axis for axis in column if axis.get_visible()]
        if visible:
            visible[-1].set_xlabel(xlabel, fontsize=8)
            visible[-1].xaxis.set_tick_params(labelbottom=True)
    legend = {}
    for axis in axes.flat:
        for handle, text in zip(*axis.get_legend_handles_labels(), strict=True):
            legend.setdefault(text, handle)
    if legend:
        axes.flat[0].figure.legend(list(legend.values()), list(legend), loc="outside lower center",
                                   ncols=min(len(legend), 4), fontsize=8, frameon=False)  # fmt: skip


def bound_figure(cells: pd.DataFrame, title: str, stem: Path) -> list[Path] | None:
    """time / bound by method (one facet per profile, one colour per layout); None when no bound was measured."""
    measured = cells[(cells["status"] == OK) & cells["time_over_bound"].notna()]
    if measured.empty:
        return None
    profiles, layouts, methods = profile_order(measured), layout_order(cells), method_order(cells)
    y_of = {method: i for i, method in enumerate(methods)}
    figure, axes = _facet_grid(len(profiles), height=0.26 * len(methods) + 0.8, width=3.8)
    offsets = np.linspace(-0.2, 0.2, len(layouts)) if len(layouts) > 1 else [0.0]
    for axis, profile in zip(axes.flat, profiles, strict=False):
        axis.axvline(1.0, color="#2e7d32", ls="--", lw=1.2)
        for i, layout in enumerate(layouts):
            facet = measured[(measured["profile"] == profile) & (measured["layout"] == layout)]
            axis.plot(facet["time_over_bound"], [y_of[m] + offsets[i] for m in facet["method"]],
                      ls="none", marker=MARKERS[i % len(MARKERS)], color=COLORS[i % len(COLORS)], ms=5,
                      label=layout)  # fmt: skip
        axis.set_title(profile, fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    _finish_axes(axes, methods, "time / physical bound (1× = at the bound)", label=fmt.ratio)
    figure.suptitle(title, fontsize=11)
    return save(figure, stem)


def headline_figure(ratios: pd.DataFrame, title: str, stem: Path) -> list[Path] | None:
    """Speedup of the best layout over the baseline, per method (rows) and profile (colour), one facet per
    workload; None when no workload has two layouts measured."""
    ratios = ratios.dropna(subset=["speedup"])
    if ratios.empty:
        return None
    workloads = workload_order(ratios)
    methods = method_order(ratios, by="speedup", ascending=False)
    profiles = profile_order(ratios)
    y_of = {method: i for i, method in enumerate(methods)}
    figure, axes = _facet_grid(len(workloads), height=0.26 * len(methods) + 0.8, width=3.8)
    offsets = np.linspace(-0.2, 0.2, len(profiles)) if len(profiles) > 1 else [0.0]
    for axis, workload in zip(axes.flat, workloads, strict=False):
        axis.axvline(1.0, color="#616161", lw=1)
        for i, profile in enumerate(profiles):
            rows = ratios[(ratios["workload"] == workload) & (ratios["profile"] == profile)]
            axis.plot(rows["speedup"], [y_of[m] + offsets[i] for m in rows["method"]], ls="none",
                      marker=MARKERS[i % len(MARKERS)], color=COLORS[i % len(COLORS)], ms=5, label=profile)  # fmt: skip
        axis.set_title(workload, fontsize=9)
        axis.grid(axis="x", alpha=0.3)
    _finish_axes(axes, methods, "speedup of the best layout over the baseline", label=fmt.ratio)
    figure.suptitle(title, fontsize=11)
    return save(figure, stem)
