"""Fitting the cost model to the measured matrix, in three small least-squares steps, with residuals per cell.

1. Codecs, from the local decode measurements (each file's selection read from the page cache, and one
   chunk of each codec decoded in memory): ``local_s = chunk_overhead * C + Bd / speed_codec``, non-negative
   least squares on relative error. The compression ratio of a codec per modality is that of the whole
   series in the layouts written with it (geometric mean), else of the chunks measured.
2. Each method's traffic, from the requests and bytes the shaping proxy counted:
   ``R = q + r C + u Bc``, ``W = o + a Bc + g C``, non-negative least squares on relative error.
3. Each method's fixed time ``f``, parallelism ``P`` and decode parallelism ``D``, from the times: least
   squares on log time (``D`` is bounded by the cores of the machine that measured).

Parameters are fitted per read method on the plain HDF5 layouts, and again per storage variant (paged HDF5,
Zarr) from that variant's cells, pulled toward the method's plain-HDF5 parameters.

Steps 2 and 3 are pulled weakly toward a prior (the typical reader, fitted first to every method's cells at
once; for that one, :class:`~nwb_cloud.recommend.model.MethodParams`' defaults) so that a method measured on
few geometries still gets finite, explainable parameters. The fit's quality is the residual of every
timed cell: predicted over measured time (:attr:`FitResult.residuals`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares, nnls

from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.recommend.errors import NotEnoughMeasurements
from nwb_cloud.recommend.fitted_range import FittedRange, ModalityRange
from nwb_cloud.recommend.measurements import CELL_KEY, Measurements
from nwb_cloud.recommend.model import (
    ANY,
    MB,
    PLAIN,
    CodecParams,
    CostModel,
    MethodParams,
    Network,
    params_key,
    price,
    traffic,
)

PRIOR_STRENGTH = 0.01  # weight of the prior against one measured cell (both in relative/log units)
TOO_FAST = 1e12  # bytes/s of a codec whose decode is too fast to tell from the per-chunk overhead
MIN_FIXED_S, MAX_PARALLELISM, MAX_DECODE_PARALLELISM = 1e-6, 256.0, 64.0


@dataclass
class FitResult:
    model: CostModel
    residuals: pd.DataFrame  # one row per timed cell: measured and predicted time and their parts
    decode_residuals: pd.DataFrame  # one row per local decode measurement
    left_out: dict  # why some cells were not fitted -> how many

    def summary(self) -> dict:
        return summarize(self.residuals, self.decode_residuals)


def fit(measurements: Measurements) -> FitResult:
    """The cost model of ``measurements`` and how well it reproduces each of them."""
    codecs, overhead, decode_residuals = fit_codecs(measurements.decode, measurements.layouts)
    cells = measurements.cells
    unknown = ~cells["codec"].isin(codecs)
    left_out = {
        f"no decode measurement of codec {c}": int(n) for c, n in cells[unknown].groupby("codec").size().items()
    }
    cells = cells[~unknown].reset_index(drop=True)
    if cells.empty:
        raise NotEnoughMeasurements("no timed cell has a codec with a decode measurement")
    model = CostModel(
        methods={},
        codecs=codecs,
        chunk_overhead_s=overhead,
        loopback_bandwidth=measurements.loopback_bandwidth,
        source=f"fitted to {len(cells)} timed read cells of {measurements.source}",
    )
    networks, cores = measurements.networks, max(1.0 + 1e-9, float(measurements.cores or MAX_DECODE_PARALLELISM))
    if "variant" not in cells:
        cells = cells.assign(variant=PLAIN)
    plain = cells[cells["variant"] == PLAIN]
    base = plain if len(plain) else cells
    typical = fit_method(base, model, networks, MethodParams(), cores)
    methods = {ANY: typical}
    for name, group in base.groupby("method", sort=True):
        methods[str(name)] = fit_method(group, model, networks, typical, cores)
    for variant, scope in cells[cells["variant"] != PLAIN].groupby("variant", sort=True):
        methods[params_key(ANY, variant)] = fit_method(scope, model, networks, typical, cores)
        for name, group in scope.groupby("method", sort=True):
            prior = methods.get(str(name), typical)
            methods[params_key(str(name), variant)] = fit_method(group, model, networks, prior, cores)
    model = model.model_copy(update={"methods": methods, "fitted_range": fitted_range(cells, measurements.layouts)})
    residuals = predict_cells(model, cells, networks)
    model = model.model_copy(update={"quality": summarize(residuals, decode_residuals)})
    return FitResult(model=model, residuals=residuals, decode_residuals=decode_residuals, left_out=left_out)


# -- step 1: codecs -------------------------------------------------------------------------------------------
def fitted_range(cells: pd.DataFrame, layouts: pd.DataFrame) -> FittedRange:
    """The series, workloads and profiles the timed ``cells`` measured (a request beyond them extrapolates)."""
    modalities = {}
    read = layouts.merge(cells[["modality", "layout"]].drop_duplicates(), on=["modality", "layout"])
    for modality, rows in read.groupby("modality", sort=True):
        sizes = MODALITIES[modality].sizes.values() if modality in MODALITIES else []
        rates = {float(s.rate) for s in sizes if getattr(s, "rate", None)}
        modalities[str(modality)] = ModalityRange(
            shapes=sorted({tuple(int(n) for n in shape) for shape in rows["shape"]}),
            dtypes=sorted({str(d) for d in rows["dtype"] if d}),
            rate_hz=rates.pop() if len(rates) == 1 else None,
        )
    return FittedRange(
        modalities=modalities,
        workloads=sorted(map(str, cells["workload"].unique())),
        profiles=sorted(map(str, cells["profile"].unique())),
    )


def fit_codecs(
    decode: pd.DataFrame, layouts: pd.DataFrame | None = None
) -> tuple[dict[str, CodecParams], float, pd.DataFrame]:
    if decode is None or decode.empty:
        raise NotEnoughMeasurements("no local decode measurements (run info 'floors'): the codecs cannot be fitted")
    codecs = sorted(decode["codec"].unique())
    columns = [decode["chunks"].to_numpy(float)]
    columns += [np.where(decode["codec"] == c, decode["decoded_bytes"].to_numpy(float), 0.0) for c in codecs]
    design = np.column_stack(columns)
    local = decode["local_s"].to_numpy(float)
    coefficients = _nnls(design, local, weights=1 / local, prior=None)
    overhead = float(coefficients[0])
    params = {}
    whole = {}
    if layouts is not None and "ratio" in layouts:
        known = layouts[np.isfinite(layouts["ratio"].astype(float)) & (layouts["ratio"].astype(float) > 0)]
        for (codec, modality), group in known.groupby(["codec", "modality"]):
            whole[(codec, modality)] = float(np.exp(np.log(group["ratio"].astype(float)).mean()))
    for index, codec in enumerate(codecs, start=1):
        rows = decode[decode["codec"] == codec]
        sums = rows.groupby("modality")[["decoded_bytes", "compressed_bytes"]].sum()
        ratios = {m: float(r["decoded_bytes"] / r["compressed_bytes"]) for m, r in sums.iterrows()}
        ratios.update({m: r for (c, m), r in whole.items() if c == codec})
        coefficient = coefficients[index]
        params[codec] = CodecParams(
            decode_bytes_per_s=1 / coefficient if coefficient > 1 / TOO_FAST else TOO_FAST,
            ratio=ratios,
            source=f"fitted to {len(rows)} local decode measurements",
        )
    predicted = design @ coefficients
    residuals = decode.assign(predicted_s=predicted, ratio=predicted / local)
    return params, overhead, residuals


# -- steps 2 and 3: one method ----------------------------------------------------------------------------
def fit_method(
    cells: pd.DataFrame,
    model: CostModel,
    networks: dict[str, Network],
    prior: MethodParams,
    cores: float = MAX_DECODE_PARALLELISM,
) -> MethodParams:
    chunks = cells["chunks"].to_numpy(float)
    runs = _runs(cells)
    stored = cells["compressed_bytes"].to_numpy(float)
    ones = np.ones_like(chunks)
    values = prior.model_dump()

    requests = cells["requests"].to_numpy(float)
    measured = np.isfinite(requests)
    if measured.any():
        design = np.column_stack([ones, chunks, runs, stored / MB])[measured]
        start = [prior.requests_fixed, prior.requests_per_chunk, prior.requests_per_run, prior.requests_per_mb]
        q, r, s, u = _nnls(design, requests[measured], 1 / np.maximum(requests[measured], 1), start)
        values.update(requests_fixed=q, requests_per_chunk=r, requests_per_run=s, requests_per_mb=u)
    wire = cells["bytes_received"].to_numpy(float)
    measured_wire = np.isfinite(wire)
    if measured_wire.any():
        design = np.column_stack([ones, stored, chunks, runs])[measured_wire]
        start = [prior.wire_fixed_bytes, prior.wire_per_byte, prior.wire_per_chunk_bytes, prior.wire_per_run_bytes]
        o, a, g, h = _nnls(design, wire[measured_wire], 1 / np.maximum(wire[measured_wire], 1e3), start)
        values.update(wire_fixed_bytes=o, wire_per_byte=a, wire_per_chunk_bytes=g, wire_per_run_bytes=h)
    values.update(cells=len(cells), traffic_cells=int(measured.sum()))

    decode = _decode_s(model, cells)
    nets = [networks[p] for p in cells["profile"]]
    latency = np.array([n.latency_s for n in nets])
    per_connection = np.array([n.connection_bandwidth for n in nets])
    total = np.array([n.total_bandwidth for n in nets])
    measured_s = cells["time_s"].to_numpy(float)
    base = MethodParams(**values)
    requests_hat, wire_hat = traffic(base, chunks, stored, runs)
    prior_x = np.log([max(prior.fixed_s, MIN_FIXED_S), prior.parallelism, prior.decode_parallelism])

    def residuals(x):
        fixed, parallelism, decoders = np.exp(x)
        bandwidth = np.minimum(total, parallelism * per_connection)
        seconds = fixed + latency * requests_hat / parallelism + wire_hat / bandwidth + decode / decoders
        return np.concatenate([np.log(seconds / measured_s), np.sqrt(PRIOR_STRENGTH) * (x - prior_x)])

    bounds = ([np.log(MIN_FIXED_S), 0.0, 0.0], [np.log(1e3), np.log(MAX_PARALLELISM), np.log(cores)])
    start = np.clip(prior_x, bounds[0], bounds[1])
    solution = least_squares(residuals, start, bounds=bounds)
    fixed, parallelism, decoders = np.exp(solution.x)
    values.update(fixed_s=float(fixed), parallelism=float(max(1.0, parallelism)),
                  decode_parallelism=float(max(1.0, decoders)))  # fmt: skip
    return MethodParams(**values)


def _runs(cells: pd.DataFrame) -> np.ndarray:
    """Runs of adjacent touched chunks per cell; where unknown (older measurements), one per chunk."""
    chunks = cells["chunks"].to_numpy(float)
    if "runs" not in cells:
        return chunks
    runs = cells["runs"].to_numpy(float)
    return np.where(np.isfinite(runs), runs, chunks)


def _decode_s(model: CostModel, cells: pd.DataFrame) -> np.ndarray:
    return np.array(
        [
            model.decode_s(codec, c, d)
            for codec, c, d in zip(cells["codec"], cells["chunks"], cells["decoded_bytes"], strict=True)
        ],
        dtype=float,
    )


def _nnls(design: np.ndarray, target: np.ndarray, weights: np.ndarray, prior) -> np.ndarray:
    """Non-negative least squares on ``weights``-scaled rows, columns normalised, optionally pulled to ``prior``."""
    scaled = design * weights[:, None]
    norms = np.linalg.norm(scaled, axis=0)
    norms[norms == 0] = 1.0
    matrix, rhs = scaled / norms, target * weights
    if prior is not None:
        strength = np.sqrt(PRIOR_STRENGTH)
        matrix = np.vstack([matrix, strength * np.eye(len(norms))])
        rhs = np.concatenate([rhs, strength * np.asarray(prior, dtype=float) * norms])
    solution, _ = nnls(matrix, rhs, maxiter=50 * len(norms))
    return solution / norms


# -- predictions and quality ----------------------------------------------------------------------------------
def predict_cells(
    model: CostModel, cells: pd.DataFrame, networks: dict[str, Network], method: str | None = None
) -> pd.DataFrame:
    """``cells`` with the model's predicted time and its parts (``method``: force one parameter set, e.g. ANY)."""
    out = []
    if "variant" not in cells:
        cells = cells.assign(variant=PLAIN)
    for (name, codec, profile, variant), group in cells.groupby(["method", "codec", "profile", "variant"], sort=False):
        params = model.methods[_fitted_key(model, method or name, variant)]
        chunks = group["chunks"].to_numpy(float)
        cost = price(params, networks[profile], chunks, group["compressed_bytes"].to_numpy(float),
                     model.decode_s(codec, chunks, group["decoded_bytes"].to_numpy(float)),
                     runs=_runs(group))  # fmt: skip
        out.append(
            group.assign(
                predicted_s=cost.seconds,
                fixed_s=cost.fixed_s,
                latency_s=cost.latency_s,
                transfer_s=cost.transfer_s,
                decode_s=cost.decode_s,
                predicted_requests=cost.requests,
                predicted_bytes=cost.wire_bytes,
            )
        )
    frame = pd.concat(out).sort_index() if out else cells.assign(predicted_s=np.nan)
    frame["ratio"] = frame["predicted_s"] / frame["time_s"]
    frame["log_error"] = np.log(frame["ratio"])
    return frame


