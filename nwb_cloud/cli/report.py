"""``nwb-cloud report``: the committed results -> the report page, the guidance page and README's marked blocks."""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.cli._options import FOLDER, add, existing_file


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
    add(parser, "--results", value=FOLDER, default=Path("results"), help="asv results folder (default results)")
    add(parser, "--out", value=FOLDER, default=Path("reports"), help="where index.html goes (default reports)")
    add(parser, "--readme", value=existing_file("README.md"),
        help="the Markdown file whose marked blocks to rewrite (default: README.md beside the results folder, when "
        "it exists)")  # fmt: skip
    parser.add_argument("--no-readme", action="store_true", help="leave every Markdown file as it is")
    parser.set_defaults(handler=report)
