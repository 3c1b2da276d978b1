"""The user's AWS account: a session with checked credentials, and AWS errors turned into one-line messages."""

from __future__ import annotations

import contextlib

import boto3
import botocore

from nwb_cloud.batch.errors import AwsError
from nwb_cloud.convert.places import new_session


def aws_session(region: str, profile: str | None = None) -> boto3.session.Session:
    """A boto3 session for ``region`` whose credentials exist (checked here, before anything is created)."""
    try:
        core = new_session()._session  # shares the service models already loaded in this process
        session = boto3.session.Session(botocore_session=core, profile_name=profile, region_name=region)
    except botocore.exceptions.ProfileNotFound as error:
        raise AwsError(str(error)) from None
    if session.get_credentials() is None:
        raise AwsError(
            "no AWS credentials: run `aws configure` or `aws sso login`, or set AWS_PROFILE or "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        )
    return session


def account_id(session: boto3.session.Session) -> str:
    """The account the credentials belong to (also proves AWS accepts them)."""
    with aws_errors("checking the AWS credentials"):
        return session.client("sts").get_caller_identity()["Account"]


def error_code(error: Exception) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        return str(error.response.get("Error", {}).get("Code", ""))
    return ""


@contextlib.contextmanager
def aws_errors(what: str):
    """Turn what boto3 raises into an :class:`AwsError` that says what was being done and what AWS answered."""
    try:
        yield
    except botocore.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", "")
        raise AwsError(f"{what}: AWS refused ({error_code(error)}): {message}") from None
    except botocore.exceptions.NoCredentialsError:
        raise AwsError(f"{what}: no AWS credentials") from None
    except botocore.exceptions.BotoCoreError as error:
        raise AwsError(f"{what}: {error}") from None
