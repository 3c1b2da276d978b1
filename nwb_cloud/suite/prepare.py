"""Preparing a run: the data in the store, what each read method needs beside it, and the state file."""

from __future__ import annotations

import time
import uuid

from nwb_cloud.access import METHODS, get_method
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.datasets.catalog import prepare_dandi, prepare_embedded
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.settings import Settings
from nwb_cloud.suite.state import Grid, RunState
from nwb_cloud.workloads import WORKLOADS

REPEATS = {"tiny": 2, "quick": 5, "full": 10}


def default_grid(settings: Settings) -> Grid:
    """Every registered row of every axis; the DANDI source has one layout, the one it was published in."""
    layouts = ["as-published"] if settings.source == "dandi" else list(LAYOUTS)
    return Grid(
        workloads=list(WORKLOADS),
        methods=list(METHODS),
        layouts=layouts,
        profiles=[name for name in PROFILES if name == "loopback"],
        repeat=REPEATS[settings.size],
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
    state = RunState(
        catalog=catalog,
        grid=grid,
        data_dir=str(settings.data_dir),
        run_id=f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        extra={"prepare_failures": failures},
    )
    state.save(settings.state_path)
    return state


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
