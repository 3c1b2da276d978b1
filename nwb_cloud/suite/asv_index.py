"""The index-build benchmark: building our NWB index vs LINDI's JSON from the store, under a network profile.

One build per cell (tool x asset x profile), through the profile's shaping proxy; its figures are kept in the
run's sample log so each ``track_*`` reports the same build (asv gives every track its own process).
"""

from __future__ import annotations

from asv_runner.benchmarks.mark import SkipNotImplemented

from nwb_cloud.refs.errors import Unrepresentable
from nwb_cloud.refs.measure import build_cost, lindi_build_cost
from nwb_cloud.suite.asv_grid import (
    NAN,
    load_state,
    process_facts,
    proxy_for,
    recorded_outcome,
    sample_log,
    took_sample,
)
from nwb_cloud.suite.samples import INDEX_BUILD, unsupported_log

TOOLS = {"nwb-index": build_cost, "lindi": lindi_build_cost}


def _profiles(grid) -> list[str]:
    shaped = [p for p in grid.profiles if p != "loopback"]
    return [grid.main_profile or (shaped or grid.profiles)[0]]


class IndexBuild:
    """Build an index of the asset from S3 (no local copy) and write it out: seconds, bytes, requests."""

    param_names = ["tool", "asset", "profile"]
    timeout = 3600

    def setup(self, tool: str, asset: str, profile: str) -> None:
        self.state = load_state()
        if asset not in self.state.catalog.assets:
            raise NotImplementedError(f"no asset {asset} in this run")
        self.label = f"{INDEX_BUILD}[{tool}, {asset}, {profile}]"

    def _figure(self, tool: str, asset: str, profile: str, field: str) -> float:
        log = sample_log(self.state)
        skipped = unsupported_log(self.state).records(self.label)
        if skipped:  # one build says so for the cell's four tracks
            raise SkipNotImplemented(skipped[-1]["reason"])
        if not log.records(self.label):
            proxy = proxy_for(profile)
            store = self.state.catalog.store.via(proxy.url) if proxy else self.state.catalog.store
            process = process_facts()
            key = self.state.catalog.assets[asset].key
            with recorded_outcome(self.state, self.label, "build", Unrepresentable):  # a tool's refusal: a skip
                figures = TOOLS[tool](store, key, proxy.traffic if proxy else None)
            took_sample(self.label)
            log.append(self.label, {**{k: v for k, v in figures.items() if isinstance(v, int | float)}, **process})
        value = log.median(self.label, field)
        return NAN if value is None else float(value)

    def track_seconds(self, tool, asset, profile) -> float:
        return self._figure(tool, asset, profile, "seconds")

    def track_bytes_fetched(self, tool, asset, profile) -> float:
        return self._figure(tool, asset, profile, "wire_bytes")

    def track_requests(self, tool, asset, profile) -> float:
        return self._figure(tool, asset, profile, "wire_requests")

    def track_index_bytes(self, tool, asset, profile) -> float:
        return self._figure(tool, asset, profile, "index_bytes")

    track_seconds.unit = "seconds"
    track_bytes_fetched.unit = "bytes"
    track_requests.unit = "requests"
    track_index_bytes.unit = "bytes"


def index_build_class() -> type:
    state = load_state()
    assets = sorted(name for name, asset in state.catalog.assets.items() if not asset.key.endswith(".zarr"))
    return type("IndexBuild", (IndexBuild,), {"params": [list(TOOLS), assets, _profiles(state.grid)]})
