"""What a report needs to know about a run beyond asv's numbers, written beside the asv results.

Names and figures only: the store's address is a label, never credentials or signed URLs. Cell keys are
``workload|method|layout|profile``. Beside the run's identity, grid, profiles, assets, codecs and floors:

``samples``         per cell, the median of every figure of its timed samples (``seconds``, ``cpu_s``,
                    ``open_s``, traffic, ``open_*`` traffic), ``seconds_q25``/``seconds_q75``, and ``samples`` (n)
``cell_samples``    per cell, every timed sample in order: ``seconds``, ``cpu_s`` (client CPU of the timed part,
                    the reader's process only; ``system_cpu_s``, its part in the kernel), ``serving_cpu_s``
                    (the embedded server's and the proxy's CPU over the timed part), ``open_s``,
                    ``open_cpu_s``, ``peak_growth_bytes`` (the most memory the timed part held at once),
                    ``sample``, ``grid_pass``, ``pid``, ``process_samples`` (see :mod:`nwb_cloud.suite.samples`)
``sampling``        how samples were taken: ``launch`` (one process per sample), ``samples_per_cell`` (the
                    grid's ``repeat``), ``headline_samples``, ``grid_passes``, ``samples_taken``,
                    ``fresh_process_samples`` (samples that were their process's first: all, when cold is cold),
                    ``distinct_processes``, ``index_builds`` (apart from the samples) and how many were their
                    process's first
``rank_stability``  the order of methods in each group (workload, layout, profile) from one pass over the
                    grid against the next: ``passes`` compared, ``groups``, ``groups_same_order``, ``pairs``,
                    ``concordant_pairs``, ``kendall_tau`` (over all pairs), per group its two orders, and the
                    ``swapped`` pairs with how far apart their medians are
``cell_failures``   cell -> the first line of its last failure (a wrong read or an exception: the cell failed)
``unsupported_cells``  cell -> why the method cannot represent it (skipped with that reason, not failed)
``prepare_failures``/``prepare_unsupported``  ``method|modality/layout`` -> why preparing it failed / is impossible
``first_use``       per read cell (``workload|method|layout|profile``; method ``local-h5py`` is the baseline:
                    h5py + pynwb on the local file), the medians of its first uses in a fresh process
                    (``first_use_s`` imports included, ``after_imports_s``, ``imports_s``, ``open_s``, ``read_s``,
                    ``cpu_s``; see :mod:`nwb_cloud.suite.first_use`), ``samples`` (n) and ``each`` sample
``serving_cost``    what the embedded server and the shaping proxy cost in CPU per request and per byte on this
                    machine, and whether they share the reader's cores (:mod:`nwb_cloud.cloud.calibrate`)
"""

from __future__ import annotations

import itertools
import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path

from nwb_cloud.access import METHODS
from nwb_cloud.cloud.endpoint import EMBEDDED_SERVER
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.settings import usable_cores
from nwb_cloud.suite.samples import INDEX_BUILD, failure_log, first_use_log, sample_log, unsupported_log
from nwb_cloud.suite.state import RunState

# per-sample fields that identify the sample rather than measure it (no median of them is taken)
IDENTITY = ("sample", "grid_pass", "pid", "process_samples")
# per-sample fields kept sample by sample in ``cell_samples``
PER_SAMPLE = ("seconds", "cpu_s", "system_cpu_s", "serving_cpu_s", "open_s", "open_cpu_s", "peak_growth_bytes",
              *IDENTITY)  # fmt: skip


def run_info(
    state: RunState, overhead: dict | None = None, commit: str | None = None, serving: dict | None = None
) -> dict:
    catalog = state.catalog
    cells = _cells(sample_log(state).path)
    kept = {_key(label): [{k: r[k] for k in PER_SAMPLE if k in r} for r in records] for label, records in cells.items()}
    return {
        "run_id": state.run_id,
        "commit": commit,
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": {"host": socket.gethostname(), "cores": usable_cores(), "python": platform.python_version()},
        "source": catalog.source,
        "size": catalog.size,
        "seed": catalog.seed,
        "store": catalog.store.label if catalog.source != "embedded" else f"embedded {EMBEDDED_SERVER} (loopback)",
        "grid": state.grid.to_dict(),
        "profiles": {name: PROFILES[name].to_dict() for name in state.grid.profiles if name in PROFILES},
        "assets": {name: a.summary() for name, a in catalog.assets.items()},  # + write time, compression ratio
        "codecs": state.extra.get("codecs", []),  # decode speed of each codec on this machine
        # MB of output per CPU second of each inflate decoder, per codec and chunk size: nwb-index's choice
        "decoders": state.extra.get("decoders", []),
        "unavailable_methods": {n: m.unavailable() for n, m in METHODS.items() if m.unavailable()},
        "prepare_failures": state.extra.get("prepare_failures", {}),
        "prepare_started": state.extra.get("prepare_started"),  # epoch seconds; the run id marks its end
        "floors": state.extra.get("floors", []),
        "proxy_overhead": overhead,
        "serving_cost": serving,
        "sampling": _sampling(state, cells),
        "samples": _sample_medians(cells),
        "cell_samples": kept,
        "rank_stability": rank_stability(kept),
        "first_use": _first_use(state),
        "cell_failures": _cell_failures(state),
        "unsupported_cells": _unsupported_cells(state),
        "prepare_unsupported": state.extra.get("prepare_unsupported", {}),
        **({"loop": state.extra["loop"]} if "loop" in state.extra else {}),  # the closed loop's plan and verdicts
    }


