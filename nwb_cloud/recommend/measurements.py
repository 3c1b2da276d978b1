"""The measured matrix the model is fitted to: one row per timed read cell, with the geometry of what it read.

From the report's cell table (asv times and tracks) and the run info written beside it: each cell gets
the chunks its workload touched, their compressed and decoded bytes and the local decode time (the run's
``floors``, read from each file's own chunk index), the layout's codec and backend (the run's ``assets``,
else the layout registry) and the network of its profile as the run applied it. The run's ``codecs``
table (one chunk of each codec decoded on the run's machine) and the assets' compression ratios are kept
for the codec fit.

The cell table itself is read by :mod:`nwb_cloud.results`, the one reader of what bench runs wrote (the report
reads the same table).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.recommend.cases import LOOP_PREFIX
from nwb_cloud.recommend.codecs import HDF5, ZARR, codec_name
from nwb_cloud.recommend.errors import NotEnoughMeasurements
from nwb_cloud.recommend.geometry import geometry
from nwb_cloud.recommend.model import Network, variant_of
from nwb_cloud.results import Results, load_results, run_info_for
from nwb_cloud.results.run_info import info_profile
from nwb_cloud.results.tables import RUN
from nwb_cloud.workloads import WORKLOADS

CELL_KEY = ["machine", "workload", "method", "layout", "profile"]


@dataclass
class Measurements:
    """Read cells (``cells``), local decode measurements (``decode``) and the layouts they were made on."""

    cells: pd.DataFrame  # CELL_KEY + modality, codec, chunks, compressed_bytes, decoded_bytes, time_s, ...
    decode: pd.DataFrame  # modality, codec, chunks, compressed_bytes, decoded_bytes, local_s, source (read/chunk)
    layouts: pd.DataFrame  # modality, layout, codec, backend, page_size, chunk_shape, shape, dtype, ratio, ...
    networks: dict[str, Network]
    loopback_bandwidth: float | None = None
    cores: int | None = None  # of the machine that measured: the most chunks a reader can decode at once
    source: str = ""
    notes: list[str] = field(default_factory=list)
    run: dict = field(default_factory=dict)  # machine, size, commit, env of the run measured (RUN), run id, date
    run_cells: pd.DataFrame | None = None  # every cell of that run (failed ones too), for the shared tables

    def without_layout(self, modality: str, layout: str) -> Measurements:
        """The timed cells of one layout left out (its local measurements kept): for a held-out check."""
        keep = ~((self.cells["modality"] == modality) & (self.cells["layout"] == layout))
        return replace(self, cells=self.cells[keep].reset_index(drop=True))

    def layout(self, modality: str, layout: str) -> pd.Series:
        rows = self.layouts[(self.layouts["modality"] == modality) & (self.layouts["layout"] == layout)]
        return rows.iloc[0]


def load(results_dir: str | Path | Results, machine: str | None = None) -> Measurements:
    """The latest run's measurements in ``results_dir`` (one machine: ``machine``, or the one with most cells)."""
    results = load_results(results_dir)
    cells = results.latest()
    if cells.empty:
        raise NotEnoughMeasurements(f"no asv results in {results.folder}: run `nwb-cloud bench` first")
    matched = {run: run_info_for(results.infos, *run) or {} for run in set(zip(cells["machine"], cells["commit"]))}
    return from_cells(
        cells, matched, machine=machine, origin=results.folder.name
    )  # the folder, not where it sits: same page anywhere


