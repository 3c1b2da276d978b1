"""The cost model of a read: requests x latency + bytes / bandwidth + decode, with a few parameters each.

For a read that touches ``C`` chunks of ``Bc`` compressed bytes decoding to ``Bd`` bytes, by read method
``m`` with codec ``k`` under a network ``p``::

    requests  R = q_m + r_m * C + s_m * N + u_m * Bc/MB  (lookups; per chunk; per run N of adjacent chunks,
                                                         which read-ahead fetches together; big-chunk splits)
    wire      W = o_m + a_m * Bc + g_m * C + h_m * N   (over-fetch: block caches read past a chunk, and
                                                         read-ahead past the end of each run)
    time      T = f_m + lat_p * R / P_m + W / min(total_p, P_m * per_connection_p) + decode_k(C, Bd) / D_m
    decode    decode_k = C * chunk_overhead + Bd / speed_k  (one core; h5py decodes one chunk after another,
              D_m = 1, a reader that decodes chunks in threads has D_m > 1)

The network parameters come from the profile table (:mod:`nwb_cloud.cloud.profiles`), never fitted; on
the unshaped loopback profile bytes move at the measured loopback throughput. The method parameters
(``q, r, s, u`` from the measured request counts, ``o, a, g, h`` from the measured bytes, ``f``, the effective
parallelism ``P`` and the decode parallelism ``D`` from the times) and the codec parameters (decode speed
from the local decode measurements, compression ratio from the chunk index) are fitted by
:mod:`nwb_cloud.recommend.fit`. Every parameter is non-negative, so touching more chunks or more bytes
never costs less.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from nwb_cloud.cloud.profiles import Profile, get_profile
from nwb_cloud.files import write_text_whole
from nwb_cloud.recommend.errors import NotEnoughMeasurements, RecommendError, UnknownCodec
from nwb_cloud.recommend.fitted_range import FittedRange

MB = 1e6
ANY = "any"  # the method parameters fitted to every method's cells at once: a typical reader
# Storage variants a method's parameters are fitted per: the plain HDF5 file the recommendations choose chunk
# shapes and codecs for, HDF5 with the paged file-space strategy, and Zarr (one object per chunk). A method
# reads them differently (a block cache over paged metadata, one request per Zarr object), which chunk
# geometry alone does not say.
PLAIN, PAGED, ZARR_VARIANT = "hdf5", "hdf5-paged", "zarr"


def variant_of(backend: str | None, page_size=None) -> str:
    if backend == "zarr":
        return ZARR_VARIANT
    return PAGED if page_size and page_size == page_size else PLAIN  # NaN page size: none


def params_key(method: str | None, variant: str = PLAIN) -> str:
    """The key of a method's parameters for a storage variant: ``remfile``, ``remfile@zarr``, ``any@hdf5-paged``."""
    method = method or ANY
    return method if variant == PLAIN else f"{method}@{variant}"


class Network(BaseModel):
    """What the model needs of a network profile."""

    name: str
    latency_s: float  # from sending a request on an open connection to its first byte
    connection_bandwidth: float  # bytes/s one connection moves (inf: unlimited)
    total_bandwidth: float  # bytes/s all connections share (inf: unlimited)

    @classmethod
    def of(cls, profile: Profile | str, loopback_bandwidth: float | None = None) -> Network:
        profile = get_profile(profile) if isinstance(profile, str) else profile
        if not profile.shaped:  # the endpoint on this machine: one stream's measured rate, however many streams
            rate = loopback_bandwidth or math.inf
            return cls(name=profile.name, latency_s=0.0, connection_bandwidth=rate, total_bandwidth=rate)
        return cls(
            name=profile.name,
            latency_s=profile.request_latency_s(),
            connection_bandwidth=profile.connection_bandwidth or math.inf,
            total_bandwidth=profile.total_bandwidth or math.inf,
        )

    def bandwidth(self, parallelism):
        return np.minimum(self.total_bandwidth, np.asarray(parallelism, dtype=float) * self.connection_bandwidth)


