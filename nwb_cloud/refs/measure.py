"""What building an index costs, beside what LINDI's build costs: seconds, bytes and requests, file fraction.

Both builds read the asset from the store, as a user without a local copy would: ours through s3fs in
small blocks each fetched once (:mod:`nwb_cloud.refs.source`), LINDI's ``LindiH5pyFile.from_hdf5_file`` through
its own range reader on an HTTPS URL. Each is timed to the index written out (our JSON or Parquet, LINDI's
``.lindi.json``). Our build counts its own requests and bytes; LINDI's cannot be seen from outside, so
both are also counted on the wire when a ``traffic`` reader of the shaping proxy the store goes through is
given (``proxy.traffic``) - the figures to compare.

These are plain functions returning flat dicts, for asv ``track_*``/``time_*`` benchmarks to wrap.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from pathlib import Path

import lindi

from nwb_cloud.refs.build import build_index
from nwb_cloud.refs.errors import Unrepresentable
from nwb_cloud.refs.storage import AUTO, PARQUET, choose, chunk_references, write_parquet
from nwb_cloud.refs.translate import dumps

LINDI_DEFAULT_CHUNK_THRESHOLD = 1000  # lindi 0.4.6: datasets with more chunks become external array links


def build_cost(store, key: str, traffic=None, storage: str = AUTO) -> dict:
    """Build the index of ``key`` from ``store`` and store it (in a temporary folder): what it cost."""
    size = int(store.head(key)["size"])
    with _wire(traffic) as wire, tempfile.TemporaryDirectory(prefix="nwb-index-build-") as folder:
        started = time.perf_counter()
        index = build_index(store.s3_url(key), storage_options=store.s3fs_options())
        if choose(index, storage) == PARQUET:
            write_parquet(index, Path(folder) / "index.parq")
            stored = sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
        else:
            path = Path(folder) / "index.refs.json"
            path.write_text(dumps(index))
            stored = path.stat().st_size
        seconds = time.perf_counter() - started
    build = index["nwb_cloud"]["build"]
    return {
        "tool": "nwb-index",
        "seconds": seconds,
        "file_bytes": size,
        "bytes_fetched": build["bytes_fetched"],
        "requests": build["fetches"],
        "fraction_fetched": build["bytes_fetched"] / size if size else 0.0,
        "index_bytes": stored,
        "chunk_references": chunk_references(index),
        **wire,
    }


def lindi_build_cost(
    store, key: str, traffic=None, chunk_threshold: int | None = LINDI_DEFAULT_CHUNK_THRESHOLD
) -> dict:
    """LINDI's ``from_hdf5_file`` on the asset's HTTPS URL and ``write_lindi_file``: what it cost.

    ``chunk_threshold`` is LINDI's ``num_dataset_chunks_threshold`` (its default leaves the chunks of larger
    datasets out of the JSON; ``None`` lists every chunk, as our index does). The URL is presigned for the
    call and dropped: it is never returned.
    """
    size = int(store.head(key)["size"])
    options = lindi.LindiH5ZarrStoreOpts(num_dataset_chunks_threshold=chunk_threshold)
    with _wire(traffic) as wire, tempfile.TemporaryDirectory(prefix="nwb-index-lindi-") as folder:
        started = time.perf_counter()
        h5 = lindi.LindiH5pyFile.from_hdf5_file(store.http_url(key), zarr_store_opts=options)
        try:
            path = Path(folder) / "index.lindi.json"
            h5.write_lindi_file(str(path))
        except RuntimeError as error:  # LINDI's refusal of a dataset it cannot represent (LZF, szip)
            if "not supported" in str(error):
                raise Unrepresentable(f"LINDI: {error}") from None
            raise
        finally:
            h5.close()
        seconds = time.perf_counter() - started
        stored = path.stat().st_size
    return {
        "tool": "lindi",
        "seconds": seconds,
        "file_bytes": size,
        "index_bytes": stored,
        "chunk_threshold": chunk_threshold,
        **wire,
    }


@contextlib.contextmanager
def _wire(traffic):
    """``{}``, filled on exit with the requests and body bytes counted at the proxy (when there is one)."""
    figures: dict = {}
    if traffic is None:
        yield figures
        return
    with traffic.measure() as cost:
        yield figures
    figures.update(
        {
            "wire_requests": cost.requests_total,
            "wire_bytes": cost.body_bytes_received,
            "wire_peak_connections": cost.peak_connections,
        }
    )
