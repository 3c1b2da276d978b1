"""LINDI's h5py look-alike read by pynwb: straight from the HDF5 URL, or from a ``.lindi.json`` beside the asset.

The JSON is a reference file system: HDF5 metadata inline and, for each chunk, ``[url, offset, length]``.
LINDI fetches a chunk with a plain HTTP range GET of that URL, so the URL must be readable without S3
credentials; against a private bucket that means a presigned URL, which expires and is itself a
credential, so it must never be written into the JSON. What is stored instead:

* every chunk reference points at the template ``{{asset}}`` (LINDI's own template mechanism), and
  ``templates.asset`` holds the object's ``s3://bucket/key``: no endpoint, no signature, no expiry;
* at open time the JSON is fetched with the store's credentials and ``templates.asset`` is replaced, in
  memory only, with a freshly presigned HTTPS URL (valid one hour), which LINDI substitutes into every
  chunk reference. A handle kept open longer than that must be reopened.

The JSON lists every chunk (``num_dataset_chunks_threshold=None``): with LINDI's default of 1000, datasets
with more chunks become an ``_EXTERNAL_ARRAY_LINK`` holding the raw URL, which LINDI then reads through its
own remfile, not through the JSON.

Known upstream defect (lindi 0.4.6): the store zero-pads every numeric chunk shorter than its uncompressed
size (``LindiReferenceFileSystemStore._get_padded_size``, from lindi PR #84, meant for the last chunk of
contiguous datasets) - so compressed chunks get trailing zeros. zlib ignores them; the plain Zstd HDF5
filter (32015) does not and fails with "Zstd decompression error: Src size is incorrect". Both rows fail
loudly on such files; the error is left as it is, it is never turned into a result.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from pathlib import Path

import lindi
from lindi.LindiH5pyFile.LindiReferenceFileSystemStore import LindiReferenceFileSystemStore

from nwb_cloud.access._h5py import read_nwb
from nwb_cloud.access.base import AccessError, Method, reader_errors, require_writable, translate_errors
from nwb_cloud.access.derived import identity, require_current
from nwb_cloud.cloud.transfer import upload
from nwb_cloud.refs.fetch import RangeReader

SUFFIX = ".lindi.json"
TEMPLATE = "asset"
SOURCE = "nwb_cloud_source"  # the ETag and size of the asset the JSON was made from (see access.derived)


def _closer(h5):
    # NWBHDF5IO.close already closes the file it was given; LINDI prints a warning on a second close.
    return lambda: h5.close() if getattr(h5, "_is_open", True) else None


def _open_from_hdf5(store, key):
    # The presigned URL lives only in LINDI's objects for the life of this handle.
    h5 = lindi.LindiH5pyFile.from_hdf5_file(store.http_url(key))
    return read_nwb(h5, [_closer(h5)])


def reference_file_system(source: str, url: str) -> dict:
    """LINDI's reference file system of the HDF5 file at ``source`` (a path or URL), chunk URLs templated."""
    opts = lindi.LindiH5ZarrStoreOpts(num_dataset_chunks_threshold=None)
    remote = source.startswith(("http://", "https://"))
    zarr_store = lindi.LindiH5ZarrStore.from_file(source, opts=opts, url=None if remote else url)
    try:
        rfs = zarr_store.to_reference_file_system()
    finally:
        zarr_store.close()
    reference_url = source if remote else url
    LindiReferenceFileSystemStore.remove_templates_in_rfs(rfs)  # LINDI templates URLs used 5+ times
    for name, value in rfs["refs"].items():
        if isinstance(value, list):
            if value[0] != reference_url:
                raise AccessError(f"LINDI referenced an unexpected URL for {name}: not the asset itself")
            value[0] = "{{" + TEMPLATE + "}}"
    rfs["templates"] = {TEMPLATE: url}
    return rfs


def _prepare_json(store, key, local_path):
    """Build the asset's reference file system (from the local copy when there is one) and put it beside it."""
    if key.endswith(".zarr"):
        return  # a Zarr asset: LINDI reads HDF5 only
    require_writable(store, key, "lindi-json prepare: a LINDI JSON")
    with translate_errors(store.s3_url(key), "lindi-json"):
        made_from = identity(store, key, "lindi-json")
        rfs = reference_file_system(str(local_path) if local_path else store.http_url(key), store.s3_url(key))
        rfs[SOURCE] = made_from
        with tempfile.TemporaryDirectory(prefix="nwb-cloud-lindi-") as tmp:
            path = Path(tmp) / "refs.lindi.json"
            path.write_text(json.dumps(rfs))
            upload(store, path, key + SUFFIX, progress=False)


def _open_from_json(store, key):
    json_key = key + SUFFIX
    # this harness fetches the JSON (presigned chunk URLs) as the index's sidecar is fetched: one GET, signed
    # without a botocore client, a body that breaks off fetched again
    where = store.s3_url(json_key)
    missing = f"no LINDI JSON at {where}: prepare the run (or the asset does not exist)"
    with contextlib.closing(RangeReader(store, key)) as reader, reader_errors("lindi-json", where, missing):
        body = reader.get(json_key)
    try:
        rfs = json.loads(body)
        recorded = rfs.pop(SOURCE, None)
        rfs["templates"][TEMPLATE] = store.http_url(key)
    except (ValueError, KeyError, TypeError) as error:
        raise AccessError(f"lindi-json: {store.s3_url(json_key)} is not a nwb-cloud LINDI JSON ({error})") from None
    require_current(store, key, recorded, f"the LINDI JSON {store.s3_url(json_key)}", "lindi-json")
    h5 = lindi.LindiH5pyFile.from_reference_file_system(rfs)
    return read_nwb(h5, [_closer(h5)])


METHODS = [
    Method(
        name="lindi",
        description="LINDI LindiH5pyFile.from_hdf5_file on the HTTPS URL (metadata and chunks through LINDI's "
        "remfile-like range reader, 128 KiB minimum)",
        open=_open_from_hdf5,
    ),
    Method(
        name="lindi-json",
        description="LINDI from a prebuilt .lindi.json beside the asset (all chunks referenced; one HTTP range "
        "GET per chunk)",
        open=_open_from_json,
        prepare=_prepare_json,
    ),
]
