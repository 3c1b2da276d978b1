"""``nwb-cloud report``: the committed results -> the report page, the guidance page and README's marked blocks."""

from __future__ import annotations

from pathlib import Path


def report(args) -> int:
    from nwb_cloud.report import publish  # pandas + matplotlib: loaded only when this command runs

    readme = None if args.no_readme else (args.readme or Path(args.results).resolve().parent / "README.md")
    for path in publish(args.results, args.out, readme):
        print(f"report: {path}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="turn the results into reports/index.html, reports/guidance.html and README's figures"
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="asv results folder (default results)")
    parser.add_argument("--out", type=Path, default=Path("reports"), help="where index.html goes (default reports)")
    parser.add_argument("--readme", type=Path, help="the Markdown file whose marked blocks to rewrite (default: "
                        "README.md beside the results folder, when it exists)")  # fmt: skip
    parser.add_argument("--no-readme", action="store_true", help="leave every Markdown file as it is")
    parser.set_defaults(handler=report)
