"""Deleting what a deployment created, and nothing else: found by its tag, removed in dependency order.

``cleanup`` finds every resource carrying the deployment's tag (queues, compute environments, job
definitions, launch templates, secrets, the log group, roles and instance profiles under the ``/nwb-cloud/``
IAM path) and deletes it; a resource without the tag is left alone even when its name matches. ``rollback``
deletes the entries of a :class:`~nwb_cloud.batch.resources.Ledger` (what one failed submit created) with
the same deleters. Jobs still running in a queue are terminated first, so the queue can go.
"""

from __future__ import annotations

import time

from nwb_cloud.batch.aws import aws_errors, error_code
from nwb_cloud.batch.errors import AwsError
from nwb_cloud.batch.resources import IAM_PATH, TAG, Ledger

ACTIVE_JOB_STATES = ("SUBMITTED", "PENDING", "RUNNABLE", "STARTING", "RUNNING")
GONE_TIMEOUT_S = 600


class Cleaner:
    def __init__(self, session, region: str, log=lambda message: None):
        self.log = log
        self.iam = session.client("iam")
        self.batch = session.client("batch", region_name=region)
        self.ec2 = session.client("ec2", region_name=region)
        self.logs = session.client("logs", region_name=region)
        self.secrets = session.client("secretsmanager", region_name=region)

    # --- finding by tag -------------------------------------------------------------------------------

    def find(self, deployment: str) -> list[tuple[str, str]]:
        """Every (kind, identifier) tagged with ``deployment``, in the order they can be deleted."""
        found: list[tuple[str, str]] = []
        with aws_errors(f"listing the resources of deployment {deployment}"):
            for page in self.batch.get_paginator("describe_job_queues").paginate():
                found += [
                    ("job_queue", q["jobQueueArn"]) for q in page["jobQueues"] if _ours(q.get("tags"), deployment)
                ]
            for page in self.batch.get_paginator("describe_compute_environments").paginate():
                found += [
                    ("compute_environment", c["computeEnvironmentArn"])
                    for c in page["computeEnvironments"]
                    if _ours(c.get("tags"), deployment)
                ]
            for page in self.batch.get_paginator("describe_job_definitions").paginate(status="ACTIVE"):
                found += [
                    ("job_definition", d["jobDefinitionArn"])
                    for d in page["jobDefinitions"]
                    if _ours(d.get("tags"), deployment)
                ]
            templates = self.ec2.describe_launch_templates(Filters=[{"Name": f"tag:{TAG}", "Values": [deployment]}])
            found += [("launch_template", t["LaunchTemplateId"]) for t in templates.get("LaunchTemplates", [])]
            for page in self.secrets.get_paginator("list_secrets").paginate(
                Filters=[{"Key": "tag-key", "Values": [TAG]}, {"Key": "tag-value", "Values": [deployment]}]
            ):
                found += [("secret", s["ARN"]) for s in page["SecretList"] if _ours(_tags(s.get("Tags")), deployment)]
            for page in self.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix="/nwb-cloud/"):
                for group in page["logGroups"]:
                    tags = self.logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags", {})
                    if _ours(tags, deployment):
                        found.append(("log_group", group["logGroupName"]))
            for page in self.iam.get_paginator("list_instance_profiles").paginate(PathPrefix=IAM_PATH):
                for profile in page["InstanceProfiles"]:
                    name = profile["InstanceProfileName"]
                    tags = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"].get("Tags")
                    if _ours(_tags(tags), deployment):
                        found.append(("instance_profile", profile["InstanceProfileName"]))
            for page in self.iam.get_paginator("list_roles").paginate(PathPrefix=IAM_PATH):
                for role in page["Roles"]:
                    tags = self.iam.list_role_tags(RoleName=role["RoleName"])["Tags"]
                    if _ours(_tags(tags), deployment):
                        found.append(("iam_role", role["RoleName"]))
        return found

    # --- deleting -------------------------------------------------------------------------------------

    def delete(self, resources: list[tuple[str, str]]) -> list[str]:
        """Delete ``resources`` in dependency order; returns what was deleted. Already-gone ones are skipped."""
        order = {kind: i for i, kind in enumerate(DELETE_ORDER)}
        deleted = []
        for kind, identifier in sorted(resources, key=lambda r: order[r[0]]):
            with aws_errors(f"deleting {kind} {identifier}"):
                try:
                    getattr(self, f"_delete_{kind}")(identifier)
                except Exception as error:
                    if error_code(error) not in GONE_CODES:
                        raise
                    continue
            deleted.append(f"{kind} {identifier}")
            self.log(f"deleted {kind} {identifier}")
        return deleted

    def _delete_job_queue(self, arn: str) -> None:
        for status in ACTIVE_JOB_STATES:
            for page in self.batch.get_paginator("list_jobs").paginate(jobQueue=arn, jobStatus=status):
                for job in page["jobSummaryList"]:
                    self.batch.terminate_job(jobId=job["jobId"], reason="nwb-cloud cleanup")
        self.batch.update_job_queue(jobQueue=arn, state="DISABLED")
        self._until(lambda: self._queue(arn) in (None, "DISABLED"), f"job queue {arn} to be disabled")
        self.batch.delete_job_queue(jobQueue=arn)
        self._until(lambda: self._queue(arn) is None, f"job queue {arn} to be deleted")

    def _queue(self, arn: str) -> str | None:
        found = self.batch.describe_job_queues(jobQueues=[arn])["jobQueues"]
        if not found or found[0].get("status") == "DELETED":
            return None
        return found[0]["state"] if found[0].get("status") != "UPDATING" else "UPDATING"

    def _delete_compute_environment(self, arn: str) -> None:
        self.batch.update_compute_environment(computeEnvironment=arn, state="DISABLED")
        self._until(lambda: self._environment(arn) in (None, "DISABLED"), f"{arn} to be disabled")
        self.batch.delete_compute_environment(computeEnvironment=arn)
        self._until(lambda: self._environment(arn) is None, f"{arn} to be deleted")

    def _environment(self, arn: str) -> str | None:
        found = self.batch.describe_compute_environments(computeEnvironments=[arn])["computeEnvironments"]
        if not found or found[0].get("status") == "DELETED":
            return None
        return found[0]["state"] if found[0].get("status") != "UPDATING" else "UPDATING"

    def _delete_job_definition(self, arn: str) -> None:
        self.batch.deregister_job_definition(jobDefinition=arn)

    def _delete_launch_template(self, template_id: str) -> None:
        self.ec2.delete_launch_template(LaunchTemplateId=template_id)

    def _delete_secret(self, arn: str) -> None:
        self.secrets.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)  # the name is free again

    def _delete_log_group(self, name: str) -> None:
        self.logs.delete_log_group(logGroupName=name)

    def _delete_instance_profile(self, name: str) -> None:
        profile = self.iam.get_instance_profile(InstanceProfileName=name)["InstanceProfile"]
        for role in profile.get("Roles", []):
            self.iam.remove_role_from_instance_profile(InstanceProfileName=name, RoleName=role["RoleName"])
        self.iam.delete_instance_profile(InstanceProfileName=name)

    def _delete_iam_role(self, name: str) -> None:
        for profile in self.iam.list_instance_profiles_for_role(RoleName=name)["InstanceProfiles"]:
            self.iam.remove_role_from_instance_profile(
                InstanceProfileName=profile["InstanceProfileName"], RoleName=name
            )
        for policy in self.iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
            self.iam.detach_role_policy(RoleName=name, PolicyArn=policy["PolicyArn"])
        for policy_name in self.iam.list_role_policies(RoleName=name)["PolicyNames"]:
            self.iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
        self.iam.delete_role(RoleName=name)

    def _until(self, condition, what: str) -> None:
        deadline = time.monotonic() + GONE_TIMEOUT_S
        delay = 0.0
        while not condition():
            if time.monotonic() > deadline:
                raise AwsError(f"gave up waiting for {what} after {GONE_TIMEOUT_S} s")
            delay = min(10.0, delay + 1.0)
            time.sleep(delay)


DELETE_ORDER = (
    "job_queue",  # queues first: a compute environment cannot go while a queue uses it
    "compute_environment",
    "job_definition",
    "launch_template",
    "secret",
    "log_group",
    "instance_profile",
    "iam_role",
)
GONE_CODES = ("NoSuchEntity", "ResourceNotFoundException", "InvalidLaunchTemplateId.NotFound")


def cleanup(session, region: str, deployment: str, log=lambda message: None) -> list[str]:
    cleaner = Cleaner(session, region, log)
    return cleaner.delete(cleaner.find(deployment))


def rollback(session, region: str, ledger: Ledger, log=lambda message: None) -> list[str]:
    """Delete what one submit created (its ledger), newest first within the dependency order."""
    return Cleaner(session, region, log).delete(list(reversed(ledger.created)))


def _tags(pairs) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in pairs or []}


def _ours(tags: dict | None, deployment: str) -> bool:
    return bool(tags) and tags.get(TAG) == deployment
