"""One settings object, read from the environment and command-line flags.

No other module reads environment variables: they take a :class:`Settings` (or the values in it).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from nwb_cloud.errors import NwbCloudError

SIZES = ("tiny", "quick", "full")
SOURCES = ("embedded", "dandi")


class SettingsError(NwbCloudError):
    """A setting has a value that cannot be used."""


@dataclass(frozen=True)
class Settings:
    """Where data lives, which data source and size to use, and where the prepared run is described.

    ``state_file`` is written by ``nwb-cloud bench``/``serve`` and read by the asv benchmarks: it names the
    endpoint and the uploaded assets (it holds the embedded endpoint's throw-away credentials, so it is
    written with owner-only permissions and never copied into results).
    """

    data_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "nwb-cloud")
    source: str = "embedded"
    size: str = "quick"
    seed: int = 0
    state_file: Path | None = None

    def __post_init__(self):
        if self.size not in SIZES:
            raise SettingsError(f"unknown size {self.size!r}; known: {', '.join(SIZES)}")
        if self.source not in SOURCES:
            raise SettingsError(f"unknown data source {self.source!r}; known: {', '.join(SOURCES)}")

    @property
    def state_path(self) -> Path:
        return self.state_file or self.data_dir / "state.json"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        values = {}
        if "NWB_CLOUD_DATA_DIR" in env:
            values["data_dir"] = Path(env["NWB_CLOUD_DATA_DIR"]).expanduser()
        if "NWB_CLOUD_SOURCE" in env:
            values["source"] = env["NWB_CLOUD_SOURCE"]
        if "NWB_CLOUD_SIZE" in env:
            values["size"] = env["NWB_CLOUD_SIZE"]
        if "NWB_CLOUD_SEED" in env:
            try:
                values["seed"] = int(env["NWB_CLOUD_SEED"])
            except ValueError:
                raise SettingsError(f"NWB_CLOUD_SEED must be an integer, got {env['NWB_CLOUD_SEED']!r}") from None
        if "NWB_CLOUD_STATE" in env:
            values["state_file"] = Path(env["NWB_CLOUD_STATE"]).expanduser()
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_(self, **changes) -> Settings:
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def usable_cores() -> int:
    """Cores this process may use: the affinity mask, lowered by a container's CPU quota if it has one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else cores


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max`` or v1 ``cfs_quota_us``), or None when unlimited/unknown."""
    try:
        v2 = Path("/sys/fs/cgroup/cpu.max")
        if v2.exists():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
        if v1.exists():
            quota = int(v1.read_text())
            period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None
