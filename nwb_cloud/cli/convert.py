"""``nwb-cloud convert SOURCE SPEC DESTINATION``: a NeuroConv YAML spec, from any rclone remote, to S3 or a folder."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

from nwb_cloud.settings import Settings

console = Console(stderr=True)


def add_location_arguments(parser) -> None:
    """The flags that say how to reach the source and the destination (shared with ``batch``)."""
    parser.add_argument("--rclone-config", type=Path, help="rclone config file defining the source's remote")
    parser.add_argument("--endpoint-url", help="S3 endpoint of the destination, if not AWS (e.g. a MinIO or rclone)")
    parser.add_argument("--region", help="region of the destination bucket (default us-east-1)")
    parser.add_argument("--layout", help="write the bulk series in this layout (see nwb_cloud.datasets.layouts)")


def convert(args) -> int:
    from nwb_cloud.convert.pipeline import convert as run
    from nwb_cloud.convert.places import parse_place
    from nwb_cloud.convert.rclone import Rclone
    from nwb_cloud.convert.spec import ConversionSpec

    settings = Settings.from_env(data_dir=args.data_dir)
    spec = ConversionSpec.load(args.spec)
    destination = parse_place(args.destination, endpoint_url=args.endpoint_url, region=args.region)
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
    parser.add_argument(
        "source", help="rclone path of the data folder: 'gdrive:lab/data', 's3remote:bucket/x', a folder"
    )
    parser.add_argument("spec", type=Path, help="NeuroConv YAML conversion specification (paths relative to SOURCE)")
    parser.add_argument("destination", help="s3://bucket/prefix or a folder")
    add_location_arguments(parser)
    parser.add_argument("--workdir", type=Path, help="local staging folder (default: DATA_DIR/convert-work)")
    parser.add_argument("--records", type=Path, help="throughput records file (default: DATA_DIR/throughput.jsonl)")
    parser.add_argument("--data-dir", type=Path, help="where run state and records live (NWB_CLOUD_DATA_DIR)")
    parser.add_argument("--json", action="store_true", help="print the sessions' outcomes as JSON on stdout")
    parser.set_defaults(handler=convert)
