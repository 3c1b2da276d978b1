"""``nwb-cloud read``: open one NWB object of a store with a read method and run a workload (or list it)."""

from __future__ import annotations

import contextlib
import time
from urllib.parse import urlparse

from nwb_cloud.cli._common import add_store_arguments, store_from_url
from nwb_cloud.cli._options import METHOD, S3_URL, SERIES, WORKLOAD, add


def _store_for(url: str, args):
    return store_from_url(url, args)


@contextlib.contextmanager
def _as_s3_answers(store):
    """The embedded endpoint (rclone serve s3) answers a ranged GET with 200 where S3 answers 206, which obstore
    refuses: on loopback, read through the unshaped proxy that restores S3's answer, as the suite does."""
    if urlparse(store.endpoint_url or "").hostname not in ("127.0.0.1", "localhost"):
        yield store
        return
    from nwb_cloud.cloud.profiles import PROFILES
    from nwb_cloud.cloud.proxy_process import ProxyProcess

    with ProxyProcess(store.endpoint_url, PROFILES["loopback"]) as proxy:
        yield store.via(proxy.url)


def read(args) -> int:
    from nwb_cloud.access import get_method
    from nwb_cloud.workloads import get_workload

    method = get_method(args.method)
    workload = get_workload(args.workload) if args.workload else None
    store, key = _store_for(args.url, args)
    with _as_s3_answers(store) as reading, _opened(method, reading, key) as (opened, opened_s):
        print(f"opened {args.url} with {method.name} in {opened_s:.2f} s")
        if workload is None:
            for name, series in opened.nwbfile.acquisition.items():
                shape = getattr(getattr(series, "data", None), "shape", None)
                print(f"  acquisition/{name}: {series.neurodata_type} {shape}")
            return 0
        started = time.perf_counter()
        series = args.series or _series_path(opened.nwbfile, workload)
        _require_series(opened.nwbfile, series, args.url)
        result = workload.run(opened.nwbfile, series)
        print(
            f"{workload.name}: {time.perf_counter() - started:.2f} s, read {getattr(result.raw, 'shape', result.raw)}"
        )
    return 0


@contextlib.contextmanager
def _opened(method, store, key):
    started = time.perf_counter()
    with method(store, key) as opened:
        yield opened, time.perf_counter() - started


def _require_series(nwbfile, path: str, url: str) -> None:
    from nwb_cloud.cloud.store import StoreError

    group, _, name = path.partition("/")
    holder = getattr(nwbfile, group, None) if name else None
    if not isinstance(holder, dict) and not hasattr(holder, "keys"):
        raise StoreError(f"{url} has no {path!r}: give a path like acquisition/NAME")
    if name not in holder:
        known = ", ".join(f"{group}/{n}" for n in holder) or "none"
        raise StoreError(f"{url} has no {path!r} (there: {known})")


def _series_path(nwbfile, workload) -> str:
    from nwb_cloud.cloud.store import StoreError

    wanted = {"ecephys": "ElectricalSeries", "ophys": "TwoPhotonSeries"}[workload.modality]
    for name, series in nwbfile.acquisition.items():
        if series.neurodata_type == wanted:
            return f"acquisition/{name}"
    raise StoreError(f"the file has no {wanted} in /acquisition for workload {workload.name}")


def register(subparsers) -> None:
    parser = subparsers.add_parser("read", help="open s3://bucket/key with a read method (and run a workload)")
    add(parser, "url", value=S3_URL, help="the NWB file")
    add(parser, "--method", value=METHOD, default="remfile", help="read method (`nwb-cloud methods`; default remfile)")
    add(parser, "--workload", value=WORKLOAD, help="a workload to run after opening (`nwb-cloud methods`)")
    add(parser, "--series", value=SERIES, help="the series inside the file (default: found by the workload's type)")
    add_store_arguments(parser, data_dir_for="the prepared run's state")
    parser.set_defaults(handler=read)
