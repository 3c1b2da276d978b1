"""``nwb-cloud fleet plan|submit|status|collect|cleanup|run-child``: the suite on EC2 instance types, priced first."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from nwb_cloud.cli._common import add_credentials_arguments, confirm_spending, key_value_pairs, status_summary
from nwb_cloud.cli._options import (
    DEPLOYMENT,
    FOLDER,
    IDS,
    IMAGE,
    INSTANCE_NAME,
    KEY_VALUE,
    LAYOUT,
    METHOD,
    PLACE,
    REGION,
    REGIONAL_BUCKET,
    S3_PREFIX,
    SESSION,
    URL,
    WORKLOAD,
    add,
    as_text,
    integer,
    listed,
    number,
)
from nwb_cloud.settings import SIZES, Settings

console = Console(stderr=True)


def _settings(args) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None))


def _buckets(args, regions: list[str]) -> dict:
    from nwb_cloud.convert.places import parse_place
    from nwb_cloud.fleet.errors import FleetError

    buckets = {}
    for item in args.bucket or []:
        region, sep, url = item.partition("=")
        if not sep:
            if len(regions) > 1:
                raise FleetError(
                    f"--bucket {item}: with several regions, name each bucket's: REGION=s3://bucket/prefix"
                )
            region, url = regions[0], item
        if not url.startswith("s3://"):
            raise FleetError(f"--bucket {item}: an s3://bucket/prefix (the study and the results go to S3)")
        if region in buckets:
            raise FleetError(f"--bucket: two buckets for {region}")
        buckets[region] = parse_place(url, endpoint_url=args.endpoint_url, region=region, profile=args.profile,
                                      anonymous=args.anonymous)  # fmt: skip
    unknown = sorted(set(buckets) - set(regions))
    if unknown:
        raise FleetError(f"--bucket for {', '.join(unknown)}, which no --region names")
    return buckets


def _plan(args):
    from nwb_cloud.batch.prices import load_prices
    from nwb_cloud.fleet.plan import make_plan
    from nwb_cloud.fleet.records import load_recorded_runs

    regions = args.region or ["us-east-1"]
    machines = _items(args.machine)
    if args.executor == "local" and not machines:
        from nwb_cloud.fleet.child import this_machine

        machines = [this_machine()]
    return make_plan(
        load_recorded_runs(args.results), load_prices(_settings(args).data_dir / "prices.json"),
        _buckets(args, regions), size=args.size, source=args.source, instance_types=_items(args.instance_type),
        regions=regions, machines=machines, market=args.market, executor=args.executor,
        workloads=_items(args.workload), methods=_items(args.method), layouts=_items(args.layout), image=args.image,
        seed=args.seed,
    )  # fmt: skip


def _aws_sessions(args, plan) -> dict:
    """The boto3 session of each region the plan's Batch jobs run in, with the user's ``--profile``."""
    from nwb_cloud.batch.aws import aws_session

    return {region: aws_session(region, args.profile) for region in plan.regions} if plan.executor == "batch" else {}


def _items(values: list[str] | None) -> list[str] | None:
    """Repeatable options that also take comma-separated lists."""
    items = [item.strip() for value in values or [] for item in value.split(",") if item.strip()]
    return items or None


def plan_command(args) -> int:
    from nwb_cloud.fleet.checks import check_environment
    from nwb_cloud.fleet.render import render_plan

    plan = _plan(args)
    if not args.offline:
        check_environment(plan, _aws_sessions(args, plan), log=console.print)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=1, default=str))
    else:
        console.print(render_plan(plan))
    return 0


def submit_command(args) -> int:
    from nwb_cloud.fleet.checks import check_environment
    from nwb_cloud.fleet.render import render_plan

    plan = _plan(args)
    sessions = check_environment(plan, _aws_sessions(args, plan), log=console.print)
    console.print(render_plan(plan))
    if plan.executor == "local":
        from nwb_cloud.fleet.local import run_local_fleet

        fleet = run_local_fleet(plan, {}, parallel=args.parallel)
        for child in fleet.children:
            detail = f": {child.reason}" if child.reason else ""
            console.print(f"{child.session}: {child.status} in {child.seconds:.1f} s "
                          f"(estimated {fleet.estimated[child.session]:.1f} s){detail}")  # fmt: skip
        console.print(f"follow with: nwb-cloud fleet collect {fleet.run_url}")
        print(fleet.run_url)
        return 0 if all(c.status == "SUCCEEDED" for c in fleet.children) else 1
    from nwb_cloud.fleet.errors import FleetError
    from nwb_cloud.fleet.submit import submit

    confirm_spending(plan.total, "the fleet on AWS Batch", args.yes)
    submitted = submit(
        plan, sessions, deployment=args.deployment, subnets=_items(args.subnets),
        security_groups=_items(args.security_groups), tags=key_value_pairs(args.tag, FleetError), log=console.print,
    )  # fmt: skip
    console.print(f"submitted fleet run {plan.run_id} ({len(submitted.jobs)} children); follow it with: "
                  f"nwb-cloud fleet status {submitted.run_url} --wait")  # fmt: skip
    print(submitted.run_url)  # alone on stdout, for scripts
    return 0


def _open(args):
    from nwb_cloud.batch.aws import aws_session
    from nwb_cloud.fleet.monitor import open_fleet_run

    folder, manifest = open_fleet_run(args.run, endpoint_url=args.endpoint_url, region=args.region,
                                      profile=args.profile, anonymous=args.anonymous)  # fmt: skip
    batch = manifest.get("executor") == "batch"
    sessions = {r: aws_session(r, args.profile) for r in manifest.get("regions", [])} if batch else {}
    return folder, manifest, sessions


def status_command(args) -> int:
    from rich.table import Table

    from nwb_cloud.fleet.monitor import child_states, wait

    folder, manifest, sessions = _open(args)
    if args.wait:
        states = wait(folder, manifest, sessions, poll_s=args.poll, on_poll=lambda s: console.print(status_summary(s)))
    else:
        states = child_states(folder, manifest, sessions)
    if args.json:
        print(json.dumps([asdict(state) for state in states], indent=1))
    else:
        table = Table("child", "status", "phase", "failure", title=f"fleet run {manifest['run_id']}")
        for state in states:
            table.add_row(state.child, state.status, state.phase, state.reason)
        console.print(table)
    return 1 if any(s.status == "FAILED" for s in states) else 0


def collect_command(args) -> int:
    from nwb_cloud.fleet.monitor import collect

    folder, manifest, _ = _open(args)
    logs = _settings(args).data_dir / "fleet" / manifest["run_id"]
    collected = collect(folder, manifest, args.results, logs, log=console.print)
    for child, why in collected.missing.items():
        console.print(f"[yellow]{child}[/]: {why}")
    console.print(f"{collected.files} files of {len(collected.machines)} machines into {args.results}; logs in {logs}")
    if args.report and collected.machines:
        from nwb_cloud.report import build

        console.print(f"report: {build(Path(args.results), Path(args.reports))}")
    return 0 if collected.machines and not collected.missing else 1


def cleanup_command(args) -> int:
    from nwb_cloud.batch.aws import aws_session
    from nwb_cloud.batch.cleanup import Cleaner
    from nwb_cloud.fleet.spec import DATA

    regions = args.region or ["us-east-1"]
    found_any = False
    for region in regions:
        cleaner = Cleaner(aws_session(region, args.profile), region, log=console.print)
        found = cleaner.find(args.deployment)
        found_any |= bool(found)
        if found and args.yes:
            cleaner.delete(found)
        for kind, identifier in found if not args.yes else []:
            console.print(f"would delete {kind} {identifier} ({region})")
    if not found_any:
        console.print(f"nothing tagged with deployment {args.deployment!r} in {', '.join(regions)}")
    elif not args.yes:
        console.print("run again with --yes to delete these")
    if args.data:
        from nwb_cloud.convert.places import parse_place

        for item in args.data:
            data = parse_place(item, endpoint_url=args.endpoint_url, profile=args.profile, anonymous=args.anonymous)
            data = data.child(DATA)
            if args.yes:
                data.delete_all()
                console.print(f"deleted the study under {data.url()}")
            else:
                console.print(f"would delete the study under {data.url()}")
    return 0


def run_child_command(args) -> int:
    from nwb_cloud.fleet.child import run_child

    outcome = run_child(args.run, args.child, endpoint_url=args.endpoint_url, region=args.region,
                        workdir=args.workdir, repo=args.repo, echo=lambda line: print(line, flush=True))  # fmt: skip
    print(f"{args.child}: results in {outcome.results}", flush=True)
    return 0


def _add_plan_arguments(parser) -> None:
    add(parser, "--instance-type", value=listed(INSTANCE_NAME), action="append", metavar="TYPE",
        help="an EC2 instance type per child (repeatable, or comma-separated)")  # fmt: skip
    add(
        parser, "--region", value=REGION, action="append", help="region of the children (repeatable; default us-east-1)"
    )
    add(parser, "--bucket", value=REGIONAL_BUCKET, action="append", metavar="[REGION=]S3URL",
        help="s3://bucket/prefix for the study and the results, one per region (repeatable)")  # fmt: skip
    add(parser, "--size", choices=SIZES, default="quick", help="suite size (default quick)")
    add(parser, "--source", choices=("generated", "dandi"), default="generated",
        help="generated: the study written and uploaded to your bucket; dandi: public DANDI assets")  # fmt: skip
    add(parser, "--market", choices=("on-demand", "spot"), default="on-demand", help="EC2 market (default on-demand)")
    add(parser, "--workload", value=listed(WORKLOAD), action="append", help="measure only these workloads")
    add(parser, "--method", value=listed(METHOD), action="append", help="measure only these read methods")
    add(parser, "--layout", value=listed(LAYOUT), action="append", help="measure only these layouts")
    add(parser, "--image", value=IMAGE, help="the benchmark-host image (docker/README.md); checked in its registry")
    add(parser, "--executor", choices=("batch", "local"), default="batch",
        help="AWS Batch, or local processes (one per --machine)")  # fmt: skip
    add(parser, "--machine", value=listed(SESSION), action="append",
        help="names of the local executor's children (repeatable; default: this host's instance type and region "
             "on EC2, else its name)")  # fmt: skip
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint of the buckets, if not AWS (the embedded cloud)")
    add(parser, "--seed", value=integer(0), default=0, help="seed of the generated study (default 0)")
    add(parser, "--results", value=FOLDER, default=Path("results"),
        help="results folder of the earlier runs the estimate rests on (default ./results)")  # fmt: skip
    add(parser, "--data-dir", value=FOLDER, help="where refreshed prices live (NWB_CLOUD_DATA_DIR)")
    add_credentials_arguments(parser)


def _add_run_arguments(parser) -> None:
    add(parser, "run", value=PLACE, help="the fleet run folder printed by submit")
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint of the run folder, if not AWS")
    add(parser, "--region", value=REGION, help="region of the run folder's bucket")


def register(subparsers) -> None:
    fleet = subparsers.add_parser("fleet", help="the suite on EC2 instance types with AWS Batch, price first")
    commands = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)

    parser = commands.add_parser("plan", help="children, run time and price per instance type; creates nothing")
    _add_plan_arguments(parser)
    add(parser, "--offline", action="store_true", help="skip the checks that ask AWS, DANDI or a registry")
    add(parser, "--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=plan_command)

    parser = commands.add_parser("submit", help="after confirmation, create or reuse Batch resources and submit")
    _add_plan_arguments(parser)
    add(
        parser, "--deployment", value=DEPLOYMENT, default="nwb-cloud-fleet", help="name prefix and tag of the resources"
    )
    add(parser, "--subnets", value=as_text(IDS), help="comma-separated subnet ids (default: the default VPC's)")
    add(parser, "--security-groups", value=as_text(IDS), help="comma-separated security group ids (default: the VPC's)")
    add(
        parser, "--tag", value=as_text(KEY_VALUE), action="append", help="a tag for every resource created (repeatable)"
    )
    add(parser, "--parallel", value=integer(1, 1024, 2), default=1, help="local children at once (default 1)")
    add(parser, "--yes", action="store_true", help="do not ask before starting instances")
    parser.set_defaults(handler=submit_command)

    parser = commands.add_parser("status", help="each child's state; --wait until every child has finished")
    _add_run_arguments(parser)
    add_credentials_arguments(parser)
    add(parser, "--wait", action="store_true", help="poll until every child has finished")
    add(parser, "--poll", value=number(0.1, 3600, 60), default=60.0, help="seconds between polls (default 60)")
    add(parser, "--json", action="store_true", help="print each child's state as JSON")
    parser.set_defaults(handler=status_command)

    parser = commands.add_parser("collect", help="merge the children's results into the results folder")
    _add_run_arguments(parser)
    add_credentials_arguments(parser)
    add(parser, "--results", value=FOLDER, default=Path("results"), help="the results folder (default ./results)")
    add(parser, "--report", action="store_true", help="then build the report from the results folder")
    add(parser, "--reports", value=FOLDER, default=Path("reports"), help="where the report goes (default ./reports)")
    add(parser, "--data-dir", value=FOLDER, help="where the children's logs are kept (NWB_CLOUD_DATA_DIR)")
    parser.set_defaults(handler=collect_command)

    parser = commands.add_parser("cleanup", help="delete every AWS resource the fleet deployment created (by its tag)")
    add(
        parser,
        "--deployment",
        value=DEPLOYMENT,
        default="nwb-cloud-fleet",
        help="the deployment (default nwb-cloud-fleet)",
    )
    add(parser, "--region", value=REGION, action="append", help="regions to clean (repeatable; default us-east-1)")
    add(parser, "--data", value=S3_PREFIX, action="append", metavar="S3URL",
        help="also delete the study uploaded under this s3://bucket/prefix (repeatable)")  # fmt: skip
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint of the --data buckets, if not AWS")
    add_credentials_arguments(parser)
    add(parser, "--yes", action="store_true", help="delete (without it: list what would be deleted)")
    parser.set_defaults(handler=cleanup_command)

    parser = commands.add_parser("run-child", help="run one child (the benchmark-host job's command)")
    _add_run_arguments(parser)
    add(parser, "child", value=SESSION, help="the child's name (its asv machine)")
    add(parser, "--workdir", value=FOLDER, help="scratch folder (default: the system's temporary one)")
    add(parser, "--repo", value=FOLDER, help="the nwb-cloud checkout holding asv.conf.json (default: this one)")
    parser.set_defaults(handler=run_child_command)
