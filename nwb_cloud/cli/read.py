"""``nwb-cloud read``: open one NWB object of a store with a read method and run a workload (or list it)."""

from __future__ import annotations

import time
from urllib.parse import urlparse

from nwb_cloud.cli._common import settings_from


def _store_for(url: str, args):
    from nwb_cloud.cloud.store import Store, StoreError
    from nwb_cloud.suite.state import RunState

    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc or not parsed.path.strip("/"):
        raise StoreError(f"expected an s3://bucket/key URL, got {url!r}")
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    if args.endpoint_url:
        return Store(bucket=bucket, endpoint_url=args.endpoint_url, region=args.region), key
    settings = settings_from(args)
    if settings.state_path.exists():
        store = RunState.load(settings.state_path).catalog.store
        if store.bucket == bucket:
            return store, key
    return Store(bucket=bucket, region=args.region), key


def read(args) -> int:
    from nwb_cloud.access import get_method
    from nwb_cloud.workloads import get_workload

    method = get_method(args.method)
    workload = get_workload(args.workload) if args.workload else None
    store, key = _store_for(args.url, args)
    started = time.perf_counter()
    with method(store, key) as opened:
        opened_s = time.perf_counter() - started
        print(f"opened {args.url} with {method.name} in {opened_s:.2f} s")
        if workload is None:
            for name, series in opened.nwbfile.acquisition.items():
                shape = getattr(getattr(series, "data", None), "shape", None)
                print(f"  acquisition/{name}: {series.neurodata_type} {shape}")
            return 0
        started = time.perf_counter()
        result = workload.run(opened.nwbfile, args.series or _series_path(opened.nwbfile, workload))
        print(
            f"{workload.name}: {time.perf_counter() - started:.2f} s, read {getattr(result.raw, 'shape', result.raw)}"
        )
    return 0


def _series_path(nwbfile, workload) -> str:
    from nwb_cloud.cloud.store import StoreError

    wanted = {"ecephys": "ElectricalSeries", "ophys": "TwoPhotonSeries"}[workload.modality]
    for name, series in nwbfile.acquisition.items():
        if series.neurodata_type == wanted:
            return f"acquisition/{name}"
    raise StoreError(f"the file has no {wanted} in /acquisition for workload {workload.name}")


def register(subparsers) -> None:
    parser = subparsers.add_parser("read", help="open s3://bucket/key with a read method (and run a workload)")
    parser.add_argument("url", help="s3://bucket/key of an NWB file")
    parser.add_argument("--method", default="remfile", help="read method (see `nwb-cloud methods`)")
    parser.add_argument("--workload", help="a workload to run after opening (see `nwb-cloud methods`)")
    parser.add_argument("--series", help="path of the series inside the file (default: found by type)")
    parser.add_argument("--endpoint-url", help="S3 endpoint (default: the prepared run's, or AWS)")
    parser.add_argument("--region", default="us-east-1")
    parser.set_defaults(handler=read)
