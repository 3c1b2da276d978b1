"""The catalog: which assets a run reads, where they are, and the local source copy each read is checked against.

Two data sources fill it:

* ``embedded``: recordings generated here (cached on disk) and uploaded to the embedded endpoint;
* ``dandi``: the public DANDI assets that the public NWB benchmarks read (dandiset 000717), resolved through
  the DANDI API to objects of the ``dandiarchive`` bucket (us-east-2, anonymous). Offline this fails within
  seconds with a message, never a hang.

A prepared catalog is part of the run's state file (:mod:`nwb_cloud.suite.state`), which the asv benchmarks load.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

from nwb_cloud.cloud.store import Store, StoreError
from nwb_cloud.cloud.transfer import upload
from nwb_cloud.datasets.layouts import get_layout, layouts_for
from nwb_cloud.datasets.modalities import MODALITIES, get_modality
from nwb_cloud.datasets.writer import asset_filename, raw_source, write_recording
from nwb_cloud.errors import NwbCloudError


class CatalogError(NwbCloudError):
    """The catalog is missing, stale, or does not hold the asked-for asset."""


@dataclass(frozen=True)
class Asset:
    modality: str
    layout: str
    key: str  # object key in the store
    series: str  # path of the bulk series inside the file
    size_bytes: int
    etag: str
    chunk_shape: tuple[int, ...] | None = None
    local_path: str | None = None  # the source copy; None for DANDI assets
    write_seconds: float | None = None  # wall time of writing the file through NeuroConv (on this machine)
    write_cpu_seconds: float | None = None  # its CPU time (unaffected by other work on the machine)
    backend: str = "hdf5"
    codec: str | None = None
    raw_bytes: int | None = None  # the bulk series uncompressed
    stored_bytes: int | None = None  # the bulk series' chunks as stored

    @property
    def name(self) -> str:
        return f"{self.modality}/{self.layout}"

    @property
    def compression_ratio(self) -> float | None:
        """Raw bytes / stored bytes of the bulk series (None when unknown, e.g. a DANDI asset)."""
        return self.raw_bytes / self.stored_bytes if self.raw_bytes and self.stored_bytes else None

    def summary(self) -> dict:
        """What a run records about the asset (no local paths, no store address)."""
        return {
            "size_bytes": self.size_bytes,
            "chunk_shape": self.chunk_shape,
            "backend": self.backend,
            "codec": self.codec,
            "write_seconds": self.write_seconds,
            "write_cpu_seconds": self.write_cpu_seconds,
            "raw_bytes": self.raw_bytes,
            "stored_bytes": self.stored_bytes,
            "compression_ratio": self.compression_ratio,
        }


@dataclass
class Catalog:
    store: Store
    source: str
    size: str
    seed: int
    assets: dict[str, Asset] = field(default_factory=dict)

    def asset(self, modality: str, layout: str) -> Asset:
        try:
            return self.assets[f"{modality}/{layout}"]
        except KeyError:
            known = ", ".join(sorted(self.assets)) or "none"
            raise CatalogError(f"no asset {modality}/{layout} in the {self.source} catalog; known: {known}") from None

    def add(self, asset: Asset) -> None:
        self.assets[asset.name] = asset

    def to_dict(self) -> dict:
        return {
            "store": self.store.to_dict(),
            "source": self.source,
            "size": self.size,
            "seed": self.seed,
            "assets": [asdict(a) for a in self.assets.values()],
        }

    @classmethod
    def from_dict(cls, payload: dict) -> Catalog:
        try:
            catalog = cls(
                store=Store(**payload["store"]),
                source=payload["source"],
                size=payload["size"],
                seed=payload["seed"],
            )
            for entry in payload["assets"]:
                chunks = entry.get("chunk_shape")
                catalog.add(Asset(**{**entry, "chunk_shape": tuple(chunks) if chunks else None}))
        except (KeyError, TypeError) as error:
            raise CatalogError(f"catalog is corrupt ({type(error).__name__}: {error}); prepare the run again") from None
        return catalog


def prepare_embedded(
    store: Store,
    data_dir: Path,
    size: str,
    seed: int,
    modalities=None,
    layouts=None,
    progress: bool = True,
    log=print,
    workers: int = 1,
    key_prefix: str = "",
) -> Catalog:
    """Generate (or reuse) every modality x layout file the layout applies to; upload what the store lacks.

    Objects are named ``<key_prefix><size>/<file>``: a prefix keeps them in their place in a shared bucket.

    ``workers`` > 1 writes the missing files that many at a time first (one core each: compression in h5py
    is single-threaded), so a file's recorded write time is still one core's.

    A layout meant for other modalities (``Layout.modalities``) is not written for this one: that pair is
    no asset of the catalog, and the grid does not measure it.
    """
    catalog = Catalog(store=store, source="embedded", size=size, seed=seed)
    if workers > 1:
        _write_in_parallel(data_dir, size, seed, modalities, layouts, workers, log)
    for modality_name in modalities or MODALITIES:
        modality = get_modality(modality_name)
        for layout_name in layouts_for(modality.name, layouts):
            layout = get_layout(layout_name)
            log(f"{modality.name}/{layout.name}: {'checking' if progress else 'writing'} the {size} file")
            written = write_recording(modality, layout, size, seed, Path(data_dir) / "assets", progress=progress)
            catalog.add(publish(store, written, modality.name, layout, size, progress=progress, key_prefix=key_prefix))
    return catalog


def publish(
    store: Store, written, modality: str, layout, size: str, progress: bool = False, key_prefix: str = ""
) -> Asset:
    """The asset of a written file (:class:`~nwb_cloud.datasets.writer.Written`), uploaded under ``key_prefix``
    unless the store already holds it (same key and size)."""
    key = f"{key_prefix}{size}/{written.path.name}"
    local_size = _local_size(written.path)
    remote = existing(store, key)
    if remote is None or remote["size"] != local_size:
        upload(store, written.path, key, progress=progress)
        remote = existing(store, key) or {"size": local_size, "etag": ""}
    return Asset(
        modality=modality,
        layout=layout.name,
        key=key,
        series=get_modality(modality).series_path,
        size_bytes=local_size,
        etag=remote["etag"],
        chunk_shape=written.chunk_shape,
        local_path=str(written.path),
        write_seconds=written.write_seconds,
        write_cpu_seconds=written.write_cpu_seconds,
        backend=layout.backend,
        codec=layout.codec,
        raw_bytes=written.raw_bytes,
        stored_bytes=written.stored_bytes,
    )


def _write_in_parallel(data_dir: Path, size: str, seed: int, modalities, layouts, workers: int, log) -> None:
    directory = Path(data_dir) / "assets"
    missing = [
        (modality.name, layout_name)
        for modality in map(get_modality, modalities or MODALITIES)
        for layout_name in layouts_for(modality.name, layouts)
        if not (directory / asset_filename(modality, size, seed, get_layout(layout_name))).exists()
    ]
    if not missing:
        return
    for modality_name in dict.fromkeys(name for name, _ in missing):  # the raw copies first: shared by all
        raw_source(get_modality(modality_name), size, seed, directory, progress=False)
    log(f"writing {len(missing)} {size} files, {workers} at a time")
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(_write_one, name, layout, size, seed, directory) for name, layout in missing]
        for done, future in enumerate(as_completed(futures), 1):
            written = future.result()  # a failed write fails the preparation, naming its file
            log(f"  [{done}/{len(missing)}] {written.path.name} in {written.seconds:.0f} s")


def _write_one(modality_name: str, layout_name: str, size: str, seed: int, directory: Path):
    return write_recording(get_modality(modality_name), get_layout(layout_name), size, seed, directory)


def _local_size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def existing(store: Store, key: str) -> dict | None:
    """The object's HEAD (size, ETag), or None when the store has no such object."""
    try:
        return store.head(key)
    except StoreError as error:
        if "no such object" in str(error):
            return None
        raise


