"""One benchmark cell (workload x method x layout x profile) and the life of one cold sample in it.

``setup`` opens a fresh handle (unless opening is the workload), ``run`` is the timed part, ``finish``
checks the result against the source and closes everything. Nothing is cached between samples except
the expected answer, which is computed once from the local source file (or, for a DANDI asset with no
local copy, from a second read method) and kept on disk.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.access import AccessError, get_method
from nwb_cloud.datasets.catalog import Catalog
from nwb_cloud.datasets.local import open_local
from nwb_cloud.workloads import Result, get_workload

REFERENCE_METHOD = "remfile"  # checks DANDI assets, which have no local source copy


@dataclass(frozen=True)
class Cell:
    workload: str
    method: str
    layout: str
    profile: str = "loopback"

    @property
    def label(self) -> str:
        return f"{self.workload}[{self.method}, {self.layout}, {self.profile}]"


class CellRun:
    def __init__(self, catalog: Catalog, cell: Cell, store=None, expected_dir: Path | None = None):
        self.cell = cell
        self.workload = get_workload(cell.workload)
        self.method = get_method(cell.method)
        self.asset = catalog.asset(self.workload.modality, cell.layout)
        self.store = store or catalog.store
        self.catalog = catalog
        self.expected_dir = expected_dir
        self.opened = None
        self.result: Result | None = None

    def setup(self) -> None:
        self.result = None
        if not self.workload.includes_open:
            self.opened = self.method(self.store, self.asset.key)

    def run(self) -> Result:
        if self.workload.includes_open:
            self.opened = self.method(self.store, self.asset.key)
        self.result = self.workload.run(self.opened.nwbfile, self.asset.series)
        return self.result

    def finish(self) -> None:
        """Check the last result against the source (raising ``WrongRead``) and close the handle."""
        try:
            if self.result is None:
                raise AccessError(f"{self.cell.label}: no result to check (the timed run did not complete)")
            self.workload.check(self.result, self.expected())
        finally:
            self.result = None
            self.close()

    def close(self) -> None:
        if self.opened is not None:
            self.opened.close()
            self.opened = None

    def once(self) -> Result:
        """A whole cold sample: setup, run, check."""
        self.setup()
        try:
            result = self.run()
        except BaseException:
            self.close()
            raise
        self.finish()
        return result

    def expected(self) -> Result:
        cache = self._expected_cache_path()
        if cache is not None and cache.exists():
            return pickle.loads(cache.read_bytes())
        expected = self._compute_expected()
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            partial = cache.with_suffix(".partial")
            partial.write_bytes(pickle.dumps(expected))
            partial.replace(cache)
        return expected

    def expected_file(self) -> Path:
        """Where the expected answer is kept on disk (computed first when missing); needs ``expected_dir``."""
        self.expected()
        path = self._expected_cache_path()
        if path is None:
            raise AccessError(f"{self.cell.label}: no expected_dir to keep the expected answer in")
        return path

    def _compute_expected(self) -> Result:
        if self.asset.local_path:
            with open_local(self.asset.local_path) as io:  # an HDF5 file or a Zarr folder
                return self.workload.run(io.read(), self.asset.series)
        with get_method(REFERENCE_METHOD)(self.catalog.store, self.asset.key) as opened:
            return self.workload.run(opened.nwbfile, self.asset.series)

    def _expected_cache_path(self) -> Path | None:
        if self.expected_dir is None:
            return None
        identity = json.dumps([self.asset.key, self.asset.etag, self.workload.name])
        return Path(self.expected_dir) / (hashlib.sha256(identity.encode()).hexdigest()[:16] + ".pickle")
