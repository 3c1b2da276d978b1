"""The AWS side against moto: resources, least privilege, tags, reuse, failures, rollback, clean-up, waiting."""

import json
import time

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from nwb_cloud.batch.cleanup import Cleaner, cleanup
from nwb_cloud.batch.errors import AwsError, BatchError, PriceError
from nwb_cloud.batch.jobs import RUNS
from nwb_cloud.batch.monitor import failure_reason, job_logs, wait
from nwb_cloud.batch.plan import make_plan
from nwb_cloud.batch.prices import SHIPPED
from nwb_cloud.batch.resources import TAG, Provisioner
from nwb_cloud.batch.submit import submit
from nwb_cloud.convert.errors import DestinationError
from nwb_cloud.convert.labdrive import lab_drive
from nwb_cloud.convert.places import parse_place
from nwb_cloud.convert.rclone import Rclone
from nwb_cloud.convert.sources import conversion_spec, write_session
from nwb_cloud.convert.spec import ConversionSpec

REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nwb-cloud-convert:0.1.0"
MOTO = {"batch": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("aws-lab") / "drive"
    raws = [
        write_session(root / "labdata", "ephys-1", "SpikeGLXRecordingInterface"),
        write_session(root / "labdata", "ophys-1", "TiffImagingInterface"),
    ]
    with lab_drive(root) as drive:
        yield drive, ConversionSpec.parse(conversion_spec(raws))


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config=MOTO):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="dest")
        yield boto3.session.Session(region_name=REGION)


def _plan(lab, **kwargs):
    drive, spec = lab
    destination = kwargs.pop("destination", parse_place("s3://dest/nwb"))
    return make_plan(spec, drive.path("labdata"), destination, Rclone(drive.config_file), [], SHIPPED, **kwargs)


def _submit(lab, session, plan=None, **kwargs):
    drive, _ = lab
    return submit(plan or _plan(lab), Rclone(drive.config_file), kwargs.pop("image", IMAGE), session=session, **kwargs)


def _ours(session) -> list:
    return Cleaner(session, REGION).find("nwb-cloud")


