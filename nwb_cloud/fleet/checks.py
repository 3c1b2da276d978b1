"""What only AWS, DANDI or the registry know, asked before anything is created or any money is spent.

Credentials (for every region), each bucket's region and that it can be listed (a plan writes nothing:
:func:`prove_write_access`, one object written and deleted, runs when the work starts, after any
confirmation), the DANDI assets (resolved through the DANDI API and found in their bucket), and the image: in Amazon ECR
through the ECR API with the user's credentials, elsewhere through the registry's own HTTP API (Docker
Registry v2, with the anonymous token a public image needs).
"""

from __future__ import annotations

import re

import requests

from nwb_cloud.batch.aws import account_id, aws_errors, aws_session, error_code
from nwb_cloud.fleet.errors import FleetError

REGISTRY_TIMEOUT_S = 10
_ECR = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com/(?P<repo>[^:@]+)"
                  r"(?::(?P<tag>[^@]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")  # fmt: skip
_IMAGE = re.compile(r"^(?:(?P<registry>[^/]+\.[^/]+|localhost(?::\d+)?)/)?(?P<repo>[a-z0-9._/-]+)"
                    r"(?::(?P<tag>[\w.-]+))?(?:@(?P<digest>sha256:[0-9a-f]{64}))?$")  # fmt: skip
MANIFESTS = ", ".join([
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])  # fmt: skip


def check_environment(plan, sessions: dict | None = None, log=lambda message: None) -> dict:
    """Raise on the first thing that would fail after money is spent; return the AWS session of each region."""
    sessions = dict(sessions or {})
    if plan.executor == "batch":
        for region in plan.regions:
            sessions.setdefault(region, aws_session(region))
            account_id(sessions[region])  # the credentials are real, not merely present
    for region, place in plan.buckets.items():
        if plan.executor == "batch" and not place.endpoint_url:
            check_bucket_region(place, region)
        place.check_reachable()
        log(f"can list {place.label} (write access is proved when the work starts)")
    if plan.source == "dandi":
        from nwb_cloud.datasets.catalog import prepare_dandi

        catalog = prepare_dandi()  # each asset resolved and found in the bucket, or a one-line error
        log(
            "DANDI assets found: "
            + ", ".join(f"{a.name} ({a.size_bytes / 1e9:.1f} GB)" for a in catalog.assets.values())
        )
    if plan.executor == "batch":
        if not plan.image:
            raise FleetError("--image is required: the benchmark-host image in a registry the instances can pull "
                             "(docker/README.md)")  # fmt: skip
        check_image(plan.image, sessions.get(plan.regions[0]))
        log(f"image found: {plan.image}")
    return sessions


def prove_write_access(plan) -> None:
    """Write and delete one object in every bucket of the plan: called as the work starts, never by a plan."""
    for place in {p.url(): p for p in [plan.results, *plan.buckets.values()]}.values():
        place.probe_write()


def check_bucket_region(place, region: str) -> None:
    client = place.client()
    with aws_errors(f"the region of bucket {place.bucket}"):
        try:
            found = client.get_bucket_location(Bucket=place.bucket).get("LocationConstraint") or "us-east-1"
        except Exception as error:
            if error_code(error) == "NoSuchBucket":
                raise FleetError(f"bucket {place.bucket} does not exist") from None
            raise
    if found != region:
        raise FleetError(f"bucket {place.bucket} is in {found}, not {region}: give a bucket in {region} for its "
                         "children (reading across regions would be measured, and billed)")  # fmt: skip


def check_image(image: str, session=None) -> None:
    """The image exists in the registry it names (ECR through its API, any other through Registry v2)."""
    ecr = _ECR.match(image)
    if ecr:
        if session is None:
            raise FleetError(f"checking {image} needs AWS credentials")
        reference = {"imageDigest": ecr["digest"]} if ecr["digest"] else {"imageTag": ecr["tag"] or "latest"}
        client = session.client("ecr", region_name=ecr["region"])
        try:
            client.describe_images(registryId=ecr["account"], repositoryName=ecr["repo"], imageIds=[reference])
        except Exception as error:
            code = error_code(error)
            if code in ("RepositoryNotFoundException", "ImageNotFoundException"):
                raise FleetError(f"image {image} is not in its registry ({code}): build and push it first "
                                 "(docker/README.md)") from None  # fmt: skip
            with aws_errors(f"checking image {image}"):
                raise
        return
    match = _IMAGE.match(image)
    if not match:
        raise FleetError(f"{image!r} is not an image reference (registry/repository:tag)")
    registry = match["registry"] or "registry-1.docker.io"
    repository = match["repo"] if match["registry"] or "/" in match["repo"] else f"library/{match['repo']}"
    reference = match["digest"] or match["tag"] or "latest"
    url = f"https://{registry}/v2/{repository}/manifests/{reference}"
    try:
        response = requests.head(url, headers={"Accept": MANIFESTS}, timeout=REGISTRY_TIMEOUT_S)
        if response.status_code == 401:
            token = _anonymous_token(response.headers.get("WWW-Authenticate", ""))
            headers = {"Accept": MANIFESTS, "Authorization": f"Bearer {token}"}
            response = requests.head(url, headers=headers, timeout=REGISTRY_TIMEOUT_S)
    except requests.RequestException as error:
        raise FleetError(f"cannot reach registry {registry} to check image {image}: {type(error).__name__}") from None
    if response.status_code == 404:
        raise FleetError(f"image {image} is not in registry {registry}: build and push it first (docker/README.md)")
    if response.status_code in (401, 403):
        raise FleetError(f"image {image} is private in {registry}: AWS Batch pulls only public images or ECR ones")
    if response.status_code >= 400:
        raise FleetError(f"registry {registry} answered {response.status_code} for image {image}")


def _anonymous_token(challenge: str) -> str:
    """The anonymous pull token a registry's ``WWW-Authenticate: Bearer realm=...`` challenge offers."""
    fields = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    if not challenge.lower().startswith("bearer") or "realm" not in fields:
        return ""
    params = {k: v for k, v in fields.items() if k in ("service", "scope")}
    answer = requests.get(fields["realm"], params=params, timeout=REGISTRY_TIMEOUT_S)
    if answer.status_code != 200:
        return ""
    body = answer.json()
    return body.get("token") or body.get("access_token") or ""
