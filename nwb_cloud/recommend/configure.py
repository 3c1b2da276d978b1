"""A layout (chunk shape + codec) as NeuroConv's dataset configuration, so ``configure_backend`` applies it.

The configuration is rebuilt through NeuroConv's own pydantic model, so NeuroConv validates it exactly as
it validates a lab's hand-written configuration (buffer multiples of the chunk, filter order, options).
"""

from __future__ import annotations

import math

import numpy as np
from neuroconv.tools.nwb_helpers import HDF5DatasetIOConfiguration, ZarrDatasetIOConfiguration
from pydantic import ValidationError

from nwb_cloud.recommend.codecs import HDF5, ZARR, neuroconv_compressors
from nwb_cloud.recommend.errors import BadChunkShape, RecommendError, SeriesNotFound
from nwb_cloud.recommend.geometry import check_chunk_shape

BUFFER_BYTES = 1_000_000_000  # NeuroConv's default write buffer: ~1 GB


def backend_of(configuration) -> str:
    return ZARR if isinstance(configuration, ZarrDatasetIOConfiguration) else HDF5


def buffer_shape(full_shape, chunk_shape, itemsize: int, target_bytes: int = BUFFER_BYTES) -> tuple[int, ...]:
    """A write buffer of whole chunks (or whole axes) up to ~``target_bytes``: last axes filled first."""
    buffer = list(chunk_shape)
    for axis in reversed(range(len(full_shape))):
        others = math.prod(buffer) // buffer[axis] * itemsize
        multiple = max(1, int(target_bytes // (others * chunk_shape[axis])))
        extent = chunk_shape[axis] * multiple
        buffer[axis] = int(full_shape[axis]) if extent >= full_shape[axis] else extent
    return tuple(buffer)


def dataset_configuration(base, chunk_shape, codec: str, buffer_bytes: int = BUFFER_BYTES):
    """A copy of NeuroConv's dataset configuration ``base`` with ``chunk_shape`` and ``codec`` (validated)."""
    full_shape = tuple(base.full_shape)
    try:
        chunk_shape = check_chunk_shape(full_shape, chunk_shape)
    except BadChunkShape as error:
        raise BadChunkShape(f"{base.location_in_file}: {error}") from None
    backend = backend_of(base)
    compressors, options = neuroconv_compressors(codec, backend, base.dtype)
    payload = base.model_dump()
    payload.update(
        chunk_shape=chunk_shape,
        buffer_shape=buffer_shape(full_shape, chunk_shape, np.dtype(base.dtype).itemsize, buffer_bytes),
        compressors=compressors,
        compressor_options=options,
    )
    if backend == ZARR:
        payload.update(filters=None, filter_options=None)  # the codec's chain replaces any earlier one
    try:
        return type(base).model_validate(payload)
    except ValidationError as error:
        raise RecommendError(
            f"NeuroConv rejects chunk shape {chunk_shape} with codec {codec!r} for {base.location_in_file}: "
            + " ".join(str(error).split())[:400]
        ) from None


def find_location(backend_configuration, dataset_path: str | None = None, shape=None, dtype=None) -> str:
    """The key of the dataset in ``backend_configuration``: ``dataset_path``, or the one dataset of that shape."""
    configurations = backend_configuration.dataset_configurations
    if dataset_path:
        dataset_path = dataset_path.strip("/")
        if not dataset_path.endswith("/data") and not dataset_path.endswith("/timestamps"):
            dataset_path += "/data"
        if dataset_path in configurations:
            return dataset_path
        raise SeriesNotFound(
            f"the backend configuration has no dataset {dataset_path!r}; it configures: {', '.join(configurations)}"
        )
    matching = [
        key
        for key, c in configurations.items()
        if tuple(c.full_shape) == tuple(shape) and (dtype is None or np.dtype(c.dtype) == np.dtype(dtype))
    ]
    if len(matching) == 1:
        return matching[0]
    raise SeriesNotFound(
        f"{'no' if not matching else 'several'} dataset(s) of shape {tuple(shape)} in the backend configuration "
        f"({', '.join(matching) or ', '.join(configurations)}): name the series"
    )


def h5py_options(dtype, shape, chunk_shape, codec: str) -> dict:
    """``h5py.create_dataset`` keywords for ``codec``, as NeuroConv's ``H5DataIO`` would get them."""
    compressors, options = neuroconv_compressors(codec, HDF5, dtype)
    configuration = HDF5DatasetIOConfiguration(
        object_id="sample",
        location_in_file="sample/data",
        dataset_name="data",
        dtype=np.dtype(dtype),
        full_shape=tuple(shape),
        chunk_shape=tuple(chunk_shape),
        buffer_shape=tuple(shape),
        compressors=compressors,
        compressor_options=options,
    )
    options = configuration.get_data_io_kwargs()
    options.pop("allow_plugin_filters", None)  # an H5DataIO flag, not an h5py one
    if options.get("compression") is False:
        options.pop("compression")
    return options
