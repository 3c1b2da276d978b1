"""``nwb-cloud report``: asv results -> ``reports/index.html`` with its figures and tables."""

from __future__ import annotations

from pathlib import Path


def report(args) -> int:
    from nwb_cloud.report import build  # pandas + matplotlib: loaded only when this command runs

    index = build(args.results, args.out)
    print(f"report: {index}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("report", help="turn asv results into reports/index.html (tables and figures)")
    parser.add_argument("--results", type=Path, default=Path("results"), help="asv results folder (default results)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where index.html goes (default reports)")
    parser.set_defaults(handler=report)
