"""The NWB-complete reference index: an NWB HDF5 file described as Zarr whose chunks stay in the file.

What it is
    Kerchunk "version 1" references (``{"version": 1, "templates": {"u": url}, "refs": {...}}``) built by
    kerchunk's ``SingleHdf5ToZarr`` and completed with everything NWB needs and kerchunk drops: object
    references (in attributes, datasets and compound rows), soft and extra hard links, scalars,
    variable-length strings, compound dtypes and the cached specifications. Bulk data stays byte ranges of
    the asset; metadata, strings, references and tiny chunks live in the index. An object with no faithful
    form raises :class:`Unrepresentable` naming it - nothing is dropped with a warning.

Design call: read it with hdmf-zarr, not an h5py look-alike
    The index is written in hdmf-zarr 0.13's (Zarr v2) conventions - ``zarr_dtype``, object references as
    ``{"source": ".", "path", "object_id", "source_object_id"}``, ``zarr_link`` group attributes, the root's
    ``.specloc`` - so pynwb reads it through ``NWBZarrIO`` like any NWB Zarr asset, and the reader is the one
    the community maintains and converges on (the ``_REFERENCE``/``_LINKS`` convention it is moving to is the
    successor of these). A thin h5py-compatible layer (LINDI's approach) would make us maintain a second
    emulation of h5py's API surface and dtype quirks that hdmf relies on; hdmf-zarr already turns Zarr into
    the same builders as ``NWBHDF5IO`` (checked object by object in the fidelity tests with
    :mod:`nwb_cloud.refs.compare`). Where hdmf-zarr's *writer* and its *reader* disagree, the index follows
    what makes the read identical to h5py's, and stays inside what the reader accepts:

    * scalars are 0-d arrays (the reader returns exactly h5py's scalar; the writer's shape ``(1,)`` would
      give 1-element arrays) - except the cached specifications, which hdmf-zarr reads as ``dataset[0]``;
    * object arrays use numcodecs' JSON codec, not Pickle: numcodecs >= 0.15 refuses to unpickle by default,
      and an index fetched from a bucket must never execute code. Compound rows with references use
      :class:`~nwb_cloud.refs.codecs.TableJSON` (JSON that numcodecs can decode back into records), which
      importing this package registers;
    * no ``_ARRAY_DIMENSIONS`` attributes (kerchunk adds them for xarray; they are not in the file).

Layering
    ``refs`` sits below ``access`` (cloud < datasets < refs < access): it never imports a read method. The
    ``kerchunk`` read method (:mod:`nwb_cloud.access.kerchunk_refs`) imports :func:`build_index`,
    :func:`open_zarr_io` and :mod:`~nwb_cloud.refs.sidecar` from here and wraps the result in ``Opened``.
"""

import nwb_cloud.refs.codecs  # noqa: F401 - registers TableJSON with numcodecs
from nwb_cloud.refs.build import INDEX_FORMAT, build_index, with_url
from nwb_cloud.refs.errors import CorruptIndex, RefsError, Unrepresentable
from nwb_cloud.refs.reader import open_zarr_io

__all__ = ["INDEX_FORMAT", "CorruptIndex", "RefsError", "Unrepresentable", "build_index", "open_zarr_io", "with_url"]
