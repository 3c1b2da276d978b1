"""``write_guidance(results_dir, out_dir)``: reports/guidance.html, what a lab should choose and why.

Everything on the page is computed from the results folder when the page is written: the recommendations
come from the model fitted to that run, the ratios and plots from its measured cells, the caveats from
what the run did and did not measure. Nothing is typed in by hand.
"""

from __future__ import annotations

import datetime
import html
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nwb_cloud.analysis import cost as network_cost
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.files import write_text_whole
from nwb_cloud.recommend.check import TARGET, check_recommendations, check_summary, mix_name
from nwb_cloud.recommend.codecs import CODECS, caveat
from nwb_cloud.recommend.errors import RecommendError
from nwb_cloud.recommend.fit import fit
from nwb_cloud.recommend.measurements import Measurements, load
from nwb_cloud.recommend.recommendation import recommend
from nwb_cloud.workloads import WORKLOADS

BASELINE = "neuroconv-default"
TITLE = "Choosing chunk shape and codec for NWB data read from the cloud"


def write_guidance(results, out_dir: str | Path) -> Path:
    """Write ``out_dir/guidance.html`` (with ``figures/guidance-*.png`` and ``tables/guidance-*.csv``)."""
    measurements = results if isinstance(results, Measurements) else load(Path(results))
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    fitted = fit(measurements)
    check = check_recommendations(measurements)
    ratios = headline_ratios(measurements.cells)
    parts = [
        f"<h1>{_e(TITLE)}</h1>",
        _p(f"Generated {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC} from {measurements.source}: "
           f"{len(measurements.cells)} timed reads of {measurements.cells['layout'].nunique()} layouts by "
           f"{measurements.cells['method'].nunique()} read methods under "
           f"{measurements.cells['profile'].nunique()} network profiles. Every number here comes from that run."),
        _section("In short", _in_short(ratios, measurements)),
        _section("What to choose", _what_to_choose(measurements, fitted.model)),
        _section("The evidence: measured layouts against NeuroConv's default",
                 _evidence(measurements, ratios, out_dir)),
        _section("Decoding can cost more than fetching", _decode(measurements, fitted, out_dir)),
        _section("How far to trust the recommendations", _trust(fitted, check, out_dir)),
        _section("Caveats", _caveats(measurements, fitted)),
    ]  # fmt: skip
    tables = out_dir / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    fitted.residuals.to_csv(tables / "guidance-residuals.csv", index=False)  # the fit, cell by cell
    check.to_csv(tables / "guidance-check.csv", index=False)  # the model's pick vs the measured best, per group
    parts.insert(2, _p('Tables behind this page: <a href="tables/guidance-check.csv">guidance-check.csv</a> (the '
                       'recommendations check, group by group), <a href="tables/guidance-residuals.csv">'
                       "guidance-residuals.csv</a> (measured and predicted time of every read)."))  # fmt: skip
    return write_text_whole(out_dir / "guidance.html", _page("\n".join(parts)))


# -- tables ---------------------------------------------------------------------------------------------------
def headline_ratios(cells: pd.DataFrame, baseline: str = BASELINE) -> pd.DataFrame:
    """Per workload x profile x method: the fastest measured layout against NeuroConv's default."""
    rows = []
    for (workload, profile, method), group in cells.groupby(["workload", "profile", "method"], sort=True):
        base = group[group["layout"] == baseline]
        if base.empty or len(group) < 2:
            continue
        best = group.loc[group["time_s"].idxmin()]
        default_s = float(base["time_s"].iloc[0])
        rows.append(dict(workload=workload, modality=best["modality"], profile=profile, method=method,
                         default_s=default_s, best_layout=best["layout"], best_s=float(best["time_s"]),
                         speedup=default_s / float(best["time_s"])))  # fmt: skip
    return pd.DataFrame(rows, columns=["workload", "modality", "profile", "method", "default_s", "best_layout",
                                       "best_s", "speedup"])  # fmt: skip


