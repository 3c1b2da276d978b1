"""A measured matrix made from known parameters: how the fit is shown to recover what generated the data.

:func:`synthetic_measurements` prices a grid of layouts x reads x profiles x methods with a known
:class:`~nwb_cloud.recommend.model.CostModel` (:data:`TRUTH`), optionally with log-normal noise, and
returns it as :class:`~nwb_cloud.recommend.measurements.Measurements`, the same shape the real results
take. Fitting it must give back :data:`TRUTH`'s parameters, and the recommendations must pick the layouts
that are truly best: the tests hold the model to that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.recommend.geometry import geometry
from nwb_cloud.recommend.measurements import Measurements
from nwb_cloud.recommend.model import ANY, CodecParams, CostModel, MethodParams, Network, traffic
from nwb_cloud.workloads import WORKLOADS

MB = 1e6
SHAPES = {"ophys": ((1200, 512, 512), "uint16"), "ecephys": ((900_000, 384), "int16")}  # the "quick" size


def _reads() -> dict[str, dict]:
    """The registered read workloads of each modality: the same selections the benchmarks read."""
    reads: dict[str, dict] = {"ophys": {}, "ecephys": {}}
    for name, workload in WORKLOADS.items():
        if workload.select is not None and workload.modality in reads:
            reads[workload.modality][name] = workload.select
    return reads


LAYOUTS = {  # name -> (ophys chunks, ecephys chunks, codec)
    "neuroconv-default": ((19, 512, 512), (78_125, 64), "gzip-4"),
    "patch-gzip": ((512, 32, 32), (262_144, 1), "gzip-4"),
    "patch-zstd": ((512, 32, 32), (262_144, 1), "blosc-zstd-bitshuffle"),
    "tile-zstd": ((64, 128, 128), (32_768, 32), "blosc-zstd-bitshuffle"),
    "frames-none": ((4, 512, 512), (8_192, 384), "none"),
    "small-zstd": ((128, 32, 32), (65_536, 4), "blosc-zstd-bitshuffle"),
}
TRUTH = CostModel(
    methods={
        ANY: MethodParams(),
        "sequential": MethodParams(fixed_s=0.004, requests_fixed=3, requests_per_chunk=1.0, requests_per_mb=0.5,
                                   wire_fixed_bytes=2e5, wire_per_byte=1.0, wire_per_chunk_bytes=5e4, parallelism=1),
        "parallel": MethodParams(fixed_s=0.08, requests_fixed=1, requests_per_chunk=1.0, requests_per_mb=0.0,
                                 wire_fixed_bytes=0, wire_per_byte=1.0, wire_per_chunk_bytes=0, parallelism=12,
                                 decode_parallelism=2),
        "blockcache": MethodParams(fixed_s=0.01, requests_fixed=4, requests_per_chunk=0.1, requests_per_run=1.5,
                                   requests_per_mb=0.2, wire_fixed_bytes=5e6, wire_per_byte=1.0,
                                   wire_per_chunk_bytes=2e6, wire_per_run_bytes=3e6, parallelism=1),
    },
    codecs={
        "gzip-4": CodecParams(decode_bytes_per_s=180 * MB, ratio={"ophys": 2.4, "ecephys": 1.5}),
        "blosc-zstd-bitshuffle": CodecParams(decode_bytes_per_s=900 * MB, ratio={"ophys": 2.6, "ecephys": 1.7}),
        "none": CodecParams(decode_bytes_per_s=4000 * MB, ratio={"ophys": 1.0, "ecephys": 1.0}),
    },
    chunk_overhead_s=3e-5,
    loopback_bandwidth=400 * MB,
    source="synthetic truth",
)  # fmt: skip


def synthetic_measurements(
    truth: CostModel = TRUTH,
    layouts: dict = LAYOUTS,
    profiles=("loopback", "in-region", "cross-region", "lab"),
    noise: float = 0.0,
    seed: int = 0,
    traffic_measured: bool = True,
) -> Measurements:
    """Every layout x read x profile x method of ``truth`` (not ``any``), times scaled by exp(N(0, noise))."""
    rng = np.random.default_rng(seed)
    networks = {p: Network.of(PROFILES[p], truth.loopback_bandwidth) for p in profiles}
    layout_rows, decode_rows, cells = [], [], []
    for layout, (*chunk_shapes, codec) in layouts.items():
        for modality, chunk_shape in zip(("ophys", "ecephys"), chunk_shapes, strict=True):
            shape, dtype = SHAPES[modality]
            itemsize = np.dtype(dtype).itemsize
            chunk_shape = tuple(min(c, s) for c, s in zip(chunk_shape, shape, strict=True))
            ratio = truth.codecs[codec].ratio_for(modality)
            layout_rows.append(dict(modality=modality, layout=layout, codec=codec, backend="hdf5", page_size=None,
                                    chunk_shape=chunk_shape, shape=shape, dtype=dtype, itemsize=itemsize,
                                    size_bytes=int(np.prod(shape) * itemsize / ratio)))  # fmt: skip
            for workload, select in _reads()[modality].items():
                touched = geometry(shape, chunk_shape, itemsize, select)
                stored = touched.decoded_bytes / ratio
                local = float(truth.decode_s(codec, touched.chunks, touched.decoded_bytes))
                decode_rows.append(dict(modality=modality, layout=layout, workload=workload, codec=codec,
                                        chunks=touched.chunks, chunk_bytes=touched.chunk_bytes,
                                        compressed_bytes=stored, decoded_bytes=touched.decoded_bytes,
                                        local_s=local))  # fmt: skip
                for method, params in truth.methods.items():
                    if method == ANY:
                        continue
                    requests, wire = traffic(params, touched.chunks, stored, touched.runs)
                    for profile, network in networks.items():
                        cost = truth.predict(
                            method, codec, network, touched.chunks, touched.chunk_bytes, stored, runs=touched.runs
                        )
                        seconds = (
                            float(cost.seconds) * float(np.exp(rng.normal(0, noise))) if noise else float(cost.seconds)
                        )
                        cells.append(dict(machine="synthetic", workload=workload, method=method, layout=layout,
                                          profile=profile, modality=modality, variant="hdf5", codec=codec,
                                          chunks=touched.chunks, runs=touched.runs,
                                          chunk_bytes=touched.chunk_bytes, compressed_bytes=stored,
                                          decoded_bytes=touched.decoded_bytes, time_s=seconds,
                                          requests=float(requests) if traffic_measured else np.nan,
                                          bytes_received=float(wire) if traffic_measured else np.nan,
                                          n_samples=5))  # fmt: skip
    return Measurements(
        cells=pd.DataFrame(cells),
        decode=pd.DataFrame(decode_rows),
        layouts=pd.DataFrame(layout_rows),
        networks=networks,
        loopback_bandwidth=truth.loopback_bandwidth,
        cores=4,
        source=f"synthetic (noise {noise})",
    )
