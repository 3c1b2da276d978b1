"""Numbers as a reader wants them: times with units, bytes in decimal units, ratios with an x; NaN says
"not measured" instead of a blank or a zero."""

from __future__ import annotations

import datetime
import math

NOT_MEASURED = "not measured"


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def text(value) -> str:
    return NOT_MEASURED if missing(value) or value == "" else str(value)


def seconds(value, digits: int = 3) -> str:
    if missing(value):
        return NOT_MEASURED
    value = float(value)
    if value < 1e-3:
        return f"{value * 1e6:.{digits}g} µs"
    if value < 1:
        return f"{value * 1e3:.{digits}g} ms"
    return f"{value:.{digits}g} s"


def seconds_range(low, high) -> str:
    """``low – high``, with one more digit while the two would print the same (a narrow spread stays visible)."""
    if missing(low) or missing(high):
        return NOT_MEASURED
    digits = 3
    while digits < 6 and low != high and seconds(low, digits) == seconds(high, digits):
        digits += 1
    return f"{seconds(low, digits)} – {seconds(high, digits)}"


def size(value) -> str:
    if missing(value):
        return NOT_MEASURED
    value = float(value)
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f} B"


def count(value) -> str:
    """Counts are medians over samples: whole numbers print as such, halves (1.5 connections) stay visible."""
    if missing(value):
        return NOT_MEASURED
    value = float(value)
    return f"{round(value):,}" if value.is_integer() or abs(value) >= 100 else f"{value:.3g}"


def ratio(value) -> str:
    if missing(value):
        return NOT_MEASURED
    return f"{float(value):.3g}×"


def bandwidth(value) -> str:
    return "unshaped" if missing(value) else f"{size(value)}/s"


def timestamp(milliseconds) -> str:
    if missing(milliseconds):
        return "unknown"
    moment = datetime.datetime.fromtimestamp(float(milliseconds) / 1000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
