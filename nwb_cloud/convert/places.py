"""Where a conversion keeps things: a local folder or an S3 prefix, behind one small interface.

Both the staging area (the source copy and the converted file between steps) and the destination are a
:class:`Place`, so the same steps run on a laptop (folder staging) and on AWS Batch (S3 staging, where each
step is its own job). Every write is atomic (a temporary name renamed, or one S3 PUT), every file written is
verified against its digests, and a place serialises without credentials: a job receives the place and
finds its credentials in its own environment (boto3's default chain, the Batch job role).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path

import boto3
import botocore
import botocore.loaders
import botocore.session
from boto3.exceptions import S3UploadFailedError

from nwb_cloud.cloud.store import Store, describe_client_error
from nwb_cloud.cloud.transfer import TRANSFER
from nwb_cloud.convert.digests import Digests
from nwb_cloud.convert.errors import ChecksumMismatch, ConvertError, DestinationError
from nwb_cloud.convert.rclone import Remote

STAGING_REMOTE = "nwbcloudplace"  # the rclone remote name an S3 place is reached by
# Where a destination keeps this package's state (done-records, runs, staging). Hidden, so `dandi upload` skips
# it, and without ".nwb" in its name, which nwbinspector's folder scan (``*.nwb*``) would take for a file.
STATE_FOLDER = ".conversion-state"


@cache
def _data_loader():
    return botocore.loaders.create_loader()


def new_session(profile: str | None = None) -> boto3.session.Session:
    """A boto3 session that shares one service-model loader with the others.

    Credentials are resolved afresh for each session, but the models (megabytes of JSON per service) are
    read once per process instead of once per session.
    """
    try:
        core = botocore.session.Session(profile=profile)
        core.register_component("data_loader", _data_loader())
        return boto3.session.Session(botocore_session=core)
    except botocore.exceptions.ProfileNotFound:
        raise DestinationError(f"AWS profile {profile!r} is not in the AWS config files") from None


def parse_place(
    text: str, endpoint_url: str | None = None, region: str | None = None, store: Store | None = None,
    profile: str | None = None, anonymous: bool = False,
):  # fmt: skip
    """``s3://bucket/prefix`` or a folder. ``store`` supplies explicit credentials (the embedded endpoint);
    otherwise botocore's chain finds them (``profile``, if given), or ``anonymous`` uses none."""
    text = str(text)
    if text.startswith("s3://"):
        bucket, _, prefix = text[len("s3://") :].partition("/")
        if not bucket:
            raise DestinationError(f"{text!r} names no bucket: use s3://bucket/prefix")
        if store is not None:
            endpoint_url = endpoint_url or store.endpoint_url
            region = region or store.region
        return S3Place(
            bucket=bucket,
            prefix=prefix.strip("/"),
            endpoint_url=endpoint_url,
            region=region or "us-east-1",
            credentials=(store.access_key, store.secret_key) if store is not None and not store.anonymous else None,
            profile=profile,
            anonymous=anonymous,
        )
    if "://" in text:
        raise DestinationError(f"{text!r}: only s3:// prefixes and local folders are supported")
    return LocalPlace(Path(text).expanduser().resolve())


def place_from_dict(data: dict):
    kind = data.get("kind")
    if kind == "folder":
        return LocalPlace(Path(data["path"]))
    if kind == "s3":
        return S3Place(data["bucket"], data["prefix"], data.get("endpoint_url"), data.get("region", "us-east-1"))
    raise ConvertError(f"unknown place kind {kind!r}")


