"""``nwb-cloud reliability``: every read method under S3's faults (503, reset, truncation, stall), as a table.

Starts the embedded endpoint, prepares the asset and what the methods need beside it, probes each method
under each scenario (see :mod:`nwb_cloud.suite.reliability`), writes ``results/reliability/<run_id>.json``
(the report's reliability section) and prints the table. Exit code 1 when any method returned wrong data.
"""

from __future__ import annotations

import time
from pathlib import Path

from nwb_cloud.cli._common import add_data_dir, add_size, console, embedded_store
from nwb_cloud.cli._options import FOLDER, METHOD, NAMES_ONE, PROFILE, add, integer, number

RELIABILITY_SIZES = {
    "tiny": "tiny",
    "quick": "small",
    "full": "small",
}  # --size, in nwb_cloud.suite.reliability's words
STYLES = {"exact": "green", "error": "yellow", "crash": "red", "hang": "bold red", "wrong-data": "bold white on red"}
LABELS = {"error": "clear error", "hang": "HANG", "crash": "CRASH", "wrong-data": "WRONG DATA"}


def reliability(args) -> int:
    from nwb_cloud.access import METHODS, get_method
    from nwb_cloud.access.base import PAGED
    from nwb_cloud.cloud.reliability import WRONG_DATA
    from nwb_cloud.settings import Settings
    from nwb_cloud.suite import reliability as table
    from nwb_cloud.suite.prepare import prepare_methods

    settings = Settings.from_env(data_dir=args.data_dir, seed=args.seed)
    # the asset is not paged: a page-buffer variant would read it exactly as its base method does
    methods = args.methods or [name for name, method in METHODS.items() if method.varies != PAGED]
    for name in methods:
        get_method(name)  # unknown names fail before any work
    scenarios = table.scenarios_named(args.scenarios)
    jobs = args.jobs or table.DEFAULT_JOBS
    limit_s = args.limit or table.HANG_LIMIT_S
    started = time.perf_counter()
    with embedded_store(settings) as (endpoint, store):
        size = RELIABILITY_SIZES[args.size or "quick"]
        console.print(f"[bold]preparing[/] the {args.size or 'quick'} reliability asset in {settings.data_dir}")
        catalog = table.reliability_catalog(store, settings.data_dir, size, settings.seed, log=console.print)
        asset = next(iter(catalog.assets.values()))
        failures = prepare_methods(catalog, methods, log=console.print)
        subjects = table.method_subjects(catalog, asset, methods, failures)
        expected = table.expected_read(catalog, asset)
        prepared = time.perf_counter()
        console.print(
            f"probing {len(methods)} method(s) x ({table.CONTROL} + {len(scenarios)} scenario(s)) on {asset.key} "
            f"({asset.size_bytes / 1e6:.1f} MB), profile {args.profile}, {jobs} busy probe(s) at a time, "
            f"hang limit {limit_s:.0f} s"
        )

        skipped: set[str] = set()

        def progress(row: dict, done: int, total: int) -> None:
            label = f"[{STYLES.get(row['outcome'], 'dim')}]{LABELS.get(row['outcome'], row['outcome'])}[/]"
            if "seconds" not in row:  # not probed: said once per method
                if row["method"] not in skipped:
                    skipped.add(row["method"])
                    console.print(f"[{done}/{total}] {row['method']}: {label} — {row['error']}", highlight=False)
                return
            untested = not row["tested"] and row["fault"] != table.CONTROL
            said = f" — {row['error'][:200]}" if row.get("error") else ""
            console.print(
                f"[{done}/{total}] {row['method']} / {row['fault']}: {label} in {row['seconds']:.1f} s"
                + (" (no fault reached it)" if untested else "")
                + said,
                highlight=False,
            )

        rows = table.run_table(
            subjects, expected, store, endpoint.url, scenarios, args.profile, limit_s, jobs, on_row=progress
        )
    finished = time.perf_counter()
    seconds = {"prepare": prepared - started, "probes": finished - prepared, "total": finished - started}
    payload = table.table_payload(rows, catalog, scenarios, args.profile, limit_s, jobs, seconds)
    path = table.write_table(payload, Path(args.results))
    _print_table(rows, [table.CONTROL, *scenarios, *table.whole_get_scenarios(scenarios)])
    console.print(f"reliability table: {path} ({seconds['total'] / 60:.1f} min)")
    wrong = sorted({r["method"] for r in rows if r["outcome"] == WRONG_DATA})
    if wrong:
        console.print(f"[bold white on red]WRONG DATA[/] returned by: {', '.join(wrong)} (silent corruption)")
        return 1
    return 0


def _print_table(rows: list[dict], scenarios: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    grid = Table(title="Reliability under S3 faults", caption="* no fault reached the method: the probe proves nothing")
    grid.add_column("method")
    for scenario in scenarios:
        grid.add_column(scenario)
    by_method: dict[str, dict[str, dict]] = {}
    for row in rows:
        by_method.setdefault(row["method"], {})[row["fault"]] = row
    for method, cells in by_method.items():
        texts = []
        for scenario in scenarios:
            row = cells.get(scenario)
            if row is None:
                texts.append("")
                continue
            label = LABELS.get(row["outcome"], row["outcome"])
            if row["outcome"] in STYLES and scenario != scenarios[0] and not row.get("tested"):
                label += "*"
            texts.append(f"[{STYLES.get(row['outcome'], 'dim')}]{label}[/]")
        grid.add_row(method, *texts)
    out = Console()  # the table is the command's output: stdout, wide enough for one line per method
    out.width = max(out.width, 130)
    out.print(grid)


def register(subparsers) -> None:
    parser = subparsers.add_parser("reliability", help="every read method under S3 faults: exact, error, hang or wrong")
    add(parser, "--methods", value=METHOD, nargs="+", help="read methods (default: all but the page-buffer variants)")
    add(parser, "--scenarios", value=NAMES_ONE, nargs="+", help="fault scenarios (default: all)")
    add_size(parser, "quick: a dedicated 42 MB file whose read crosses several GETs (default); tiny: a 2 MB file")
    add(
        parser, "--profile", value=PROFILE, default="in-region", help="network profile of the proxy (default in-region)"
    )
    add(
        parser, "--jobs", value=integer(1, 64, 2), help="probes busy at once (default 2, the reference machine's cores)"
    )
    add(
        parser,
        "--limit",
        value=number(0, example=360, above=True),
        help="seconds before a probe is a hang (default 360)",
    )
    add(parser, "--results", value=FOLDER, default="results", help="results folder (writes reliability/<run_id>.json)")
    add_data_dir(parser, "generated data")
    add(parser, "--seed", value=integer(0), help="seed of the generated data (default NWB_CLOUD_SEED or 0)")
    parser.set_defaults(handler=reliability)