def from_cells(cells: pd.DataFrame, run_infos: dict, machine: str | None = None, origin: str = "") -> Measurements:
    """:class:`Measurements` of a report cell frame and its run infos (``{(machine, commit): info}``).

    The closed loop's cells (layouts named ``loop-*``, :mod:`nwb_cloud.recommend.loop`) are never fitted: they
    check the model's recommendations out of sample.
    """
    ok = cells[(cells["status"] == "ok") & cells["workload"].map(_is_read)]
    ok = ok[~ok["layout"].astype(str).str.startswith(LOOP_PREFIX)]
    if ok.empty:
        raise NotEnoughMeasurements(f"no timed read cells in {origin or 'the results'}")
    counts = ok.groupby("machine").size()
    machine = machine or str(counts.idxmax())
    if machine not in counts:
        raise NotEnoughMeasurements(f"no timed read cells of machine {machine!r}; machines: {', '.join(counts.index)}")
    ok = ok[ok["machine"] == machine]
    notes = [f"machine {machine} chosen (most cells) of {', '.join(counts.index)}"] if len(counts) > 1 else []
    runs = ok.groupby(RUN).size()  # a quick run beside the study: the fit takes the run with most cells
    chosen = dict(zip(RUN, runs.idxmax(), strict=True))
    if len(runs) > 1:
        notes.append(f"run {chosen['commit'][:12]} ({chosen['size']}) chosen (most cells) of {len(runs)} runs of "
                     f"{machine}")  # fmt: skip
    in_run = (cells[RUN] == pd.Series(chosen)).all(axis=1)
    ok = ok[(ok[RUN] == pd.Series(chosen)).all(axis=1)]
    commit = chosen["commit"]
    info = run_infos.get((machine, commit)) or {}
    if not info:
        notes.append("no run info matched this run: geometry and decode times are unknown")

    layouts = _layouts(info, ok)
    floors = _floors(info, layouts)
    loopback = next((f["bandwidth"] for f in info.get("floors") or [] if f.get("profile") == "loopback"
                     and f.get("bandwidth")), None)  # fmt: skip
    networks = {name: Network.of(profile, loopback) for name, profile in _profiles(info).items()}

    rows, left_out = [], {}
    for cell in ok.to_dict("records"):
        modality = WORKLOADS[cell["workload"]].modality
        found = floors.get((modality, cell["layout"], cell["workload"]))
        why = None if found else f"no geometry for {modality}/{cell['layout']}"
        if found is None and not layouts.empty:
            found = _computed_geometry(layouts, modality, cell["layout"], cell["workload"])
            why = None if found else why
        if cell["profile"] not in networks:
            why = f"profile {cell['profile']!r} is neither in the run info nor in the profile table"
        if why:
            left_out[why] = left_out.get(why, 0) + 1
            continue
        rows.append(
            {
                **{k: cell[k] for k in CELL_KEY},
                "modality": modality,
                "variant": _variant(layouts, modality, cell["layout"]),
                "codec": found["codec"],
                "chunks": found["chunks"],
                "runs": _runs(layouts, modality, cell["layout"], cell["workload"], found["chunks"]),
                "chunk_bytes": found["chunk_bytes"],
                "compressed_bytes": found["compressed_bytes"],
                "decoded_bytes": found["decoded_bytes"],
                "time_s": float(cell["time_s"]),
                "time_q25_s": _number(cell.get("time_q25_s")),
                "time_q75_s": _number(cell.get("time_q75_s")),
                "requests": _number(cell.get("requests")),
                "bytes_received": _number(cell.get("bytes_received")),
                "n_samples": int(cell.get("n_samples") or 0),
            }
        )
    notes += [f"{n} cell(s) left out: {why}" for why, n in left_out.items()]
    if not rows:
        raise NotEnoughMeasurements(f"no read cell of {origin or 'the results'} has a known geometry: {notes}")
    decode = pd.DataFrame(
        [{**f, "source": "read"} for f in floors.values() if not math.isnan(f["local_s"])] + _codec_table(info),
        columns=["modality", "layout", "workload", "codec", "chunks", "chunk_bytes", "compressed_bytes",
                 "decoded_bytes", "local_s", "source"],
    )  # fmt: skip
    run = info.get("run_id") or commit[:8]
    return Measurements(
        cells=pd.DataFrame(rows),
        decode=decode,
        layouts=layouts,
        networks=networks,
        loopback_bandwidth=loopback,
        cores=_cores(info),
        source=f"{origin + ': ' if origin else ''}machine {machine}, run {run}, size {info.get('size', '?')}",
        notes=notes,
        run={**chosen, "run_id": info.get("run_id"), "date": info.get("date")},
        run_cells=cells[in_run].reset_index(drop=True),
    )


def _layout_row(layouts: pd.DataFrame, modality: str, layout: str) -> pd.Series | None:
    rows = layouts[(layouts["modality"] == modality) & (layouts["layout"] == layout)]
    return None if rows.empty else rows.iloc[0]


def _runs(layouts: pd.DataFrame, modality: str, layout: str, workload: str, chunks: int) -> int:
    """The touched chunks' contiguous runs (see :mod:`nwb_cloud.recommend.geometry`); in Zarr, or when the
    layout's chunk shape is unknown, every chunk is its own run."""
    row = _layout_row(layouts, modality, layout)
    if row is None or row["backend"] == ZARR:
        return chunks
    return geometry(row["shape"], row["chunk_shape"], row["itemsize"], WORKLOADS[workload].select).runs


def _variant(layouts: pd.DataFrame, modality: str, layout: str) -> str:
    row = _layout_row(layouts, modality, layout)
    return variant_of(None) if row is None else variant_of(row["backend"], row["page_size"])


def _cores(info: dict) -> int | None:
    machine = info.get("machine")
    cores = info.get("cores") or (machine.get("cores") if isinstance(machine, dict) else None)
    return int(cores) if cores else None


def _is_read(workload: str) -> bool:
    row = WORKLOADS.get(workload)
    return row is not None and row.select is not None


def _number(value) -> float:
    return float(value) if value is not None and not (isinstance(value, float) and math.isnan(value)) else np.nan


def _profiles(info: dict) -> dict[str, Profile]:
    """The profiles as the run applied them (run info), else the profile table's."""
    applied = {name: info_profile(info, name) for name in info.get("profiles") or {}}
    return {**PROFILES, **{name: profile for name, profile in applied.items() if profile is not None}}


