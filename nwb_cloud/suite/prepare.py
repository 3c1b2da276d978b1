"""Preparing a run: the data in the store, what each read method needs beside it, and the state file."""

from __future__ import annotations

import time
import uuid

from nwb_cloud.access import METHODS, get_method
from nwb_cloud.analysis import floor_for, measure_loopback_throughput
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.datasets.catalog import prepare_dandi, prepare_embedded
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.settings import Settings
from nwb_cloud.suite.state import Grid, RunState
from nwb_cloud.workloads import WORKLOADS, get_workload

REPEATS = {"tiny": 2, "quick": 3, "full": 7}
# Quick runs measure these methods under every profile and all the others under the main profile only.
EVERYWHERE = ["fsspec", "remfile", "kerchunk"]
MAIN_PROFILE = "in-region"
PROFILES_BY_SIZE = {
    "tiny": ["loopback", "in-region"],
    "quick": ["loopback", "in-region", "lab"],
    "full": list(PROFILES),
}


def default_grid(settings: Settings) -> Grid:
    """Every registered row of every axis (quick runs: a representative subset of method x profile)."""
    if settings.source == "dandi":  # real S3: the network is what it is, and the layout is as published
        return Grid(list(WORKLOADS), list(METHODS), ["as-published"], ["aws"], REPEATS[settings.size])
    quick = settings.size != "full"
    return Grid(
        workloads=list(WORKLOADS),
        methods=list(METHODS),
        layouts=list(LAYOUTS),
        profiles=PROFILES_BY_SIZE[settings.size],
        repeat=REPEATS[settings.size],
        everywhere=[m for m in EVERYWHERE if m in METHODS] if quick else None,
        main_profile=MAIN_PROFILE if quick else None,
    )


def prepare_run(settings: Settings, store, grid: Grid | None = None, progress: bool = True, log=print) -> RunState:
    grid = grid or default_grid(settings)
    for method in grid.methods:
        get_method(method)  # an unknown name fails here, before any work
    if settings.source == "dandi":
        catalog = prepare_dandi()
    else:
        catalog = prepare_embedded(
            store, settings.data_dir, settings.size, settings.seed, layouts=grid.layouts, progress=progress, log=log
        )
    failures = prepare_methods(catalog, grid.methods, log=log)
    floors = prepare_floors(catalog, grid, settings.data_dir, log=log) if settings.source == "embedded" else []
    state = RunState(
        catalog=catalog,
        grid=grid,
        data_dir=str(settings.data_dir),
        run_id=f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        extra={"prepare_failures": failures, "floors": floors},
    )
    state.save(settings.state_path)
    return state


def prepare_floors(catalog, grid, data_dir, log=print) -> list[dict]:
    """Measure loopback throughput and every cell's physical bound once, before asv's processes need them."""
    largest = max(catalog.assets.values(), key=lambda a: a.size_bytes)
    throughput = measure_loopback_throughput(catalog.store, largest.key, data_dir)
    log(f"loopback throughput of the endpoint: {throughput / 1e6:.0f} MB/s (one connection)")
    floors = []
    for workload_name in grid.workloads:
        workload = get_workload(workload_name)
        for layout in grid.layouts:
            asset = catalog.asset(workload.modality, layout)
            summary = []
            for profile in grid.profiles:
                floor = floor_for(asset, workload, profile, data_dir)
                floors.append({**floor.to_dict(), "layout": layout, "modality": workload.modality})
                summary.append(f"{profile} {floor.seconds * 1e3:.0f} ms ({floor.binding})")
            log(f"  bound of {workload_name} on {layout}: " + ", ".join(summary))
    return floors


def prepare_methods(catalog, methods, log=print) -> dict[str, str]:
    """Build what methods need beside each asset (indexes, JSON, copies); a failure is kept for its cells."""
    failures: dict[str, str] = {}
    for name in methods:
        method = get_method(name)
        if method.prepare is None or method.unavailable():
            continue
        for asset in catalog.assets.values():
            started = time.perf_counter()
            try:
                method.prepare(catalog.store, asset.key, asset.local_path)
            except Exception as error:  # noqa: BLE001 - recorded as that cell's failure, shown in the report
                failures[f"{name}|{asset.name}"] = f"{type(error).__name__}: {error}".splitlines()[0][:300]
                log(f"  {name} cannot read {asset.name}: {failures[f'{name}|{asset.name}']}")
            else:
                log(f"  {name}: prepared {asset.name} in {time.perf_counter() - started:.1f} s")
    return failures
