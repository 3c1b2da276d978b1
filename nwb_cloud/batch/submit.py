"""``batch submit``: check everything, then create or reuse the deployment and submit one job chain per session.

All that can fail on the user's input fails before the first resource exists: the plan (spec, source,
destination write access, price table), the image, credentials, the source's rclone remote, the secrets
named, the network. Resources are then created or reused (:mod:`nwb_cloud.batch.resources`); a failure or
Ctrl-C from there on cancels the jobs already submitted and deletes what this submit created.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nwb_cloud.batch.aws import account_id, aws_errors, aws_session
from nwb_cloud.batch.cleanup import ACTIVE_JOB_STATES, rollback
from nwb_cloud.batch.errors import BatchError
from nwb_cloud.batch.jobs import RUNS, Run, session_jobs, source_environment, write_run
from nwb_cloud.batch.network import discover_network
from nwb_cloud.batch.plan import SIDE_JOB_MEMORY_GIB, Plan, job_cores
from nwb_cloud.batch.policies import BATCH_SERVICE_POLICY, INSTANCE_POLICY, execution_policy, job_policy
from nwb_cloud.batch.resources import Deployment, Ledger, Provisioner
from nwb_cloud.convert.rclone import remote_name
from nwb_cloud.convert.steps import STEPS

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,29}$")
MIN_TIMEOUT_S = 1800
TIMEOUT_FACTOR = 10  # a job is stopped after 10x its estimate (at least 30 min): a hung job must not bill forever


@dataclass(frozen=True)
class Submitted:
    run: Run
    queue: str
    jobs: dict[str, dict[str, str]]  # session -> step -> job id
    created: list[tuple[str, str]]
    already_running: tuple[str, ...]


def check_submission(plan: Plan, image: str | None, deployment: str) -> None:
    """What can be checked without AWS: raises before anything is asked of it."""
    if plan.executor != "batch":
        raise BatchError("this plan is for the local executor; plan again with --executor batch")
    if not image:
        raise BatchError("--image is required: the conversion image in a registry the jobs can pull (docker/README.md)")
    if not _NAME.match(deployment):
        raise BatchError(f"deployment name {deployment!r}: a letter, then letters, digits or '-', at most 30")
    destination = plan.destination
    if destination.kind != "s3" or destination.endpoint_url:
        raise BatchError(
            f"AWS Batch jobs write to S3: the destination must be s3://bucket/prefix, not {destination.label}"
        )
    if remote_name(plan.source) is None and not plan.source.startswith(":"):
        raise BatchError(f"{plan.source} is a local folder, which AWS Batch cannot read: give an rclone remote path")


def submit(
    plan: Plan,
    rclone,
    image: str | None,
    deployment: str = "nwb-cloud",
    subnets: list[str] | None = None,
    security_groups: list[str] | None = None,
    tags: dict[str, str] | None = None,
    secret_env: dict[str, str] | None = None,
    session=None,
    log=lambda message: None,
) -> Submitted:
    check_submission(plan, image, deployment)
    plan.destination.probe_write()  # the plan wrote nothing, so write access is proved here, before any resource
    session = session or aws_session(plan.region)
    account = account_id(session)
    environment = source_environment(plan.source, rclone)
    secret_env = dict(secret_env or {})
    secrets_client = session.client("secretsmanager", region_name=plan.region)
    for name, arn in secret_env.items():
        with aws_errors(f"secret {arn} (for ${name})"):
            secrets_client.describe_secret(SecretId=arn)
    network = discover_network(session.client("ec2", region_name=plan.region), subnets, security_groups)
    batch = session.client("batch", region_name=plan.region)
    running = running_sessions(plan.destination, batch)
    sessions = [s for s in plan.sessions if s.name not in running]
    if not sessions:
        raise BatchError(f"every planned session is already running: {', '.join(sorted(running))}")

    ledger = Ledger()
    target = Deployment(deployment, plan.region, account, dict(tags or {}))
    provisioner = Provisioner(session, target, ledger, log)
    submitted: list[str] = []
    try:
        queue = _provision(plan, provisioner, target, image, network, environment, secret_env)
        definitions, queue_arn = queue
        jobs = [job for job in session_jobs(plan) if job.session_name in {s.name for s in sessions}]
        run = write_run(plan, jobs)
        estimates = {s.name: s.steps for s in sessions}
        ids: dict[str, dict[str, str]] = {}
        with aws_errors("submitting the jobs"):
            for job in jobs:
                ids[job.session_name] = {}
                previous = None
                for step in STEPS:
                    seconds = estimates[job.session_name][step].seconds
                    response = batch.submit_job(
                        jobName=_job_name(deployment, plan.run_id, job.session_name, step),
                        jobQueue=queue_arn,
                        jobDefinition=definitions[step],
                        dependsOn=[{"jobId": previous}] if previous else [],
                        containerOverrides={"command": run.command(job.session_name, step)},
                        timeout={"attemptDurationSeconds": int(max(MIN_TIMEOUT_S, TIMEOUT_FACTOR * seconds))},
                        tags={**target.tags(), "nwb-cloud:run": plan.run_id, "nwb-cloud:session": job.session_name},
                        propagateTags=True,
                    )
                    previous = response["jobId"]
                    submitted.append(previous)
                    ids[job.session_name][step] = previous
        run.folder.write_json(
            "run.json",
            {
                "run_id": plan.run_id,
                "deployment": deployment,
                "region": plan.region,
                "queue": queue_arn,
                "log_group": target.log_group,
                "jobs": ids,
            },
        )
    except BaseException:
        for job_id in submitted:
            try:
                batch.terminate_job(jobId=job_id, reason="nwb-cloud submit failed: rolled back")
            except Exception as error:  # the rollback goes on: the queue's deletion ends any job left
                log(f"could not cancel job {job_id}: {error}")
        rollback(session, plan.region, ledger, log)
        raise
    return Submitted(run, queue_arn, ids, list(ledger.created), tuple(sorted(running)))


def _provision(plan, provisioner: Provisioner, target: Deployment, image, network, environment, secret_env):
    destination = plan.destination
    log_group = provisioner.log_group()
    service_role = provisioner.role("batch-service", "batch.amazonaws.com", managed=(BATCH_SERVICE_POLICY,))
    provisioner.role("instance", "ec2.amazonaws.com", managed=(INSTANCE_POLICY,))
    instance_profile = provisioner.instance_profile(target.role("instance"))
    job_role = provisioner.role(
        "job", "ecs-tasks.amazonaws.com", inline=job_policy(destination.bucket, destination.prefix)
    )
    secret_arns = dict(secret_env)
    secrets = [{"name": name, "valueFrom": arn} for name, arn in sorted(secret_env.items())]
    if environment:
        rclone_secret = provisioner.secret(f"rclone-{remote_name(plan.source) or 'source'}", environment)
        secret_arns["rclone"] = rclone_secret
        secrets += [{"name": name, "valueFrom": f"{rclone_secret}:{name}::"} for name in sorted(environment)]
    execution_role = provisioner.role(
        "execution",
        "ecs-tasks.amazonaws.com",
        inline=execution_policy(list(secret_arns.values()), target.log_group_arn, image),
    )
    template = provisioner.launch_template(plan.disk_gib)
    machine = plan.machine
    max_vcpus = plan.parallel * machine.vcpus
    environment_arn = provisioner.compute_environment(
        machine.instance_type, plan.market, network, instance_profile, service_role, template, max_vcpus
    )
    queue_arn = provisioner.job_queue(environment_arn, target.environment(machine.instance_type, plan.market))
    definitions = {}
    for step in STEPS:
        vcpus = job_cores(step, machine)
        memory_mib = int(machine.memory_gib * 1024 * 0.9) if step == "convert" else SIDE_JOB_MEMORY_GIB * 1024
        properties = {
            "image": image,
            "command": ["batch", "run-step", "--help"],  # each job overrides it with its own step
            "jobRoleArn": job_role,
            "executionRoleArn": execution_role,
            "resourceRequirements": [
                {"type": "VCPU", "value": str(vcpus)},
                {"type": "MEMORY", "value": str(memory_mib)},
            ],
            "secrets": secrets,
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-group": log_group,
                    "awslogs-region": plan.region,
                    "awslogs-stream-prefix": target.name,
                },
            },
        }
        definitions[step] = provisioner.job_definition(step, properties)
    return definitions, queue_arn


def _job_name(deployment: str, run_id: str, session: str, step: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{deployment}-{run_id}-{session}-{step}")[:128]


def running_sessions(destination, batch, recent_runs: int = 20) -> set[str]:
    """Sessions with a job still queued or running in an earlier run: submitting them again would race it."""
    runs = sorted({name.split("/")[0] for name in destination.child(RUNS).names() if name.endswith("/run.json")})
    running = set()
    for run_id in runs[-recent_runs:]:
        manifest = destination.child(RUNS, run_id).read_json("run.json") or {}
        ids = {job_id: session for session, steps in manifest.get("jobs", {}).items() for job_id in steps.values()}
        if not ids:
            continue
        with aws_errors(f"looking up the jobs of run {run_id}"):
            for start in range(0, len(ids), 100):
                found = batch.describe_jobs(jobs=list(ids)[start : start + 100])["jobs"]
                running |= {ids[j["jobId"]] for j in found if j["status"] in ACTIVE_JOB_STATES}
    return running