def test_submit_creates_tagged_least_privilege_resources_and_job_chains(lab, aws):
    drive, spec = lab
    submitted = _submit(lab, aws, tags={"project": "lab-42"})
    batch, iam, ec2 = aws.client("batch"), aws.client("iam"), aws.client("ec2")

    (environment,) = batch.describe_compute_environments()["computeEnvironments"]
    resources = environment["computeResources"]
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    vpc_subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"]
    assert sorted(resources["subnets"]) == sorted(s["SubnetId"] for s in vpc_subnets)
    (group,) = ec2.describe_security_groups(GroupIds=resources["securityGroupIds"])["SecurityGroups"]
    assert (group["GroupName"], group["VpcId"]) == ("default", default_vpc)
    assert resources["instanceTypes"] == ["m6i.large"] and resources["type"] == "SPOT"
    assert resources["minvCpus"] == 0 and resources["maxvCpus"] == 64
    assert environment["tags"][TAG] == "nwb-cloud" and environment["tags"]["project"] == "lab-42"

    (queue,) = batch.describe_job_queues()["jobQueues"]
    assert queue["tags"][TAG] == "nwb-cloud"
    definitions = {d["jobDefinitionName"]: d for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]}
    assert sorted(definitions) == ["nwb-cloud-convert", "nwb-cloud-transfer", "nwb-cloud-upload"]
    convert = definitions["nwb-cloud-convert"]["containerProperties"]
    assert {r["type"]: r["value"] for r in convert["resourceRequirements"]} == {"VCPU": "2", "MEMORY": "7372"}
    assert (
        convert["image"] == IMAGE and convert["logConfiguration"]["options"]["awslogs-group"] == "/nwb-cloud/nwb-cloud"
    )
    secrets = {s["name"]: s["valueFrom"] for s in convert["secrets"]}
    options = ("TYPE", "PROVIDER", "ENDPOINT", "ACCESS_KEY_ID", "SECRET_ACCESS_KEY", "FORCE_PATH_STYLE")
    assert set(secrets) == {f"RCLONE_CONFIG_LABDRIVE_{option}" for option in options}
    secret_arn = secrets["RCLONE_CONFIG_LABDRIVE_TYPE"].removesuffix(":RCLONE_CONFIG_LABDRIVE_TYPE::")
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    assert stored["RCLONE_CONFIG_LABDRIVE_ENDPOINT"] == drive.endpoint.url  # the remote, byte for byte
    assert stored["RCLONE_CONFIG_LABDRIVE_SECRET_ACCESS_KEY"] == drive.endpoint.secret_key
    assert all(d["tags"][TAG] == "nwb-cloud" for d in definitions.values())

    roles = {r["RoleName"]: r for r in iam.list_roles(PathPrefix="/nwb-cloud/")["Roles"]}
    assert all({"Key": TAG, "Value": "nwb-cloud"} in iam.list_role_tags(RoleName=n)["Tags"] for n in roles)
    job_role = next(n for n in roles if n.startswith("nwb-cloud-job-"))
    assert convert["jobRoleArn"] == roles[job_role]["Arn"]
    policy = iam.get_role_policy(RoleName=job_role, PolicyName=job_role.removeprefix("nwb-cloud-"))["PolicyDocument"]
    assert [s["Resource"] for s in policy["Statement"]] == ["arn:aws:s3:::dest", "arn:aws:s3:::dest/nwb/*"]
    assert policy["Statement"][0]["Condition"] == {"StringLike": {"s3:prefix": ["nwb/*", "nwb"]}}
    assert iam.list_attached_role_policies(RoleName=job_role)["AttachedPolicies"] == []
    execution = next(n for n in roles if n.startswith("nwb-cloud-execution-"))
    document = iam.get_role_policy(RoleName=execution, PolicyName=execution.removeprefix("nwb-cloud-"))
    statements = {s["Sid"]: s for s in document["PolicyDocument"]["Statement"]}
    assert statements["ReadTheRunSecrets"]["Resource"] == [secret_arn]
    assert statements["WriteTheDeploymentLogs"]["Resource"].endswith(":log-group:/nwb-cloud/nwb-cloud:*")
    assert statements["PullTheImage"]["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/nwb-cloud-convert"

    jobs = {
        j["jobId"]: j
        for j in batch.describe_jobs(jobs=[i for s in submitted.jobs.values() for i in s.values()])["jobs"]
    }
    for session, steps in submitted.jobs.items():
        transfer, convert_job, upload = (jobs[steps[step]] for step in ("transfer", "convert", "upload"))
        assert transfer["dependsOn"] == []
        assert convert_job["dependsOn"] == [{"jobId": steps["transfer"]}]
        assert upload["dependsOn"] == [{"jobId": steps["convert"]}]
        assert upload["container"]["command"] == [
            "batch",
            "run-step",
            submitted.run.url,
            session,
            "upload",
            "--region",
            REGION,
        ]
        assert upload["tags"]["nwb-cloud:session"] == session
    run = parse_place(submitted.run.url)
    assert run.read_json("run.json")["jobs"] == submitted.jobs
    job = run.read_json("jobs/ephys-1.json")
    assert job["staging"]["prefix"] == f"nwb/.conversion-state/staging/{submitted.run.run_id}/ephys-1"
    assert "secret" not in json.dumps(job).lower() and drive.endpoint.secret_key not in json.dumps(job)

    # a second submit finds and reuses every resource; another image only adds what differs
    second = _submit(lab, aws, tags={"project": "lab-42"})
    assert len(submitted.created) == 13 and second.created == [] and second.run.run_id != submitted.run.run_id
    assert len(batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]) == 3
    other_image = _submit(lab, aws, image="ghcr.io/lab/nwb-cloud-convert:0.2.0")
    assert [kind for kind, _ in other_image.created] == ["iam_role"] + ["job_definition"] * 3  # no ECR pull right

    states = wait(submitted.run, batch, poll_s=0, sleep=lambda s: None)
    assert [(s.session, s.status) for s in states] == [("ephys-1", "SUCCEEDED"), ("ophys-1", "SUCCEEDED")]


