"""``nwb-cloud bench``: the main job: endpoint up, data prepared, asv run, HTML published, endpoint down.

Exit status: 0 when nothing real failed: every measured cell's samples read exact data, and cells a method
cannot represent (unsupported, e.g. an index of an LZF dataset) or cannot run here (unavailable, e.g. ROS3)
were skipped with their reason. 1 when anything failed: a wrong read, a read or open that raised, a method
that could not be prepared, or asv itself (see :func:`nwb_cloud.suite.measure.exit_status`).
"""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.cli._common import add_settings_arguments, console, embedded_store, settings_from


def _report(repo: Path) -> Path | None:
    try:
        from nwb_cloud.report import build
    except ImportError:  # the report package is optional for a bare asv run
        return None
    return build(repo / "results", repo / "reports")


def bench(args) -> int:
    from nwb_cloud.analysis.serving import store_serving_cost
    from nwb_cloud.cloud.calibrate import measure_overhead, measure_serving_cost
    from nwb_cloud.suite.measure import measure_prepared
    from nwb_cloud.suite.prepare import prepare_run
    from nwb_cloud.suite.run_info import write_run_info

    settings = settings_from(args)
    repo = Path(args.repo).resolve()
    console.print(f"[bold]preparing[/] the {settings.source} data ({settings.size}) in {settings.data_dir}")
    if settings.source == "dandi":
        state = prepare_run(settings, None, log=console.print)
        measured = measure_prepared(state, settings.state_path, repo, None, bench=args.bench)
    else:
        with embedded_store(settings) as (endpoint, store):
            console.print(f"embedded S3 endpoint: {endpoint.url}")
            serving = None
            if not args.no_calibrate:  # before the bounds: they count it (nwb_cloud.analysis.bound)
                console.print("measuring what the embedded server and the proxy cost in CPU per request and MB")
                serving = measure_serving_cost(endpoint)
                store_serving_cost(settings.data_dir, serving)
            state = prepare_run(settings, store, log=console.print)
            overhead = None
            if not args.no_calibrate:
                console.print("measuring the shaping proxy's own overhead against direct loopback")
                overhead = measure_overhead(endpoint).to_dict()
            measured = measure_prepared(
                state, settings.state_path, repo, endpoint.url, overhead, args.bench, serving=serving
            )
    info, outcome, failed = measured.info, measured.asv, measured.failures
    info_path = write_run_info(repo / "results", info)
    console.print(f"run info: {info_path}")
    report = _report(repo)
    console.print(f"[bold]asv report:[/] {outcome['html']}")
    if report:
        console.print(f"[bold]nwb-cloud report:[/] {report}")
    skipped = len(info.get("unsupported_cells") or {})
    if skipped:
        console.print(f"{skipped} cell(s) unsupported by their method (skipped with the reason; not failures)")
    if failed:
        more = " ..." if len(failed) > 3 else ""
        console.print(f"[red]{len(failed)} failure(s)[/] (see the report): " + "; ".join(failed[:3]) + more)
    return measured.exit_status


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run the asv suite against the embedded cloud and publish HTML")
    add_settings_arguments(parser)
    parser.add_argument("--bench", help="only benchmarks matching this regular expression (asv --bench)")
    parser.add_argument("--repo", default=".", help="the nwb-cloud checkout holding asv.conf.json")
    parser.add_argument(
        "--no-calibrate", action="store_true", help="skip measuring the proxy's overhead and the serving CPU cost"
    )
    parser.set_defaults(handler=bench)
