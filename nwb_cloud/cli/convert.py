"""``nwb-cloud convert SOURCE SPEC DESTINATION``: a NeuroConv YAML spec, from any rclone remote, to S3 or a folder."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from nwb_cloud.cli._common import add_credentials_arguments, add_data_dir
from nwb_cloud.cli._options import (
    EXISTING_FILE,
    FOLDER,
    LAYOUT,
    OUTPUT_FILE,
    PLACE,
    RCLONE_PATH,
    REGION,
    URL,
    add,
    existing_file,
)
from nwb_cloud.settings import Settings

console = Console(stderr=True)


def add_location_arguments(parser) -> None:
    """The source, spec and destination, and the flags that say how to reach them (shared with ``batch``)."""
    add(parser, "source", value=RCLONE_PATH, help="rclone path of the raw data folder (a remote or a local folder)")
    add(parser, "spec", value=EXISTING_FILE, help="NeuroConv YAML conversion spec, paths relative to SOURCE")
    add(parser, "destination", value=PLACE, help="where the NWB files go: an S3 prefix or a folder")
    add(
        parser,
        "--rclone-config",
        value=existing_file("rclone.conf"),
        help="rclone config file defining the source's remote",
    )
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint of the destination, if not AWS (MinIO, rclone)")
    add(parser, "--region", value=REGION, help="region of the destination bucket (default us-east-1)")
    add(parser, "--layout", value=LAYOUT, help="write the bulk series in this layout (`nwb-cloud methods`)")
    add_credentials_arguments(parser)


def destination_of(args):
    from nwb_cloud.convert.places import parse_place

    return parse_place(
        args.destination, endpoint_url=args.endpoint_url, region=args.region, profile=args.profile,
        anonymous=args.anonymous,
    )  # fmt: skip


def convert(args) -> int:
    from nwb_cloud.convert.pipeline import convert as run
    from nwb_cloud.convert.rclone import Rclone
    from nwb_cloud.convert.spec import ConversionSpec

    settings = Settings.from_env(data_dir=args.data_dir)
    spec = ConversionSpec.load(args.spec)
    destination = destination_of(args)
    rclone = Rclone(args.rclone_config)
    workdir = args.workdir or settings.data_dir / "convert-work"
    records = args.records or settings.data_dir / "throughput.jsonl"
    outcomes = run(spec, args.source, destination, workdir, rclone, layout=args.layout, records_path=records)
    if args.json:
        sessions = [
            {"session": o.session, "status": o.status, "seconds": round(o.seconds, 3), "error": o.error,
             "redone_because": o.redone, "steps_run": [r.step for r in o.steps if not r.skipped]}
            for o in outcomes
        ]  # fmt: skip
        print(json.dumps({"source": args.source, "destination": destination.label, "sessions": sessions}, indent=1))
    else:
        table = Table("session", "status", "seconds", "detail", title=f"{args.source} -> {destination.label}")
        for outcome in outcomes:
            detail = outcome.error or (f"converted again: {outcome.redone}" if outcome.redone else "")
            table.add_row(outcome.session, outcome.status, f"{outcome.seconds:.1f}", detail)
        Console().print(table)  # the result: stdout (the progress went to stderr)
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert raw data on any rclone remote to NWB with a NeuroConv YAML spec; upload verified",
        description="Transfer with rclone, convert with NeuroConv, check (pynwb + nwbinspector critical), upload "
        "with checksum verification. Re-running skips finished sessions and resumes unfinished ones.",
    )
    add_location_arguments(parser)
    add(parser, "--workdir", value=FOLDER, help="local staging folder (default: DATA_DIR/convert-work)")
    add(parser, "--records", value=OUTPUT_FILE, help="throughput records file (default: DATA_DIR/throughput.jsonl)")
    add_data_dir(parser, "the staging folder and the throughput records")
    add(parser, "--json", action="store_true", help="print the sessions' outcomes as JSON on stdout")
    parser.set_defaults(handler=convert)