@dataclass(frozen=True)
class LocalPlace:
    path: Path
    kind = "folder"

    @property
    def label(self) -> str:
        return str(self.path)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": str(self.path)}

    def child(self, *parts: str) -> LocalPlace:
        return LocalPlace(self.path.joinpath(*parts))

    def local_path(self, name: str = "") -> Path:
        return self.path / name if name else self.path

    def rclone_path(self, name: str = "") -> str:
        return str(self.local_path(name))

    def rclone_remotes(self) -> tuple[Remote, ...]:
        return ()

    def read_json(self, name: str) -> dict | None:
        try:
            return json.loads((self.path / name).read_text())
        except FileNotFoundError:
            return None

    def write_json(self, name: str, data: dict) -> None:
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.partial")
        partial.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(partial, target)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.path / name).unlink()

    def delete_all(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def size(self, name: str) -> int | None:
        try:
            return (self.path / name).stat().st_size
        except FileNotFoundError:
            return None

    def names(self, folder: str = "") -> list[str]:
        """The files under ``folder`` (recursively), relative to this place."""
        root = self.path / folder
        return sorted(p.relative_to(self.path).as_posix() for p in root.rglob("*") if p.is_file())

    def put_file(self, local: Path, name: str, digests: Digests) -> str:
        """Copy under a temporary name, verify the copy's SHA-256, then rename into place."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            shutil.copyfile(local, partial)
            copied = Digests.of(partial)
            if copied.sha256 != digests.sha256 or copied.size != digests.size:
                raise ChecksumMismatch(f"copy of {local} to {target}: SHA-256 differs from the original")
            os.replace(partial, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
            raise
        return "sha256"

    def move_in(self, local: Path, name: str, digests: Digests) -> None:
        """Take ``local`` (a file about to be discarded) in as ``name``: a rename when on the same file system."""
        target = self.path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(local, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            self.put_file(local, name, digests)  # another file system: copy, verify, rename

    def copy_from(self, source, name_from: str, name_to: str, digests: Digests) -> str:
        if isinstance(source, LocalPlace):
            return self.put_file(source.local_path(name_from), name_to, digests)
        target = self.path / name_to
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        try:
            source.download(name_from, partial)
            return self.put_file(partial, name_to, digests)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()

    def download(self, name: str, local: Path) -> None:
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.path / name, local)

    def check_reachable(self) -> None:
        """What can be known without writing: the folder, or the nearest one above it, is writable."""
        existing = next((p for p in (self.path, *self.path.parents) if p.exists()), None)
        if existing is None or not existing.is_dir():
            raise DestinationError(f"cannot write to {self.path}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise DestinationError(f"cannot write to {self.path}: {existing} is not writable")

    def probe_write(self) -> None:
        self.check_reachable()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / f".conversion-probe-{uuid.uuid4().hex[:8]}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as error:
            raise DestinationError(f"cannot write to {self.path}: {error.strerror}") from None


@dataclass(frozen=True)
class S3Place:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # None: AWS S3
    region: str = "us-east-1"
    credentials: tuple[str, str] | None = field(default=None, repr=False, compare=False)  # None: default chain
    profile: str | None = field(default=None, compare=False)  # the chain's profile (never sent to a job)
    anonymous: bool = field(default=False, compare=False)
    kind = "s3"

    @property
    def tried(self) -> str:
        """The credentials used, in words (what a refusal names)."""
        if self.credentials is not None:
            return "the credentials given"
        if self.anonymous:
            return "anonymous access (--anonymous)"
        return f"AWS profile {self.profile!r}" if self.profile else "botocore's default chain (environment, profile)"

    @property
    def label(self) -> str:
        return self.url() + (f" at {self.endpoint_url}" if self.endpoint_url else "")

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "endpoint_url": self.endpoint_url,
            "region": self.region,
        }

    def child(self, *parts: str) -> S3Place:
        prefix = "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))
        child = S3Place(
            self.bucket, prefix, self.endpoint_url, self.region, self.credentials, self.profile, self.anonymous
        )
        if "_client" in self.__dict__:
            child.__dict__["_client"] = self.__dict__["_client"]  # same store, same client
        return child

    def key(self, name: str = "") -> str:
        return "/".join(p for p in (self.prefix, name.strip("/")) if p)

    def url(self, name: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(name)}"

    def store(self) -> Store:
        access, secret = self.credentials or (None, None)
        return Store(self.bucket, self.endpoint_url, self.region, access, secret)

    def client(self):
        """One client per place (creating one costs ~0.1 s); credentials are checked on first use."""
        return self._client

    @cached_property
    def _client(self):
        store = self.store()
        if self.anonymous:
            return new_session().client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=store.botocore_config(signature_version=botocore.UNSIGNED),
            )  # fmt: skip
        session = new_session(self.profile)
        if self.credentials is not None:
            return session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region, config=store.botocore_config(),
                aws_access_key_id=self.credentials[0], aws_secret_access_key=self.credentials[1],
            )  # fmt: skip
        if session.get_credentials() is None:
            raise DestinationError(
                f"no AWS credentials for {self.url()} (tried {self.tried}): give --profile, set AWS_PROFILE or "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or run where an IAM role is attached"
            )
        return session.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=store.botocore_config(signature_version="s3v4"),
        )

    def rclone_remotes(self) -> tuple[Remote, ...]:
        options = {"type": "s3", "region": self.region, "no_check_bucket": "true"}
        if self.endpoint_url:
            options.update(provider="Other", endpoint=self.endpoint_url, force_path_style="true")
        else:
            options["provider"] = "AWS"
        if self.credentials is not None:
            options.update(access_key_id=self.credentials[0], secret_access_key=self.credentials[1])
        elif not self.anonymous:
            options["env_auth"] = "true"  # the environment, a profile, or the job's IAM role
            if self.profile:
                options["profile"] = self.profile
        return (Remote(STAGING_REMOTE, options),)

    def rclone_path(self, name: str = "") -> str:
        return f"{STAGING_REMOTE}:{self.bucket}/{self.key(name)}".rstrip("/")

    def _call(self, what: str, function, **kwargs):
        try:
            return function(**kwargs)
        except botocore.exceptions.ClientError as error:
            raise DestinationError(describe_client_error(error, what, tried=self.tried)) from None
        except (botocore.exceptions.BotoCoreError, S3UploadFailedError) as error:
            raise DestinationError(f"{what}: {error}") from None

    def read_json(self, name: str) -> dict | None:
        client = self.client()
        try:
            body = client.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()
        except botocore.exceptions.ClientError as error:
            if _not_found(error):
                return None
            raise DestinationError(describe_client_error(error, self.url(name))) from None
        except botocore.exceptions.BotoCoreError as error:
            raise DestinationError(f"cannot read {self.url(name)}: {error}") from None
        return json.loads(body)

    def write_json(self, name: str, data: dict) -> None:
        body = json.dumps(data, indent=1, sort_keys=True).encode()
        self._call(
            self.url(name), self.client().put_object,
            Bucket=self.bucket, Key=self.key(name), Body=body, ContentType="application/json",
        )  # fmt: skip

    def delete(self, name: str) -> None:
        self._call(self.url(name), self.client().delete_object, Bucket=self.bucket, Key=self.key(name))

    def delete_all(self) -> None:
        client = self.client()
        prefix = self.key() + "/" if self.key() else ""
        paginator = client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True})
        except botocore.exceptions.ClientError as error:
            raise DestinationError(describe_client_error(error, self.url())) from None

    def head(self, name: str) -> dict | None:
        client = self.client()
        try:
            return client.head_object(Bucket=self.bucket, Key=self.key(name), ChecksumMode="ENABLED")
        except botocore.exceptions.ClientError as error:
            if _not_found(error):
                return None
            raise DestinationError(describe_client_error(error, self.url(name))) from None

    def size(self, name: str) -> int | None:
        head = self.head(name)
        return None if head is None else int(head["ContentLength"])

    def names(self, folder: str = "") -> list[str]:
        """The objects under ``folder``, relative to this place."""
        prefix = self.key(folder).rstrip("/") + "/" if self.key(folder) else ""
        base = len(self.key()) + 1 if self.key() else 0
        found = []
        try:
            for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                found += [item["Key"][base:] for item in page.get("Contents", [])]
        except botocore.exceptions.ClientError as error:
            raise DestinationError(describe_client_error(error, self.url(folder))) from None
        return sorted(found)

    def _verified(self, name: str, digests: Digests) -> str:
        head = self.head(name)
        if head is None:
            raise ChecksumMismatch(f"{self.url(name)} is missing right after it was written")
        return digests.verify(head, self.url(name))

    def put_file(self, local: Path, name: str, digests: Digests) -> str:
        """Upload with a SHA-256 checksum per part (S3 refuses a part that arrives damaged), then compare the
        store's checksum or ETag with the local digests. A failed verification deletes the object."""
        self._call(
            self.url(name), self.client().upload_file,
            Filename=str(local), Bucket=self.bucket, Key=self.key(name), Config=TRANSFER,
            ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {"sha256": digests.sha256}},
        )  # fmt: skip
        return self._verify_or_delete(name, digests)

    def move_in(self, local: Path, name: str, digests: Digests) -> None:
        """Take ``local`` in as ``name``: here, a verified upload (the caller discards ``local``)."""
        self.put_file(local, name, digests)

    def copy_from(self, source, name_from: str, name_to: str, digests: Digests) -> str:
        if isinstance(source, LocalPlace):
            return self.put_file(source.local_path(name_from), name_to, digests)
        if (source.endpoint_url, source.bucket) != (self.endpoint_url, self.bucket):
            raise DestinationError(f"cannot copy {source.url(name_from)} to {self.url(name_to)}: different stores")
        self._call(
            self.url(name_to), self.client().copy,
            CopySource={"Bucket": source.bucket, "Key": source.key(name_from)},
            Bucket=self.bucket, Key=self.key(name_to), Config=TRANSFER,
            ExtraArgs={"ChecksumAlgorithm": "SHA256", "MetadataDirective": "REPLACE",
                       "Metadata": {"sha256": digests.sha256}},
        )  # fmt: skip
        return self._verify_or_delete(name_to, digests)

    def _verify_or_delete(self, name: str, digests: Digests) -> str:
        try:
            return self._verified(name, digests)
        except ChecksumMismatch:
            with contextlib.suppress(ConvertError):
                self.delete(name)
            raise

    def download(self, name: str, local: Path) -> None:
        Path(local).parent.mkdir(parents=True, exist_ok=True)
        self._call(
            self.url(name), self.client().download_file,
            Bucket=self.bucket, Key=self.key(name), Filename=str(local), Config=TRANSFER,
        )  # fmt: skip

    def check_reachable(self) -> None:
        """What can be known without writing: the bucket exists and these credentials may list the prefix."""
        self._call(self.label, self.client().list_objects_v2, Bucket=self.bucket, Prefix=self.key(), MaxKeys=1)

    def probe_write(self) -> None:
        """Write and delete one empty object: the only sure test of write access (and of the bucket)."""
        name = f"{STATE_FOLDER}/probe-{uuid.uuid4().hex[:12]}"
        try:
            self.client().put_object(Bucket=self.bucket, Key=self.key(name), Body=b"")
        except botocore.exceptions.ClientError as error:
            reason = describe_client_error(error, self.url(), tried=self.tried)
            raise DestinationError(f"cannot write to {self.label}: {reason}") from None
        except botocore.exceptions.BotoCoreError as error:
            raise DestinationError(f"cannot reach {self.label}: {error}") from None
        try:
            self.delete(name)
        except DestinationError as error:  # the steps delete (staging, stale records): that is needed too
            raise DestinationError(f"can write but not delete in {self.label}: {error}") from None


def _not_found(error: botocore.exceptions.ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")