def _in_short(ratios: pd.DataFrame, measurements: Measurements) -> str:
    if ratios.empty:
        return _p(f"This run has no {BASELINE} layout beside another one: no ratio against NeuroConv's default.")
    items = []
    for (workload, profile), group in ratios.groupby(["workload", "profile"], sort=True):
        top = group.loc[group["speedup"].idxmax()]
        layouts = group["best_layout"].value_counts()
        layout = measurements.layout(top["modality"], layouts.index[0])
        winner = (
            "NeuroConv's default layout itself"
            if layouts.index[0] == BASELINE
            else f"layout <b>{_e(layouts.index[0])}</b> (chunks {tuple(layout['chunk_shape'])}, {_e(layout['codec'])})"
        )
        items.append(
            f"<b>{_e(workload)}</b> under {_e(profile)}: {winner} was the fastest for {layouts.iloc[0]} of "
            f"{len(group)} read methods. The fastest measured layout against NeuroConv's default: "
            f"{group['speedup'].median():.1f}x (median over methods; {group['speedup'].min():.1f}x to "
            f"{top['speedup']:.1f}x, the most with {_e(top['method'])}: {top['default_s']:.3g} s -> "
            f"{top['best_s']:.3g} s on {_e(top['best_layout'])})."
        )
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _what_to_choose(measurements: Measurements, model) -> str:
    rows, errors = [], []
    fitted_codecs = [c for c in model.codecs if c in CODECS]
    profiles = [p for p in PROFILES if PROFILES[p].shaped]
    measured_profiles = set(measurements.cells["profile"])
    for modality, layouts in measurements.layouts.groupby("modality", sort=True):
        reads = sorted(w for w in measurements.cells[measurements.cells["modality"] == modality]["workload"].unique()
                       if w in WORKLOADS)  # fmt: skip
        if not reads:
            continue
        shape, dtype = tuple(layouts.iloc[0]["shape"]), layouts.iloc[0]["dtype"]
        mixes = [{w: 1.0} for w in reads] + ([{w: 1 / len(reads) for w in reads}] if len(reads) > 1 else [])
        for mix in mixes:
            for profile in profiles:
                try:
                    r = recommend((shape, dtype, modality), mix, profile, model=model, codecs=fitted_codecs or None)
                except RecommendError as error:
                    errors.append(f"{modality} {mix_name(mix)} {profile}: {error}")
                    continue
                rows.append({
                    "data": f"{modality} {dtype}{list(shape)}",
                    "reads": mix_name(mix),
                    "network": profile + ("" if profile in measured_profiles else " (not measured: predicted)"),
                    "chunk shape": str(r.chunk_shape),
                    "chunk MB": f"{r.chunk_bytes / 1e6:.2f}",
                    "codec": r.codec,
                    "expected s per read": f"{r.weighted_seconds:.3g}",
                    "NeuroConv default s": f"{r.default.weighted_seconds:.3g}",
                    "faster by": f"{r.speedup_vs_default:.1f}x",
                })  # fmt: skip
    text = _p(
        "The layout the fitted model recommends for the data shapes of this run, for a typical reader (the model "
        "fitted to every read method at once), per read and network profile. Reads that pull different ways "
        "are also shown as an even mix: the recommendation is then a compromise. Reproduce any row, or ask for "
        "another shape or mix, with <code>nwb-cloud recommend --shape ... --dtype ... --workload NAME=WEIGHT "
        "--profile ...</code>; rewrite an existing file with <code>nwb-cloud rewrite IN.nwb OUT.nwb --series ... "
        "--recommend --workload ... --profile ...</code>; in a NeuroConv conversion, "
        "<code>recommend(...).apply(backend_configuration)</code> before <code>configure_backend</code>."
    )
    table = pd.DataFrame(rows).to_html(index=False, escape=True, border=0) if rows else ""
    return text + table + "".join(_p(f"Not priced: {_e(e)}") for e in errors)


def _evidence(measurements: Measurements, ratios: pd.DataFrame, out_dir: Path) -> str:
    parts = [_p(
        "Measured times of each layout relative to NeuroConv's default layout (below 1: faster), the median over "
        "read methods with the range across methods as a line. A layout that speeds one read up can slow "
        "another down: that is the trade-off the recommendation weighs."
    )]  # fmt: skip
    for modality in sorted(measurements.cells["modality"].unique()):
        figure = _relative_figure(
            measurements.cells, modality, out_dir / "figures" / f"guidance-{modality}-layouts.png"
        )
        if figure:
            parts.append(f'<img src="figures/{figure.name}" alt="{_e(modality)} layouts relative to the default">')
    described = measurements.layouts.assign(chunk_shape=measurements.layouts["chunk_shape"].map(str))
    parts.append("<h3>Layouts measured</h3>")
    parts.append(described[["modality", "layout", "chunk_shape", "codec", "backend", "size_bytes"]]
                 .to_html(index=False, border=0))  # fmt: skip
    if not ratios.empty:
        parts.append("<h3>Best measured layout vs NeuroConv's default, per read method</h3>")
        shown = ratios.assign(
            default_s=ratios["default_s"].map("{:.3g}".format),
            best_s=ratios["best_s"].map("{:.3g}".format),
            speedup=ratios["speedup"].map("{:.2f}x".format),
        )
        parts.append(shown.drop(columns="modality").to_html(index=False, border=0))
    return "".join(parts)


