"""pynwb's IO over an index: hdmf-zarr's ``NWBZarrIO``, giving back what ``NWBHDF5IO`` gives where they differ.

hdmf-zarr turns the index into the same builders as ``NWBHDF5IO`` turns the HDF5 file into, except in three
places, which :class:`IndexIO` mends after hdmf-zarr has read the tree (``read_builder``):

* attributes: hdmf-zarr hands over JSON values (Python numbers, lists); the index's type tags give back
  h5py's numpy scalars and arrays (:mod:`nwb_cloud.refs.attrs`), and then, as ``HDF5IO`` does, attributes
  that h5py gives as bytes become text. ``HDF5IO`` decodes them as strict UTF-8 and fails on bytes that are
  not (a Latin-1 micro sign); the index keeps those bytes as lone surrogates, as h5py does for
  variable-length strings, instead of failing;
* compound datasets without references: ``HDF5IO`` wraps every compound dataset in a table dataset
  (``BuilderH5TableDataset``), hdmf-zarr only those with references; the index wraps all of them
  (``BuilderZarrTableDataset``), so a ``pixel_mask`` reads the same way from both;
* scalars: ``HDF5IO`` gives a scalar compound as a 0-d array (hdmf-zarr: ``numpy.void``), a fixed-length
  string scalar as text (hdmf-zarr: ``numpy.bytes_``) and a big-endian number in native byte order.

External links (``zarr_link`` entries whose ``source`` is another file) are read through the other file's own
index (``external``), as ``HDF5IO`` follows them into the other file. Everything else - groups, links,
references, strings, numeric arrays - is hdmf-zarr's reading unchanged.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable

import numpy as np
import zarr
from hdmf.build import DatasetBuilder, GroupBuilder, LinkBuilder
from hdmf_zarr.backend import ROOT_NAME
from hdmf_zarr.nwb import NWBZarrIO
from hdmf_zarr.zarr_utils import BuilderZarrTableDataset

from nwb_cloud.refs import attrs as attributes
from nwb_cloud.refs.errors import RefsError


class IndexIO(NWBZarrIO):
    """``NWBZarrIO`` whose builders equal ``NWBHDF5IO``'s for the same file (see the module docstring).

    ``on_close`` is called once when the IO is closed (e.g. to close the store's connections). ``external(name)``
    gives the root Zarr group of the index of the file an external link names (the file beside the asset);
    without it, reading an external link raises :class:`~nwb_cloud.refs.errors.RefsError`.
    """

    def __init__(self, *args, on_close: Callable[[], object] | None = None, external=None, **kwargs):
        self._on_close = on_close
        self._external = external
        super().__init__(*args, **kwargs)

    def resolve_ref(self, zarr_ref):
        """hdmf-zarr's, plus links to another file: its object, read through that file's own index."""
        source = zarr_ref.get("source") if isinstance(zarr_ref, dict) else None
        if source in (None, "."):
            return super().resolve_ref(zarr_ref)
        path = str(zarr_ref.get("path") or "").strip("/")
        if self._external is None:
            raise RefsError(f"an external link to {source}:/{path} needs that file's index; open the file with "
                            "the nwb-index method (or open_zarr_io on a local copy)")  # fmt: skip
        root = self._external(source)
        try:
            target = root[path] if path else root
        except KeyError:
            raise RefsError(f"the external link target {source}:/{path} is not in that file") from None
        return (posixpath.basename(path) or ROOT_NAME), target

    def read_builder(self):
        root = super().read_builder()
        _mend(root, self, set())
        return root

    def close(self, *args, **kwargs):
        try:
            super().close(*args, **kwargs)
        finally:
            on_close, self._on_close = self._on_close, None
            if on_close is not None:
                on_close()


def _mend(builder, io: IndexIO, seen: set[int]) -> None:
    """Attribute types and table datasets of ``builder`` and everything below it, once each (idempotent)."""
    if id(builder) in seen:
        return
    seen.add(id(builder))
    attrs = builder.attributes
    if attributes.TYPES_KEY in attrs:
        restored = attributes.typed(attrs)
        attrs.clear()
        attrs.update(restored)
    for key, value in attrs.items():
        if isinstance(value, bytes):  # HDF5IO's rule (np.bytes_ included), without failing on non-UTF-8 bytes
            attrs[key] = value.decode("utf-8", errors="surrogateescape")
        elif isinstance(value, (GroupBuilder, DatasetBuilder)):
            _mend(value, io, seen)
    if isinstance(builder, GroupBuilder):
        for child in (*builder.groups.values(), *builder.datasets.values()):
            _mend(child, io, seen)
        for link in builder.links.values():
            _mend(link.builder if isinstance(link, LinkBuilder) else link, io, seen)
    elif isinstance(builder, DatasetBuilder):
        data = builder.data
        if isinstance(data, zarr.Array) and data.dtype.names is not None:
            builder["data"] = BuilderZarrTableDataset(data, io, [field["dtype"] for field in builder.dtype])
        elif isinstance(data, np.void):
            builder["data"] = np.array(data, dtype=data.dtype)
        elif isinstance(data, bytes):  # a fixed-length string scalar: HDF5IO's rule, as for attributes
            builder["data"] = data.decode("utf-8", errors="surrogateescape")
        elif isinstance(data, np.generic) and not data.dtype.isnative:  # h5py reads scalars in native order
            builder["data"] = data.astype(data.dtype.newbyteorder("="))
