"""h5py's ROS3 driver (HDF5's read-only S3 virtual file driver): HDF5 itself does the range GETs.

The PyPI h5py wheel is built without it (conda-forge's h5py has it). Where it is missing, the row stays in
the registry and ``unavailable()`` says why, so the report shows the row as not run here, never drops it.
Where it is present: region and credentials go in h5py's ``set_fapl_ros3`` options; an S3-compatible endpoint
is named by the object's path-style URL (``http://host:port/bucket/key``), AWS S3 by ``s3://bucket/key``.
That path is written from HDF5's ROS3 documentation and could not be run on this machine (no ROS3 build).
"""

from __future__ import annotations

import h5py

from nwb_cloud.access._h5py import h5py_methods


def _unavailable() -> str | None:
    if "ros3" in h5py.registered_drivers():
        return None
    return (
        f"this h5py ({h5py.version.version}, HDF5 {h5py.version.hdf5_version}) was built without the ROS3 driver "
        "(the PyPI wheel never has it; conda-forge's h5py does)"
    )


def _open_ros3(store, key, **file_options):
    options = {"aws_region": store.region.encode()}
    if not store.anonymous:
        options["secret_id"] = store.access_key.encode()
        options["secret_key"] = store.secret_key.encode()
    name = f"{store.endpoint_url.rstrip('/')}/{store.bucket}/{key}" if store.endpoint_url else store.s3_url(key)
    h5 = h5py.File(name, "r", driver="ros3", **options, **file_options)
    return h5, [h5.close]


METHODS = h5py_methods("ros3", "h5py ROS3 driver (HDF5's own S3 reader)", _open_ros3, unavailable=_unavailable)