def _fitted_key(model: CostModel, method: str, variant: str) -> str:
    """The most specific parameters the model has: the method's for the variant, its plain ones, a typical reader's."""
    for key in (params_key(method, variant), method, params_key(ANY, variant), ANY):
        if key in model.methods:
            return key
    raise NotEnoughMeasurements(f"the model has no parameters for {method} ({variant})")


def summarize(residuals: pd.DataFrame, decode_residuals: pd.DataFrame | None = None) -> dict:
    """The fit in a few numbers: error factors (exp of |log(predicted/measured)|) and the worst cell."""
    errors = np.abs(residuals["log_error"].to_numpy(float))
    if not len(errors):
        return {"cells": 0}
    worst = residuals.iloc[int(np.argmax(errors))]
    summary = {
        "cells": int(len(errors)),
        "methods": int(residuals["method"].nunique()),
        "median_error_factor": float(np.exp(np.median(errors))),
        "p90_error_factor": float(np.exp(np.quantile(errors, 0.9))),
        "within_1.5x": float(np.mean(errors <= np.log(1.5))),
        "within_2x": float(np.mean(errors <= np.log(2.0))),
        "worst_cell": " · ".join(str(worst[k]) for k in CELL_KEY[1:]),
        "worst_predicted_s": float(worst["predicted_s"]),
        "worst_measured_s": float(worst["time_s"]),
    }
    if decode_residuals is not None and len(decode_residuals):
        decode_errors = np.abs(np.log(decode_residuals["ratio"].to_numpy(float)))
        summary["decode_median_error_factor"] = float(np.exp(np.median(decode_errors)))
    return summary
