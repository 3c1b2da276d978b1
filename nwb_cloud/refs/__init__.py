"""The NWB-complete reference index: an NWB HDF5 file described as Zarr whose chunks stay in the file.

What it is
    Kerchunk "version 1" references (``{"version": 1, "templates": {"u": url}, "refs": {...}}``) written by
    :mod:`~nwb_cloud.refs.translate` from an h5py walk of the file: every group, dataset, attribute, link and
    reference NWB needs, scalars, strings, compound rows, the cached specifications, HDF5's filter pipeline
    with per-chunk filter masks, and attribute type tags that give back exactly what h5py returns. Bulk data
    stays byte ranges of the asset; metadata, strings, references and tiny chunks live in the index. An
    object with no faithful form raises :class:`Unrepresentable` naming it - nothing is dropped with a
    warning. The format is written down, versioned, in ``docs/index-format.md``, and
    :mod:`~nwb_cloud.refs.validate` checks an index against it and against its asset.

Design call: read it with hdmf-zarr, not an h5py look-alike
    The index is written in hdmf-zarr 0.13's (Zarr v2) conventions - ``zarr_dtype``, object references as
    ``{"source": ".", "path", "object_id", "source_object_id"}``, ``zarr_link`` group attributes, the root's
    ``.specloc`` - so pynwb reads it through ``NWBZarrIO`` like any NWB Zarr asset, and the reader is the one
    the community maintains and converges on (the ``_REFERENCE``/``_LINKS`` convention it is moving to is the
    successor of these). A thin h5py-compatible layer (LINDI's approach) would make us maintain a second
    emulation of h5py's API surface and dtype quirks that hdmf relies on; hdmf-zarr already turns Zarr into
    nearly the same builders as ``NWBHDF5IO``, and :class:`~nwb_cloud.refs.nwbio.IndexIO` mends the rest
    (attribute types, table datasets, scalars, external links), checked object by object on a corpus of files
    from many writers with :mod:`nwb_cloud.refs.compare` (``tests/corpus/``). Where hdmf-zarr's *writer* and
    its *reader* disagree, the index follows what makes the read identical to h5py's, and stays inside what
    the reader accepts:

    * scalars are 0-d arrays (the reader returns exactly h5py's scalar; the writer's shape ``(1,)`` would
      give 1-element arrays) - except the cached specifications, which hdmf-zarr reads as ``dataset[0]``;
    * object arrays use numcodecs' JSON codec, not Pickle: numcodecs >= 0.15 refuses to unpickle by default,
      and an index fetched from a bucket must never execute code. Compound rows with references use
      :class:`~nwb_cloud.refs.codecs.TableJSON` (JSON that numcodecs can decode back into records), which
      importing this package registers;
    * no ``_ARRAY_DIMENSIONS`` attributes (kerchunk adds them for xarray; they are not in the file);
    * attribute type tags (``nwb_cloud_types``) and skipped-filter lists (``nwb_cloud_skipped_filters``) that
      other Zarr readers ignore.

Where it is kept (:mod:`~nwb_cloud.refs.storage`, :mod:`~nwb_cloud.refs.cache`, :mod:`~nwb_cloud.refs.sidecar`)
    JSON, or Parquet (fsspec's ``LazyReferenceMapper``) above a chunk-count threshold; in a local cache keyed
    by the asset's URL + ETag + size, and optionally published beside the asset. :mod:`~nwb_cloud.refs.locate`
    finds the one that describes the asset as it is now, or builds it; a stale index is never used.

The data path (:mod:`~nwb_cloud.refs.plan`, :mod:`~nwb_cloud.refs.fetch`, :mod:`~nwb_cloud.refs.pipeline`,
:mod:`~nwb_cloud.refs.zarr_store`, :mod:`~nwb_cloud.refs.handle`)
    zarr asks the store for all chunks of a selection at once; the store plans range requests (coalescing
    neighbours, splitting large ones), sends them on its own keep-alive connections (signed by botocore's
    signer, without a client), decodes each chunk on a pool of threads as it arrives, and hands the chunks to
    zarr in order within a memory budget. The ``.zarray`` it serves has no codecs, because the store has
    already applied them (see :mod:`~nwb_cloud.refs.zarr_store`).

Layering
    ``refs`` sits below ``access`` (cloud < datasets < refs < access): it never imports a read method. The
    ``kerchunk`` method (:mod:`nwb_cloud.access.kerchunk_refs`: stock fsspec, the baseline) and the
    ``nwb-index`` method (:mod:`nwb_cloud.access.nwb_index`: this package's data path) wrap what is here.
    :mod:`~nwb_cloud.refs.measure` gives build costs (ours and LINDI's) for the benchmarks.
"""

import nwb_cloud.refs.codecs  # noqa: F401 - registers TableJSON with numcodecs
from nwb_cloud.refs.build import INDEX_FORMAT, build_index, with_url
from nwb_cloud.refs.errors import CorruptIndex, RefsError, Unrepresentable
from nwb_cloud.refs.reader import open_zarr_io

__all__ = ["INDEX_FORMAT", "CorruptIndex", "RefsError", "Unrepresentable", "build_index", "open_zarr_io", "with_url"]
