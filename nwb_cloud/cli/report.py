"""``nwb-cloud report``: asv results -> ``reports/index.html`` with its figures and tables."""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.cli._options import FOLDER, add


def report(args) -> int:
    from nwb_cloud.report import build  # pandas + matplotlib: loaded only when this command runs

    index = build(args.results, args.out)
    print(f"report: {index}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="turn asv results into reports/index.html (tables and figures)")
    add(parser, "--results", value=FOLDER, default=Path("results"), help="asv results folder (default results)")
    add(parser, "--out", value=FOLDER, default=Path("reports"), help="where index.html goes (default reports)")
    parser.set_defaults(handler=report)