def _relative_figure(cells: pd.DataFrame, modality: str, path: Path) -> Path | None:
    scope = cells[cells["modality"] == modality]
    base = scope[scope["layout"] == BASELINE].set_index(["workload", "profile", "method"])["time_s"]
    if base.empty:
        return None
    keyed = scope.set_index(["workload", "profile", "method"])
    relative = (keyed["time_s"] / base.reindex(keyed.index).to_numpy()).rename("relative").reset_index()
    relative["layout"] = keyed["layout"].to_numpy()
    relative = relative.dropna()
    profiles = sorted(relative["profile"].unique())
    layouts = sorted(relative["layout"].unique(), key=lambda name: (name != BASELINE, name))
    workloads = sorted(relative["workload"].unique())
    width_in = max(6.0, 0.38 * len(layouts) * max(1, len(workloads)) / 2 + 2)
    fig = Figure(figsize=(width_in, 3.2 * len(profiles)))
    axes = fig.subplots(len(profiles), 1, squeeze=False, sharex=True)
    width = 0.8 / max(1, len(workloads))
    for ax, profile in zip(axes[:, 0], profiles, strict=True):
        for j, workload in enumerate(workloads):
            data = relative[(relative["profile"] == profile) & (relative["workload"] == workload)]
            stats = data.groupby("layout")["relative"].agg(["median", "min", "max"]).reindex(layouts)
            x = np.arange(len(layouts)) + (j - (len(workloads) - 1) / 2) * width
            ax.bar(x, stats["median"], width=width, label=workload)
            ax.vlines(x, stats["min"], stats["max"], color="black", linewidth=0.8)
        ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_xticks(np.arange(len(layouts)), layouts, rotation=40, ha="right", fontsize=8)
        ax.set_title(f"{modality} · {profile}", fontsize=10)
        ax.set_ylabel("time / default time", fontsize=8)
    axes[0][0].legend(fontsize=8)
    _save(fig, path)
    return path


def _decode(measurements: Measurements, fitted, out_dir: Path) -> str:
    decode = measurements.decode
    if decode.empty:
        return _p("This run recorded no local decode measurements.")
    profile = "in-region" if "in-region" in PROFILES else next(p for p in PROFILES if PROFILES[p].shaped)
    decode = decode.assign(fetch_s=[network_cost.ideal_transfer_s(PROFILES[profile], int(b), warm=True)
                                    for b in decode["compressed_bytes"]])  # fmt: skip
    decode = decode.assign(decode_over_fetch=decode["local_s"] / decode["fetch_s"])
    path = out_dir / "figures" / "guidance-decode.png"
    fig = Figure(figsize=(6, 4.5))
    ax = fig.subplots()
    for codec, group in decode.groupby("codec"):
        ax.scatter(group["fetch_s"], group["local_s"], label=codec, s=30, alpha=0.8)
    low = float(min(decode["fetch_s"].min(), decode["local_s"].min())) / 2
    high = float(max(decode["fetch_s"].max(), decode["local_s"].max())) * 2
    ax.plot([low, high], [low, high], color="grey", linestyle="--", linewidth=0.8)
    ax.set(xscale="log", yscale="log", xlabel=f"fetching the touched chunks, ideal {profile} (s)",
           ylabel="decoding them on one core, measured (s)")  # fmt: skip
    ax.legend(fontsize=8)
    _save(fig, path)
    worst = decode.loc[decode["decode_over_fetch"].idxmax()]
    codecs = pd.DataFrame([
        {"codec": name, "decode MB/s (one core)": f"{c.decode_bytes_per_s / 1e6:.0f}",
         **{f"ratio {m}": f"{r:.2f}" for m, r in sorted(c.ratio.items())}, "caveat": caveat(name)}
        for name, c in sorted(fitted.model.codecs.items())
    ])  # fmt: skip
    return (
        _p(
            f"Every reader must decode the whole chunks a read touches. The largest measured excess: "
            f"{_e(worst['workload'])} on {_e(worst['layout'])} ({_e(worst['codec'])}, {int(worst['chunks'])} chunks, "
            f"{worst['decoded_bytes'] / 1e6:.1f} MB decoded) took {worst['local_s']:.3g} s to decode on one core "
            f"against {worst['fetch_s']:.3g} s to fetch its {worst['compressed_bytes'] / 1e6:.1f} MB at {profile} "
            f"speed: {worst['decode_over_fetch']:.1f}x. Points above the diagonal are reads where decoding, not the "
            f"network, sets the pace; small chunks and fast codecs move them down."
        )  # fmt: skip
        + f'<img src="figures/{path.name}" alt="decode time against fetch time">'
        + "<h3>Codecs, as fitted to the local decode measurements</h3>"
        + codecs.to_html(index=False, border=0)
    )


