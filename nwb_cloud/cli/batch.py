"""``nwb-cloud batch plan|submit|status|logs|cleanup|prices|run-step``: conversions on AWS Batch (or locally)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from rich.console import Console

from nwb_cloud.cli._common import (
    add_credentials_arguments,
    add_data_dir,
    confirm_spending,
    key_value_pairs,
    status_summary,
)
from nwb_cloud.cli._options import (
    DEPLOYMENT,
    FOLDER,
    IDS,
    IMAGE,
    INSTANCE_TYPE,
    KEY_VALUE,
    OUTPUT_FILE,
    PLACE,
    REGION,
    S3_PREFIX,
    SESSION,
    URL,
    add,
    as_text,
    integer,
    number,
)
from nwb_cloud.cli.convert import add_location_arguments, destination_of
from nwb_cloud.settings import Settings

STEP_NAMES = ("transfer", "convert", "upload")  # nwb_cloud.convert.steps.STEPS, without importing the stack

console = Console(stderr=True)


def _settings(args) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None))


def _records_path(args) -> Path:
    return args.records or _settings(args).data_dir / "throughput.jsonl"


def _prices_path(args) -> Path:
    return _settings(args).data_dir / "prices.json"


def _plan(args):
    from nwb_cloud.batch.plan import make_plan
    from nwb_cloud.batch.prices import load_prices
    from nwb_cloud.convert.rclone import Rclone
    from nwb_cloud.convert.records import load_records
    from nwb_cloud.convert.spec import ConversionSpec

    spec = ConversionSpec.load(args.spec)
    destination = destination_of(args)
    rclone = Rclone(args.rclone_config)
    plan = make_plan(
        spec, args.source, destination, rclone, load_records(_records_path(args)), load_prices(_prices_path(args)),
        region=args.region or "us-east-1", market=args.market, instance_type=args.instance_type,
        max_vcpus=args.max_vcpus, layout=args.layout, executor=args.executor, parallel=args.parallel,
    )  # fmt: skip
    return plan, rclone


def plan_command(args) -> int:
    from nwb_cloud.batch.render import render_plan

    plan, _ = _plan(args)
    if args.json:
        print(json.dumps(plan.to_dict(), indent=1))
    else:
        console.print(render_plan(plan))
    return 0


def _confirm(plan, assume_yes: bool) -> None:
    confirm_spending(plan.cost.total, "AWS Batch jobs", assume_yes or plan.executor == "local")


def submit_command(args) -> int:
    from nwb_cloud.batch.jobs import source_environment
    from nwb_cloud.batch.local import run_locally
    from nwb_cloud.batch.render import render_plan

    plan, rclone = _plan(args)
    console.print(render_plan(plan))
    if not plan.sessions:
        console.print("every session is already finished: nothing to do")
        return 0
    _confirm(plan, args.yes)
    if plan.executor == "local":
        outcome = run_locally(plan, source_environment(plan.source, rclone), args.parallel, _records_path(args))
        for chain in outcome.chains:
            detail = f" at {chain.failed_step}: {chain.reason}" if chain.failed_step else ""
            console.print(f"{chain.session}: {chain.status} in {chain.seconds:.1f} s{detail}")
        console.print(
            f"wall time {outcome.wall_seconds:.1f} s, estimated {outcome.estimated_seconds:.1f} s "
            f"(measured/estimated {outcome.ratio:.2f}); {len(outcome.records)} records kept in {_records_path(args)}"
        )
        return 0 if all(c.status == "SUCCEEDED" for c in outcome.chains) else 1
    from nwb_cloud.batch.errors import BatchError
    from nwb_cloud.batch.submit import submit

    submitted = submit(
        plan, rclone, image=args.image, deployment=args.deployment, subnets=_split(args.subnets),
        security_groups=_split(args.security_groups), tags=key_value_pairs(args.tag, BatchError),
        secret_env=key_value_pairs(args.secret_env, BatchError),
        log=console.print,
    )  # fmt: skip
    console.print(f"submitted run {plan.run_id}; follow it with: nwb-cloud batch status RUN --wait")
    print(submitted.run.url)  # alone on stdout, for scripts
    return 0


def _open(args):
    from nwb_cloud.batch.aws import aws_session
    from nwb_cloud.batch.jobs import open_run
    from nwb_cloud.batch.monitor import manifest

    run = open_run(args.run, endpoint_url=args.endpoint_url, region=args.region, profile=args.profile)
    region = manifest(run)["region"]
    return run, aws_session(region, args.profile), region


def status_command(args) -> int:
    from rich.table import Table

    from nwb_cloud.batch.jobs import collect_records
    from nwb_cloud.batch.monitor import run_state, wait
    from nwb_cloud.convert.records import append_records

    run, session, region = _open(args)
    batch = session.client("batch", region_name=region)
    if args.wait:
        states = wait(run, batch, poll_s=args.poll, on_poll=lambda s: console.print(status_summary(s)))
    else:
        states = run_state(run, batch)
    if args.json:
        print(json.dumps([{"session": s.session, "status": s.status, "failure": s.failure,
                           "jobs": [asdict(job) for job in s.jobs]} for s in states], indent=1))  # fmt: skip
    else:
        table = Table("session", "status", "transfer", "convert", "upload", "failure", title=f"run {run.run_id}")
        for state in states:
            table.add_row(state.session, state.status, *[job.status for job in state.jobs], state.failure)
        console.print(table)
    kept = append_records(_records_path(args), collect_records(run))
    if kept:
        console.print(f"{kept} new throughput records kept in {_records_path(args)}")
    return 1 if any(s.status == "FAILED" for s in states) else 0


def logs_command(args) -> int:
    from nwb_cloud.batch.monitor import job_logs

    run, session, region = _open(args)
    lines = job_logs(
        run,
        args.session,
        args.step,
        session.client("batch", region_name=region),
        session.client("logs", region_name=region),
    )
    for line in lines:
        print(line)
    return 0


def cleanup_command(args) -> int:
    from nwb_cloud.batch.aws import aws_session
    from nwb_cloud.batch.cleanup import Cleaner

    region = args.region or "us-east-1"
    cleaner = Cleaner(aws_session(region, args.profile), region, log=console.print)
    found = cleaner.find(args.deployment)
    if not found:
        console.print(f"nothing tagged with deployment {args.deployment!r} in {region}")
    elif not args.yes:
        for kind, identifier in found:
            console.print(f"would delete {kind} {identifier}")
        console.print("run again with --yes to delete these")
        return 0
    else:
        cleaner.delete(found)
    if args.staging:
        from nwb_cloud.batch.jobs import STAGING
        from nwb_cloud.convert.places import parse_place

        parse_place(args.staging, region=region, profile=args.profile).child(STAGING).delete_all()
        console.print(f"deleted the staging area under {args.staging}")
    return 0


def run_step_command(args) -> int:
    from nwb_cloud.batch.jobs import open_run, process_started, run_job_step

    started = process_started()
    run = open_run(args.run, endpoint_url=args.endpoint_url, region=args.region, profile=args.profile)
    result = run_job_step(run, args.session, args.step, workdir=args.workdir, started=started, log=print)
    state = "skipped (already done)" if result.skipped else f"done in {result.seconds:.1f} s"
    print(f"{args.session} {args.step}: {state}", flush=True)
    return 0


def prices_command(args) -> int:
    from nwb_cloud.batch.prices import load_prices, refresh

    path = _prices_path(args)
    if args.refresh:
        import boto3

        table = refresh(
            boto3.session.Session(profile_name=args.profile), args.region or ["us-east-1"], base=load_prices(path)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table.to_json())
        console.print(f"prices refreshed ({table.source}) -> {path}")
        return 0
    table = load_prices(path)
    print(table.to_json())
    return 0


def _split(text: str | None) -> list[str] | None:
    return [item.strip() for item in text.split(",") if item.strip()] if text else None


def _add_plan_arguments(parser) -> None:
    add_location_arguments(parser)
    add(parser, "--market", choices=("spot", "on-demand"), default="spot", help="EC2 market (default spot)")
    add(parser, "--instance-type", value=INSTANCE_TYPE, help="use this instance type, not the cheapest that fits")
    add(parser, "--max-vcpus", value=integer(1, 100_000, 64), default=64, help="cap of the compute environment")
    add(parser, "--executor", choices=("batch", "local"), default="batch", help="AWS Batch, or local processes")
    add(parser, "--parallel", value=integer(1, 1024, 2), default=1, help="sessions at once with --executor local")
    add(parser, "--records", value=OUTPUT_FILE, help="throughput records file (default: DATA_DIR/throughput.jsonl)")
    add_data_dir(parser, "throughput records and refreshed prices")


def _add_run_arguments(parser, with_credentials: bool = True) -> None:
    add(parser, "run", value=PLACE, help="the run folder submit printed (under DESTINATION/.conversion-state/runs)")
    add(parser, "--endpoint-url", value=URL, help="S3 endpoint of the run folder, if not AWS")
    add(parser, "--region", value=REGION, help="region of the destination bucket")
    add_credentials_arguments(parser) if with_credentials else None


def register(subparsers) -> None:
    batch = subparsers.add_parser("batch", help="plan, submit and follow conversions on AWS Batch")
    commands = batch.add_subparsers(dest="batch_command", metavar="ACTION", required=True)

    parser = commands.add_parser("plan", help="sessions, sizes, instance choice and a cost estimate; creates nothing")
    _add_plan_arguments(parser)
    add(parser, "--json", action="store_true", help="print the plan as JSON")
    parser.set_defaults(handler=plan_command)

    parser = commands.add_parser("submit", help="after confirmation, create or reuse Batch resources and submit")
    _add_plan_arguments(parser)
    add(parser, "--image", value=IMAGE, help="the conversion image (docker/README.md); required for AWS Batch")
    add(parser, "--deployment", value=DEPLOYMENT, default="nwb-cloud", help="name prefix and tag of the resources")
    add(parser, "--subnets", value=as_text(IDS), help="comma-separated subnet ids (default: the default VPC's)")
    add(parser, "--security-groups", value=as_text(IDS), help="comma-separated security group ids (default: the VPC's)")
    add(
        parser, "--tag", value=as_text(KEY_VALUE), action="append", help="a tag for every resource created (repeatable)"
    )
    add(
        parser, "--secret-env", value=KEY_VALUE, action="append", help="NAME=SECRET_ARN: a secret the jobs get as $NAME"
    )
    add(parser, "--yes", action="store_true", help="do not ask before starting instances")
    parser.set_defaults(handler=submit_command)

    parser = commands.add_parser("status", help="per-session state of a run; --wait until it ends or a job fails")
    _add_run_arguments(parser)
    add(parser, "--wait", action="store_true", help="poll until every job finished or one FAILED")
    add(parser, "--poll", value=number(0, 3600, 30), default=30.0, help="seconds between polls (default 30)")
    add(parser, "--records", value=OUTPUT_FILE, help="throughput records file (default: DATA_DIR/throughput.jsonl)")
    add_data_dir(parser, "throughput records")
    add(parser, "--json", action="store_true", help="print each session's state as JSON")
    parser.set_defaults(handler=status_command)

    parser = commands.add_parser("logs", help="the CloudWatch log of one step of one session")
    _add_run_arguments(parser)
    add(parser, "session", value=SESSION, help="the session")
    add(parser, "step", choices=STEP_NAMES, help="the step")
    parser.set_defaults(handler=logs_command)

    parser = commands.add_parser("cleanup", help="delete every AWS resource the deployment created (by its tag)")
    add(parser, "--deployment", value=DEPLOYMENT, default="nwb-cloud", help="the deployment (default nwb-cloud)")
    add(parser, "--region", value=REGION, help="its region (default us-east-1)")
    add(parser, "--staging", value=S3_PREFIX, help="also delete the staging area under this destination")
    add(parser, "--yes", action="store_true", help="delete (without it: list what would be deleted)")
    add_credentials_arguments(parser)
    parser.set_defaults(handler=cleanup_command)

    parser = commands.add_parser("run-step", help="run one step of one session (the Batch container's command)")
    _add_run_arguments(parser)
    add(parser, "session", value=SESSION, help="the session")
    add(parser, "step", choices=STEP_NAMES, help="the step")
    add(parser, "--workdir", value=FOLDER, help="local scratch folder (default: the system's temporary one)")
    parser.set_defaults(handler=run_step_command)

    parser = commands.add_parser("prices", help="print the price table in use, or --refresh it from AWS")
    add(parser, "--refresh", action="store_true", help="query the AWS Pricing API and spot price history")
    add(parser, "--region", value=REGION, action="append", help="region to refresh (repeatable; default us-east-1)")
    add_data_dir(parser, "the refreshed price table")
    add_credentials_arguments(parser)
    parser.set_defaults(handler=prices_command)
