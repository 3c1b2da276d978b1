"""What the cost model was fitted on, and how far a request lies outside it.

The fit measured a few series (a shape and a dtype per modality), a few read workloads and a few network
profiles. A recommendation for a 10-hour recording or a float64 series extrapolates the fitted parameters,
which may still be right but was never checked: :func:`outside_fit` says so, naming the quantity and the
factor by which it exceeds what was measured. Inside the range it says nothing.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field


class ModalityRange(BaseModel):
    shapes: list[tuple[int, ...]] = Field(description="the shapes of the series the fitted cells read")
    dtypes: list[str]
    rate_hz: float | None = Field(None, description="the sampling rate of those series (lengths in seconds)")


class FittedRange(BaseModel):
    modalities: dict[str, ModalityRange]
    workloads: list[str] = Field(description="read workloads with fitted cells")
    profiles: list[str] = Field(description="network profiles with fitted cells")


def outside_fit(fitted: FittedRange | None, shape, dtype: str, modality: str, workloads, profile: str) -> list[str]:
    """One line per way the request lies outside ``fitted``, with the factor; empty inside it."""
    if fitted is None:
        return ["the model records no fitted range (a prior, or fitted before ranges were kept): extrapolation "
                "cannot be told"]  # fmt: skip
    found = fitted.modalities.get(modality)
    if found is None:
        return [f"no {modality} series was measured: every figure is extrapolated"]
    warnings = []
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    if dtype.name not in found.dtypes:
        sizes = ", ".join(f"{d} ({np.dtype(d).itemsize} B)" for d in found.dtypes)
        warnings.append(f"dtype {dtype.name} ({dtype.itemsize} B) was never measured; fitted: {sizes}")
    same_rank = [s for s in found.shapes if len(s) == len(shape)]
    if not same_rank:
        ranks = sorted({len(s) for s in found.shapes})
        warnings.append(f"{len(shape)} axes: the fitted {modality} series had {', '.join(map(str, ranks))}")
        return warnings
    warnings += _beyond(shape[0], [s[0] for s in same_rank], "length", "recording", lambda n: _length(n, found.rate_hz))
    for axis in range(1, len(shape)):
        warnings += _beyond(shape[axis], [s[axis] for s in same_rank], f"axis {axis}", "series", str)
    nbytes = math.prod(shape) * dtype.itemsize
    fitted_bytes = [math.prod(s) * np.dtype(d).itemsize for s in same_rank for d in found.dtypes]
    warnings += _beyond(nbytes, fitted_bytes, "size", "series", lambda b: f"{b / 1e6:,.0f} MB")
    unseen = [w for w in workloads if w not in fitted.workloads]
    if unseen:
        warnings.append(f"workload {', '.join(unseen)} never measured; fitted: {', '.join(fitted.workloads)}")
    if profile not in fitted.profiles:
        warnings.append(f"profile {profile} never measured (priced from its definition); fitted: "
                        f"{', '.join(fitted.profiles)}")  # fmt: skip
    return warnings


def _beyond(value: float, fitted: list[float], what: str, thing: str, show) -> list[str]:
    longest, shortest = max(fitted), min(fitted)
    largest = "longest" if what == "length" else "largest"
    smallest = "shortest" if what == "length" else "smallest"
    if value > longest:
        return [f"{what} {show(value)} is {_times(value / longest)} the {largest} fitted {thing} ({show(longest)})"]
    if value < shortest:
        return [f"{what} {show(value)} is 1/{_times(shortest / value)} the {smallest} fitted {thing} "
                f"({show(shortest)})"]  # fmt: skip
    return []


def _times(factor: float) -> str:
    return f"{factor:,.0f}x" if factor >= 10 else f"{factor:.2g}x"


def _length(samples: float, rate_hz: float | None) -> str:
    if not rate_hz:
        return f"{samples:,.0f} samples"
    seconds = samples / rate_hz
    shown = f"{seconds:,.0f}" if seconds >= 100 else f"{seconds:.3g}"
    return f"{shown} s ({samples:,.0f} samples at {rate_hz:g} Hz)"
