"""``recommend(dataset, workloads, profile)``: the chunk shape and codec that make a workload mix cheapest.

Every candidate chunk shape (:mod:`~nwb_cloud.recommend.candidates`, plus NeuroConv's default) x codec is
priced for every workload of the mix by the cost model, and the weighted mean time decides. Near-ties
(within 2 %) go to the candidate with the fewest chunks in the dataset (a smaller chunk index to fetch on
open), then to the better compression. The cost side is stated beside the choice (:class:`CostSide`): the
write buffer and the memory a read holds against a stated limit, and the write CPU time and compression
ratio measured on a sample of the data against NeuroConv's default, flagged when far above it. The result
is a pydantic model like NeuroConv's configuration
models, and plugs into them: :meth:`Recommendation.apply` sets the series' dataset configuration in a
NeuroConv backend configuration, so ``configure_backend`` writes the recommended layout.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from nwb_cloud.cloud.profiles import Profile
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.recommend.calibrate import measure_codec, write_cpu_per_byte
from nwb_cloud.recommend.candidates import chunk_candidates
from nwb_cloud.recommend.codecs import CODECS, HDF5, ZARR, codec_name, get_codec, neuroconv_compressors, writable
from nwb_cloud.recommend.configure import buffer_shape, dataset_configuration, find_location
from nwb_cloud.recommend.dataset import DatasetSpec, describe
from nwb_cloud.recommend.errors import BadChunkShape, RecommendError, UnknownCodec, UnknownWorkloadName
from nwb_cloud.recommend.fitted_range import outside_fit
from nwb_cloud.recommend.geometry import check_chunk_shape, chunk_count, geometry
from nwb_cloud.recommend.model import PLAIN, ZARR_VARIANT, CodecParams, CostModel, params_key, prior_model
from nwb_cloud.workloads import WORKLOADS

MODEL_PATH = Path(__file__).with_name("model.json")  # written by `nwb-cloud fit-model` from the study's results
TIE = 0.02
SAMPLE_BYTES = 8_000_000
MEMORY_LIMIT_BYTES = 1_000_000_000  # a write buffer or a read holding more than this is flagged
WRITE_SLOWDOWN_LIMIT = 3.0  # a layout costing more than this times NeuroConv's default's write CPU is flagged


class WorkloadCost(BaseModel):
    """The expected cost of one workload on the recommended layout, and on NeuroConv's default."""

    workload: str
    weight: float
    seconds: float
    chunks: int = Field(description="chunks the read touches")
    requests: float
    wire_bytes: float
    latency_s: float
    transfer_s: float
    decode_s: float
    default_seconds: float
    speedup_vs_default: float = Field(description="default seconds / recommended seconds (above 1: faster)")


class LayoutChoice(BaseModel):
    chunk_shape: tuple[int, ...]
    codec: str
    chunk_bytes: int = Field(description="uncompressed bytes of one chunk")
    compression_ratio: float
    weighted_seconds: float


class CostSide(BaseModel):
    """What the recommended layout costs beside its reads, and the flags a lab should see before adopting it."""

    write_buffer_bytes: int = Field(description="NeuroConv's write buffer for this chunk shape (whole chunks)")
    read_memory_bytes: int = Field(
        description="the most one read of the mix holds: its selection, the touched chunks as fetched, one decoded"
    )
    memory_limit_bytes: int
    write_cpu_s_per_gb: float | None = Field(
        None, description="CPU seconds to write 1 GB of the data in this layout, measured on a sample"
    )
    default_write_cpu_s_per_gb: float | None = Field(None, description="the same for NeuroConv's default layout")
    write_slowdown: float | None = Field(None, description="write CPU over NeuroConv's default's")
    compression_ratio: float
    default_compression_ratio: float
    flags: list[str] = Field(default_factory=list)