class MethodParams(BaseModel):
    """How one read method turns touched chunks into requests, bytes and time (see the module docstring)."""

    fixed_s: float = Field(0.005, ge=0, description="f: seconds every read costs beyond its requests and bytes")
    requests_fixed: float = Field(2.0, ge=0, description="q: requests every read makes (index lookups)")
    requests_per_chunk: float = Field(1.0, ge=0, description="r: requests per touched chunk")
    requests_per_run: float = Field(0.0, ge=0, description="s: requests per run of adjacent touched chunks")
    requests_per_mb: float = Field(0.125, ge=0, description="u: requests per compressed MB (large-chunk splits)")
    wire_fixed_bytes: float = Field(0.0, ge=0, description="o: bytes every read moves beyond the chunks")
    wire_per_byte: float = Field(1.0, ge=0, description="a: bytes moved per touched compressed byte")
    wire_per_chunk_bytes: float = Field(0.0, ge=0, description="g: extra bytes moved per touched chunk")
    wire_per_run_bytes: float = Field(
        0.0, ge=0, description="h: extra bytes moved per run of adjacent chunks (read-ahead past its end)"
    )
    parallelism: float = Field(1.0, ge=1, description="P: requests in flight (and connections) at once")
    decode_parallelism: float = Field(1.0, ge=1, description="D: chunks decoded at once")
    cells: int = Field(0, description="timed cells the time parameters were fitted to (0: prior)")
    traffic_cells: int = Field(0, description="cells whose requests and bytes were measured")


class CodecParams(BaseModel):
    decode_bytes_per_s: float = Field(gt=0, description="decoded bytes per second, one core")
    ratio: dict[str, float] = Field(default_factory=dict, description="uncompressed / compressed, per modality")
    source: str = ""

    def ratio_for(self, modality: str | None) -> float:
        if modality in self.ratio:
            return self.ratio[modality]
        if not self.ratio:
            raise RecommendError("no compression ratio known for this codec")
        return float(np.exp(np.mean(np.log(list(self.ratio.values())))))  # geometric mean over modalities


class Cost(BaseModel):
    """A predicted read, in parts (floats, or arrays when many candidates are priced at once)."""

    model_config = {"arbitrary_types_allowed": True}

    seconds: object
    fixed_s: object
    latency_s: object
    transfer_s: object
    decode_s: object
    requests: object
    wire_bytes: object
    compressed_bytes: object


