"""An index published next to its asset, so that every reader fetches it in one request.

The sidecar records the asset's identity (ETag and size) when it is published. Fetching compares it with the
asset as it is now (a HEAD, sent at the same time as the GET of the sidecar, so it costs no extra round
trip): a changed asset never serves a stale index.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions

from nwb_cloud.cloud.store import Store, StoreError, describe_client_error
from nwb_cloud.refs.errors import CorruptIndex, RefsError
from nwb_cloud.refs.reader import check_index
from nwb_cloud.refs.translate import dumps

SIDECAR_SUFFIX = ".refs.json"


class MissingIndex(RefsError):
    """No index has been published for an asset."""


class StaleIndex(RefsError):
    """The published index describes a different version of the asset."""


def sidecar_key(key: str) -> str:
    return key + SIDECAR_SUFFIX


def publish(store: Store, key: str, refs: dict) -> str:
    """Upload ``refs`` as the sidecar of ``key`` (stamped with the asset's current ETag and size)."""
    asset = store.head(key)
    stamped = {**refs, "nwb_cloud": {**refs.get("nwb_cloud", {}), "asset": asset}}
    target = sidecar_key(key)
    try:
        store.client().put_object(
            Bucket=store.bucket, Key=target, Body=dumps(stamped).encode(), ContentType="application/json"
        )
    except botocore.exceptions.ClientError as error:
        raise StoreError(describe_client_error(error, store.s3_url(target))) from None
    return target


def fetch(store: Store, key: str) -> dict:
    """The published index of ``key``, checked against the asset; :class:`MissingIndex`/:class:`StaleIndex`."""
    target = sidecar_key(key)
    client = store.client()  # one client for both requests: creating one costs more than a loopback GET
    with ThreadPoolExecutor(2) as pool:
        body = pool.submit(_get, client, store, target)
        asset = pool.submit(_head, client, store, key)
        text, identity = body.result(), asset.result()
    try:
        refs = json.loads(text)
    except ValueError as error:
        raise CorruptIndex(f"the index {store.s3_url(target)} is not JSON ({error}); publish it again") from None
    check_index(refs)
    recorded = refs.get("nwb_cloud", {}).get("asset")
    if recorded != identity:
        raise StaleIndex(
            f"the index {store.s3_url(target)} was built for {recorded} but {store.s3_url(key)} is now {identity}: "
            "build and publish it again"
        )
    return refs


def _head(client, store: Store, key: str) -> dict:
    """``Store.head`` on an existing client: the asset's size and ETag."""
    try:
        response = client.head_object(Bucket=store.bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        raise StoreError(describe_client_error(error, store.s3_url(key))) from None
    return {"size": response["ContentLength"], "etag": response["ETag"].strip('"')}


def _get(client, store: Store, key: str) -> bytes:
    try:
        return client.get_object(Bucket=store.bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound"):
            raise MissingIndex(f"no reference index published at {store.s3_url(key)}") from None
        raise StoreError(describe_client_error(error, store.s3_url(key))) from None