def test_given_subnets_are_used_and_checked_and_a_missing_default_vpc_is_named(lab, aws):
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="jobs", Description="jobs", VpcId=vpc)["GroupId"]
    _submit(lab, aws, subnets=[subnet], security_groups=[group])
    resources = aws.client("batch").describe_compute_environments()["computeEnvironments"][0]["computeResources"]
    assert resources["subnets"] == [subnet] and resources["securityGroupIds"] == [group]

    default_subnet = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    with pytest.raises(AwsError, match="are in 2 VPCs"):
        _submit(lab, aws, subnets=[subnet, default_subnet["SubnetId"]])
    default_group = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]["GroupId"]
    with pytest.raises(AwsError, match="are not in vpc-"):
        _submit(lab, aws, subnets=[subnet], security_groups=[default_group])

    # without a default VPC and without --subnets: a clear error, nothing created
    ec2 = aws.client("ec2")
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=default_vpc)
    with pytest.raises(AwsError, match="no default VPC in us-east-1: pass --subnets"):
        _submit(lab, aws)
    assert [kind for kind, _ in _ours(aws)].count("compute_environment") == 1  # only the first submit's


def test_bad_input_fails_before_anything_is_created(lab, aws, monkeypatch, tmp_path):
    drive, spec = lab
    with pytest.raises(PriceError, match="'x9.huge' is not in the price table"):
        _plan(lab, instance_type="x9.huge")
    with pytest.raises(BatchError, match="--image is required"):
        _submit(lab, aws, image=None)
    with pytest.raises(BatchError, match="AWS Batch jobs write to S3"):
        _submit(lab, aws, plan=_plan(lab, destination=parse_place(str(tmp_path / "out"))))
    with pytest.raises(BatchError, match="deployment name 'bad name'"):
        _submit(lab, aws, deployment="bad name")
    with pytest.raises(AwsError, match="secret arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"):
        _submit(lab, aws, secret_env={"DANDI_API_KEY": "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope"})
    local_source = make_plan(
        spec, str(drive.endpoint.root / "labdata"), parse_place("s3://dest/nwb"), Rclone(), [], SHIPPED
    )
    with pytest.raises(BatchError, match="is a local folder, which AWS Batch cannot read"):
        _submit(lab, aws, plan=local_source)
    plan = _plan(lab)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError, match="no AWS credentials"):
        submit(plan, Rclone(drive.config_file), IMAGE)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert _ours(aws) == [] and aws.client("iam").list_roles(PathPrefix="/nwb-cloud/")["Roles"] == []


