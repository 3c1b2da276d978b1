"""The one interface every read method implements, and the error translation they share.

A method is a :class:`Method` row: a name, a description, and ``open(store, key) -> Opened``. Methods that
need something built beside the asset before they can read it (a reference index, a LINDI JSON, a Zarr
copy) also give ``prepare(store, key, local_path)``, which the run preparation calls once per asset.
"""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import botocore.exceptions
from pynwb import NWBFile

from nwb_cloud.cloud.store import Store, describe_client_error
from nwb_cloud.errors import NwbCloudError
from nwb_cloud.refs.fetch import FetchError, Refused, Unreachable


class AccessError(NwbCloudError):
    """A read method could not open or read an asset."""


class UnknownMethod(AccessError):
    pass


class MethodUnavailable(AccessError):
    """The method cannot run on this machine (e.g. h5py built without ROS3); the message says why."""


class NotNwbFile(AccessError):
    pass


class Unsupported(AccessError):
    """The method cannot represent this asset (e.g. an index of an LZF dataset): a cell it cannot measure, not a
    failure. The benchmark grid skips such a cell with this message as the reason ("unsupported")."""


@dataclass
class Opened:
    """An open NWB file and what must be closed when done with it (in reverse order)."""

    nwbfile: NWBFile
    closers: list[Callable[[], object]] = field(default_factory=list)

    def close(self) -> None:
        while self.closers:
            closer = self.closers.pop()
            with contextlib.suppress(Exception):
                closer()
        # h5py holds its global lock while it calls a file object's read(); fsspec (and remfile's threads) serve
        # that read on another thread. If the cyclic GC runs there and finalizes a dropped pynwb IO or h5py object,
        # that finalizer waits for the lock: a deadlock (h5py issue #2019, seen here between two reads). So this
        # handle's reference cycles are collected now, on the caller's thread, never later on a service thread.
        self.nwbfile = None
        gc.collect()

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


OPENS, PAGED = "opens", "paged"
VARIES = (OPENS, PAGED)


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    open: Callable[[Store, str], Opened]
    formats: tuple[str, ...] = ("hdf5",)  # which asset backends it reads
    prepare: Callable[[Store, str, str | None], None] | None = None
    unavailable: Callable[[], str | None] = lambda: None  # why it cannot run here, or None
    # a labelled variant of another row (``variant_of``), measured where its difference shows (``varies``):
    # OPENS - it differs only in how it opens (unconsolidated Zarr metadata, a warm index cache), so the grids
    #   measure it on the open workloads only (a read's open is untimed: it would repeat its base's time);
    # PAGED - it sets an HDF5 page buffer, which acts only on files with paged file space, so the grids measure
    #   it on the paged layouts only (reads and opens)
    variant_of: str | None = None
    varies: str = "opens"

    def __post_init__(self):
        if self.varies not in VARIES:
            raise ValueError(f"method {self.name!r}: varies={self.varies!r}, expected one of {', '.join(VARIES)}")

    def __call__(self, store: Store, key: str) -> Opened:
        reason = self.unavailable()
        if reason:
            raise MethodUnavailable(f"method {self.name!r} is unavailable here: {reason}")
        with translate_errors(store.s3_url(key), self.name, missing=lambda: why_missing(store, key)):
            return self.open(store, key)


def require_writable(store: Store, key: str, what: str) -> None:
    """``prepare`` stores things beside the asset: say so before any work when the store cannot take them."""
    if store.anonymous:
        raise AccessError(f"{what}: cannot store it beside {store.s3_url(key)}: the store is read-only (anonymous)")


def why_missing(store: Store, key: str) -> str:
    """Some libraries report a dead endpoint as a missing object (fsspec's HTTP, zarr): one HEAD tells which."""
    what = store.s3_url(key)
    try:
        store.client(retries={"max_attempts": 1}).head_object(Bucket=store.bucket, Key=key)
    except botocore.exceptions.ClientError as error:
        return describe_client_error(error, what)
    except botocore.exceptions.BotoCoreError as error:
        return f"cannot reach the store for {what}: {error}"
    return f"the store has {what}, yet the reader found nothing there"


_NOT_HDF5 = (
    "file signature not found",
    "not an hdf5 file",
    "unable to synchronously open file",
    "bad symbol",
)
_NOT_NWB = ("namespace", "neurodata_type", "nwb_version", "not a valid nwb file", "no data_type found")
_UNREACHABLE = ("connect", "unreachable", "timed out", "connection refused", "name or service not known")
# a URL in a message (a presigned one carries a random hex signature, an asset key a content hash) must not be
# read as a status code: "…Signature=8a404c…" is not a 404
_URL = re.compile(r"\b(?:https?|s3)://[^\s'\")>]+")
_STATUS_403 = re.compile(r"\b403\b")
_STATUS_404 = re.compile(r"\b404\b")


@contextlib.contextmanager
def reader_errors(method: str, what: str, missing: str | None = None) -> Iterator[None]:
    """The failures of the harness's own requests on an asset's reader (:class:`~nwb_cloud.refs.fetch.RangeReader`:
    a derived copy's record, a LINDI JSON, the asset's HEAD) as one line naming ``method``. ``what`` is the
    object asked for; ``missing`` what its absence means to the method (default: S3's own message)."""
    try:
        yield
    except Refused as error:
        raise AccessError(f"{method}: {missing if error.missing and missing else error}") from None
    except Unreachable as error:
        raise AccessError(f"{method}: cannot reach the store for {what}: {error.reason}") from None
    except FetchError as error:
        raise AccessError(f"{method}: {error}") from None


@contextlib.contextmanager
def translate_errors(what: str, method: str, missing: Callable[[], str] | None = None) -> Iterator[None]:
    """Turn the many ways libraries fail on a missing object, a dead endpoint or a non-NWB file into one line.

    ``missing`` says why an object looks missing (see :func:`why_missing`); without it, "no such object".
    """
    try:
        yield
    except NwbCloudError:
        raise
    except FileNotFoundError:
        raise AccessError(f"{method}: {missing() if missing else f'no such object: {what}'}") from None
    except botocore.exceptions.ClientError as error:
        raise AccessError(f"{method}: {describe_client_error(error, what)}") from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise AccessError(f"{method}: cannot reach the store for {what}: {error}") from None
    except Exception as error:  # noqa: BLE001 - every library has its own exception zoo; we name the cause
        text = _URL.sub("<url>", f"{type(error).__name__}: {error}").lower()
        if _STATUS_403.search(text) or "access denied" in text or "forbidden" in text:
            raise AccessError(f"{method}: access denied to {what}") from None
        if any(marker in text for marker in _UNREACHABLE):
            raise AccessError(f"{method}: cannot reach the store for {what} ({type(error).__name__})") from None
        if any(marker in text for marker in _NOT_HDF5):
            raise NotNwbFile(f"{method}: {what} is not an HDF5/NWB file") from None
        if _STATUS_404.search(text) or "not found" in text or "nosuchkey" in text:
            raise AccessError(f"{method}: {missing() if missing else f'no such object: {what}'}") from None
        if any(marker in text for marker in _NOT_NWB):
            raise NotNwbFile(f"{method}: {what} is not an NWB file ({error})") from None
        raise
