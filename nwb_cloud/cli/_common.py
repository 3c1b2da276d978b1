"""Options several commands share: the settings flags, credentials for S3, and starting the embedded endpoint.

Command modules import the heavy parts of the package (pynwb, h5py, boto3) inside their handlers, so that
``nwb-cloud`` starts fast: Batch job steps run it once per step.
"""

from __future__ import annotations

import contextlib
import sys

from rich.console import Console

from nwb_cloud.cli._options import AWS_PROFILE, FOLDER, REGION, URL, add, integer
from nwb_cloud.settings import SIZES, SOURCES, Settings

console = Console(stderr=True)


def add_data_dir(parser, what: str = "generated data and run state") -> None:
    help = f"where {what} live (default NWB_CLOUD_DATA_DIR or ~/.cache/nwb-cloud)"
    add(parser, "--data-dir", value=FOLDER, help=help)


def add_size(parser, help: str = "suite size: tiny (tests), quick (make bench) or full (the study); default quick"):
    add(parser, "--size", choices=SIZES, help=help)


def add_settings_arguments(parser) -> None:
    add_data_dir(parser)
    add_size(parser)
    add(parser, "--source", choices=SOURCES, help="embedded (generated, on a loopback S3) or dandi (real S3)")
    add(parser, "--seed", value=integer(0), help="seed of the generated data (default NWB_CLOUD_SEED or 0)")


def add_credentials_arguments(parser) -> None:
    """``--profile`` and ``--anonymous``: the S3 credentials (else botocore's chain: environment, default profile,
    SSO, the instance's role)."""
    group = parser.add_mutually_exclusive_group()
    add(group, "--profile", value=AWS_PROFILE, help="AWS profile for S3 (default: AWS_PROFILE, then botocore's chain)")
    add(group, "--anonymous", action="store_true", help="read S3 without credentials (public buckets)")


def store_from_url(url: str, args):
    """The store and key of ``s3://bucket/key``: the prepared run's store for its own bucket, else the user's
    credentials (``--profile``/``--anonymous``/botocore's chain); a refused HEAD is one line naming what was tried."""
    from nwb_cloud.cloud.store import store_for
    from nwb_cloud.suite.state import RunState

    bucket, _, key = url.removeprefix("s3://").partition("/")
    chosen = getattr(args, "profile", None) or getattr(args, "anonymous", False)
    settings = settings_from(args)
    if not args.endpoint_url and not chosen and settings.state_path.exists():
        store = RunState.load(settings.state_path).catalog.store
        if store.bucket == bucket:
            return store, key
    store = store_for(bucket, args.endpoint_url, args.region, args.profile, args.anonymous)
    store.head(key)  # access (and existence) checked once, with a message that names the credentials
    return store, key


def add_store_arguments(parser, data_dir_for: str | None = None) -> None:
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint, if not AWS (default: the prepared run's, or AWS)")
    add(parser, "--region", value=REGION, default="us-east-1", help="region of the bucket (default us-east-1)")
    add_credentials_arguments(parser)
    if data_dir_for:
        add_data_dir(parser, data_dir_for)


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