class Recommendation(BaseModel):
    dataset: DatasetSpec
    workloads: dict[str, float] = Field(description="workload -> weight (normalised to sum to 1)")
    profile: str
    method: str | None = Field(description="read method the costs are for; None: a typical reader")
    backend: str
    chunk_shape: tuple[int, ...]
    codec: str
    compressors: list | None
    compressor_options: list | None
    chunk_bytes: int
    compression_ratio: float
    expected_size_bytes: int
    weighted_seconds: float = Field(description="expected seconds per read of the mix (weighted mean)")
    costs: list[WorkloadCost]
    default: LayoutChoice = Field(description="NeuroConv's default layout for this dataset, priced the same way")
    speedup_vs_default: float
    best_per_codec: list[LayoutChoice] = Field(description="the best chunk shape for each codec considered")
    candidates_priced: int
    codec_sources: dict[str, str] = Field(
        default_factory=dict, description="where each codec's speed and ratio come from"
    )
    model_source: str
    model_quality: dict = Field(default_factory=dict)
    notes: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(
        default_factory=list, description="where the request lies outside what the model was fitted on, by how much"
    )
    cost: CostSide | None = Field(None, description="write and memory cost, flagged against the limits")

    def to_dataset_io_configuration(self, configuration):
        """NeuroConv's ``configuration`` of this dataset (HDF5 or Zarr) with the recommended layout (a copy)."""
        if tuple(configuration.full_shape) != tuple(self.dataset.shape):
            raise RecommendError(
                f"{configuration.location_in_file} has shape {tuple(configuration.full_shape)}, the recommendation is "
                f"for shape {tuple(self.dataset.shape)}"
            )
        return dataset_configuration(configuration, self.chunk_shape, self.codec)

    def apply(self, backend_configuration, location: str | None = None):
        """Set the recommended layout in NeuroConv's ``backend_configuration`` (in place; also returned).

        ``location`` is the dataset's key (``acquisition/TwoPhotonSeries/data``); by default the series the
        recommendation was made for, or the only dataset of its shape and dtype.
        """
        key = find_location(backend_configuration, location or self.dataset.dataset_path, self.dataset.shape,
                            self.dataset.dtype)  # fmt: skip
        configurations = backend_configuration.dataset_configurations
        configurations[key] = self.to_dataset_io_configuration(configurations[key])
        return backend_configuration

    def summary(self) -> str:
        """A few lines a lab can read."""
        lines = [
            f"{self.dataset.dtype}{list(self.dataset.shape)} for {_mix(self.workloads)} under {self.profile}"
            f" ({self.method or 'a typical reader'}):",
            f"  chunks {self.chunk_shape} ({self.chunk_bytes / 1e6:.2f} MB each), codec {self.codec}"
            f" (ratio ~{self.compression_ratio:.2f}): {self.weighted_seconds:.3g} s per read, "
            f"{self.speedup_vs_default:.2f}x NeuroConv's default {self.default.chunk_shape} {self.default.codec}",
        ]
        lines += [
            f"  {c.workload}: {c.seconds:.3g} s (default {c.default_seconds:.3g} s, {c.speedup_vs_default:.2f}x)"
            for c in self.costs
        ]
        if self.cost is not None:
            cost = self.cost
            written = "write cost not measured (no data sample)"
            if cost.write_cpu_s_per_gb is not None:
                written = (f"writing {cost.write_cpu_s_per_gb:.3g} CPU-s/GB "
                           f"(default {cost.default_write_cpu_s_per_gb:.3g})")  # fmt: skip
            lines.append(
                f"  cost: {written}, write buffer {cost.write_buffer_bytes / 1e6:.0f} MB, a read holds up to "
                f"{cost.read_memory_bytes / 1e6:.0f} MB (limit {cost.memory_limit_bytes / 1e6:.0f} MB)"
            )
            lines += [f"  FLAG: {flag}" for flag in cost.flags]
        return "\n".join(lines)


def _mix(weights: dict[str, float]) -> str:
    return " + ".join(f"{w:g} {name}" if len(weights) > 1 else name for name, w in weights.items())


def default_model() -> CostModel:
    """The model fitted to the committed study (``model.json``), else the prior (codecs measured on a sample)."""
    return CostModel.load(MODEL_PATH) if MODEL_PATH.exists() else prior_model()


def parse_workloads(workloads, modality: str | None = None) -> tuple[dict[str, float], str]:
    """``{name: weight}`` normalised to sum to 1 from a dict, names, or ``"name=weight"`` strings; and the modality."""
    if isinstance(workloads, str):
        workloads = [workloads]
    items: list[tuple[str, float]] = []
    if isinstance(workloads, dict):
        items = [(str(k), v) for k, v in workloads.items()]
    else:
        for entry in workloads or []:
            name, _, weight = str(entry).partition("=")
            items.append((name.strip(), weight.strip() or 1.0))
    reads = sorted(n for n, w in WORKLOADS.items() if w.select is not None)
    if not items:
        raise UnknownWorkloadName(f"no workload given; known read workloads: {', '.join(reads)}")
    weights: dict[str, float] = {}
    for name, weight in items:
        if name not in WORKLOADS:
            raise UnknownWorkloadName(f"unknown workload {name!r}; known read workloads: {', '.join(reads)}")
        if WORKLOADS[name].select is None:
            raise UnknownWorkloadName(
                f"workload {name!r} opens the file and reads metadata: chunk shape and codec do not change it; "
                f"mix read workloads only ({', '.join(reads)})"
            )
        try:
            weight = float(weight)
        except ValueError:
            raise UnknownWorkloadName(f"workload {name!r}: weight {weight!r} is not a number") from None
        if not (math.isfinite(weight) and weight > 0):
            raise UnknownWorkloadName(f"workload {name!r}: weight {weight} must be a positive number")
        weights[name] = weights.get(name, 0.0) + weight
    modalities = {WORKLOADS[n].modality for n in weights}
    if len(modalities) > 1:
        raise UnknownWorkloadName(f"the workloads read different modalities ({', '.join(sorted(modalities))})")
    (found,) = modalities
    if modality and modality != found:
        raise UnknownWorkloadName(f"the dataset is {modality} data, the workloads read {found} data")
    total = sum(weights.values())
    return {n: w / total for n, w in weights.items()}, found