@set_initial_no_auth_action_count(4)
@mock_aws(config=MOTO)
def test_a_destination_without_write_access_fails_the_submit_before_anything_is_created(lab, monkeypatch):
    """IAM enforced (moto): the user may read the bucket, not write it. The plan writes nothing, so it cannot know
    and says so; the submit proves write access first and stops there."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="dest")
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    read_only = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [read_only]})
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=document)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    plan = _plan(lab)
    assert any("write access is proved when the work starts" in line for line in plan.assumptions)
    with pytest.raises(DestinationError, match="cannot write to s3://dest/nwb: access denied"):
        _submit(lab, boto3.session.Session(region_name=REGION), plan=plan)


def test_a_resource_with_our_name_but_not_our_tag_is_never_used_or_deleted(lab, aws):
    iam = aws.client("iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="nwb-cloud-instance", Path="/nwb-cloud/", AssumeRolePolicyDocument=trust)
    with pytest.raises(AwsError, match="IAM role 'nwb-cloud-instance' exists but was not created by nwb-cloud"):
        _submit(lab, aws)
    assert [r["RoleName"] for r in iam.list_roles(PathPrefix="/nwb-cloud/")["Roles"]] == ["nwb-cloud-instance"]
    assert _ours(aws) == []  # what the submit created before it met the role was rolled back


def _unrelated(session):
    """Resources nwb-cloud did not create, some with names or paths like its own."""
    iam, logs = session.client("iam"), session.client("logs")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="lab-role", Path="/nwb-cloud/", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="nwb-cloud-other", AssumeRolePolicyDocument=trust, Tags=[{"Key": TAG, "Value": "other"}])
    logs.create_log_group(logGroupName="/nwb-cloud/lab", tags={TAG: "other"})
    session.client("secretsmanager").create_secret(Name="nwb-cloud/not-ours", SecretString="{}")
    return _inventory(session)


def _inventory(session) -> dict:
    iam, logs, batch, ec2 = (session.client(n) for n in ("iam", "logs", "batch", "ec2"))
    return {
        "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
        "logs": sorted(g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]),
        "secrets": sorted(s["Name"] for s in session.client("secretsmanager").list_secrets()["SecretList"]),
        "queues": sorted(q["jobQueueName"] for q in batch.describe_job_queues()["jobQueues"]),
        "environments": sorted(c["computeEnvironmentName"] for c in batch.describe_compute_environments()[
            "computeEnvironments"]),
        "definitions": sorted(d["jobDefinitionArn"] for d in batch.describe_job_definitions(status="ACTIVE")[
            "jobDefinitions"]),
        "templates": sorted(t["LaunchTemplateName"] for t in ec2.describe_launch_templates()["LaunchTemplates"]),
    }  # fmt: skip


@pytest.mark.parametrize("interruption", [AwsError("injected: AWS said no"), KeyboardInterrupt()])
def test_a_failure_mid_submit_deletes_exactly_what_that_submit_created(lab, aws, monkeypatch, interruption):
    before = _unrelated(aws)
    real = Provisioner.job_definition

    def failing(self, step, properties):
        if step == "upload":  # the two other definitions, the queue and the roles already exist by now
            raise interruption
        return real(self, step, properties)

    monkeypatch.setattr(Provisioner, "job_definition", failing)
    with pytest.raises(type(interruption)):
        _submit(lab, aws)
    assert _inventory(aws) == before


def test_cleanup_deletes_exactly_the_deployment_also_after_a_failed_submit(lab, aws, monkeypatch):
    before = _unrelated(aws)
    _submit(lab, aws)
    deployed = _inventory(aws)

    # Ctrl-C after the first job of a second run went in: what that submit created goes, what it reused stays
    batch = aws.client("batch")
    submitted_ids = []
    real_submit_job = batch.submit_job

    def interrupted_submit_job(**kwargs):
        if submitted_ids:
            raise KeyboardInterrupt
        response = real_submit_job(**kwargs)
        submitted_ids.append(response["jobId"])
        return response

    real_client = aws.client
    with monkeypatch.context() as patch:
        patch.setattr(aws, "client", lambda name, **kw: batch if name == "batch" else real_client(name, **kw))
        patch.setattr(batch, "submit_job", interrupted_submit_job)
        with pytest.raises(KeyboardInterrupt):
            _submit(lab, aws, image="ghcr.io/lab/nwb-cloud-convert:0.2.0")  # new revisions, a new role
    assert _inventory(aws) == deployed

    _submit(lab, aws, deployment="second")
    assert set(_inventory(aws)["queues"]) == {"nwb-cloud-m6i-large-spot", "second-m6i-large-spot"}
    deleted = cleanup(aws, REGION, "nwb-cloud")
    assert len(deleted) == 13 and _ours(aws) == []
    assert _inventory(aws)["queues"] == ["second-m6i-large-spot"]
    assert cleanup(aws, REGION, "second") and _inventory(aws) == before
    assert cleanup(aws, REGION, "nwb-cloud") == []  # nothing left: a second clean-up is a no-op


def test_failed_jobs_end_the_wait_with_their_reason(lab, aws, monkeypatch):
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")  # moto fails every job
    submitted = _submit(lab, aws)
    polls = []
    states = wait(submitted.run, aws.client("batch"), poll_s=3600, on_poll=polls.append, sleep=pytest.fail)
    assert len(polls) == 1  # no sleep: a FAILED job ends the wait at the first look
    assert {s.status for s in states} == {"FAILED"}
    assert states[0].failure.startswith("transfer: ")


def test_failure_reason_prefers_the_most_specific_field():
    job = {
        "status": "FAILED",
        "statusReason": "Essential container in task exited",
        "attempts": [{"container": {"exitCode": 2, "reason": "OutOfMemoryError: Container killed"}}],
    }
    assert failure_reason(job) == "OutOfMemoryError: Container killed; exit code 2; Essential container in task exited"
    assert failure_reason({"status": "FAILED"}) == "no reason given by AWS Batch"


def test_a_secret_reaches_the_jobs_only_it_is_readable_and_logs_are_read_back(lab, aws):
    arn = aws.client("secretsmanager").create_secret(Name="lab/dandi", SecretString="key")["ARN"]
    submitted = _submit(lab, aws, secret_env={"DANDI_API_KEY": arn})
    batch, logs, iam = aws.client("batch"), aws.client("logs"), aws.client("iam")
    definition = batch.describe_job_definitions(jobDefinitionName="nwb-cloud-upload")["jobDefinitions"][0]
    assert {"name": "DANDI_API_KEY", "valueFrom": arn} in definition["containerProperties"]["secrets"]
    execution = definition["containerProperties"]["executionRoleArn"].rsplit("/", 1)[1]
    policy = iam.get_role_policy(RoleName=execution, PolicyName=execution.removeprefix("nwb-cloud-"))["PolicyDocument"]
    readable = next(s for s in policy["Statement"] if s["Sid"] == "ReadTheRunSecrets")["Resource"]
    assert arn in readable and len(readable) == 2  # the DANDI key and the run's rclone remote, nothing else

    # the remote changed on the lab's side (a new option, a refreshed token): the secret is updated in place
    drive, _ = lab
    changed = drive.config_file.with_name("changed.conf")
    changed.write_text(drive.config_file.read_text() + "acl = private\n")
    again = submit(_plan(lab), Rclone(changed), IMAGE, session=aws, secret_env={"DANDI_API_KEY": arn})
    assert [kind for kind, _ in again.created] == ["job_definition"] * 3  # one more variable for the jobs
    (rclone_arn,) = [a for a in readable if a != arn]
    stored = json.loads(aws.client("secretsmanager").get_secret_value(SecretId=rclone_arn)["SecretString"])
    assert stored["RCLONE_CONFIG_LABDRIVE_ACL"] == "private"

    job_id = submitted.jobs["ophys-1"]["convert"]
    stream = batch.describe_jobs(jobs=[job_id])["jobs"][0]["attempts"][-1]["container"]["logStreamName"]
    logs.create_log_stream(logGroupName="/nwb-cloud/nwb-cloud", logStreamName=stream)
    now = int(time.time() * 1000)
    events = [{"timestamp": now + i, "message": f"line {i}"} for i in range(3)]
    logs.put_log_events(logGroupName="/nwb-cloud/nwb-cloud", logStreamName=stream, logEvents=events)
    assert job_logs(submitted.run, "ophys-1", "convert", batch, logs) == ["line 0", "line 1", "line 2"]
    with pytest.raises(BatchError, match="no upload job for session 'nope'"):
        job_logs(submitted.run, "nope", "upload", batch, logs)


def test_sessions_still_running_are_not_submitted_twice(lab, aws, monkeypatch):
    first = _submit(lab, aws)
    batch = aws.client("batch")
    real = batch.describe_jobs

    def still_running(**kwargs):
        response = real(**kwargs)
        for job in response["jobs"]:
            if job["jobId"] in first.jobs["ephys-1"].values():
                job["status"] = "RUNNING"
        return response

    real_client = aws.client
    monkeypatch.setattr(aws, "client", lambda name, **kw: batch if name == "batch" else real_client(name, **kw))
    monkeypatch.setattr(batch, "describe_jobs", still_running)
    second = _submit(lab, aws)
    assert second.already_running == ("ephys-1",) and list(second.jobs) == ["ophys-1"]
    assert parse_place("s3://dest/nwb").child(RUNS).names()  # both runs are on record


def test_cli_submit_asks_before_spending_then_status_and_cleanup(lab, aws, tmp_path, capsys):
    from nwb_cloud.cli import main

    drive, spec = lab
    spec_file = tmp_path / "spec.yml"
    spec_file.write_text(spec.text)
    args = ["batch", "submit", drive.path("labdata"), str(spec_file), "s3://dest/nwb", "--rclone-config",
            str(drive.config_file), "--image", IMAGE, "--data-dir", str(tmp_path)]  # fmt: skip
    assert main(args) == 2  # stdin is not a terminal and there is no --yes
    assert "not starting instances for an estimated $" in capsys.readouterr().err
    assert _ours(aws) == []
    assert main([*args, "--yes"]) == 0
    captured = capsys.readouterr()
    run_url = captured.out.strip()  # the run folder alone on stdout, for scripts
    assert run_url.startswith("s3://dest/nwb/.conversion-state/runs/r")
    assert "compute (EC2)" in captured.err and "assumptions:" in captured.err
    assert main(["batch", "status", run_url, "--wait", "--poll", "0", "--data-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().err.count("SUCCEEDED") >= 2
    assert main(["batch", "cleanup"]) == 0
    assert "would delete job_queue" in capsys.readouterr().err and _ours(aws)
    assert main(["batch", "cleanup", "--yes", "--staging", "s3://dest/nwb"]) == 0
    assert _ours(aws) == []
