"""``nwb-cloud bench``: the main job: endpoint up, data prepared, asv run, HTML published, endpoint down."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from nwb_cloud.cli._common import add_settings_arguments, embedded_store, settings_from
from nwb_cloud.suite.asv_driver import run_asv
from nwb_cloud.suite.prepare import prepare_run

console = Console(stderr=True)


def _prepare(settings, store):
    console.print(f"[bold]preparing[/] the {settings.source} data ({settings.size}) in {settings.data_dir}")
    state = prepare_run(settings, store, log=console.print)
    console.print(f"run state: {settings.state_path}")
    return state


def bench(args) -> int:
    settings = settings_from(args)
    repo = Path(args.repo).resolve()
    if settings.source == "dandi":
        _prepare(settings, None)
        outcome = run_asv(repo, settings.state_path, bench=args.bench)
    else:
        with embedded_store(settings) as (endpoint, store):
            console.print(f"embedded S3 endpoint: {endpoint.url}")
            _prepare(settings, store)
            outcome = run_asv(repo, settings.state_path, bench=args.bench)
    console.print(f"[bold]report:[/] {outcome['html']}")
    if not outcome["passed"]:
        console.print("[red]some benchmarks failed[/] (see the asv output above and the report)")
        return 1
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run the asv suite against the embedded cloud and publish HTML")
    add_settings_arguments(parser)
    parser.add_argument("--bench", help="only benchmarks matching this regular expression (asv --bench)")
    parser.add_argument("--repo", default=".", help="the nwb-cloud checkout holding asv.conf.json")
    parser.set_defaults(handler=bench)
