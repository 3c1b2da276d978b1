"""Where objects live: one S3-compatible store (an endpoint, a bucket, credentials or anonymous access).

The embedded endpoint and real AWS S3 are the same type with different values, so every reader takes the
same path whichever it is pointed at. Secrets are kept out of ``repr`` so they never reach a log.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from urllib.parse import quote

import boto3
import botocore
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from nwb_cloud.errors import NwbCloudError


class StoreError(NwbCloudError):
    """An object store is unreachable, refuses us, or lacks the named object."""


# rclone serve s3 answers a ranged GET with the whole object's x-amz-checksum-* header (AWS sends none for
# ranges), which botocore's default response validation rejects; validate checksums only when required.
CHECKSUMS = {"request_checksum_calculation": "when_required", "response_checksum_validation": "when_required"}

# A dead endpoint must fail in seconds, not after botocore's minutes of retries.
CONNECT_TIMEOUT_S = 5
READ_TIMEOUT_S = 60
MAX_ATTEMPTS = 3
# A bucket name that can be a host name under TLS: lower case, digits and hyphens, no dots (S3's rule for
# virtual-hosted requests over HTTPS; others are addressed path-style).
_VIRTUAL_HOSTABLE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")


@dataclass(frozen=True)
class Store:
    bucket: str
    endpoint_url: str | None = None  # None means AWS S3 itself
    region: str = "us-east-1"
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)  # temporary credentials (an IAM role's)
    # where the credentials came from, for messages ("AWS profile 'lab'", "anonymous"): never a secret
    source: str = field(default="", compare=False)

    @property
    def anonymous(self) -> bool:
        return self.access_key is None

    @property
    def label(self) -> str:
        """A name for results and reports: never credentials, never a signed URL."""
        return self.endpoint_url or f"aws:{self.region}"

    def to_dict(self) -> dict:
        return asdict(self)

    def via(self, endpoint_url: str) -> Store:
        """The same bucket and credentials reached through another address (the shaping proxy).

        Requests are signed for that address, so SigV4 signatures (and presigned URLs) verify there.
        """
        return replace(self, endpoint_url=endpoint_url)

    def s3_url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def botocore_config(self, **extra) -> Config:
        options = dict(
            signature_version=botocore.UNSIGNED if self.anonymous else "s3v4",
            connect_timeout=CONNECT_TIMEOUT_S,
            read_timeout=READ_TIMEOUT_S,
            retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
            s3={"addressing_style": "path"},
            **CHECKSUMS,
        )
        options.update(extra)
        return Config(**options)

    def client(self, **config):
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            aws_session_token=self.session_token,
            config=self.botocore_config(**config),
        )

    def s3fs_options(self) -> dict:
        """Keyword arguments for ``s3fs.S3FileSystem`` (and fsspec's ``remote_options``)."""
        options: dict = {
            "client_kwargs": {"region_name": self.region},
            "config_kwargs": {
                "connect_timeout": CONNECT_TIMEOUT_S,
                "read_timeout": READ_TIMEOUT_S,
                "retries": {"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
                "s3": {"addressing_style": "path"},
                **CHECKSUMS,
            },
            "skip_instance_cache": True,
        }
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
        if self.anonymous:
            options["anon"] = True
        else:
            options["key"] = self.access_key
            options["secret"] = self.secret_key
            if self.session_token:
                options["token"] = self.session_token
        return options

    def object_url(self, key: str) -> str:
        """The object's plain HTTP(S) URL: path-style on an endpoint, virtual-hosted on AWS where the bucket's
        name allows it (S3's own default), else path-style on the region's endpoint."""
        path = quote(key, safe="/~")
        if self.endpoint_url:
            return f"{self.endpoint_url.rstrip('/')}/{self.bucket}/{path}"
        domain = "amazonaws.com.cn" if self.region.startswith("cn-") else "amazonaws.com"
        if _VIRTUAL_HOSTABLE.fullmatch(self.bucket):
            return f"https://{self.bucket}.s3.{self.region}.{domain}/{path}"
        return f"https://s3.{self.region}.{domain}/{self.bucket}/{path}"

    def presign(self, key: str, method: str = "GET", expires_s: int = 3600) -> str:
        """:meth:`object_url` signed for ``method`` (SigV4 in the query, botocore's signer), unless anonymous.

        Signing needs no botocore client: making one loads S3's service model and endpoint rules, ~50 ms of
        CPU that a cold open would pay for one URL. A presigned URL is a credential: callers use it and drop
        it, they never store it in results.
        """
        url = self.object_url(key)
        if self.anonymous:
            return url
        request = AWSRequest(method=method, url=url)
        credentials = Credentials(self.access_key, self.secret_key, self.session_token)
        S3SigV4QueryAuth(credentials, "s3", self.region, expires=expires_s).add_auth(request)
        return request.url

    def http_url(self, key: str, expires_s: int = 3600) -> str:
        """A URL that plain HTTP range readers (remfile, LINDI) can GET: presigned unless anonymous."""
        return self.presign(key, "GET", expires_s)

    def head(self, key: str) -> dict:
        """Size and ETag of an object, with the failure turned into a message that names it."""
        try:
            response = self.client().head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            raise StoreError(describe_client_error(error, self.s3_url(key), tried=self.tried)) from None
        except botocore.exceptions.BotoCoreError as error:
            raise StoreError(f"cannot reach {self.label} for {self.s3_url(key)}: {error}") from None
        return {"size": response["ContentLength"], "etag": response["ETag"].strip('"')}

    @property
    def tried(self) -> str:
        """What access was tried, in words: what a refusal's message names."""
        if self.source:
            return self.source
        return "anonymous access" if self.anonymous else "the credentials given"


def store_for(
    bucket: str, endpoint_url: str | None = None, region: str = "us-east-1", profile: str | None = None,
    anonymous: bool = False,
) -> Store:  # fmt: skip
    """A store with the user's credentials from botocore's standard chain (environment variables, ``profile`` or
    the default one, SSO, the instance's or task's role), or anonymous; the source is kept for messages.

    With no credentials anywhere (and no ``profile`` asked for) the store is anonymous: public buckets work.
    """
    if anonymous:
        return Store(bucket, endpoint_url, region, source="anonymous access (--anonymous)")
    import botocore.session

    try:
        session = botocore.session.Session(profile=profile)
        credentials = session.get_credentials()
    except botocore.exceptions.ProfileNotFound:
        raise StoreError(f"AWS profile {profile!r} is not in the AWS config files (for s3://{bucket})") from None
    except botocore.exceptions.BotoCoreError as error:  # an SSO token expired, a broken config file, ...
        raise StoreError(f"cannot load AWS credentials for s3://{bucket}: {error}") from None
    if credentials is None:
        if profile:
            raise StoreError(f"AWS profile {profile!r} has no credentials (for s3://{bucket})")
        return Store(bucket, endpoint_url, region, source="anonymous access (no AWS credentials were found)")
    frozen = credentials.get_frozen_credentials()
    where = {"env": "the AWS_* environment variables", "shared-credentials-file": "the AWS credentials file",
             "config-file": "the AWS config file", "sso": "AWS SSO", "iam-role": "the instance's IAM role",
             "container-role": "the task's IAM role", "assume-role": "an assumed role"}.get(
        credentials.method, credentials.method)  # fmt: skip
    named = f"AWS profile {profile!r} ({where})" if profile else f"credentials from {where}"
    return Store(bucket, endpoint_url, region, frozen.access_key, frozen.secret_key, frozen.token, source=named)


def describe_client_error(error: botocore.exceptions.ClientError, what: str, tried: str | None = None) -> str:
    """One line for what S3 answered; ``tried`` (the credentials used, in words) is named on a refusal."""
    code = str(error.response.get("Error", {}).get("Code", ""))
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    with_ = f" with {tried}" if tried else ""
    if code in ("404", "NoSuchKey", "NotFound"):
        return f"no such object: {what}"
    if code in ("NoSuchBucket",):
        return f"no such bucket for {what}"
    if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return f"access denied to {what} ({code}){with_}; another --profile, or --anonymous for a public bucket?"
    if status == 400:
        return f"the store refused the request for {what} (HTTP 400: missing or malformed credentials{with_})"
    return f"{what}: S3 error {code or status}"