class CostModel(BaseModel):
    methods: dict[str, MethodParams]
    codecs: dict[str, CodecParams] = Field(default_factory=dict)
    chunk_overhead_s: float = Field(2e-5, ge=0, description="decode seconds per chunk beyond its bytes")
    loopback_bandwidth: float | None = None
    source: str = "prior: not fitted to any measurement"
    quality: dict = Field(default_factory=dict, description="the fit's summary (see fit.FitResult.summary)")
    fitted_range: FittedRange | None = Field(None, description="what the fit measured; None for the prior")

    # -- lookups ----------------------------------------------------------------------------------------------
    def method(self, name: str | None, variant: str = PLAIN) -> MethodParams:
        """The parameters of read method ``name`` (None: a typical reader) for a storage variant."""
        name = params_key(name, variant)
        if name not in self.methods:
            fitted = ", ".join(sorted(m for m in self.methods if m != ANY and "@" not in m))
            if not fitted:
                raise RecommendError(
                    f"no fitted model knows read method {name!r} ({self.source}): leave the method out for a "
                    "typical reader, or fit one to results (`nwb-cloud fit-model`, or --results)"
                )
            raise RecommendError(
                f"the model has no parameters for read method {name!r} (fitted: {fitted}); "
                "leave the method out for a typical reader"
            )
        return self.methods[name]

    def codec(self, name: str) -> CodecParams:
        if name not in self.codecs:
            known = ", ".join(sorted(self.codecs)) or "none"
            raise UnknownCodec(f"the model knows no decode speed or ratio for codec {name!r} (known: {known})")
        return self.codecs[name]

    def network(self, profile: Profile | str) -> Network:
        return Network.of(profile, self.loopback_bandwidth)

    # -- prediction -------------------------------------------------------------------------------------------
    def predict(
        self,
        method: str | None,
        codec: str,
        network: Network,
        chunks,
        chunk_bytes,
        compressed_bytes=None,
        modality: str | None = None,
        variant: str = PLAIN,
        runs=None,
    ) -> Cost:
        """The cost of reads touching ``chunks`` chunks of ``chunk_bytes`` each (scalars or arrays).

        ``compressed_bytes`` (the touched chunks' stored bytes) defaults to the decoded bytes over the codec's
        ratio for ``modality``; a measured cell passes the figure its chunk index gives. ``runs`` (of adjacent
        chunks, :class:`~nwb_cloud.recommend.geometry.Geometry`) defaults to one per chunk, as in Zarr.
        """
        params, codec_params = self.method(method, variant), self.codec(codec)
        chunks = np.asarray(chunks, dtype=float)
        runs = chunks if runs is None or variant == ZARR_VARIANT else np.asarray(runs, dtype=float)
        decoded = chunks * np.asarray(chunk_bytes, dtype=float)
        if compressed_bytes is None:
            compressed_bytes = decoded / codec_params.ratio_for(modality)
        return price(
            params,
            network,
            chunks,
            np.asarray(compressed_bytes, dtype=float),
            self.decode_s(codec, chunks, decoded),
            runs=runs,
        )

    def decode_s(self, codec: str, chunks, decoded_bytes):
        speed = self.codec(codec).decode_bytes_per_s
        return np.asarray(chunks, dtype=float) * self.chunk_overhead_s + np.asarray(decoded_bytes, dtype=float) / speed

    # -- persistence ------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        return write_text_whole(path, self.model_dump_json(indent=1))

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        path = Path(path)
        try:
            return cls.model_validate_json(path.read_text())
        except FileNotFoundError:
            raise NotEnoughMeasurements(f"no fitted model at {path}: run `nwb-cloud fit-model` first") from None
        except ValueError as error:
            raise RecommendError(f"{path} is not a cost model: {str(error).splitlines()[0]}") from None


def traffic(params: MethodParams, chunks, compressed_bytes, runs):
    """(requests, wire bytes) a method makes for reads touching ``chunks`` chunks of ``compressed_bytes`` in
    ``runs`` runs of adjacent chunks."""
    requests = (
        params.requests_fixed
        + params.requests_per_chunk * chunks
        + params.requests_per_run * runs
        + params.requests_per_mb * compressed_bytes / MB
    )
    wire = (
        params.wire_fixed_bytes
        + params.wire_per_byte * compressed_bytes
        + params.wire_per_chunk_bytes * chunks
        + params.wire_per_run_bytes * runs
    )
    return requests, wire


def price(params: MethodParams, network: Network, chunks, compressed_bytes, decode_s, runs) -> Cost:
    """The time of one read from its parts (the formula of the module docstring)."""
    requests, wire = traffic(params, chunks, compressed_bytes, runs)
    latency = network.latency_s * requests / params.parallelism
    transfer = wire / network.bandwidth(params.parallelism)
    decode = decode_s / params.decode_parallelism
    seconds = params.fixed_s + latency + transfer + decode
    return Cost(
        seconds=seconds,
        fixed_s=params.fixed_s,
        latency_s=latency,
        transfer_s=transfer,
        decode_s=decode,
        requests=requests,
        wire_bytes=wire,
        compressed_bytes=compressed_bytes,
    )


def prior_model() -> CostModel:
    """The model before any measurement: a generic reader, codecs to be measured on a data sample."""
    return CostModel(methods={ANY: MethodParams()})
