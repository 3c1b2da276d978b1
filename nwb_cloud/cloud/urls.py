"""The URLs users hold for an S3 object, each turned into a :class:`~nwb_cloud.cloud.store.Store` and a key.

DANDI hands out three forms for one asset, and users paste any of them:

* ``s3://dandiarchive/blobs/abc/def/abcdef...``;
* an HTTPS object URL, virtual-hosted (``https://dandiarchive.s3.amazonaws.com/blobs/...``,
  ``https://dandiarchive.s3.us-east-2.amazonaws.com/...``) or path-style (``https://s3.amazonaws.com/dandiarchive/...``);
* a DANDI API asset URL (``https://api.dandiarchive.org/api/assets/<id>/download/``, also under
  ``/api/dandisets/<id>/versions/<v>/assets/<id>/``), which redirects to the object URL: one HEAD, not followed,
  reads the redirect.

``endpoint_url`` sends the requests to another S3 endpoint than AWS (the embedded one in tests) while the bucket
and key still come from the URL; a URL on that endpoint itself is read path-style. Without credentials the store
is anonymous, as DANDI's public bucket is read.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from urllib.parse import unquote, urljoin, urlparse

from nwb_cloud.cloud.store import Store, StoreError

_VIRTUAL_HOSTED = re.compile(r"^(?P<bucket>[a-z0-9.\-]+)\.s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
_PATH_STYLE = re.compile(r"^s3(?:[.-](?P<region>[a-z0-9-]+))?\.amazonaws\.com$")
_DANDI_ASSET = re.compile(r"/api/(?:dandisets/[^/]+/versions/[^/]+/)?assets/(?P<asset>[0-9a-f-]{36})(?:/download)?/?$")
REDIRECTS = 3  # an API URL that redirects to another API URL before the object is followed this far


def store_for_url(
    url: str,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key: str | None = None,
    secret_key: str | None = None,
    timeout_s: float = 10.0,
) -> tuple[Store, str]:
    """``(store, key)`` of ``url`` in any of the forms above; :class:`StoreError` names a URL that is none."""
    for _ in range(REDIRECTS + 1):
        parsed = urlparse(url)
        if parsed.scheme == "s3":
            bucket, key = parsed.netloc, unquote(parsed.path.lstrip("/"))
            return _store(url, bucket, key, endpoint_url, region, access_key, secret_key)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            break
        if _DANDI_ASSET.search(parsed.path):
            url = _redirect(url, timeout_s)
            continue
        host = parsed.hostname or ""
        path = unquote(parsed.path.lstrip("/"))
        hosted = _VIRTUAL_HOSTED.match(host)
        if hosted:
            return _store(url, hosted["bucket"], path, endpoint_url, hosted["region"] or region, access_key, secret_key)
        path_style = _PATH_STYLE.match(host)
        on_endpoint = endpoint_url is not None and urlparse(endpoint_url).netloc == parsed.netloc
        if path_style or on_endpoint:
            bucket, _, key = path.partition("/")
            own_region = path_style["region"] if path_style and not on_endpoint else None
            return _store(url, bucket, key, endpoint_url, own_region or region, access_key, secret_key)
        break
    raise StoreError(
        f"cannot tell the S3 bucket and key of {url!r}: expected s3://bucket/key, an S3 object URL "
        "(https://bucket.s3.amazonaws.com/key) or a DANDI API asset URL (.../api/assets/<id>/download/)"
    )


def _store(url, bucket, key, endpoint_url, region, access_key, secret_key) -> tuple[Store, str]:
    if not bucket or not key:
        raise StoreError(f"{url!r} names no object (bucket {bucket!r}, key {key!r})")
    return Store(bucket=bucket, endpoint_url=endpoint_url, region=region, access_key=access_key,
                 secret_key=secret_key), key  # fmt: skip


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the Location is what we want, not the object behind it


def _redirect(url: str, timeout_s: float) -> str:
    """Where a DANDI API asset URL redirects to (one HEAD); the query (a signature, a file name) is dropped."""
    request = urllib.request.Request(url, method="HEAD")
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout_s) as response:
            raise StoreError(f"{url} answered {response.status} instead of redirecting to the asset's object")
    except urllib.error.HTTPError as error:
        location = error.headers.get("Location")
        if error.code in (301, 302, 303, 307, 308) and location:
            target = urlparse(urljoin(url, location))
            return target._replace(query="", fragment="").geturl()
        raise StoreError(f"{url}: HTTP {error.code} (no such asset, or the archive refuses it)") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise StoreError(f"cannot reach {urlparse(url).netloc} for {url}: {error}") from None