def _trust(fitted, check: pd.DataFrame, out_dir: Path) -> str:
    summary, checked = fitted.summary(), check_summary(check)
    residuals = fitted.residuals
    path = out_dir / "figures" / "guidance-fit.png"
    fig = Figure(figsize=(5.5, 5))
    ax = fig.subplots()
    for profile, group in residuals.groupby("profile"):
        ax.scatter(group["time_s"], group["predicted_s"], s=14, label=profile, alpha=0.7)
    low, high = (
        residuals[["time_s", "predicted_s"]].min().min() / 2,
        residuals[["time_s", "predicted_s"]].max().max() * 2,
    )
    line = np.array([low, high])
    ax.plot(line, line, color="black", linewidth=0.8)
    for factor in (TARGET, 2.0):
        ax.plot(line, line * factor, color="grey", linewidth=0.5, linestyle="--")
        ax.plot(line, line / factor, color="grey", linewidth=0.5, linestyle="--")
    ax.set(xscale="log", yscale="log", xlabel="measured time (s)", ylabel="predicted time (s)")
    ax.legend(fontsize=8)
    _save(fig, path)
    text = (
        _p(
            f"The cost model (requests x latency + bytes / bandwidth + decode, a few parameters per read method and "
            f"codec) reproduces the {summary['cells']} timed reads within a median factor of "
            f"{summary['median_error_factor']:.2f} ({summary['within_1.5x']:.0%} within 1.5x, worst "
            f"{summary['worst_predicted_s'] / summary['worst_measured_s']:.2f}x on {_e(summary['worst_cell'])})."
        )
        + f'<img src="figures/{path.name}" alt="predicted against measured time">'
    )
    if not checked.get("groups"):
        return text + _p("No group of cells measured two layouts or more: the recommendations could not be checked.")
    text += _p(
        f"<b>Recommendations hold:</b> for {checked['groups']} groups (a read or an even mix of reads, a network "
        f"profile, a read method) the model's pick among the measured layouts was measured within {TARGET}x of "
        f"the fastest measured layout in {checked['in_sample_within_target']:.0%} of groups (worst "
        f"{checked['in_sample_worst_ratio']:.2f}x: {_e(checked['in_sample_worst_group'])})"
        + (f"; fitted without the layout it predicts (held out), {checked['held_out_within_target']:.0%} of groups "
           f"(worst {checked['held_out_worst_ratio']:.2f}x)." if "held_out_within_target" in checked else ".")
    )  # fmt: skip
    missed = check[check["in_sample_ratio"] > TARGET]
    if len(missed):
        text += _p(
            f"{checked['in_sample_misses_within_noise']} of the {checked['in_sample_misses']} misses are ties "
            "within the measurement's own spread (the pick's interquartile range of samples reaches the best's)."
        )
        text += "<h3>Groups where the pick missed the target</h3>" + missed.to_html(index=False, border=0)
    return text


def _caveats(measurements: Measurements, fitted) -> str:
    cells = measurements.cells
    items = [
        f"Measured on one machine ({_e(measurements.source)}); decode speeds are this machine's, and a read "
        "method's parallelism was fitted here: a bigger machine decodes faster and shifts the balance toward "
        "larger chunks and stronger codecs.",
        "The loopback profile is the embedded S3 endpoint on the same machine: no latency, bytes at the "
        "measured loopback throughput. The shaped profiles apply the latency and bandwidth of the profile table; "
        "profiles marked 'not measured' are the model's extrapolation.",
        "Opening a file (metadata) does not depend on the series' chunk shape or codec and is not modelled here; "
        "see the main report for open times and paged HDF5 layouts.",
        f"The read methods measured: {_e(', '.join(sorted(cells['method'].unique())))}. A typical reader is the "
        "model fitted to all of them at once; pass --method for one.",
    ]
    used = sorted(set(cells["codec"]))
    items += [f"{_e(c)}: {_e(caveat(c))}" for c in used if caveat(c)]
    items += [_e(note) for note in measurements.notes]
    items += [f"{n} cell(s) not fitted: {_e(why)}" for why, n in fitted.left_out.items()]
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def _save(fig: Figure, path: Path) -> None:
    """Draw with the Agg canvas (matplotlib's object API: no pyplot, no global backend touched)."""
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- html -----------------------------------------------------------------------------------------------------
def _e(text) -> str:
    return html.escape(str(text))


def _p(text: str) -> str:
    return f"<p>{text}</p>"


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_e(title)}</h2>{body}</section>"


def _page(body: str) -> str:
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.45}"
             "table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}"
             "td,th{border-bottom:1px solid #ddd;padding:3px 8px;text-align:left}"
             "img{max-width:100%;display:block;margin:0.8em 0}code{background:#f4f4f4;padding:0 3px}")  # fmt: skip
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{_e(TITLE)}</title>"
            f"<style>{style}</style></head><body>{body}</body></html>")  # fmt: skip


__all__ = ["headline_ratios", "write_guidance"]
