"""Options several commands share: the settings flags, and starting the embedded endpoint.

Command modules import the heavy parts of the package (pynwb, h5py, boto3) inside their handlers, so that
``nwb-cloud`` starts fast: Batch job steps run it once per step.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from rich.console import Console

from nwb_cloud.settings import SIZES, SOURCES, Settings

console = Console(stderr=True)


def add_settings_arguments(parser) -> None:
    parser.add_argument("--data-dir", type=Path, help="where generated data and run state live (NWB_CLOUD_DATA_DIR)")
    parser.add_argument("--size", choices=SIZES, help="test data size (NWB_CLOUD_SIZE; default quick)")
    parser.add_argument("--source", choices=SOURCES, help="embedded (generated, loopback S3) or dandi (real S3)")
    parser.add_argument("--seed", type=int, help="seed of the generated data (NWB_CLOUD_SEED)")


def settings_from(args) -> Settings:
    return Settings.from_env(
        data_dir=getattr(args, "data_dir", None),
        size=getattr(args, "size", None),
        source=getattr(args, "source", None),
        seed=getattr(args, "seed", None),
    )


@contextlib.contextmanager
def embedded_store(settings: Settings, port: int | None = None):
    """The embedded endpoint over ``data_dir/s3`` with the default bucket, stopped on exit (also on Ctrl-C)."""
    from nwb_cloud.cloud import DEFAULT_BUCKET, Endpoint

    with Endpoint(settings.data_dir / "s3", port=port) as endpoint:
        yield endpoint, endpoint.create_bucket(DEFAULT_BUCKET)
