"""``nwb-cloud bench``: the main job: endpoint up, data prepared, asv run, HTML published, endpoint down."""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.cli._common import add_settings_arguments, console, embedded_store, settings_from


def _report(repo: Path) -> Path | None:
    """The run published: report page, guidance page and README's marked blocks, all from ``results/``."""
    try:
        from nwb_cloud.report import publish
    except ImportError:  # the report package is optional for a bare asv run
        return None
    return publish(repo / "results", repo / "reports", readme=repo / "README.md", log=console.print)[0]


def bench(args) -> int:
    from nwb_cloud.cloud.calibrate import measure_overhead
    from nwb_cloud.suite.asv_driver import run_asv
    from nwb_cloud.suite.prepare import prepare_run
    from nwb_cloud.suite.run_info import run_info, write_run_info

    settings = settings_from(args)
    repo = Path(args.repo).resolve()
    console.print(f"[bold]preparing[/] the {settings.source} data ({settings.size}) in {settings.data_dir}")
    if settings.source == "dandi":
        state = prepare_run(settings, None, log=console.print)
        overhead = None
        outcome = run_asv(repo, settings.state_path, bench=args.bench)
    else:
        with embedded_store(settings) as (endpoint, store):
            console.print(f"embedded S3 endpoint: {endpoint.url}")
            state = prepare_run(settings, store, log=console.print)
            overhead = None
            if not args.no_calibrate:
                console.print("measuring the shaping proxy's own overhead against direct loopback")
                overhead = measure_overhead(endpoint).to_dict()
            outcome = run_asv(repo, settings.state_path, bench=args.bench)
    info_path = write_run_info(repo / "results", run_info(state, overhead, commit=outcome["commit"]))
    console.print(f"run info: {info_path}")
    report = _report(repo)
    console.print(f"[bold]asv report:[/] {outcome['html']}")
    if report:
        console.print(f"[bold]nwb-cloud report:[/] {report}")
    if not outcome["passed"]:
        console.print("[red]some benchmarks failed[/] (see the asv output above and the report)")
        return 1
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run the asv suite against the embedded cloud and publish HTML")
    add_settings_arguments(parser)
    parser.add_argument("--bench", help="only benchmarks matching this regular expression (asv --bench)")
    parser.add_argument("--repo", default=".", help="the nwb-cloud checkout holding asv.conf.json")
    parser.add_argument("--no-calibrate", action="store_true", help="skip measuring the proxy's own overhead")
    parser.set_defaults(handler=bench)
