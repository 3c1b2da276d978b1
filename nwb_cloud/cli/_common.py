"""Options several commands share: the settings flags, and starting the embedded endpoint.

Command modules import the heavy parts of the package (pynwb, h5py, boto3) inside their handlers, so that
``nwb-cloud`` starts fast: Batch job steps run it once per step.
"""

from __future__ import annotations

import contextlib
import sys
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


def status_summary(states) -> str:
    """``2 RUNNING, 1 SUCCEEDED``: how many jobs (sessions, children) are in each status, for a wait's polls."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state.status] = counts.get(state.status, 0) + 1
    return ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))


def key_value_pairs(items: list[str] | None, error: type[Exception]) -> dict[str, str]:
    """``KEY=VALUE`` options (``--tag``, ``--secret-env``) as a dict; a malformed one raises ``error``."""
    pairs = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise error(f"{item!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


def confirm_spending(total: float, what: str, assume_yes: bool) -> None:
    """Ask before money is spent (``what``: "AWS Batch jobs"); without a terminal only ``--yes`` agrees."""
    from nwb_cloud.batch.errors import NotConfirmed

    if assume_yes:
        return
    if not sys.stdin.isatty():
        raise NotConfirmed(f"not starting instances for an estimated ${total:.2f} without --yes")
    answer = console.input(f"Start {what} for an estimated [bold]${total:.2f}[/]? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise NotConfirmed("not confirmed: nothing was created")
