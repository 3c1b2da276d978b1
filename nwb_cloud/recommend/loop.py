"""The closed loop: recommend a layout, rewrite the study file into it, upload it, and measure it beside others.

For each case (:mod:`~nwb_cloud.recommend.cases`: a data shape and dtype, a workload mix and a network
profile), :class:`LoopStep` (a run step of :func:`nwb_cloud.suite.prepare.prepare_run`, so the loop is one
more set of blocks of the run's grid):

1. records the cases and the time in the run's plan (``data_dir/loop/plan-*.json``, then the run info)
   *before* it fits the model, so the held-out cases are chosen before the fit;
2. fits the model to the layout study's results (the loop's own cells are never fitted: see
   :func:`nwb_cloud.recommend.measurements.from_cells`), and checks that no held-out case's data shape was
   among the fitted layouts;
3. writes the case's data in NeuroConv's default layout (the study file), recommends a layout for it
   (:func:`~nwb_cloud.recommend.recommend`, for a typical reader and for each reader of the study with its
   own fitted terms, codec ratios measured on the file's data), and rewrites the file into each
   (:func:`~nwb_cloud.recommend.rewrite`: verified object by object);
4. writes the layouts around the recommendation (``ROLES``): the chunk shape at twice and half the time
   extent, the model's best other geometry, the best other codec, the recommended layout in paged HDF5
   (read with each reader's HDF5 page buffer) and in Zarr (read by hdmf-zarr); at 5x length, the
   recommendation made at 1x in place of the paged and Zarr variants (disk: these files are ~1.4 GB each);
5. uploads them all and adds the blocks that measure every read of the mix with every reader of the study
   (:data:`LOOP_METHODS`) under the case's profile.

The verdicts, once the run measured them, are :func:`nwb_cloud.recommend.loop_check.loop_groups`.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from nwb_cloud.access import METHODS
from nwb_cloud.access.base import PAGED as PAGED_VARIANT
from nwb_cloud.datasets.catalog import publish
from nwb_cloud.datasets.layouts import PAGE_SIZE, Layout
from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.writer import Written, asset_filename, raw_path, series_bytes, write_recording
from nwb_cloud.files import write_text_whole
from nwb_cloud.recommend.candidates import chunk_candidates
from nwb_cloud.recommend.cases import IN_SAMPLE, LENGTH, LOOP_PREFIX, LoopCase, get_cases
from nwb_cloud.recommend.codecs import CODECS, HDF5, ZARR, neuroconv_compressors, writable
from nwb_cloud.recommend.errors import NotEnoughMeasurements, RecommendError
from nwb_cloud.recommend.model import CostModel
from nwb_cloud.recommend.recommendation import WRITE_SLOWDOWN_LIMIT, Recommendation, default_model, recommend
from nwb_cloud.recommend.rewriting import RewriteReport, rewrite
from nwb_cloud.suite.state import Block, Grid
from nwb_cloud.workloads import WORKLOADS

LOOP_METHODS = ["fsspec", "remfile", "nwb-index"]  # the layout study's readers
ZARR_READER = "hdmf-zarr"
KEY_PREFIX = "loop/"  # the loop's objects in the store, apart from the study's (and removed together)
LOOP_REPEAT = 3  # cold samples per cell: the verdict compares layouts within 1.2x of each other
LAYOUTS_AT_1X, LAYOUTS_AT_LENGTH = 7, 6
RECOMMENDED, DEFAULT = "recommended", "neuroconv-default"
PAGED, ZARR_ROLE, AT_1X = "paged", "zarr", "recommended-at-1x"
# The neighbours of the recommendation, in the order they are taken until a group has its layouts.
NEIGHBOURS = ("time-x2", "time-half", "other-shape", "other-codec", "time-x4", "time-quarter")


def loop_grid() -> Grid:
    """The grid of a loop-only run: no block of its own (:class:`LoopStep` adds the loop's), every read workload,
    :data:`LOOP_REPEAT` cold samples per cell."""
    reads = [name for name, workload in WORKLOADS.items() if workload.select is not None]
    return Grid(workloads=reads, methods=[], layouts=[], profiles=[], repeat=LOOP_REPEAT, blocks=[])


def run_size(size: str) -> str:
    """The size a loop-only run records: its data's size, named as the loop's, so that its cells are another
    experiment than the study's at that size (tables and the fit keep them apart)."""
    return f"{LOOP_PREFIX}{size}"


def paged_reader(method: str) -> str:
    """The reader that measures ``method`` on a paged file: its page-buffer variant where there is one."""
    variants = [name for name, row in METHODS.items() if row.variant_of == method and row.varies == PAGED_VARIANT]
    return variants[0] if variants else method


def layout_name(case: str, role: str) -> str:
    return f"{LOOP_PREFIX}{case}-{role}"


@dataclass
class Candidate:
    role: str
    chunk_shape: tuple[int, ...]
    codec: str
    backend: str = HDF5
    page_size: int | None = None

    @property
    def identity(self) -> tuple:
        return (self.chunk_shape, self.codec, self.backend, self.page_size)


@dataclass
class LoopStep:
    """The closed loop as a run step (``prepare_run(..., extend=LoopStep(...))``; see the module docstring)."""

    store: object
    data_dir: Path
    size: str
    seed: int = 0
    cases: list[LoopCase] = field(default_factory=get_cases)
    results_dir: Path | None = None  # the study's results the model is fitted to (None: the shipped model)
    model: CostModel | None = None  # a model to use as it is (tests)
    methods: list[str] = field(default_factory=lambda: list(LOOP_METHODS))

    @property
    def directory(self) -> Path:
        return Path(self.data_dir) / "loop"

    def __call__(self, catalog, grid, log=print) -> dict:
        self.directory.mkdir(parents=True, exist_ok=True)
        record = {
            "planned_at": _now(),
            "size": self.size,
            "cases": [case.to_dict(self.size) for case in self.cases],
            "methods": list(self.methods),
            "readers": {"paged": {m: paged_reader(m) for m in self.methods}, "zarr": ZARR_READER},
        }
        plan = write_text_whole(self.directory / f"plan-{record['planned_at'].replace(':', '')}.json",
                                json.dumps(record, indent=1))  # fmt: skip
        log(f"closed loop: {len(self.cases)} cases planned ({plan}), before the model is fitted")
        model, record["model"] = self._model(log)
        record["groups"] = {}
        recommended_at_1x: dict[str, Candidate] = {}
        for case in self.cases:
            log(f"closed loop: {case.name} ({case.kind}): {case.why}")
            entry = self._case(case, model, catalog, grid, recommended_at_1x, log)
            record["groups"][case.name] = entry
        return {"loop": record}

    # -- the model ---------------------------------------------------------------------------------------------
    def _model(self, log) -> tuple[CostModel, dict]:
        if self.model is not None:
            model, how = self.model, "given"
        else:
            model, how = self._fitted(log)
        text = model.model_dump_json()
        return model, {
            "source": model.source,
            "how": how,
            "fitted_at": _now(),
            "sha256": hashlib.sha256(text.encode()).hexdigest()[:16],
            "cells": model.quality.get("cells"),
        }

    def _fitted(self, log) -> tuple[CostModel, str]:
        from nwb_cloud.recommend.fit import fit
        from nwb_cloud.recommend.measurements import load

        if self.results_dir is None or not Path(self.results_dir).exists():
            return default_model(), "the shipped model (no results folder to fit)"
        try:
            measurements = load(self.results_dir)
        except NotEnoughMeasurements as error:
            log(f"closed loop: the shipped model ({error})")
            return default_model(), f"the shipped model ({error})"
        fitted = {(tuple(r.shape), str(r.dtype)) for r in measurements.layouts.itertuples()}
        for case in self.cases:
            if case.kind != IN_SAMPLE and (tuple(case.shape_at(self.size)), case.dtype) in fitted:
                raise RecommendError(f"loop case {case.name} is not held out: the fit measured data of its shape "
                                     f"{case.shape_at(self.size)} {case.dtype}")  # fmt: skip
        log(f"closed loop: fitting the model to {measurements.source}")
        return fit(measurements).model, f"fitted to {measurements.source} after the cases were planned"

    # -- one case ----------------------------------------------------------------------------------------------
    def _case(self, case: LoopCase, model, catalog, grid, recommended_at_1x: dict, log) -> dict:
        modality, spec = get_modality(case.modality), case.spec(self.size)
        default = self._write(case, Candidate(DEFAULT, (), "gzip-4"), spec)  # NeuroConv's own chunking
        source = (str(default.path), modality.series_path)
        rec = recommend(source, case.mix, case.profile, model=model)
        log(rec.summary())
        recommended = Candidate(RECOMMENDED, tuple(rec.chunk_shape), rec.codec)
        chosen = [Candidate(DEFAULT, tuple(default.chunk_shape), "gzip-4"), recommended]
        for_reader, own = self._per_reader(source, case, model, recommended, log)
        chosen += own
        if case.kind == LENGTH:
            earlier = recommended_at_1x.get(case.longer_of)
            if earlier is not None:
                chosen.append(Candidate(AT_1X, _clip(earlier.chunk_shape, rec.dataset.shape), earlier.codec))
        else:
            chosen.append(Candidate(PAGED, recommended.chunk_shape, rec.codec, page_size=PAGE_SIZE))
            zarr_codec = rec.codec if writable(rec.codec, ZARR) else "gzip-4"
            chosen.append(Candidate(ZARR_ROLE, recommended.chunk_shape, zarr_codec, backend=ZARR))
        recommended_at_1x[case.name] = recommended
        wanted = (LAYOUTS_AT_LENGTH if case.kind == LENGTH else LAYOUTS_AT_1X) + len(own)
        for candidate in self._neighbours(source, case, rec, model):
            if len(chosen) >= wanted:
                break
            if candidate.identity not in {c.identity for c in chosen}:
                chosen.append(candidate)
        chosen = _unique(chosen)
        if len(chosen) < 6:
            raise RecommendError(f"loop case {case.name}: only {len(chosen)} distinct layouts around the "
                                 "recommendation (a group compares at least 6)")  # fmt: skip

        layouts, written = {}, {DEFAULT: default}
        rewritten = self._rewrite(case, default, recommended, spec)
        written[RECOMMENDED] = rewritten[0]
        for candidate in own:  # each reader's own recommendation, rewritten (verified) as the typical one is
            written[candidate.role] = self._rewrite(case, default, candidate, spec)[0]
        for candidate in chosen:
            if candidate.role not in written:
                log(f"  writing {candidate.role}: chunks {candidate.chunk_shape} {candidate.codec} {candidate.backend}")
                written[candidate.role] = self._write(case, candidate, spec)
        _remove_raw(modality, self.size, self.seed, self.directory, spec)  # regenerable; the files are written
        for candidate in chosen:
            name = layout_name(case.name, candidate.role)
            asset = publish(self.store, written[candidate.role], case.modality, _layout(case, candidate), self.size,
                            key_prefix=KEY_PREFIX)  # fmt: skip
            catalog.add(asset)
            layouts[candidate.role] = {
                "layout": name,
                "chunk_shape": list(asset.chunk_shape or candidate.chunk_shape),
                "codec": candidate.codec,
                "backend": candidate.backend,
                "page_size": candidate.page_size,
                "predicted_s": _predicted(source, case, candidate, model),
                "predicted_s_by_reader": {m: _predicted(source, case, candidate, model, m) for m in self.methods},
                "write_s": asset.write_seconds,
                "write_cpu_s": asset.write_cpu_seconds,
                "compression_ratio": asset.compression_ratio,
                "size_bytes": asset.size_bytes,
            }
        self._add_blocks(case, chosen, grid)
        return {
            **case.to_dict(self.size),
            "recommendation": _recommendation_record(rec),
            "for_reader": for_reader,
            "rewrite": rewritten[1].model_dump(mode="json", include={"verified", "seconds", "write_seconds",
                                                                    "write_cpu_seconds", "size_before", "size_after"}),
            "layouts": layouts,
            "flags": _measured_flags(rec, layouts),
        }  # fmt: skip

    def _per_reader(self, source, case: LoopCase, model, typical: Candidate, log) -> tuple[dict, list[Candidate]]:
        """Each reader's own recommendation (priced with the reader's fitted terms), and the layouts they add.

        A reader's group is judged on its own recommendation: the typical reader's prices fsspec's and
        remfile's requests at a fraction of what they cost (the held-out run of 2026-12-04), so the layout it
        hands them is not the one ``recommend(method=...)`` hands them. Where the model knows no terms for a
        reader, its group keeps the typical reader's recommendation (and says so)."""
        by_identity, own, record = {typical.identity: RECOMMENDED}, [], {}
        for method in self.methods:
            try:
                mine = recommend(source, case.mix, case.profile, method=method, model=model, write_cost=False)
            except RecommendError as error:
                record[method] = {"role": RECOMMENDED, "note": f"the typical reader's recommendation ({error})"}
                continue
            candidate = Candidate(f"{RECOMMENDED}-{method}", tuple(mine.chunk_shape), mine.codec)
            if candidate.identity not in by_identity:
                by_identity[candidate.identity] = candidate.role
                own.append(candidate)
            role = by_identity[candidate.identity]
            record[method] = {"role": role, **_recommendation_record(mine, brief=True)}
            if role != RECOMMENDED:
                log(f"  for {method}: chunks {candidate.chunk_shape} {candidate.codec} ({role})")
        return record, own

    def _neighbours(self, source, case: LoopCase, rec: Recommendation, model) -> list[Candidate]:
        """The layouts around ``rec``, in :data:`NEIGHBOURS` order (the model's best other geometry and codec
        come from pricing the candidates it would otherwise pick among)."""
        shape, chunks = rec.dataset.shape, tuple(rec.chunk_shape)
        scaled = {"time-x2": 2, "time-half": 0.5, "time-x4": 4, "time-quarter": 0.25}
        out = []
        for role in NEIGHBOURS:
            if role in scaled:
                time = max(1, min(shape[0], int(chunks[0] * scaled[role])))
                if time != chunks[0]:
                    out.append(Candidate(role, (time, *chunks[1:]), rec.codec))
            elif role == "other-shape":
                others = [c for c in chunk_candidates(shape, rec.dataset.itemsize) if c[1:] != chunks[1:]]
                if others:
                    best = recommend(source, case.mix, case.profile, model=model, candidates=others,
                                     codecs=[rec.codec], write_cost=False)  # fmt: skip
                    out.append(Candidate(role, tuple(best.chunk_shape), rec.codec))
            else:
                codecs = [c for c in CODECS if c != rec.codec and writable(c, HDF5)]
                best = recommend(source, case.mix, case.profile, model=model, candidates=[chunks], codecs=codecs,
                                 write_cost=False)  # fmt: skip
                out.append(Candidate(role, chunks, best.codec))
        return out

    def _write(self, case: LoopCase, candidate: Candidate, spec) -> Written:
        return write_recording(get_modality(case.modality), _layout(case, candidate), self.size, self.seed,
                               self.directory, spec=spec)  # fmt: skip

    def _rewrite(self, case: LoopCase, default: Written, recommended: Candidate, spec) -> tuple[Written, RewriteReport]:
        """The study file rewritten into a recommended layout (verified), reused when a run made it before."""
        modality = get_modality(case.modality)
        layout = _layout(case, recommended)
        path = self.directory / asset_filename(modality, self.size, self.seed, layout, spec).replace(
            ".nwb", ".rewritten.nwb"
        )
        facts = path.with_name(path.name + ".json")
        if path.exists() and facts.exists():
            report = RewriteReport.model_validate_json(facts.read_text())
        else:
            report = rewrite(default.path, path, modality.series_path, chunk_shape=recommended.chunk_shape,
                             codec=recommended.codec, overwrite=True)  # fmt: skip
            write_text_whole(facts, report.model_dump_json(indent=1))
        written = Written(path=path, chunk_shape=tuple(report.chunk_shape), seconds=report.seconds, cached=False,
                          write_seconds=report.write_seconds, write_cpu_seconds=report.write_cpu_seconds,
                          **series_bytes(path, modality.series_path))  # fmt: skip
        return written, report

    def _add_blocks(self, case: LoopCase, chosen: list[Candidate], grid) -> None:
        workloads, profiles = list(case.mix), [case.profile]
        facts = {layout_name(case.name, c.role): (case.modality, c.backend, bool(c.page_size)) for c in chosen}
        plain = [layout_name(case.name, c.role) for c in chosen if c.backend == HDF5 and not c.page_size]
        grid.add_block(Block(f"loop {case.name}", workloads, list(self.methods), plain, profiles), facts)
        paged = [layout_name(case.name, c.role) for c in chosen if c.page_size]
        if paged:
            readers = list(dict.fromkeys(paged_reader(m) for m in self.methods))
            grid.add_block(Block(f"loop {case.name} paged", workloads, readers, paged, profiles), facts)
        zarr = [layout_name(case.name, c.role) for c in chosen if c.backend == ZARR]
        if zarr:
            grid.add_block(Block(f"loop {case.name} zarr", workloads, [ZARR_READER], zarr, profiles), facts)


def _layout(case: LoopCase, candidate: Candidate) -> Layout:
    """The candidate as a layout row (an empty chunk shape: NeuroConv's default chunking)."""
    dtype = case.dtype
    compressors, options = neuroconv_compressors(candidate.codec, candidate.backend, dtype)
    return Layout(
        name=layout_name(case.name, candidate.role),
        description=f"closed loop {case.name}: {candidate.role}",
        chunks={case.modality: candidate.chunk_shape} if candidate.chunk_shape else {},
        compressors=tuple(compressors or ()),
        compressor_options=tuple(options) if options else None,
        backend=candidate.backend,
        page_size=candidate.page_size,
        modalities=(case.modality,),
    )


def _predicted(source, case: LoopCase, candidate: Candidate, model, method: str | None = None) -> float | None:
    """The model's weighted time of the mix on the candidate for ``method`` (None: a typical reader; paged HDF5
    is not priced; a Zarr layout is read by hdmf-zarr whatever the group's reader, priced as a typical reader's
    Zarr read)."""
    if candidate.page_size:
        return None
    if candidate.backend == ZARR:
        method = None
    try:
        priced = recommend(source, case.mix, case.profile, method=method, model=model,
                           candidates=[candidate.chunk_shape], codecs=[candidate.codec], backend=candidate.backend,
                           write_cost=False)  # fmt: skip
    except RecommendError:
        return None
    return priced.weighted_seconds


def _recommendation_record(rec: Recommendation, brief: bool = False) -> dict:
    facts = {
        "chunk_shape": list(rec.chunk_shape),
        "codec": rec.codec,
        "chunk_bytes": rec.chunk_bytes,
        "weighted_seconds": rec.weighted_seconds,
        "speedup_vs_default": rec.speedup_vs_default,
    }
    if brief:
        return facts
    return {
        **facts,
        "default": {
            "chunk_shape": list(rec.default.chunk_shape),
            "codec": rec.default.codec,
            "weighted_seconds": rec.default.weighted_seconds,
        },  # fmt: skip
        "cost": rec.cost.model_dump(mode="json") if rec.cost else None,
        "notes": list(rec.notes),
    }


def _measured_flags(rec: Recommendation, layouts: dict) -> list[str]:
    """The recommendation's flags, and the measured write cost of its file against the default's."""
    flags = list(rec.cost.flags) if rec.cost else []
    mine, default = layouts[RECOMMENDED], layouts[DEFAULT]
    if mine["write_cpu_s"] and default["write_cpu_s"]:
        slowdown = mine["write_cpu_s"] / default["write_cpu_s"]
        if slowdown > WRITE_SLOWDOWN_LIMIT:
            flags.append(f"writing the recommended file took {mine['write_cpu_s']:.1f} CPU-s, {slowdown:.1f}x "
                         f"NeuroConv's default ({default['write_cpu_s']:.1f} CPU-s), for a compression ratio of "
                         f"{mine['compression_ratio']:.2f} (default {default['compression_ratio']:.2f})")  # fmt: skip
    return flags


def _clip(chunks, shape) -> tuple[int, ...]:
    return tuple(min(int(c), int(s)) for c, s in zip(chunks, shape, strict=True))


def _unique(candidates: list[Candidate]) -> list[Candidate]:
    seen, out = set(), []
    for candidate in candidates:
        if candidate.identity not in seen:
            seen.add(candidate.identity)
            out.append(candidate)
    return out


def _remove_raw(modality, size: str, seed: int, directory: Path, spec) -> None:
    path = raw_path(modality, size, seed, directory, spec)
    if path.exists():
        path.unlink()


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def estimate_bytes(cases: list[LoopCase], size: str) -> int:
    """Raw bytes of the cases' data: the files the loop writes are ~7 (6 at length) compressed copies of each."""
    import numpy as np

    return sum(math.prod(c.shape_at(size)) * np.dtype(c.dtype).itemsize for c in cases)
