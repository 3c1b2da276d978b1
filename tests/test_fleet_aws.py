"""The fleet's AWS side against moto: the price first, exactly the tagged resources and one job per child,
bad input refused before anything exists, rollback on failure or Ctrl-C, and a clean-up that leaves nothing."""

import json
from dataclasses import replace
from pathlib import Path

import boto3
import pytest
import responses
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from nwb_cloud.batch.cleanup import Cleaner
from nwb_cloud.batch.errors import AwsError, PriceError
from nwb_cloud.batch.prices import SHIPPED
from nwb_cloud.batch.resources import TAG, Provisioner
from nwb_cloud.convert.errors import DestinationError
from nwb_cloud.convert.places import parse_place
from nwb_cloud.datasets.catalog import CatalogError
from nwb_cloud.fleet.checks import check_environment, check_image, prove_write_access
from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.fleet.plan import make_plan
from nwb_cloud.fleet.records import load_recorded_runs
from nwb_cloud.fleet.spec import child_grid
from nwb_cloud.fleet.submit import submit

REGION = "us-east-1"
REPO = Path(__file__).resolve().parent.parent
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/nwb-cloud-bench:abc123"
MOTO = {"batch": {"use_docker": False}, "iam": {"load_aws_managed_policies": True}}
DEPLOYMENT = "nwb-cloud-fleet"
TYPES = ["c7i.large", "m7i.xlarge", "r7i.2xlarge"]


@pytest.fixture(scope="module")
def runs():
    """The committed runs of this repository (quick and full, on the 2-core machine): what a user plans from."""
    recorded = load_recorded_runs(REPO / "results")
    assert {r.size for r in recorded} >= {"quick", "full"}
    return recorded


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config=MOTO):
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="bench")
        west = boto3.client("s3", region_name="us-west-2")
        west.create_bucket(Bucket="bench-west", CreateBucketConfiguration={"LocationConstraint": "us-west-2"})
        ecr = boto3.client("ecr", region_name=REGION)
        ecr.create_repository(repositoryName="nwb-cloud-bench")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json"}
        ecr.put_image(repositoryName="nwb-cloud-bench", imageTag="abc123", imageManifest=json.dumps(manifest))
        yield boto3.session.Session(region_name=REGION)


def _plan(runs, **kwargs):
    regions = kwargs.pop("regions", [REGION])
    buckets = kwargs.pop("buckets", {REGION: parse_place("s3://bench/fleet", region=REGION)})
    return make_plan(runs, SHIPPED, buckets, instance_types=kwargs.pop("instance_types", TYPES), regions=regions,
                     image=kwargs.pop("image", IMAGE), **kwargs)  # fmt: skip


def _files(size: str) -> int:
    """The files a child of ``size`` reads: what the grid measures on the real profile."""
    return sum(len(layouts) for layouts in child_grid(size, "generated").assets().values())


def _ours(session, region=REGION) -> list:
    return Cleaner(session, region).find(DEPLOYMENT)


def test_plan_prices_every_child_from_the_recorded_runs_and_the_dated_table(runs):
    plan = _plan(runs, size="quick")
    assert [c.child.name for c in plan.children] == [f"{t}-{REGION}" for t in TYPES]
    for child in plan.children:
        hours = child.estimate.seconds / 3600
        assert child.hourly == SHIPPED.hourly(REGION, child.child.instance_type, "on-demand")
        assert child.cost.compute == pytest.approx(hours * child.hourly)
        assert child.cost.storage == pytest.approx(hours * child.disk_gib * 0.08 / 730)
        assert child.cost.transfer == 0  # the study is read in its own region
        assert child.estimate.suite_s > 60 and child.estimate.startup_s == 300
        assert child.estimate.requests > 1000 and child.estimate.data_files == _files("quick")
        assert any("durations from a run of another machine (vm" in line for line in child.estimate.basis)
    # the study is uploaded once per region: its PUTs and storage are the first child's
    assert plan.children[0].cost.data_upload > 0 and [c.cost.data_upload for c in plan.children[1:]] == [0, 0]
    assert plan.total == pytest.approx(sum(c.cost.total for c in plan.children))
    assert plan.children[2].cost.compute > plan.children[0].cost.compute  # a bigger instance, a bigger bill
    assert any(f"as of {SHIPPED.as_of}" in line for line in plan.assumptions)
    full = _plan(runs, size="full")
    assert full.children[0].estimate.data_files == _files("full") and full.total > plan.total

    west = {"us-west-2": parse_place("s3://bench-west/fleet", region="us-west-2")}
    dandi = _plan(runs, source="dandi", size="quick", regions=["us-west-2"], buckets=west)
    assert "no DANDI run recorded" in dandi.children[0].estimate.basis[0]  # a guess, and the plan says so
    assert all(c.cost.transfer > 0 and c.cost.data_upload == 0 for c in dandi.children)  # us-east-2 read from west
    assert any("DANDI assets are read where they are" in line for line in dandi.children[0].estimate.basis)


