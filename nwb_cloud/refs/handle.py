"""An open index of one asset: the Zarr store, the connections and the decode threads behind pynwb's reads.

:class:`IndexHandle` owns what a read needs and closes it: a :class:`~nwb_cloud.refs.fetch.RangeReader`
(its client's connection pool, possibly warmed while the index was fetched), a thread pool of one
decoder per usable core, and the :class:`~nwb_cloud.refs.zarr_store.IndexStore` over the index.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import nwb_cloud.refs.codecs  # noqa: F401 - registers the codec of compound datasets before zarr reads one
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.nwbio import IndexIO
from nwb_cloud.refs.plan import Policy
from nwb_cloud.refs.reader import check_index
from nwb_cloud.refs.zarr_store import METADATA, IndexStore
from nwb_cloud.settings import usable_cores


class IndexHandle:
    """The index ``index`` of the asset ``reader`` reads, opened for Zarr (and pynwb) reads."""

    def __init__(self, index: dict, reader: RangeReader, policy: Policy | None = None, decoders: int | None = None):
        check_index(index)
        self.index = index
        self.reader = reader
        self.policy = policy or reader.policy
        self._decoders = ThreadPoolExecutor(decoders or usable_cores(), thread_name_prefix="nwb-index-decode")
        refs = index["refs"]
        metadata = getattr(refs, "zmetadata", None)  # fsspec's Parquet mapper lists its metadata here
        self.store = IndexStore(
            refs,
            url=reader.url,
            reader=reader,
            decoders=self._decoders,
            policy=self.policy,
            metadata_keys=[k for k in metadata if k.endswith(METADATA)] if metadata is not None else None,
            asset_size=index.get("nwb_cloud", {}).get("source_bytes"),
        )
        self._closed = False

    def nwb_io(self, external=None) -> IndexIO:
        """pynwb's IO (not yet read) over this handle's store (``external``: see :class:`IndexIO`)."""
        return IndexIO(path=self.store, mode="r", external=external)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._decoders.shutdown(wait=False, cancel_futures=True)
        self.reader.close()

    def __enter__(self) -> IndexHandle:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
