"""The prepared run, as a small JSON file: the catalog (store + assets) and the grid to measure.

``nwb-cloud bench`` writes it; the asv benchmarks (other processes) load it through ``NWB_CLOUD_STATE``.
It holds the embedded endpoint's throw-away credentials, so it is written atomically with owner-only
permissions, and nothing from it but names reaches results.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nwb_cloud.datasets.catalog import Catalog, CatalogError


@dataclass
class Grid:
    """The values of each axis to measure, and how many cold samples per cell."""

    workloads: list[str]
    methods: list[str]
    layouts: list[str]
    profiles: list[str]
    repeat: int = 5
    # A quick run measures every method under ``main_profile`` and only the ``everywhere`` methods under the
    # other profiles; None measures every method everywhere.
    everywhere: list[str] | None = None
    main_profile: str | None = None

    def excludes(self, method: str, profile: str) -> bool:
        return self.everywhere is not None and method not in self.everywhere and profile != self.main_profile

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class RunState:
    catalog: Catalog
    grid: Grid
    data_dir: str
    run_id: str
    extra: dict = field(default_factory=dict)  # per-layer additions (e.g. proxy calibration figures)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "catalog": self.catalog.to_dict(),
            "grid": self.grid.to_dict(),
            "data_dir": self.data_dir,
            "run_id": self.run_id,
            "extra": self.extra,
        }
        partial = path.with_name(path.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(payload, handle, indent=1)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        path = Path(path)
        if not path.exists():
            raise CatalogError(
                f"no prepared run at {path}: run `nwb-cloud bench` (which prepares it) or "
                "`nwb-cloud prepare`, or point NWB_CLOUD_STATE at an existing state file"
            )
        try:
            payload = json.loads(path.read_text())
            return cls(
                catalog=Catalog.from_dict(payload["catalog"]),
                grid=Grid(**payload["grid"]),
                data_dir=payload["data_dir"],
                run_id=payload["run_id"],
                extra=payload.get("extra", {}),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CatalogError(
                f"state file {path} is corrupt ({type(error).__name__}: {error}); prepare again"
            ) from None
