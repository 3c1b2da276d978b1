"""The one interface every read method implements, and the error translation they share.

A method is a :class:`Method` row: a name, a description, and ``open(store, key) -> Opened``. Methods that
need something built beside the asset before they can read it (a reference index, a LINDI JSON, a Zarr
copy) also give ``prepare(store, key, local_path)``, which the run preparation calls once per asset.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import botocore.exceptions
from pynwb import NWBFile

from nwb_cloud.cloud.store import Store, describe_client_error
from nwb_cloud.errors import NwbCloudError


class AccessError(NwbCloudError):
    """A read method could not open or read an asset."""


class UnknownMethod(AccessError):
    pass


class MethodUnavailable(AccessError):
    """The method cannot run on this machine (e.g. h5py built without ROS3); the message says why."""


class NotNwbFile(AccessError):
    pass


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

    def __enter__(self) -> Opened:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass(frozen=True)
class Method:
    name: str
    description: str
    open: Callable[[Store, str], Opened]
    formats: tuple[str, ...] = ("hdf5",)  # which asset backends it reads
    prepare: Callable[[Store, str, str | None], None] | None = None
    unavailable: Callable[[], str | None] = lambda: None  # why it cannot run here, or None

    def __call__(self, store: Store, key: str) -> Opened:
        reason = self.unavailable()
        if reason:
            raise MethodUnavailable(f"method {self.name!r} is unavailable here: {reason}")
        with translate_errors(store.s3_url(key), self.name):
            return self.open(store, key)


_NOT_HDF5 = (
    "file signature not found",
    "not an hdf5 file",
    "unable to synchronously open file",
    "bad symbol",
)
_UNREACHABLE = ("connect", "unreachable", "timed out", "connection refused", "name or service not known")


@contextlib.contextmanager
def translate_errors(what: str, method: str) -> Iterator[None]:
    """Turn the many ways libraries fail on a missing object, a dead endpoint or a non-NWB file into one line."""
    try:
        yield
    except NwbCloudError:
        raise
    except FileNotFoundError:
        raise AccessError(f"{method}: no such object: {what}") from None
    except botocore.exceptions.ClientError as error:
        raise AccessError(f"{method}: {describe_client_error(error, what)}") from None
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError) as error:
        raise AccessError(f"{method}: cannot reach the store for {what}: {error}") from None
    except Exception as error:  # noqa: BLE001 - every library has its own exception zoo; we name the cause
        text = f"{type(error).__name__}: {error}".lower()
        if "403" in text or "access denied" in text or "forbidden" in text:
            raise AccessError(f"{method}: access denied to {what}") from None
        if any(marker in text for marker in _UNREACHABLE):
            raise AccessError(f"{method}: cannot reach the store for {what} ({type(error).__name__})") from None
        if any(marker in text for marker in _NOT_HDF5):
            raise NotNwbFile(f"{method}: {what} is not an HDF5/NWB file") from None
        if "404" in text or "not found" in text or "nosuchkey" in text:
            raise AccessError(f"{method}: no such object: {what}") from None
        if "namespace" in text or "neurodata_type" in text or "nwb_version" in text:
            raise NotNwbFile(f"{method}: {what} is HDF5 but not NWB ({error})") from None
        raise
