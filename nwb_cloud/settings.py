"""One settings object, read from the environment and command-line flags.

No other module reads environment variables: they take a :class:`Settings` (or the values in it).
"""

from __future__ import annotations

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