def neuroconv_default_chunks(spec: DatasetSpec) -> tuple[int, ...]:
    """NeuroConv's default chunk shape for this dataset (its modality's rule, else its generic ~10 MB rule)."""
    if spec.modality:
        try:
            return tuple(int(c) for c in MODALITIES[spec.modality].neuroconv_chunks(spec.shape, spec.dtype))
        except (ValueError, TypeError, IndexError):
            pass  # a shape the modality's rule cannot take: the generic rule below
    from neuroconv.tools.hdmf import SliceableDataChunkIterator

    chunks = SliceableDataChunkIterator.estimate_default_chunk_shape(10.0, tuple(spec.shape), np.dtype(spec.dtype))
    return tuple(min(int(c), s) for c, s in zip(chunks, spec.shape, strict=True))


def recommend(
    dataset,
    workloads,
    profile: str | Profile,
    method: str | None = None,
    candidates=None,
    codecs=None,
    backend: str = HDF5,
    model: CostModel | None = None,
    memory_limit_bytes: int = MEMORY_LIMIT_BYTES,
    write_cost: bool = True,
) -> Recommendation:
    """The cheapest layout for ``workloads`` (weights over workload names) read under ``profile``.

    ``dataset`` is ``(shape, dtype[, modality])``, ``(nwb_file, series_path)`` or a :class:`DatasetSpec`;
    ``candidates`` restricts the chunk shapes, ``codecs`` the codec names; ``model`` defaults to the fitted
    model shipped with the package (:func:`default_model`). ``write_cost`` measures the write CPU time of the
    pick and of NeuroConv's default on a sample of the data (a second or two).
    """
    if not (isinstance(memory_limit_bytes, int | float) and memory_limit_bytes > 0):
        raise RecommendError(f"the memory limit must be a positive number of bytes, not {memory_limit_bytes!r}")
    spec = describe(dataset)
    weights, modality = parse_workloads(workloads, spec.modality)
    spec = spec.model_copy(update={"modality": modality})
    for workload in weights:
        try:
            geometry(spec.shape, spec.shape, spec.itemsize, WORKLOADS[workload].select)
        except BadChunkShape as error:
            raise RecommendError(f"workload {workload!r} cannot read this dataset: {error}") from None
    if backend not in (HDF5, ZARR):
        raise RecommendError(f"unknown backend {backend!r}; known: {HDF5}, {ZARR}")
    model = model or default_model()
    network = model.network(profile)
    model.method(method)  # an unknown method fails here, before any work
    variant, notes = (ZARR_VARIANT if backend == ZARR else PLAIN), []
    if params_key(method, variant) not in model.methods:
        notes.append(f"no {variant} measurements of {method or 'any method'}: priced with its HDF5 parameters")
        variant = PLAIN
    default_chunks = neuroconv_default_chunks(spec)
    default_codec = codec_name(["gzip"], None, backend)
    names = list(dict.fromkeys(codecs)) if codecs else [n for n in CODECS if writable(n, backend)]
    for name in names:
        if not writable(get_codec(name), backend):
            raise UnknownCodec(f"codec {name!r} cannot be written to {backend}")
    table, codec_notes = codec_parameters(model, spec, [*names, default_codec], default_chunks)
    notes += codec_notes
    names = [n for n in names if n in table]
    if not names:
        raise RecommendError("no codec can be priced: " + "; ".join(notes))
    priced = model.model_copy(update={"codecs": table})

    shapes = (
        [check_chunk_shape(spec.shape, c) for c in candidates]
        if candidates is not None
        else chunk_candidates(spec.shape, spec.itemsize, include=[default_chunks])
    )
    if not shapes:
        raise RecommendError("no candidate chunk shape to price")
    touched = {w: [geometry(spec.shape, s, spec.itemsize, WORKLOADS[w].select) for s in shapes] for w in weights}

    def price_all(codec: str, indices) -> dict:
        per_workload = {}
        for workload in weights:
            geos = [touched[workload][i] for i in indices]
            per_workload[workload] = priced.predict(
                method,
                codec,
                network,
                [g.chunks for g in geos],
                [g.chunk_bytes for g in geos],
                modality=modality,
                variant=variant,
                runs=[g.runs for g in geos],
            )
        weighted = sum(weights[w] * np.asarray(c.seconds, dtype=float) for w, c in per_workload.items())
        return {"per_workload": per_workload, "weighted": np.atleast_1d(weighted)}

    everything = list(range(len(shapes)))
    totals = {codec: price_all(codec, everything)["weighted"] for codec in names}

    def pick(scope: dict) -> tuple[str, int]:
        """The cheapest (codec, shape) of ``scope``; within TIE of it, the fewest chunks, then the best ratio."""
        least = min(float(t.min()) for t in scope.values())
        near = [(c, int(i)) for c, t in scope.items() for i in np.flatnonzero(t <= least * (1 + TIE))]
        return min(near, key=lambda ci: (chunk_count(spec.shape, shapes[ci[1]]), -table[ci[0]].ratio_for(modality)))

    codec, index = pick(totals)
    chosen = price_all(codec, [index])
    default = _price_one(priced, method, network, spec, default_chunks, default_codec, weights, variant)
    costs = []
    for workload, weight in weights.items():
        cost = chosen["per_workload"][workload]
        default_s = default["per_workload"][workload]
        seconds = float(np.atleast_1d(cost.seconds)[0])
        costs.append(
            WorkloadCost(
                workload=workload,
                weight=weight,
                seconds=seconds,
                chunks=touched[workload][index].chunks,
                requests=_first(cost.requests),
                wire_bytes=_first(cost.wire_bytes),
                latency_s=_first(cost.latency_s),
                transfer_s=_first(cost.transfer_s),
                decode_s=_first(cost.decode_s),
                default_seconds=default_s,
                speedup_vs_default=default_s / seconds if seconds > 0 else math.inf,
            )
        )
    weighted = float(chosen["weighted"][0])
    ratio = table[codec].ratio_for(modality)
    compressors, options = neuroconv_compressors(codec, backend, spec.dtype)
    per_codec = []
    for name in names:
        _, i = pick({name: totals[name]})
        per_codec.append(_choice(shapes[i], name, spec, table, float(totals[name][i])))
    return Recommendation(
        dataset=spec,
        workloads=weights,
        profile=network.name,
        method=method,
        backend=backend,
        chunk_shape=shapes[index],
        codec=codec,
        compressors=compressors,
        compressor_options=options,
        chunk_bytes=math.prod(shapes[index]) * spec.itemsize,
        compression_ratio=ratio,
        expected_size_bytes=int(spec.nbytes / ratio),
        weighted_seconds=weighted,
        costs=costs,
        default=_choice(default_chunks, default_codec, spec, table, default["weighted"]),
        speedup_vs_default=default["weighted"] / weighted if weighted > 0 else math.inf,
        best_per_codec=sorted(per_codec, key=lambda c: c.weighted_seconds),
        candidates_priced=len(shapes) * len(names),
        codec_sources={name: table[name].source for name in table},
        model_source=model.source,
        model_quality=model.quality,
        notes=notes,
        warnings=outside_fit(model.fitted_range, spec.shape, spec.dtype, modality, list(weights), network.name),
        cost=cost_side(
            spec, weights, shapes[index], codec, default_chunks, default_codec, table, memory_limit_bytes, write_cost
        ),  # fmt: skip
    )