def test_plan_refuses_bad_input_with_one_line(runs):
    with pytest.raises(PriceError, match="instance type 'x9.huge' is not in the price table for us-east-1"):
        _plan(runs, instance_types=["x9.huge"])
    with pytest.raises(PriceError, match="no prices for region 'mars-north-1'"):
        _plan(runs, regions=["mars-north-1"])
    with pytest.raises(FleetError, match="no --bucket for us-west-2"):
        _plan(runs, regions=[REGION, "us-west-2"])
    with pytest.raises(FleetError, match="unknown method 'remfle'"):
        _plan(runs, methods=["remfle"])
    with pytest.raises(FleetError, match="unknown suite size|invalid"):
        _plan(runs, size="huge")
    with pytest.raises(FleetError, match="no recorded run of a tiny suite"):
        _plan(runs, size="tiny")
    with pytest.raises(FleetError, match="name at least one --instance-type"):
        _plan(runs, instance_types=[])


def test_submit_creates_exactly_the_tagged_resources_and_one_job_per_child(runs, aws):
    plan = _plan(runs, size="quick", layouts=["neuroconv-default"])
    sessions = check_environment(plan)
    submitted = submit(plan, sessions, tags={"project": "lab-42"})
    batch, iam = aws.client("batch"), aws.client("iam")

    found = batch.describe_compute_environments()["computeEnvironments"]
    environments = {c["computeEnvironmentName"]: c for c in found}
    assert sorted(environments) == sorted(f"{DEPLOYMENT}-{t.replace('.', '-')}-on-demand" for t in TYPES)
    for itype in TYPES:
        resources = environments[f"{DEPLOYMENT}-{itype.replace('.', '-')}-on-demand"]["computeResources"]
        assert resources["instanceTypes"] == [itype] and resources["type"] == "EC2" and resources["minvCpus"] == 0
    queues = batch.describe_job_queues()["jobQueues"]
    assert len(queues) == 3
    assert all(q["tags"][TAG] == DEPLOYMENT and q["tags"]["project"] == "lab-42" for q in queues)
    definitions = {d["jobDefinitionArn"]: d for d in batch.describe_job_definitions(status="ACTIVE")["jobDefinitions"]}
    assert sorted(d["jobDefinitionName"] for d in definitions.values()) == sorted(
        f"{DEPLOYMENT}-bench-{t.replace('.', '-')}" for t in TYPES
    )
    assert {d["containerProperties"]["image"] for d in definitions.values()} == {IMAGE}

    jobs = {j["jobName"]: j for j in batch.describe_jobs(jobs=[j["job_id"] for j in submitted.jobs.values()])["jobs"]}
    assert len(jobs) == 3 == len(submitted.jobs)
    for child in plan.children:
        job = jobs[f"{DEPLOYMENT}-{plan.run_id}-{child.child.name}".replace(".", "-")]
        assert job["container"]["command"] == ["fleet", "run-child", submitted.run_url, child.child.name,
                                               "--region", REGION]  # fmt: skip
        properties = definitions[job["jobDefinition"]]["containerProperties"]
        requirements = {r["type"]: r["value"] for r in properties["resourceRequirements"]}
        assert requirements["VCPU"] == str(child.vcpus)  # the whole instance: no two children share one
        assert int(requirements["MEMORY"]) == int(child.memory_gib * 1024 * 0.9)
        assert job["tags"]["nwb-cloud:child"] == child.child.name

    roles = {r["RoleName"] for r in iam.list_roles(PathPrefix="/nwb-cloud/")["Roles"]}
    job_role = next(n for n in roles if n.startswith(f"{DEPLOYMENT}-job-"))
    policy = iam.get_role_policy(RoleName=job_role, PolicyName=job_role.removeprefix(f"{DEPLOYMENT}-"))
    resources = [s["Resource"] for s in policy["PolicyDocument"]["Statement"]]
    assert resources == ["arn:aws:s3:::bench", "arn:aws:s3:::bench/fleet/*"]  # the fleet's prefix, nothing more

    # the run folder holds all a child reads, and nothing secret
    folder = parse_place(submitted.run_url)
    assert set(folder.names()) == {"plan.json", "run.json", *(f"children/{c.child.name}.json" for c in plan.children)}
    text = json.dumps([folder.read_json(n) for n in folder.names()])
    assert "testing" not in text and "Signature" not in text

    assert len(submitted.created) == len(_ours(aws))  # what it created is what the tag finds
    again = submit(_plan(runs, size="quick", layouts=["neuroconv-default"]), sessions)
    assert again.created == [] and len(again.jobs) == 3  # reused: a second fleet run creates nothing new

    from nwb_cloud.cli import main

    assert main(["fleet", "cleanup"]) == 0 and _ours(aws)  # without --yes it only lists
    assert main(["fleet", "cleanup", "--yes", "--data", "s3://bench/fleet"]) == 0
    assert _ours(aws) == [] and iam.list_roles(PathPrefix="/nwb-cloud/")["Roles"] == []
    assert batch.describe_job_queues()["jobQueues"] == []


