"""``fleet submit``: the run folder, the AWS Batch resources of each region, one benchmark-host job per child.

The resources are a conversion's (:mod:`nwb_cloud.batch.resources`): found by name and tag or created,
tagged with the deployment, entered in a ledger the moment they exist. Per region: the log group, the
roles (a job role that reads and writes only under the fleet's bucket prefixes, an execution role that
writes the logs and pulls the image), the instance profile, and per instance type a launch template (its
disk), a compute environment of that one type, its queue and a job definition asking for the whole instance.

One job per child, not one array job: an array job's children share one queue and one set of resource
requirements, so AWS Batch cannot place them on different instance types; a queue per instance type can.
Each job takes its whole instance (every vCPU, 90 % of the memory), so no two children share one.

A failure or Ctrl-C after the first resource exists cancels the jobs submitted, deletes what this submit
created (its ledgers) and the run folder, and re-raises.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from nwb_cloud.batch.aws import account_id, aws_errors
from nwb_cloud.batch.cleanup import rollback
from nwb_cloud.batch.network import discover_network
from nwb_cloud.batch.policies import BATCH_SERVICE_POLICY, INSTANCE_POLICY, execution_policy, job_policy
from nwb_cloud.batch.resources import Deployment, Ledger, Provisioner
from nwb_cloud.fleet.checks import prove_write_access
from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.fleet.plan import FleetPlan
from nwb_cloud.fleet.spec import FLEET_RUNS

DEFAULT_DEPLOYMENT = "nwb-cloud-fleet"
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,29}$")
MIN_TIMEOUT_S = 3600
TIMEOUT_FACTOR = 3  # a child is stopped after 3x its estimate (at least an hour): a hung one must not bill forever
MEMORY_SHARE = 0.9  # the rest is the OS's and the ECS agent's


@dataclass(frozen=True)
class Submitted:
    run_url: str
    jobs: dict[str, dict[str, str]]  # child -> {"job_id", "region", "queue"}
    created: list[tuple[str, str]]


def run_folder(plan: FleetPlan):
    return plan.results.child(FLEET_RUNS, plan.run_id)


def write_run_folder(plan: FleetPlan):
    """The plan and one specification per child: all a child reads (its command names only the folder)."""
    folder = run_folder(plan)
    folder.write_json("plan.json", plan.to_dict())
    for child in plan.children:
        folder.write_json(f"children/{child.child.name}.json", child.child.to_dict())
    return folder


def child_command(plan: FleetPlan, child: str) -> list[str]:
    """The ``nwb-cloud`` arguments of one child (the image's entrypoint is ``nwb-cloud``)."""
    folder = run_folder(plan)
    command = ["fleet", "run-child", folder.url(), child, "--region", folder.region]
    if folder.endpoint_url:
        command += ["--endpoint-url", folder.endpoint_url]
    return command


def check_deployment(name: str) -> str:
    if not _NAME.match(name):
        raise FleetError(f"deployment name {name!r}: a letter, then letters, digits or '-', at most 30")
    return name


def submit(
    plan: FleetPlan,
    sessions: dict,
    deployment: str = DEFAULT_DEPLOYMENT,
    subnets: list[str] | None = None,
    security_groups: list[str] | None = None,
    tags: dict[str, str] | None = None,
    log=lambda message: None,
) -> Submitted:
    """Provision and submit; ``sessions`` (region -> boto3 session) come from the environment check."""
    if plan.executor != "batch":
        raise FleetError("this plan is for the local executor; plan again with --executor batch")
    if not plan.image:
        raise FleetError("--image is required: the benchmark-host image (docker/README.md)")
    check_deployment(deployment)
    if (subnets or security_groups) and len(plan.regions) > 1:
        raise FleetError("--subnets and --security-groups belong to one region; the plan spans "
                         f"{', '.join(plan.regions)}")  # fmt: skip
    places = [(p.bucket, p.prefix) for p in {p.url(): p for p in [plan.results, *plan.buckets.values()]}.values()]
    prove_write_access(plan)  # the plan wrote nothing: write access is proved here, before any resource
    ledgers: dict[str, Ledger] = {}
    submitted: list[tuple[str, str]] = []  # (region, job id)
    jobs: dict[str, dict[str, str]] = {}
    folder = None
    try:
        folder = write_run_folder(plan)
        for region in plan.regions:
            session = sessions[region]
            network = discover_network(session.client("ec2", region_name=region), subnets, security_groups)
            target = Deployment(deployment, region, account_id(session), dict(tags or {}))
            ledgers[region] = Ledger()
            provisioner = Provisioner(session, target, ledgers[region], log)
            log_group = provisioner.log_group()
            service_role = provisioner.role("batch-service", "batch.amazonaws.com", managed=(BATCH_SERVICE_POLICY,))
            provisioner.role("instance", "ec2.amazonaws.com", managed=(INSTANCE_POLICY,))
            instance_profile = provisioner.instance_profile(target.role("instance"))
            job_role = provisioner.role("job", "ecs-tasks.amazonaws.com", inline=job_policy(*places[0], *places[1:]))
            execution_role = provisioner.role(
                "execution", "ecs-tasks.amazonaws.com", inline=execution_policy([], target.log_group_arn, plan.image)
            )
            batch = session.client("batch", region_name=region)
            for planned in [c for c in plan.children if c.child.region == region]:
                child = planned.child
                template = provisioner.launch_template(planned.disk_gib)
                environment = provisioner.compute_environment(
                    child.instance_type, plan.market, network, instance_profile, service_role, template, planned.vcpus
                )
                queue = provisioner.job_queue(environment, target.environment(child.instance_type, plan.market))
                memory = int(planned.memory_gib * 1024 * MEMORY_SHARE)
                definition = provisioner.job_definition(f"bench-{child.instance_type.replace('.', '-')}", {
                    "image": plan.image,
                    "command": ["fleet", "run-child", "--help"],  # each job overrides it with its own child
                    "jobRoleArn": job_role,
                    "executionRoleArn": execution_role,
                    "resourceRequirements": [  # the whole instance: no two children share one
                        {"type": "VCPU", "value": str(planned.vcpus)},
                        {"type": "MEMORY", "value": str(memory)},
                    ],
                    "logConfiguration": {"logDriver": "awslogs", "options": {
                        "awslogs-group": log_group, "awslogs-region": region,
                        "awslogs-stream-prefix": target.name}},
                })  # fmt: skip
                with aws_errors(f"submitting child {child.name}"):
                    response = batch.submit_job(
                        jobName=re.sub(r"[^A-Za-z0-9_-]", "-", f"{deployment}-{plan.run_id}-{child.name}")[:128],
                        jobQueue=queue,
                        jobDefinition=definition,
                        containerOverrides={"command": child_command(plan, child.name)},
                        timeout={"attemptDurationSeconds": int(max(MIN_TIMEOUT_S,
                                                                   TIMEOUT_FACTOR * planned.estimate.seconds))},
                        tags={**target.tags(), "nwb-cloud:fleet-run": plan.run_id, "nwb-cloud:child": child.name},
                        propagateTags=True,
                    )  # fmt: skip
                submitted.append((region, response["jobId"]))
                jobs[child.name] = {"job_id": response["jobId"], "region": region, "queue": queue}
                log(f"submitted {child.name}: job {response['jobId']}")
        folder.write_json("run.json", {
            "run_id": plan.run_id, "executor": "batch", "deployment": deployment, "regions": plan.regions,
            "jobs": jobs, "log_groups": {region: Deployment(deployment, region, "").log_group for region in ledgers},
        })  # fmt: skip
    except BaseException:
        for region, job_id in submitted:
            try:
                sessions[region].client("batch", region_name=region).terminate_job(
                    jobId=job_id, reason="nwb-cloud fleet submit failed: rolled back"
                )
            except Exception as error:  # the rollback goes on: deleting the queue ends any job left
                log(f"could not cancel job {job_id}: {error}")
        for region, ledger in reversed(list(ledgers.items())):
            rollback(sessions[region], region, ledger, log)
        if folder is not None:
            folder.delete_all()
        raise
    created = [entry for ledger in ledgers.values() for entry in ledger.created]
    return Submitted(folder.url(), jobs, created)
