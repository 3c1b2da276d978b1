"""``nwb-cloud bench``: the main job: endpoint up, data prepared, asv run, HTML published, endpoint down.

Exit status: 0 when nothing real failed: every measured cell's samples read exact data, and cells a method
cannot represent (unsupported, e.g. an index of an LZF dataset) or cannot run here (unavailable, e.g. ROS3)
were skipped with their reason. 1 when anything failed: a wrong read, a read or open that raised, a method
that could not be prepared, or asv itself (see :func:`nwb_cloud.suite.measure.exit_status`).
"""

from __future__ import annotations

from pathlib import Path

from nwb_cloud.cli._common import add_settings_arguments, console, embedded_store, settings_from
from nwb_cloud.cli._options import FOLDER, NAMES, REGEX, add
from nwb_cloud.errors import NwbCloudError


class BenchArguments(NwbCloudError):
    pass


def _report(repo: Path) -> Path | None:
    """The run published: report page, guidance page and README's marked blocks, all from ``results/``."""
    try:
        from nwb_cloud.report import publish
    except ImportError:  # the report package is optional for a bare asv run
        return None
    return publish(repo / "results", repo / "reports", readme=repo / "README.md", log=console.print)[0]


def _loop_cases(args):
    """The closed loop's cases named by ``--cases`` (all when none), checked before anything starts."""
    from nwb_cloud.recommend import RecommendError
    from nwb_cloud.recommend.cases import get_cases

    try:
        return get_cases(list(args.cases or []) or None)
    except RecommendError as error:
        raise BenchArguments(str(error)) from None


def _loop(cases, settings, repo: Path, store):
    """The closed loop alone (``--block loop``): its grid, and its run step (:mod:`nwb_cloud.recommend.loop`)."""
    from nwb_cloud.recommend.loop import LoopStep, loop_grid

    step = LoopStep(store=store, data_dir=settings.data_dir, size=settings.size, seed=settings.seed, cases=cases,
                    results_dir=repo / "results")  # fmt: skip
    return loop_grid(), step


def _loop_verdicts(repo: Path) -> None:
    """The loop's verdicts on the console, and the guidance page that shows them beside the study's evidence."""
    from nwb_cloud.recommend import NotEnoughMeasurements, write_guidance
    from nwb_cloud.recommend.loop_check import loop_groups, loop_summary, summary_line

    groups = loop_groups(repo / "results")
    console.print(f"[bold]closed loop:[/] {summary_line(loop_summary(groups))}")
    for row in groups[~groups["within_target"].eq(True)].itertuples():
        console.print(f"  miss: {row.case} · {row.method}: {row.ratio:.2f}x ({row.why})")
    try:
        console.print(f"[bold]guidance:[/] {write_guidance(repo / 'results', repo / 'reports', loop=groups)}")
    except NotEnoughMeasurements as error:  # no study run to fit: the verdicts above are the loop's whole output
        console.print(f"guidance page not written: {error}")


def bench(args) -> int:
    from nwb_cloud.analysis.serving import store_serving_cost
    from nwb_cloud.cloud.calibrate import measure_overhead, measure_serving_cost
    from nwb_cloud.suite.asv_driver import refuse_results_of_commit
    from nwb_cloud.suite.measure import measure_prepared
    from nwb_cloud.suite.prepare import prepare_run
    from nwb_cloud.suite.run_info import write_run_info

    settings = settings_from(args)
    repo = Path(args.repo).resolve()
    if args.cases and args.block != "loop":
        raise BenchArguments("--cases chooses the closed loop's cases: give it with --block loop")
    if args.block == "loop":
        if settings.source != "embedded":
            raise BenchArguments("the closed loop writes and uploads its own files: it runs on the embedded source")
        # the loop measures the same benchmark classes as a full run: asv would replace that run's results
        cases = _loop_cases(args)
        refuse_results_of_commit(repo, "the closed loop (--block loop)")
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
            grid, extend, bench_pattern = None, None, args.bench
            if args.block == "loop":
                grid, extend = _loop(cases, settings, repo, store)
                bench_pattern = bench_pattern or "streaming"  # the read cells only: no conversion or index build
            state = prepare_run(settings, store, grid, log=console.print, extend=extend)
            if args.block == "loop":
                from nwb_cloud.recommend.loop import run_size

                state.catalog.size = run_size(settings.size)  # another experiment than the study at this size
                state.save(settings.state_path)
            overhead = None
            if not args.no_calibrate:
                console.print("measuring the shaping proxy's own overhead against direct loopback")
                overhead = measure_overhead(endpoint).to_dict()
            measured = measure_prepared(
                state,
                settings.state_path,
                repo,
                endpoint.url,
                overhead,
                bench_pattern,
                serving=serving,
                server_pid=endpoint.pid,
            )
    info, outcome, failed = measured.info, measured.asv, measured.failures
    info_path = write_run_info(repo / "results", info)
    console.print(f"run info: {info_path}")
    report = _report(repo)
    if args.block == "loop":
        _loop_verdicts(repo)
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
    add(parser, "--bench", value=REGEX, help="only benchmarks matching this regular expression (asv --bench)")
    add(parser, "--repo", value=FOLDER, default=".", help="the nwb-cloud checkout holding asv.conf.json (default .)")
    add(
        parser,
        "--no-calibrate",
        action="store_true",
        help="skip measuring the proxy's overhead and the serving CPU cost",
    )
    add(
        parser,
        "--block",
        choices=("loop",),
        help="run one block alone: loop, the closed loop (recommend, rewrite, upload, measure beside 5-6 other "
        "layouts) at --size (full: the study's lengths and 5x)",
    )
    add(parser, "--cases", value=NAMES, help="the closed loop's cases, comma-separated (default: all)")
    parser.set_defaults(handler=bench)