def _layouts(info: dict, cells: pd.DataFrame) -> pd.DataFrame:
    """One row per (modality, layout) of the run: codec, backend, chunk shape, data shape."""
    recorded = info.get("layouts") or {}
    rows = []
    for (modality, name), _ in cells.groupby([cells["workload"].map(lambda w: WORKLOADS[w].modality), "layout"]):
        definition = recorded.get(name) or (asdict(LAYOUTS[name]) if name in LAYOUTS else None)
        asset = (info.get("assets") or {}).get(f"{modality}/{name}") or {}
        shape, dtype = _data_shape(info, asset, modality)
        if (definition is None and not asset.get("codec")) or not asset.get("chunk_shape") or shape is None:
            continue
        definition = definition or {}
        backend = asset.get("backend") or definition.get("backend") or HDF5
        codec = asset.get("codec") or codec_name(definition.get("compressors"), definition.get("compressor_options"),
                                                 backend)  # fmt: skip
        rows.append(
            {
                "modality": modality,
                "layout": name,
                "codec": codec,
                "backend": backend,
                "page_size": definition.get("page_size"),
                "chunk_shape": tuple(int(c) for c in asset["chunk_shape"]),
                "shape": shape,
                "dtype": dtype,
                "itemsize": np.dtype(dtype).itemsize if dtype else 0,
                "size_bytes": asset.get("size_bytes"),
                "ratio": _number(asset.get("compression_ratio")),  # the whole series: raw / stored bytes
            }
        )
    columns = ["modality", "layout", "codec", "backend", "page_size", "chunk_shape", "shape", "dtype", "itemsize",
               "size_bytes", "ratio"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


def _data_shape(info: dict, asset: dict, modality: str) -> tuple[tuple[int, ...] | None, str | None]:
    """The series' shape and dtype: recorded in the run info, else those of the run's size of the modality."""
    if asset.get("shape") and asset.get("dtype"):
        return tuple(int(s) for s in asset["shape"]), str(asset["dtype"])
    size = info.get("size")
    if modality not in MODALITIES or not size:
        return None, None
    spec = MODALITIES[modality].spec(size)
    signal = MODALITIES[modality].signal(spec, int(info.get("seed") or 0))
    return tuple(signal.shape), np.dtype(signal.dtype).name


def _floors(info: dict, layouts: pd.DataFrame) -> dict:
    """(modality, layout, workload) -> the geometry and local decode time the run measured on the file."""
    names = sorted(set(layouts["layout"]), key=len, reverse=True)
    found = {}
    for floor in info.get("floors") or []:
        if floor.get("kind") != "read" or floor.get("workload") not in WORKLOADS:
            continue
        modality = WORKLOADS[floor["workload"]].modality
        layout = floor.get("layout") or next((n for n in names if f"-{n}-" in str(floor.get("asset", ""))), None)
        row = _layout_row(layouts, modality, layout)
        if row is None or not floor.get("chunks"):
            continue
        key = (modality, layout, floor["workload"])
        local_s = float(floor.get("local_s") or np.nan)
        if key in found and not local_s < found[key]["local_s"]:
            continue  # the same file and read under another profile: keep the least local time
        found[key] = {
            "modality": modality,
            "layout": layout,
            "workload": floor["workload"],
            "codec": row["codec"],
            "chunks": int(floor["chunks"]),
            "chunk_bytes": int(floor["chunk_bytes"]) // int(floor["chunks"]),
            "compressed_bytes": int(floor["compressed_bytes"]),
            "decoded_bytes": int(floor["chunk_bytes"]),
            "local_s": local_s,
        }
    return found


def _codec_table(info: dict) -> list[dict]:
    """The run's one-chunk decode measurement of each codec (``codecs``), as decode rows of one chunk."""
    rows = []
    for entry in info.get("codecs") or []:
        try:
            raw, stored, speed = int(entry["raw_bytes"]), int(entry["stored_bytes"]), float(entry["decode_mb_s"])
        except (KeyError, TypeError, ValueError):
            continue
        if raw > 0 and stored > 0 and speed > 0:
            rows.append({"modality": entry.get("modality"), "layout": None, "workload": None,
                         "codec": entry.get("codec"), "chunks": 1, "chunk_bytes": raw, "compressed_bytes": stored,
                         "decoded_bytes": raw, "local_s": raw / (speed * 1e6), "source": "chunk"})  # fmt: skip
    return rows


def _computed_geometry(layouts: pd.DataFrame, modality: str, layout: str, workload: str) -> dict | None:
    """Geometry from the layout's chunk shape when the run kept no floor; compressed bytes from the file size."""
    row = _layout_row(layouts, modality, layout)
    if row is None or not row["size_bytes"]:
        return None
    touched = geometry(row["shape"], row["chunk_shape"], row["itemsize"], WORKLOADS[workload].select)
    raw = math.prod(row["shape"]) * row["itemsize"]
    ratio = row["ratio"] if row["ratio"] > 0 else raw / row["size_bytes"]
    return {
        "codec": row["codec"],
        "chunks": touched.chunks,
        "chunk_bytes": touched.chunk_bytes,
        "compressed_bytes": int(touched.decoded_bytes / ratio),
        "decoded_bytes": touched.decoded_bytes,
    }