def test_two_regions_get_their_own_resources_and_one_job_role_for_both_buckets(runs, aws):
    buckets = {REGION: parse_place("s3://bench/fleet", region=REGION),
               "us-west-2": parse_place("s3://bench-west/fleet", region="us-west-2")}  # fmt: skip
    plan = _plan(runs, instance_types=["c7i.large"], regions=[REGION, "us-west-2"], buckets=buckets)
    submitted = submit(plan, check_environment(plan))
    assert {job["region"] for job in submitted.jobs.values()} == {REGION, "us-west-2"}
    west = aws.client("batch", region_name="us-west-2").describe_job_queues()["jobQueues"]
    assert [q["jobQueueName"] for q in west] == [f"{DEPLOYMENT}-c7i-large-on-demand"]
    assert sum(c.cost.data_upload > 0 for c in plan.children) == 2  # one upload per region
    iam = aws.client("iam")
    roles = [r["RoleName"] for r in iam.list_roles(PathPrefix="/nwb-cloud/")["Roles"]]
    job_role = next(name for name in roles if "-job-" in name)
    policy = iam.get_role_policy(RoleName=job_role, PolicyName=job_role.removeprefix(f"{DEPLOYMENT}-"))
    assert [s["Resource"] for s in policy["PolicyDocument"]["Statement"]] == [
        "arn:aws:s3:::bench", "arn:aws:s3:::bench/fleet/*", "arn:aws:s3:::bench-west", "arn:aws:s3:::bench-west/fleet/*"
    ]  # fmt: skip
    for region in (REGION, "us-west-2"):
        Cleaner(aws, region).delete(_ours(aws, region))
    assert _ours(aws) == [] and _ours(aws, "us-west-2") == []


def test_bad_environment_fails_before_anything_is_created(runs, aws, monkeypatch, tmp_path):
    with pytest.raises(FleetError, match="bucket bench-west is in us-west-2, not us-east-1"):
        check_environment(_plan(runs, buckets={REGION: parse_place("s3://bench-west/fleet", region=REGION)}))
    with pytest.raises((DestinationError, FleetError), match="nope"):
        check_environment(_plan(runs, buckets={REGION: parse_place("s3://nope/fleet", region=REGION)}))
    with pytest.raises(FleetError, match="image .*nwb-cloud-bench:missing is not in its registry"):
        check_environment(_plan(runs, image=IMAGE.replace("abc123", "missing")))
    with pytest.raises(FleetError, match="--image is required"):
        check_environment(_plan(runs, image=None))
    plan = _plan(runs)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError, match="no AWS credentials"):
        check_environment(plan)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert _ours(aws) == [] and aws.client("iam").list_roles(PathPrefix="/nwb-cloud/")["Roles"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket="bench")  # not even a run folder


