"""A workload is what a scientist does with an open NWB file; each is one row of the registry.

``select(shape)`` names the part of the bulk series the workload reads (so the physical bound can be computed
from the file's chunk index), ``run(nwbfile, series_path)`` does it, and every result is checked against the
source data: a wrong read raises :class:`WrongRead`, it is never reported as a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from nwb_cloud.errors import NwbCloudError


class WorkloadError(NwbCloudError):
    pass


class UnknownWorkload(WorkloadError):
    pass


class WrongRead(WorkloadError):
    """A read method returned data that differ from the source: a failure, never a time."""


@dataclass
class Result:
    """What a workload read (``raw``, checked exactly) and what it computed from it (``derived``)."""

    raw: np.ndarray | dict
    derived: object = None
    selection: tuple[slice, ...] | None = None


@dataclass(frozen=True)
class Workload:
    name: str
    modality: str
    description: str
    run: Callable  # (nwbfile, series_path) -> Result
    select: Callable | None = None  # (shape) -> tuple of slices of the bulk series; None: metadata only
    includes_open: bool = False  # the timed part is opening the file itself
    tags: tuple[str, ...] = field(default=())

    def check(self, result: Result, expected: Result) -> None:
        """Raise :class:`WrongRead` unless ``result`` equals the source's ``expected`` exactly."""
        got, want = result.raw, expected.raw
        if isinstance(want, dict):
            if got != want:
                differing = sorted(k for k in set(got) | set(want) if got.get(k) != want.get(k))
                raise WrongRead(f"{self.name}: metadata differ from the source in {differing}")
            return
        if got.shape != want.shape or got.dtype != want.dtype:
            raise WrongRead(
                f"{self.name}: read {got.dtype}{list(got.shape)}, the source has {want.dtype}{list(want.shape)}"
            )
        if not np.array_equal(got, want):
            wrong = int(np.count_nonzero(got != want))
            raise WrongRead(f"{self.name}: {wrong} of {got.size} values differ from the source")