def cost_side(spec: DatasetSpec, weights, chunk_shape, codec: str, default_chunks, default_codec: str, table: dict,
              memory_limit_bytes: int, measure_writes: bool = True) -> CostSide:  # fmt: skip
    """The cost side of ``chunk_shape`` + ``codec`` for ``spec``, flagged against the limits (see :class:`CostSide`)."""
    ratio, default_ratio = table[codec].ratio_for(spec.modality), table[default_codec].ratio_for(spec.modality)
    write_buffer = math.prod(buffer_shape(spec.shape, chunk_shape, spec.itemsize)) * spec.itemsize
    read_memory = 0
    for workload in weights:
        g = geometry(spec.shape, chunk_shape, spec.itemsize, WORKLOADS[workload].select)
        read_memory = max(read_memory, int(g.selection_bytes + g.decoded_bytes / ratio + g.chunk_bytes))
    per_gb = default_per_gb = slowdown = None
    sample = spec.sample(SAMPLE_BYTES) if measure_writes else None
    if sample is not None:
        per_gb = 1e9 * write_cpu_per_byte(sample, codec, chunk_shape)
        default_per_gb = 1e9 * write_cpu_per_byte(sample, default_codec, default_chunks)
        slowdown = per_gb / default_per_gb if default_per_gb > 0 else None
    flags = []
    limit_mb = memory_limit_bytes / 1e6
    if write_buffer > memory_limit_bytes:
        flags.append(f"the write buffer (whole chunks) takes {write_buffer / 1e6:.0f} MB, above the {limit_mb:.0f} MB "
                     "limit: a conversion needs that much memory")  # fmt: skip
    if read_memory > memory_limit_bytes:
        flags.append(f"one read holds up to {read_memory / 1e6:.0f} MB, above the {limit_mb:.0f} MB limit")
    if slowdown is not None and slowdown > WRITE_SLOWDOWN_LIMIT:
        flags.append(f"writing costs {per_gb:.3g} CPU-s/GB, {slowdown:.1f}x NeuroConv's default "
                     f"({default_per_gb:.3g}), for a compression ratio of {ratio:.2f} "
                     f"(default {default_ratio:.2f})")  # fmt: skip
    return CostSide(write_buffer_bytes=write_buffer, read_memory_bytes=read_memory,
                    memory_limit_bytes=int(memory_limit_bytes), write_cpu_s_per_gb=per_gb,
                    default_write_cpu_s_per_gb=default_per_gb, write_slowdown=slowdown, compression_ratio=ratio,
                    default_compression_ratio=default_ratio, flags=flags)  # fmt: skip