def _cells(path: Path) -> dict[str, list[dict]]:
    cells: dict[str, list[dict]] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            cells.setdefault(record.pop("cell", "?"), []).append(record)
    return cells


def cell_key(benchmark: str, values: list[str]) -> str:
    """The run info's key of a cell: its benchmark's name and its parameter values in order, ``|``-joined
    (``ophys_patch|nwb-index|neuroconv-default|in-region``, ``index_build|lindi|ophys/x|in-region``)."""
    return "|".join([benchmark, *values])


def split_key(key: str) -> tuple[str, list[str]]:
    """A :func:`cell_key` -> its benchmark's name and its parameter values."""
    benchmark, *values = key.split("|")
    return benchmark, values


def _key(label: str) -> str:
    """A sample log's label ``workload[method, layout, profile]`` -> its :func:`cell_key`."""
    workload, _, rest = label.partition("[")
    return cell_key(workload, [part.strip() for part in rest.rstrip("]").split(",")])


def _numbers(records: list[dict], name: str) -> list[float]:
    return [r[name] for r in records if isinstance(r.get(name), int | float) and not isinstance(r.get(name), bool)]


def _sample_medians(cells: dict[str, list[dict]]) -> dict[str, dict]:
    """Per cell, the median of every figure of its timed samples (open traffic included), the quartiles of its
    time and the number of samples."""
    out = {}
    for label, records in cells.items():
        fields = {name for record in records for name in record if name not in IDENTITY and _numbers([record], name)}
        medians = {name: statistics.median(_numbers(records, name)) for name in sorted(fields)}
        seconds = sorted(_numbers(records, "seconds"))
        if seconds:
            medians["seconds_q25"], medians["seconds_q75"] = _quartiles(seconds)
        out[_key(label)] = medians | {"samples": len(records)}
    return out


def _first_use(state: RunState) -> dict[str, dict]:
    out = {}
    for label, records in _cells(first_use_log(state).path).items():
        key = _key(label.removeprefix("first_use_"))
        fields = sorted({name for record in records for name in record if name not in IDENTITY})
        out[key] = {name: statistics.median(_numbers(records, name)) for name in fields if _numbers(records, name)}
        out[key] |= {"samples": len(records), "each": records}
    return out


def _quartiles(values: list[float]) -> tuple[float, float]:
    """The 25th and 75th percentiles, linearly interpolated (numpy's default), of sorted ``values``."""

    def at(q: float) -> float:
        position = q * (len(values) - 1)
        low = int(position)
        high = min(low + 1, len(values) - 1)
        return values[low] + (values[high] - values[low]) * (position - low)

    return at(0.25), at(0.75)


def _sampling(state: RunState, cells: dict[str, list[dict]]) -> dict:
    """The read samples and the index builds (one per cell) counted apart: a build is no read sample, and runs
    before 2026-12-04 logged it without its process."""
    reads = [r for label, rs in cells.items() if not label.startswith(f"{INDEX_BUILD}[") for r in rs]
    builds = [r for label, rs in cells.items() if label.startswith(f"{INDEX_BUILD}[") for r in rs]
    headline = max((b.samples or 0 for b in state.grid.blocks or []), default=0) or state.grid.repeat
    return {
        "launch": "asv forkserver, repeat=1, rounds=samples: every sample in a process of its own",
        "samples_per_cell": state.grid.repeat,
        "headline_samples": headline,
        "grid_passes": state.grid.rounds(),
        "samples_taken": len(reads),
        "fresh_process_samples": sum(1 for r in reads if r.get("process_samples") == 1),
        "distinct_processes": len({r.get("pid") for r in reads if r.get("pid") is not None}),
        "index_builds": len(builds),
        "index_builds_fresh_process": (
            sum(1 for r in builds if r["process_samples"] == 1) if all("process_samples" in r for r in builds) else None
        ),  # None: not logged
    }


