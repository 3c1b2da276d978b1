"""Workloads: what a scientist reads. Each module defines ``WORKLOADS``, a list of :class:`Workload` rows."""

from __future__ import annotations

from nwb_cloud.workloads import opposing, reads, session_open
from nwb_cloud.workloads.base import Result, UnknownWorkload, Workload, WorkloadError, WrongRead

WORKLOADS: dict[str, Workload] = {w.name: w for module in (reads, opposing, session_open) for w in module.WORKLOADS}


def get_workload(name: str) -> Workload:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UnknownWorkload(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}") from None


__all__ = ["WORKLOADS", "Result", "UnknownWorkload", "Workload", "WorkloadError", "WrongRead", "get_workload"]
