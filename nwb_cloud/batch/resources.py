"""The AWS resources of a deployment: created once, found and reused after, tagged, rolled back on failure.

Every name derives from the deployment name, so a second submit finds what the first created instead of
making duplicates; a resource found with that name but without this deployment's tag was not made here
and is never reused or touched. Everything created is tagged (``nwb-cloud:deployment``) and entered in a
:class:`Ledger` the moment it exists, so a failure or Ctrl-C in the middle of a submit deletes exactly what
that submit created (see :mod:`nwb_cloud.batch.cleanup`), and ``batch cleanup`` can find it all later.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from nwb_cloud.batch import policies
from nwb_cloud.batch.aws import aws_errors, error_code
from nwb_cloud.batch.errors import AwsError
from nwb_cloud.batch.network import Network

TAG = "nwb-cloud:deployment"
IAM_PATH = "/nwb-cloud/"
READY_TIMEOUT_S = 600
RETRY_IAM_S = 60  # a new IAM role or instance profile takes seconds to be usable by Batch


def digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Deployment:
    name: str
    region: str
    account: str
    extra_tags: dict = field(default_factory=dict)

    def tags(self) -> dict[str, str]:
        return {**self.extra_tags, TAG: self.name, "nwb-cloud:managed-by": "nwb-cloud"}

    def role(self, kind: str) -> str:
        return f"{self.name}-{kind}"

    def environment(self, instance_type: str, market: str) -> str:
        return f"{self.name}-{instance_type.replace('.', '-')}-{market}"

    def job_definition(self, step: str) -> str:
        return f"{self.name}-{step}"

    @property
    def log_group(self) -> str:
        return f"/nwb-cloud/{self.name}"

    @property
    def log_group_arn(self) -> str:
        return f"arn:aws:logs:{self.region}:{self.account}:log-group:{self.log_group}"


@dataclass
class Ledger:
    """What this submit created, in creation order: what a rollback deletes, newest first."""

    created: list[tuple[str, str]] = field(default_factory=list)  # (kind, identifier)

    def add(self, kind: str, identifier: str) -> None:
        self.created.append((kind, identifier))


class Provisioner:
    def __init__(self, session, deployment: Deployment, ledger: Ledger, log=lambda message: None):
        self.deployment = deployment
        self.ledger = ledger
        self.log = log
        self.iam = session.client("iam")
        self.batch = session.client("batch", region_name=deployment.region)
        self.ec2 = session.client("ec2", region_name=deployment.region)
        self.logs = session.client("logs", region_name=deployment.region)
        self.secrets = session.client("secretsmanager", region_name=deployment.region)

    def _created(self, kind: str, identifier: str) -> None:
        self.ledger.add(kind, identifier)
        self.log(f"created {kind} {identifier}")

    def _foreign(self, kind: str, name: str) -> AwsError:
        return AwsError(
            f"{kind} {name!r} exists but was not created by nwb-cloud deployment {self.deployment.name!r} "
            "(no such tag): choose another --deployment name"
        )

    # --- logs -----------------------------------------------------------------------------------------

    def log_group(self) -> str:
        name = self.deployment.log_group
        with aws_errors(f"log group {name}"):
            found = self.logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
            if any(g["logGroupName"] == name for g in found):
                tags = self.logs.list_tags_log_group(logGroupName=name).get("tags", {})
                if tags.get(TAG) != self.deployment.name:
                    raise self._foreign("log group", name)
                return name
            self.logs.create_log_group(logGroupName=name, tags=self.deployment.tags())
            self._created("log_group", name)
            self.logs.put_retention_policy(logGroupName=name, retentionInDays=30)
        return name

    # --- IAM ------------------------------------------------------------------------------------------

    def role(self, kind: str, service: str, managed: tuple[str, ...] = (), inline: dict | None = None) -> str:
        """A role trusted by ``service``, with ``managed`` policies attached or an ``inline`` policy.

        A role with an inline policy is named after a digest of it, so a role's permissions never change
        once jobs use it: a different policy (another destination, other secrets, another image registry)
        is another role, and jobs already queued keep the permissions they were submitted with.
        """
        if inline is not None:
            kind = f"{kind}-{digest(inline)[:8]}"
        name = self.deployment.role(kind)
        with aws_errors(f"IAM role {name}"):
            try:
                role = self.iam.get_role(RoleName=name)["Role"]
                tags = {t["Key"]: t["Value"] for t in self.iam.list_role_tags(RoleName=name)["Tags"]}
                if tags.get(TAG) != self.deployment.name:
                    raise self._foreign("IAM role", name)
            except self.iam.exceptions.NoSuchEntityException:
                role = self.iam.create_role(
                    RoleName=name,
                    Path=IAM_PATH,
                    AssumeRolePolicyDocument=json.dumps(policies.trust(service)),
                    Description=f"nwb-cloud deployment {self.deployment.name}: {kind}",
                    Tags=[{"Key": k, "Value": v} for k, v in self.deployment.tags().items()],
                )["Role"]
                self._created("iam_role", name)
                for arn in managed:
                    self.iam.attach_role_policy(RoleName=name, PolicyArn=arn)
                if inline is not None:
                    self.iam.put_role_policy(RoleName=name, PolicyName=kind, PolicyDocument=json.dumps(inline))
        return role["Arn"]

    def instance_profile(self, role_name: str) -> str:
        name = role_name
        with aws_errors(f"instance profile {name}"):
            try:
                profile = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
                tags = {t["Key"]: t["Value"] for t in profile.get("Tags", [])}
                if tags.get(TAG) != self.deployment.name:
                    raise self._foreign("instance profile", name)
            except self.iam.exceptions.NoSuchEntityException:
                profile = self.iam.create_instance_profile(
                    InstanceProfileName=name,
                    Path=IAM_PATH,
                    Tags=[{"Key": k, "Value": v} for k, v in self.deployment.tags().items()],
                )["InstanceProfile"]
                self._created("instance_profile", name)
                self.iam.add_role_to_instance_profile(InstanceProfileName=name, RoleName=role_name)
        return profile["Arn"]

    # --- secrets --------------------------------------------------------------------------------------

    def secret(self, kind: str, values: dict[str, str]) -> str:
        """A secret holding ``values`` as a JSON object, updated in place when they changed (a refreshed token)."""
        name = re.sub(r"[^\w/+=.@-]", "-", f"{self.deployment.name}/{kind}")
        text = json.dumps(values, sort_keys=True)
        with aws_errors(f"secret {name}"):
            try:
                found = self.secrets.describe_secret(SecretId=name)
            except self.secrets.exceptions.ResourceNotFoundException:
                found = None
            if found is not None:
                tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
                if tags.get(TAG) != self.deployment.name:
                    raise self._foreign("secret", name)
                if self.secrets.get_secret_value(SecretId=name)["SecretString"] != text:
                    self.secrets.put_secret_value(SecretId=name, SecretString=text)
                    self.log(f"updated secret {name}")
                return found["ARN"]
            arn = self.secrets.create_secret(
                Name=name,
                SecretString=text,
                Description=f"nwb-cloud deployment {self.deployment.name}: {kind}",
                Tags=[{"Key": k, "Value": v} for k, v in self.deployment.tags().items()],
            )["ARN"]
            self._created("secret", arn)
        return arn

    # --- EC2 launch template (the EBS volume of each instance) ----------------------------------------

    def launch_template(self, disk_gib: int) -> str:
        name = f"{self.deployment.name}-disk{disk_gib}"
        with aws_errors(f"launch template {name}"):
            found = self.ec2.describe_launch_templates(
                Filters=[{"Name": "launch-template-name", "Values": [name]}]
            ).get("LaunchTemplates", [])
            if found:
                tags = {t["Key"]: t["Value"] for t in found[0].get("Tags", [])}
                if tags.get(TAG) != self.deployment.name:
                    raise self._foreign("launch template", name)
                return found[0]["LaunchTemplateId"]
            volume = {"VolumeSize": disk_gib, "VolumeType": "gp3", "DeleteOnTermination": True, "Encrypted": True}
            created = self.ec2.create_launch_template(
                LaunchTemplateName=name,
                LaunchTemplateData={"BlockDeviceMappings": [{"DeviceName": "/dev/xvda", "Ebs": volume}]},
                TagSpecifications=[
                    {
                        "ResourceType": "launch-template",
                        "Tags": [{"Key": k, "Value": v} for k, v in self.deployment.tags().items()],
                    }
                ],
            )["LaunchTemplate"]
            self._created("launch_template", created["LaunchTemplateId"])
        return created["LaunchTemplateId"]

    # --- Batch ----------------------------------------------------------------------------------------

    def compute_environment(
        self,
        instance_type: str,
        market: str,
        network: Network,
        instance_profile_arn: str,
        service_role_arn: str,
        launch_template_id: str,
        max_vcpus: int,
    ) -> str:
        name = self.deployment.environment(instance_type, market)
        with aws_errors(f"compute environment {name}"):
            found = self.batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
            if found:
                if found[0].get("tags", {}).get(TAG) != self.deployment.name:
                    raise self._foreign("compute environment", name)
                return found[0]["computeEnvironmentArn"]
            resources = {
                "type": "SPOT" if market == "spot" else "EC2",
                "allocationStrategy": "SPOT_CAPACITY_OPTIMIZED" if market == "spot" else "BEST_FIT_PROGRESSIVE",
                "minvCpus": 0,  # nothing runs, nothing is billed, when no job waits
                "maxvCpus": max_vcpus,
                "instanceTypes": [instance_type],
                "subnets": list(network.subnets),
                "securityGroupIds": list(network.security_groups),
                "instanceRole": instance_profile_arn,
                "launchTemplate": {"launchTemplateId": launch_template_id, "version": "$Latest"},
                "tags": self.deployment.tags(),  # the instances carry the tags too, for cost allocation
            }
            arn = _retry_iam(
                lambda: self.batch.create_compute_environment(
                    computeEnvironmentName=name,
                    type="MANAGED",
                    state="ENABLED",
                    computeResources=resources,
                    serviceRole=service_role_arn,
                    tags=self.deployment.tags(),
                )["computeEnvironmentArn"]
            )
            self._created("compute_environment", arn)
            self._wait(lambda: self._environment_status(name), "VALID", f"compute environment {name}")
        return arn

    def _environment_status(self, name: str) -> str:
        found = self.batch.describe_compute_environments(computeEnvironments=[name])["computeEnvironments"]
        if found and found[0].get("status") == "INVALID":
            raise AwsError(f"compute environment {name} is INVALID: {found[0].get('statusReason', '')}")
        return found[0].get("status", "") if found else ""

    def job_queue(self, environment_arn: str, name: str) -> str:
        with aws_errors(f"job queue {name}"):
            found = self.batch.describe_job_queues(jobQueues=[name])["jobQueues"]
            if found:
                if found[0].get("tags", {}).get(TAG) != self.deployment.name:
                    raise self._foreign("job queue", name)
                return found[0]["jobQueueArn"]
            arn = self.batch.create_job_queue(
                jobQueueName=name,
                state="ENABLED",
                priority=1,
                computeEnvironmentOrder=[{"order": 1, "computeEnvironment": environment_arn}],
                tags=self.deployment.tags(),
            )["jobQueueArn"]
            self._created("job_queue", arn)
            self._wait(lambda: self._queue_status(name), "VALID", f"job queue {name}")
        return arn

    def _queue_status(self, name: str) -> str:
        found = self.batch.describe_job_queues(jobQueues=[name])["jobQueues"]
        return found[0].get("status", "") if found else ""

    def job_definition(self, step: str, properties: dict) -> str:
        """The active revision with exactly these container properties, or a new revision."""
        name = self.deployment.job_definition(step)
        with aws_errors(f"job definition {name}"):
            found = self.batch.describe_job_definitions(jobDefinitionName=name, status="ACTIVE")["jobDefinitions"]
            for definition in sorted(found, key=lambda d: d["revision"], reverse=True):
                if definition.get("tags", {}).get(TAG) != self.deployment.name:
                    raise self._foreign("job definition", name)
                if _same_container(definition.get("containerProperties", {}), properties):
                    return definition["jobDefinitionArn"]
            arn = self.batch.register_job_definition(
                jobDefinitionName=name,
                type="container",
                containerProperties=properties,
                retryStrategy={
                    "attempts": 3,
                    "evaluateOnExit": [
                        {"onStatusReason": "Host EC2*", "action": "RETRY"},  # a spot reclaim: try again
                        {"onReason": "*", "action": "EXIT"},
                    ],
                },
                propagateTags=True,
                tags=self.deployment.tags(),
            )["jobDefinitionArn"]
            self._created("job_definition", arn)
        return arn

    def _wait(self, status, wanted: str, what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        delay = 0.0
        while (current := status()) != wanted:
            if time.monotonic() > deadline:
                raise AwsError(f"{what} is still {current or 'missing'} after {READY_TIMEOUT_S} s")
            delay = min(10.0, delay + 1.0)
            time.sleep(delay)


_COMPARED = ("image", "jobRoleArn", "executionRoleArn", "resourceRequirements", "secrets", "logConfiguration")


def _same_container(found: dict, wanted: dict) -> bool:
    def normal(properties: dict) -> dict:
        chosen = {key: properties.get(key) for key in _COMPARED}
        chosen["resourceRequirements"] = sorted(
            (r["type"], str(r["value"])) for r in properties.get("resourceRequirements") or []
        )
        chosen["secrets"] = sorted((s["name"], s["valueFrom"]) for s in properties.get("secrets") or [])
        return chosen

    return normal(found) == normal(wanted)


def _retry_iam(call):
    """Batch refuses a role or instance profile for a few seconds after IAM created it: retry those refusals."""
    deadline = time.monotonic() + RETRY_IAM_S
    while True:
        try:
            return call()
        except Exception as error:
            retriable = error_code(error) in ("ClientException", "InvalidParameterValueException")
            if not retriable or "role" not in str(error).lower() or time.monotonic() > deadline:
                raise
            time.sleep(5)