def rank_stability(cell_samples: dict[str, list[dict]]) -> dict:
    """How the methods of each group (workload, layout, profile) rank in one pass over the grid against the next.

    ``cell_samples`` are the run info's (keyed ``workload|method|layout|profile``). The two passes compared are
    the run's last two: every cell with two samples or more took its samples there (a cell taking fewer
    samples sits out the first passes). A pair of methods is concordant when both passes order it the same
    way; ``kendall_tau`` = (concordant - discordant) / pairs over all groups. ``swapped`` lists the discordant
    pairs with ``gap``, how far apart the pair's medians over all their samples are (the slower over the
    faster, minus 1): a swap within the noise of two near-equal methods says nothing about the ranking.
    """
    by_pass: dict[tuple, dict[str, dict[int, float]]] = {}
    medians: dict[tuple, dict[str, float]] = {}
    for key, records in cell_samples.items():
        workload, method, layout, profile = key.split("|")
        for record in records:
            if isinstance(record.get("grid_pass"), int) and _numbers([record], "seconds"):
                group = by_pass.setdefault((workload, layout, profile), {})
                group.setdefault(method, {})[record["grid_pass"]] = record["seconds"]
        if _numbers(records, "seconds"):
            medians.setdefault((workload, layout, profile), {})[method] = statistics.median(
                _numbers(records, "seconds")
            )
    passes = sorted({p for group in by_pass.values() for times in group.values() for p in times})
    if len(passes) < 2:
        return {"passes": passes, "groups": 0, "pairs": 0}
    first, second = passes[-2], passes[-1]
    groups, pairs, concordant, discordant, same, swapped = {}, 0, 0, 0, 0, []
    for (workload, layout, profile), methods in sorted(by_pass.items()):
        both = {m: t for m, t in methods.items() if first in t and second in t}
        if len(both) < 2:
            continue
        order_a = sorted(both, key=lambda m: both[m][first])
        order_b = sorted(both, key=lambda m: both[m][second])
        for a, b in itertools.combinations(order_a, 2):  # a before b in the first pass
            sign = (both[a][first] - both[b][first]) * (both[a][second] - both[b][second])
            pairs += 1
            concordant += sign > 0
            discordant += sign < 0
            if sign < 0:
                median = medians[workload, layout, profile]
                gap = (
                    max(median[a], median[b]) / min(median[a], median[b]) - 1 if min(median[a], median[b]) > 0 else None
                )
                swapped.append({"group": f"{workload}|{layout}|{profile}", "methods": [a, b], "gap": gap})
        same += order_a == order_b
        groups[f"{workload}|{layout}|{profile}"] = {"first": order_a, "second": order_b}
    return {
        "passes": [first, second],
        "groups": len(groups),
        "groups_same_order": same,
        "pairs": pairs,
        "concordant_pairs": concordant,
        "kendall_tau": (concordant - discordant) / pairs if pairs else None,
        "orders": groups,
        "swapped": swapped,
    }


def _cell_failures(state: RunState) -> dict[str, str]:
    return {_key(label): records[-1]["error"] for label, records in _cells(failure_log(state).path).items()}


def _unsupported_cells(state: RunState) -> dict[str, str]:
    """Cells skipped because the method cannot represent the asset: found preparing it, or when opening it."""
    out = {_key(label): records[-1]["reason"] for label, records in _cells(unsupported_log(state).path).items()}
    prepared = state.extra.get("prepare_unsupported", {})
    for workload, method, layout, profile in state.grid.cells() if prepared else []:
        modality = state.grid.modality(workload)
        reason = prepared.get(f"{method}|{modality}/{layout}")
        if reason:
            out.setdefault(cell_key(workload, [method, layout, profile]), f"unsupported: {reason}")
    return out


def failures(info: dict, asv_status: int = 0) -> list[str]:
    """What failed in a run, one line each; empty when nothing real failed (unsupported and unavailable cells
    are skips with their reason, not failures): a failed sample of a cell (a wrong read, an exception), a
    method that could not be prepared for an asset the grid reads with it, or asv's own non-zero status."""
    lines = [f"{cell}: {error}" for cell, error in sorted((info.get("cell_failures") or {}).items())]
    lines += [f"prepare {asset}: {error}" for asset, error in sorted((info.get("prepare_failures") or {}).items())]
    if asv_status and not lines:
        lines.append(f"asv run exited with status {asv_status} (see its output)")
    return lines


def write_run_info(results_dir: Path, info: dict) -> Path:
    path = Path(results_dir) / "run-info" / f"{info['run_id']}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(info, indent=1, default=str))
    os.replace(partial, path)
    return path