def _first(value) -> float:
    return float(np.atleast_1d(value)[0])


def _choice(chunk_shape, codec: str, spec: DatasetSpec, table: dict, weighted: float) -> LayoutChoice:
    return LayoutChoice(
        chunk_shape=tuple(chunk_shape),
        codec=codec,
        chunk_bytes=math.prod(chunk_shape) * spec.itemsize,
        compression_ratio=table[codec].ratio_for(spec.modality),
        weighted_seconds=weighted,
    )


def _price_one(model: CostModel, method, network, spec: DatasetSpec, chunk_shape, codec: str, weights, variant) -> dict:
    per_workload = {}
    for workload in weights:
        g = geometry(spec.shape, chunk_shape, spec.itemsize, WORKLOADS[workload].select)
        cost = model.predict(
            method, codec, network, g.chunks, g.chunk_bytes, modality=spec.modality, variant=variant, runs=g.runs
        )
        per_workload[workload] = float(cost.seconds)
    return {"per_workload": per_workload, "weighted": sum(weights[w] * s for w, s in per_workload.items())}


def codec_parameters(
    model: CostModel, spec: DatasetSpec, names, chunk_shape
) -> tuple[dict[str, CodecParams], list[str]]:
    """Decode speed and ratio of each codec for this dataset: the fit's, the file's own data for the ratio.

    A file's series is sampled for every codec's ratio (its data, not the study's); a codec the fit does not
    cover is measured on the sample (the file's data, or the modality's generated signal). A codec with
    neither is left out, with a note.
    """
    table, notes, sample = {}, [], None
    measured = {}

    def on_sample(name: str) -> CodecParams | None:
        nonlocal sample
        if name not in measured:
            if sample is None:
                sample = spec.sample(SAMPLE_BYTES)
            measured[name] = None if sample is None else measure_codec(sample, name, chunk_shape, spec.modality)
        return measured[name]

    for name in dict.fromkeys(names):
        fitted = model.codecs.get(name)
        if spec.source_file:
            own = on_sample(name)
            speed = fitted.decode_bytes_per_s if fitted else own.decode_bytes_per_s
            source = (fitted.source if fitted else own.source) + "; ratio measured on the file's data"
            table[name] = CodecParams(decode_bytes_per_s=speed, ratio={spec.modality: own.ratio_for(spec.modality)},
                                      source=source)  # fmt: skip
        elif fitted is not None and spec.modality in fitted.ratio:
            table[name] = fitted
        elif (own := on_sample(name)) is not None:
            table[name] = own
        elif fitted is not None:
            table[name] = fitted
            notes.append(f"codec {name}: ratio of other modalities (no {spec.modality} measurement)")
        else:
            notes.append(f"codec {name}: not in the fitted model and no data sample to measure it on (give a modality)")
    return table, notes