@set_initial_no_auth_action_count(4)
@mock_aws(config=MOTO)
def test_a_bucket_the_user_cannot_write_is_named(runs, monkeypatch):
    """IAM enforced (moto): the user may read the bucket, not write it. The plan's checks write nothing; the proof
    of write access, the first thing a submit does before any resource exists, names the bucket."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="bench")
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="reader")
    read_only = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation",
                                               "sts:GetCallerIdentity"], "Resource": "*"}  # fmt: skip
    document = json.dumps({"Version": "2012-10-17", "Statement": [read_only]})
    iam.put_user_policy(UserName="reader", PolicyName="read-only", PolicyDocument=document)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    with pytest.raises(DestinationError, match="cannot write to s3://bench/fleet: access denied"):
        prove_write_access(_plan(runs))


@pytest.mark.parametrize("interruption", [AwsError("injected: AWS said no"), KeyboardInterrupt()])
def test_a_failure_mid_submit_leaves_nothing_behind(runs, aws, monkeypatch, interruption):
    plan = _plan(runs)
    sessions = check_environment(plan)
    real = Provisioner.job_queue
    calls = []

    def failing(self, environment_arn, name):
        calls.append(name)
        if len(calls) == 2:  # the first child is submitted, the second's queue fails
            raise interruption
        return real(self, environment_arn, name)

    monkeypatch.setattr(Provisioner, "job_queue", failing)
    with pytest.raises(type(interruption)):
        submit(plan, sessions)
    assert _ours(aws) == [] and aws.client("iam").list_roles(PathPrefix="/nwb-cloud/")["Roles"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket="bench")  # the run folder is gone too


def test_cli_asks_before_spending_and_prints_the_run(runs, aws, capsys):
    from nwb_cloud.cli import main

    args = ["fleet", "submit", "--instance-type", "c7i.large", "--bucket", "s3://bench/fleet", "--image", IMAGE,
            "--results", str(REPO / "results"), "--layout", "neuroconv-default"]  # fmt: skip
    assert main(args) == 2  # stdin is not a terminal and there is no --yes
    captured = capsys.readouterr()
    assert "not starting instances for an estimated $" in captured.err and "compute (EC2)" in captured.err
    assert _ours(aws) == []
    assert main([*args, "--yes"]) == 0
    run_url = capsys.readouterr().out.strip()
    assert run_url.startswith("s3://bench/fleet/.nwb-cloud/fleet/f")
    assert main(["fleet", "status", run_url]) == 0  # moto runs the job at once (without a container)
    assert "c7i.large-us-east-1" in capsys.readouterr().err
    assert main(["fleet", "plan", "--instance-type", "c7i.large", "--bucket", "s3://bench/fleet", "--image", IMAGE,
                 "--results", str(REPO / "results"), "--json"]) == 0  # fmt: skip
    plan = json.loads(capsys.readouterr().out)
    assert plan["children"][0]["cost"]["total"] > 0 and plan["prices_as_of"] == SHIPPED.as_of
    assert main(["fleet", "cleanup", "--yes"]) == 0 and _ours(aws) == []


@responses.activate
def test_an_image_in_another_registry_is_checked_through_its_api():
    base = "https://ghcr.io/v2/lab/nwb-cloud-bench/manifests"
    challenge = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:lab/nwb-cloud-bench:pull"'
    responses.head(f"{base}/v1", status=401, headers={"WWW-Authenticate": challenge})
    responses.get("https://ghcr.io/token", json={"token": "anonymous"})
    responses.head(f"{base}/v1", status=200)
    check_image("ghcr.io/lab/nwb-cloud-bench:v1")
    responses.head(f"{base}/v2", status=404)
    with pytest.raises(FleetError, match="image ghcr.io/lab/nwb-cloud-bench:v2 is not in registry ghcr.io"):
        check_image("ghcr.io/lab/nwb-cloud-bench:v2")
    with pytest.raises(FleetError, match="is not an image reference"):
        check_image("Not An Image")


@responses.activate
def test_a_dandi_asset_that_does_not_exist_is_named(runs, aws):
    from nwb_cloud.datasets import catalog

    responses.get(f"{catalog.DANDI_API}/dandisets/000717/versions/draft/assets/", json={"results": []})
    responses.add_passthru("https://")  # the mocked AWS calls go on to moto
    measured = [replace(run, source="dandi") for run in runs]  # as if a DANDI run had been recorded
    plan = _plan(measured, source="dandi", size="quick")
    with pytest.raises(CatalogError, match="DANDI dandiset 000717 has no asset 'sub-npI3"):
        check_environment(plan)
    assert _ours(aws) == []
