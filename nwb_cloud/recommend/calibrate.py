"""A codec's compression ratio, decode speed and write cost measured on a sample of the data.

The sample is written to an in-memory HDF5 file with the codec exactly as NeuroConv would write it
(:func:`~nwb_cloud.recommend.configure.h5py_options`), then read back with HDF5's chunk cache off: the
stored size gives the ratio, the best of a few reads the decode speed of this machine's core, and the CPU
time of the write (the least of a few) what writing the layout costs per byte (:func:`write_cpu_per_byte`).
"""

from __future__ import annotations

import contextlib
import itertools
import time

import h5py
import hdf5plugin  # noqa: F401 - registers the plugin filters a codec may use
import numpy as np

from nwb_cloud.recommend.configure import h5py_options
from nwb_cloud.recommend.model import CodecParams

_names = itertools.count()


def measure_codec(sample: np.ndarray, codec: str, chunk_shape, modality: str | None, repeats: int = 3) -> CodecParams:
    """Ratio and decode speed of ``codec`` on ``sample`` stored in chunks of ``chunk_shape`` (clipped to it)."""
    with _written(sample, codec, chunk_shape) as dataset:
        stored = max(1, dataset.id.get_storage_size())
        best = np.inf
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            dataset[()]
            best = min(best, time.perf_counter() - started)
    return CodecParams(
        decode_bytes_per_s=sample.nbytes / max(best, 1e-9),
        ratio={modality or "data": sample.nbytes / stored},
        source=f"measured on a {sample.nbytes / 1e6:.0f} MB sample of the data on this machine",
    )


def write_cpu_per_byte(sample: np.ndarray, codec: str, chunk_shape, repeats: int = 2) -> float:
    """CPU seconds per raw byte of writing ``sample`` in chunks of ``chunk_shape`` with ``codec`` (least of
    ``repeats``; CPU time, so other work on the machine does not inflate it)."""
    best = np.inf
    for _ in range(max(1, repeats)):
        started = time.process_time()
        with _written(sample, codec, chunk_shape):
            pass
        best = min(best, time.process_time() - started)
    return best / max(1, sample.nbytes)


@contextlib.contextmanager
def _written(sample: np.ndarray, codec: str, chunk_shape):
    """``sample`` written to an in-memory HDF5 file (chunks clipped to it), the dataset open for reading."""
    chunk_shape = tuple(max(1, min(int(c), s)) for c, s in zip(chunk_shape, sample.shape, strict=True))
    options = h5py_options(sample.dtype, sample.shape, chunk_shape, codec)
    name = f"nwb-cloud-codec-sample-{next(_names)}"
    with h5py.File(name, "w", driver="core", backing_store=False, rdcc_nbytes=0) as file:
        dataset = file.create_dataset("sample", data=sample, **options)
        file.flush()
        yield dataset
