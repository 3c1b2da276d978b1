"""The floor of one asset x workload x profile, measured once and kept on disk for the benchmark processes.

The expensive part (indexing chunks, timing the local decode or open) does not depend on the profile, so
the cache holds that :class:`Measured` keyed by (asset key, ETag, local copy's size, workload, cores); each
profile's :class:`Floor` is arithmetic on it. A changed file, another machine's core count or a new
version of the measurement gets a new entry, never a stale one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from nwb_cloud.analysis.bound import OPEN, READ, Floor, Measured, bound
from nwb_cloud.analysis.chunks import touched
from nwb_cloud.analysis.decode import fastest_decode_s, time_local_processing, time_local_pynwb, time_local_read
from nwb_cloud.analysis.errors import AnalysisError, FloorUnavailable
from nwb_cloud.analysis.loopback import stored_loopback_throughput
from nwb_cloud.analysis.metadata import count_open_reads, time_local_open
from nwb_cloud.analysis.serving import stored_serving_cost
from nwb_cloud.cloud.profiles import Profile, get_profile
from nwb_cloud.datasets.catalog import Asset
from nwb_cloud.settings import usable_cores
from nwb_cloud.workloads import Workload, get_workload

MEASURE_VERSION = 6  # bump when what is measured, or how, changes
REPEATS = 3


def dataset_path(asset: Asset) -> str:
    return f"{asset.series.strip('/')}/data"


def measure(asset: Asset, workload: Workload, repeats: int = REPEATS) -> Measured:
    """Index and time ``workload`` on ``asset``'s local copy (no cache; see :func:`measured`)."""
    local = _local_copy(asset)
    cores = usable_cores()
    if workload.select is None:
        reads, _ = count_open_reads(local, lambda nwbfile: workload.run(nwbfile, asset.series))
        local_s = time_local_open(local, lambda nwbfile: workload.run(nwbfile, asset.series), repeats=repeats)
        from nwb_cloud.analysis.fresh_open import time_fresh_local_open  # not at import: it is also run as __main__

        fresh_s = time_fresh_local_open(local, workload.name, asset.series, repeats=repeats)
        return Measured(
            asset=asset.key,
            workload=workload.name,
            kind=OPEN,
            cores=cores,
            local_s=local_s,
            local_runs=repeats,
            local_fresh_s=fresh_s,
            metadata_reads=reads.reads,
            metadata_read_bytes=reads.read_bytes,
            metadata_bytes=reads.distinct_bytes,
        )
    chunks = touched(local, dataset_path(asset), workload.select)
    selection = workload.select(chunks.shape)
    local_s, runs = time_local_read(local, dataset_path(asset), selection, repeats=repeats)
    fastest = fastest_decode_s(local, dataset_path(asset), chunks, repeats=repeats)
    pynwb_s, _ = time_local_pynwb(local, lambda nwbfile: workload.run(nwbfile, asset.series), repeats=repeats)
    process_s = time_local_processing(local, asset.series, selection, workload.run, repeats=repeats)
    return Measured(
        asset=asset.key,
        workload=workload.name,
        kind=READ,
        cores=cores,
        local_s=local_s,
        local_runs=runs,
        fast_decode_s=fastest[0] if fastest else None,
        decoder=fastest[1] if fastest else None,
        local_pynwb_s=pynwb_s,
        process_s=process_s,
        chunks=chunks.stored,
        missing_chunks=chunks.missing,
        ranges=len(chunks.ranges()),
        compressed_bytes=chunks.compressed_bytes,
        selection_bytes=chunks.selection_bytes,
        chunk_bytes=chunks.chunk_bytes,
    )


def measured(asset: Asset, workload: Workload, data_dir: str | Path, repeats: int = REPEATS) -> Measured:
    """:func:`measure`, served from the on-disk cache under ``data_dir`` when it was done before."""
    local = _local_copy(asset)
    identity = {
        "asset": asset.key,
        "etag": asset.etag,
        "local_size": local.stat().st_size if local.is_file() else None,
        "workload": workload.name,
        "cores": usable_cores(),
        "version": MEASURE_VERSION,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    path = Path(data_dir) / "analysis" / "measured" / f"{digest}.json"
    if path.exists():
        try:
            payload = json.loads(path.read_text())
            if payload.get("identity") == identity:
                return Measured.from_dict(payload["measured"])
        except (ValueError, KeyError, TypeError):
            pass  # a corrupt entry is measured again and overwritten
    result = measure(asset, workload, repeats=repeats)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps({"identity": identity, "measured": result.to_dict()}, indent=1))
    partial.replace(path)
    return result


def floor_for(
    asset: Asset,
    workload: Workload | str,
    profile: Profile | str,
    data_dir: str | Path,
    loopback_throughput: float | None = None,
) -> Floor:
    """The physical bound of ``workload`` on ``asset`` under ``profile`` (measured once per machine, cached).

    On the unshaped ``loopback`` profile, bytes are priced at ``loopback_throughput`` or, when not given, at
    the throughput measured for this run under ``data_dir`` (:func:`measure_loopback_throughput`); if
    neither exists the loopback network is free and the floor is the decode time. The CPU the embedded
    server and proxy spend serving is counted when the run measured it (:mod:`nwb_cloud.analysis.serving`).
    """
    workload = get_workload(workload) if isinstance(workload, str) else workload
    profile = get_profile(profile) if isinstance(profile, str) else profile
    if workload.modality != asset.modality:
        raise AnalysisError(
            f"workload {workload.name!r} reads {workload.modality} data, asset {asset.name} is {asset.modality}"
        )
    if loopback_throughput is None and not profile.shaped:
        loopback_throughput = stored_loopback_throughput(data_dir)
    serving = stored_serving_cost(data_dir)
    return bound(measured(asset, workload, data_dir), profile, loopback_throughput=loopback_throughput, serving=serving)


def _local_copy(asset: Asset) -> Path:
    if not asset.local_path:
        raise FloorUnavailable(
            f"asset {asset.name} ({asset.key}) has no local copy: the bound reads its chunk index and times "
            "the decode locally, so download it first"
        )
    local = Path(asset.local_path)
    if not local.exists():
        raise FloorUnavailable(f"the local copy of {asset.name} is missing: {local} (prepare the run again)")
    return local