# The public files the NWB benchmarks read (dandiset 000717), as published: their layout is what it is.
DANDI_API = "https://api.dandiarchive.org/api"
DANDI_STORE = Store(bucket="dandiarchive", region="us-east-2")
DANDI_ASSETS = {
    "ecephys": ("000717", "sub-npI3/sub-npI3_behavior+ecephys.nwb", "acquisition/ElectricalSeries"),
    "ophys": (
        "000717",
        "sub-R6_ses-20200206T210000_behavior+ophys/sub-R6_ses-20200206T210000_behavior+ophys.nwb",
        "acquisition/TwoPhotonSeries",
    ),
}
DANDI_TIMEOUT_S = 10


def prepare_dandi(modalities=None) -> Catalog:
    """Resolve the DANDI assets to S3 objects (needs the internet: an EC2 host, not these machines)."""
    catalog = Catalog(store=DANDI_STORE, source="dandi", size="as-published", seed=0)
    for modality in modalities or DANDI_ASSETS:
        dandiset, path, series = DANDI_ASSETS[modality]
        key, size = _resolve_dandi(dandiset, path)
        head = DANDI_STORE.head(key)
        catalog.add(Asset(modality, "as-published", key, series, size, head["etag"]))
    return catalog


def _resolve_dandi(dandiset: str, path: str) -> tuple[str, int]:
    url = f"{DANDI_API}/dandisets/{dandiset}/versions/draft/assets/"
    try:
        response = requests.get(url, params={"path": path}, timeout=DANDI_TIMEOUT_S)
        response.raise_for_status()
        results = [r for r in response.json().get("results", []) if r.get("path") == path]
        if not results:
            raise CatalogError(f"DANDI dandiset {dandiset} has no asset {path!r}")
        asset_id = results[0]["asset_id"]
        metadata = requests.get(f"{DANDI_API}/assets/{asset_id}/", timeout=DANDI_TIMEOUT_S)
        metadata.raise_for_status()
        s3_urls = [u for u in metadata.json()["contentUrl"] if ".s3.amazonaws.com/" in u]
        if not s3_urls:
            raise CatalogError(f"DANDI asset {dandiset}/{path} has no S3 content URL")
        key = s3_urls[0].split(".s3.amazonaws.com/", 1)[1]
    except requests.RequestException as error:
        raise CatalogError(
            f"the DANDI source needs the DANDI API ({DANDI_API}), which is unreachable from here: "
            f"{type(error).__name__}. Use the embedded source offline."
        ) from None
    except (KeyError, ValueError) as error:
        raise CatalogError(f"unexpected DANDI API answer for {dandiset}/{path}: {error}") from None
    return key, int(results[0].get("size", 0))
