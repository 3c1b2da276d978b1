"""Reading asv result files into one record per benchmark x parameter combination, with asv's own reader.

asv (0.6.6) stores one JSON file per machine x commit x environment under ``results/<machine>/``. Per cell,
the result is a number, ``null`` when the benchmark raised (asv prints "failed"), or ``NaN`` when it was
skipped, e.g. by ``NotImplementedError`` in setup (asv prints "n/a"). Both are kept: nothing is dropped.
"""

from __future__ import annotations

import ast
import itertools
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from asv import util as asv_util
from asv.results import Results

from nwb_cloud.results.errors import ResultsError

FAILED, SKIPPED, MEASURED = "failed", "skipped", "measured"
DEFAULT_PARAM_NAMES = ("method", "layout", "profile")  # the streaming grid's axes (nwb_cloud.suite.asv_grid)


@dataclass(frozen=True)
class Machine:
    name: str
    folder: Path
    info: dict = field(default_factory=dict)  # asv's machine.json: cpu, num_cpu, ram, os, arch


@dataclass
class Record:
    """One benchmark at one parameter combination in one results file."""

    machine: str
    commit: str
    env: str
    commit_date: float | None  # ms since the epoch, as asv stores it
    started_at: float | None  # ms since the epoch: when asv ran this benchmark (its last round, with rounds > 1)
    benchmark: str  # asv's full name, e.g. streaming.OphysPatch.time_workload
    suite: str  # the benchmark module, e.g. streaming
    workload_class: str  # e.g. OphysPatch
    measure: str  # the method of the class, e.g. time_workload or track_requests
    kind: str  # time or track (from benchmarks.json or the name)
    unit: str
    params: dict  # param name -> value
    value: float | None
    outcome: str  # MEASURED, FAILED or SKIPPED
    q25: float | None = None
    q75: float | None = None
    samples: list[float] | None = None
    repeat: int | None = None
    # asv's total duration of every benchmark of the results file (all rounds, setup caches, build): the time the
    # run spent measuring (asv runs benchmarks one at a time; started_at keeps only a benchmark's last round)
    file_seconds: float | None = None


def load_machines(results_dir: Path) -> dict[str, Machine]:
    """Every ``<machine>/machine.json`` under ``results_dir``; other folders (run-info, reliability) are not asv's."""
    machines = {}
    for machine_json in sorted(Path(results_dir).glob("*/machine.json")):
        try:
            info = json.loads(machine_json.read_text())
        except ValueError as error:
            raise ResultsError(f"asv machine file {machine_json} is not JSON: {error}") from None
        name = info.get("machine") or machine_json.parent.name
        machines[name] = Machine(name=name, folder=machine_json.parent, info=info)
    return machines


def load_benchmark_meta(results_dir: Path) -> dict:
    """asv's ``benchmarks.json`` (param names, type, unit of each benchmark), or {} when it is absent."""
    path = Path(results_dir) / "benchmarks.json"
    if not path.exists():
        return {}
    try:
        meta = json.loads(path.read_text())
    except ValueError as error:
        raise ResultsError(f"asv benchmark list {path} is not JSON: {error}") from None
    return {name: entry for name, entry in meta.items() if isinstance(entry, dict)}


def load_records(results_dir: Path) -> tuple[list[Record], dict[str, Machine]]:
    """All cells of all results files of all machines in ``results_dir``."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ResultsError(f"no asv results folder at {results_dir}")
    machines = load_machines(results_dir)
    meta = load_benchmark_meta(results_dir)
    records: list[Record] = []
    for machine in machines.values():
        for path in sorted(machine.folder.glob("*.json")):
            if path.name != "machine.json":
                records.extend(_file_records(path, machine.name, meta))
    return records, machines


def _file_records(path: Path, machine: str, meta: dict) -> list[Record]:
    try:
        results = Results.load(str(path), machine_name=machine)
    except (asv_util.UserError, ValueError, KeyError, TypeError) as error:
        raise ResultsError(f"asv results file {path} cannot be read: {error}") from None
    records = []
    file_seconds = sum(float(seconds) for seconds in results.duration.values()) or None
    for benchmark in sorted(results.get_all_result_keys()):
        param_values = results.get_result_params(benchmark) or []
        combinations = list(itertools.product(*param_values))  # [()] for an unparameterized benchmark
        values = results.get_result_value(benchmark, param_values)
        stats = results.get_result_stats(benchmark, param_values)
        samples = results.get_result_samples(benchmark, param_values)
        names = _param_names(meta.get(benchmark, {}), len(param_values))
        suite, workload_class, measure = _split_name(benchmark)
        kind = meta.get(benchmark, {}).get("type") or ("track" if measure.startswith("track") else "time")
        unit = meta.get(benchmark, {}).get("unit") or ("seconds" if kind == "time" else "")
        for combination, value, stat, sample in zip(combinations, values, stats, samples, strict=True):
            stat = stat or {}
            records.append(
                Record(
                    machine=machine,
                    commit=results.commit_hash or "",
                    env=results.env_name or "",
                    commit_date=results.date,
                    started_at=results.started_at.get(benchmark),
                    benchmark=benchmark,
                    suite=suite,
                    workload_class=workload_class,
                    measure=measure,
                    kind=kind,
                    unit=unit,
                    params={n: _literal(v) for n, v in zip(names, combination, strict=True)},
                    value=None if value is None else float(value),
                    outcome=_outcome(value),
                    q25=stat.get("q_25"),
                    q75=stat.get("q_75"),
                    samples=[float(s) for s in sample] if sample else None,
                    repeat=stat.get("repeat"),
                    file_seconds=file_seconds,
                )
            )
    return records


def _outcome(value) -> str:
    if value is None:
        return FAILED
    if isinstance(value, float) and math.isnan(value):
        return SKIPPED
    return MEASURED


def _param_names(entry: dict, count: int) -> list[str]:
    names = list(entry.get("param_names") or [])
    if len(names) != count:
        names = list(DEFAULT_PARAM_NAMES[:count]) + [f"param{i}" for i in range(len(DEFAULT_PARAM_NAMES), count)]
    return names


def _split_name(benchmark: str) -> tuple[str, str, str]:
    parts = benchmark.split(".")
    if len(parts) >= 3:
        return ".".join(parts[:-2]), parts[-2], parts[-1]
    if len(parts) == 2:
        return parts[0], "", parts[1]
    return "", "", benchmark


def _literal(text):
    """asv stores parameter values as their repr ("'fsspec'"); back to the value."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def snake_case(class_name: str) -> str:
    """The workload name of a generated class: OphysPatch -> ophys_patch (the inverse of the grid's naming)."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", class_name).lower()
